#include "common/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#define MN_HOST_OPENMP 1
#endif

namespace mn {
namespace {

thread_local bool t_inside_pool_task = false;

// ---------------------------------------------------------------- host OpenMP
// When the process has an OpenMP runtime in its global symbol scope (torch
// loads libgomp there), parallel_for runs its chunks on that runtime's team
// instead of this pool's threads. The ops then share torch's worker threads:
// on a machine with as many threads as cores, a pool thread woken while
// torch's idle OpenMP worker still spins (GOMP_SPINCOUNT) waits for that core,
// and a 3x3 Winograd convolution (native transforms between torch GEMMs) lost
// ~20% to it. GOMP_parallel(fn, data, num_threads, flags) is libgomp's entry
// for `#pragma omp parallel` (GCC >= 4.9; libiomp5 exports it too). Not in a
// forked child (libgomp's team does not survive fork; the pool's design does:
// the caller runs every chunk itself), nor with MN_HOST_OPENMP=0.
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
std::atomic<bool> g_host_openmp_allowed{true};
std::atomic<bool> g_forked_child{false};
std::atomic<GompParallel> g_gomp_parallel{nullptr};

#ifdef MN_HOST_OPENMP
void mark_forked_child() { g_forked_child.store(true); }

bool host_openmp_env_allows() {
  static const bool allowed = [] {
    pthread_atfork(nullptr, nullptr, &mark_forked_child);
    const char* e = std::getenv("MN_HOST_OPENMP");
    if (e == nullptr) return true;
    for (const char* off : {"0", "false", "off", "no", "OFF", "False", "FALSE"})
      if (std::strcmp(e, off) == 0) return false;
    return true;
  }();
  return allowed;
}
#endif

GompParallel host_openmp() {
#ifdef MN_HOST_OPENMP
  if (!host_openmp_env_allows() || !g_host_openmp_allowed.load(std::memory_order_relaxed) ||
      g_forked_child.load(std::memory_order_relaxed))
    return nullptr;
  GompParallel f = g_gomp_parallel.load(std::memory_order_acquire);
  if (f == nullptr) {
    // Looked up until found: torch may be imported after the first op call.
    f = reinterpret_cast<GompParallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    if (f != nullptr) g_gomp_parallel.store(f, std::memory_order_release);
  }
  return f;
#else
  return nullptr;
#endif
}

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

// Each thread of the OpenMP team claims chunks like a pool worker.
void run_job_on_team_thread(void* p) {
  const bool outer = t_inside_pool_task;
  t_inside_pool_task = true;  // nested parallel_for calls run inline
  static_cast<Job*>(p)->work();
  t_inside_pool_task = outer;
}

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
    num_threads_.store(std::max(1, n));
  }

  int threads() const { return num_threads_.load(); }

  void submit(const std::shared_ptr<Job>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      // Workers start on first need (never while the host OpenMP runs the
      // jobs) and are only ever added; idle extra workers cost nothing.
      while (static_cast<int>(workers_.size()) < helpers)
        workers_.emplace_back([this] { loop(); });
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

void set_host_openmp(bool allowed) { g_host_openmp_allowed.store(allowed); }
bool host_openmp_active() { return host_openmp() != nullptr; }

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
  if (GompParallel gomp = host_openmp()) {
    // Returns after every team thread finished (the region's closing barrier).
    gomp(&run_job_on_team_thread, job.get(), static_cast<unsigned>(std::min<int64_t>(threads, job->nchunks)), 0);
    if (job->error) std::rethrow_exception(job->error);
    return;
  }
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
