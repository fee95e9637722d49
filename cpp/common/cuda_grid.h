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
#include <cstdint>

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

}  // namespace mn
