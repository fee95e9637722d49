#include "common/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mn {
namespace {

thread_local bool t_inside_pool_task = false;

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t begin = 0, end = 0, chunk = 1, nchunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;

  // Claims and runs chunks until none are left.
  void work() {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= nchunks) return;
      const int64_t lo = begin + i * chunk;
      const int64_t hi = std::min(end, lo + chunk);
      try {
        (*fn)(lo, hi);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == nchunks) {
        std::lock_guard<std::mutex> lk(mu);
        cv.notify_all();
      }
    }
  }
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void set_threads(int n) {
    n = std::max(1, n);
    num_threads_.store(n);
    std::lock_guard<std::mutex> lk(mu_);
    // Workers are only ever added; idle extra workers cost nothing.
    while (static_cast<int>(workers_.size()) < n - 1)
      workers_.emplace_back([this] { loop(); });
  }

  int threads() const { return num_threads_.load(); }

  void submit(const std::shared_ptr<Job>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (int i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1) cv_.notify_one(); else cv_.notify_all();
  }

 private:
  void loop() {
    t_inside_pool_task = true;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }

  std::atomic<int> num_threads_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();  // leaked on purpose: no join during interpreter exit
    unsigned hw = std::thread::hardware_concurrency();
    q->set_threads(hw ? static_cast<int>(hw) : 1);
    return q;
  }();
  return *p;
}

}  // namespace

void set_num_threads(int n) { pool().set_threads(n); }
int get_num_threads() { return pool().threads(); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t n = end - begin;
  const int threads = t_inside_pool_task ? 1 : get_num_threads();
  int64_t max_chunks = (n + grain - 1) / grain;
  if (threads <= 1 || max_chunks <= 1) {
    fn(begin, end);
    return;
  }
  // Several chunks per thread so uneven items (RoIs of different sizes) balance.
  const int64_t nchunks = std::min<int64_t>(max_chunks, int64_t(threads) * 4);
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->begin = begin;
  job->end = end;
  job->chunk = (n + nchunks - 1) / nchunks;
  job->nchunks = (n + job->chunk - 1) / job->chunk;
  pool().submit(job, static_cast<int>(std::min<int64_t>(threads - 1, job->nchunks - 1)));
  t_inside_pool_task = true;
  job->work();
  t_inside_pool_task = false;
  {
    std::unique_lock<std::mutex> lk(job->mu);
    job->cv.wait(lk, [&] { return job->done.load() == job->nchunks; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace mn
