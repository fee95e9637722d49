// Launch grids that run on a GPU or, for the tests, in a host loop.
//
// Every CUDA kernel of this project is a functor whose MN_HOST_DEVICE
// operator()(GridThread) does one thread's work (usually a grid-stride loop).
// On the device, mn::cuda::launch() runs it as a __global__ kernel; on the
// host, emulate() calls it for every (block, thread) pair of the same Launch,
// so the indexing, bounds and grid-stride logic are tested without a GPU.
// Kernels with shared memory and barriers are split into phases (see
// emulate_phased): each phase runs for all threads of a block before the next.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "common/host_device.h"

namespace mn {

struct GridThread {
  int64_t block, thread, block_dim, grid_dim;
  MN_HOST_DEVICE int64_t global() const { return block * block_dim + thread; }
  MN_HOST_DEVICE int64_t stride() const { return grid_dim * block_dim; }
};

struct Launch {
  int64_t blocks = 1, threads = 1;
};

// 1-D launch covering n work items with a grid-stride loop.
inline Launch launch_1d(int64_t n, int64_t threads = 256, int64_t max_blocks = 8192) {
  Launch l;
  l.threads = threads;
  int64_t b = (n + threads - 1) / threads;
  l.blocks = b < 1 ? 1 : (b > max_blocks ? max_blocks : b);
  return l;
}

// Index i of a 4-d grid [A, B, Y, X] taken apart in memory order: NCHW (x
// fastest) or, when channels_last, NHWC (b fastest). Kernels that walk their
// output or input in its own memory order share this.
struct Index4 {
  int64_t a, b, y, x;
};
MN_HOST_DEVICE Index4 unravel4(int64_t i, bool channels_last, int64_t B, int64_t Y, int64_t X) {
  Index4 r;
  if (channels_last) {
    r.b = i % B; i /= B; r.x = i % X; i /= X; r.y = i % Y; r.a = i / Y;
  } else {
    r.x = i % X; i /= X; r.y = i % Y; i /= Y; r.b = i % B; r.a = i / B;
  }
  return r;
}

// One-block compaction / offset kernels (phased): thread t owns items
// [beg, end) of n in contiguous chunks ...
struct ThreadChunk {
  int64_t beg, end;
};
MN_HOST_DEVICE ThreadChunk thread_chunk(int64_t n, const GridThread& t) {
  const int64_t chunk = (n + t.block_dim - 1) / t.block_dim;
  const int64_t beg = t.thread * chunk;
  return ThreadChunk{beg, beg + chunk < n ? beg + chunk : n};
}

// ... and one thread turns the per-thread totals v[0, m) into their exclusive
// prefix sums in place, returning the grand total.
MN_HOST_DEVICE int64_t exclusive_scan(int64_t* v, int64_t m) {
  int64_t total = 0;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t c = v[i];
    v[i] = total;
    total += c;
  }
  return total;
}

// Host loop over the whole grid (tests and grid emulation).
template <typename F>
void emulate(const Launch& l, const F& f) {
  for (int64_t b = 0; b < l.blocks; ++b)
    for (int64_t t = 0; t < l.threads; ++t) f(GridThread{b, t, l.threads, l.blocks});
}

// Phased kernels: F::Shared is the block's shared memory, F::kPhases the
// number of barrier-separated phases, f.phase(p, thread, shared) one phase.
template <typename F>
void emulate_phased(const Launch& l, const F& f) {
  for (int64_t b = 0; b < l.blocks; ++b) {
    typename F::Shared s;
    for (int p = 0; p < F::kPhases; ++p)
      for (int64_t t = 0; t < l.threads; ++t) f.phase(p, GridThread{b, t, l.threads, l.blocks}, s);
  }
}

// Host executor: what the op orchestration in <op>_kernels.h calls to launch
// functors, allocate scratch and sort, run in plain host loops. CudaExec
// (cuda_launch.cuh) is the device twin; the same orchestration code runs on
// either, so the emulation covers the launch configurations and buffer sizes.
struct HostExec {
  template <typename T>
  class Buffer {
   public:
    Buffer(size_t n, const char*) : v_(n ? n : 1) {}
    T* get() { return v_.data(); }

   private:
    std::vector<T> v_;
  };
  template <typename F>
  void launch(const Launch& l, const F& f, const char*) { emulate(l, f); }
  template <typename F>
  void launch_phased(const Launch& l, const F& f, const char*) { emulate_phased(l, f); }
  // Stable ascending sort of (key, value) pairs (CUB's radix sort on the device).
  template <typename K>
  void sort_pairs(const K* keys_in, K* keys_out, const int64_t* vals_in, int64_t* vals_out,
                  int64_t n, const char*) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), int64_t(0));
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return keys_in[a] < keys_in[b]; });
    for (int64_t i = 0; i < n; ++i) {
      keys_out[i] = keys_in[idx[i]];
      vals_out[i] = vals_in[idx[i]];
    }
  }
  int64_t read_count(const int64_t* p, const char*) { return *p; }
  // A single-block kernel with barriers inside a loop: F::run_host emulates it.
  template <typename F>
  void launch_block(int64_t threads, const F& f, const char*) { f.run_host(threads); }
};

}  // namespace mn
