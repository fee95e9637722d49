// Device side of cuda_grid.h: launches the per-thread functors as kernels on
// the current call's stream, scratch memory ordered on that stream, device
// guard and error translation (CUDA errors -> RuntimeError naming the op).
// Only included by .cu files.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common/cuda_grid.h"
#include "common/cuda_runtime.h"

namespace mn {
namespace cuda {

inline void check(cudaError_t e, const char* op, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(op) + ": CUDA error in " + what + ": " +
                             cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

inline cudaStream_t stream() { return static_cast<cudaStream_t>(current_stream()); }

template <typename F>
__global__ void kernel_1d(F f) {
  f(GridThread{static_cast<int64_t>(blockIdx.x), static_cast<int64_t>(threadIdx.x),
               static_cast<int64_t>(blockDim.x), static_cast<int64_t>(gridDim.x)});
}

template <typename F>
void launch(const Launch& l, const F& f, const char* op) {
  if (l.blocks <= 0 || l.threads <= 0) return;
  kernel_1d<F><<<static_cast<unsigned>(l.blocks), static_cast<unsigned>(l.threads), 0, stream()>>>(f);
  check(cudaGetLastError(), op, "kernel launch");
}

template <typename F>
__global__ void kernel_phased(F f) {
  __shared__ typename F::Shared s;
  const GridThread t{static_cast<int64_t>(blockIdx.x), static_cast<int64_t>(threadIdx.x),
                     static_cast<int64_t>(blockDim.x), static_cast<int64_t>(gridDim.x)};
  for (int p = 0; p < F::kPhases; ++p) {
    f.phase(p, t, s);
    __syncthreads();
  }
}

template <typename F>
void launch_phased(const Launch& l, const F& f, const char* op) {
  if (l.blocks <= 0 || l.threads <= 0) return;
  kernel_phased<F><<<static_cast<unsigned>(l.blocks), static_cast<unsigned>(l.threads), 0, stream()>>>(f);
  check(cudaGetLastError(), op, "kernel launch");
}

// Makes the tensors' device current for the call; restores the caller's.
class DeviceGuard {
 public:
  DeviceGuard(int device, const char* op) {
    check(cudaGetDevice(&prev_), op, "cudaGetDevice");
    if (prev_ != device) check(cudaSetDevice(device), op, "cudaSetDevice");
    changed_ = prev_ != device;
  }
  ~DeviceGuard() {
    if (changed_) (void)cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool changed_ = false;
};

// Scratch memory allocated and freed in stream order (no synchronisation).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer(size_t n, const char* op) {
    check(cudaMallocAsync(reinterpret_cast<void**>(&p_), (n ? n : 1) * sizeof(T), stream()), op,
          "cudaMallocAsync");
  }
  ~DeviceBuffer() {
    if (p_) (void)cudaFreeAsync(p_, stream());
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

template <typename F>
__global__ void kernel_block(F f) {
  f.run_device();
}

// Device executor (see HostExec in cuda_grid.h).
struct CudaExec {
  template <typename T>
  using Buffer = DeviceBuffer<T>;
  template <typename F>
  void launch(const Launch& l, const F& f, const char* op) { cuda::launch(l, f, op); }
  template <typename F>
  void launch_phased(const Launch& l, const F& f, const char* op) { cuda::launch_phased(l, f, op); }
  template <typename F>
  void launch_block(int64_t threads, const F& f, const char* op) {
    kernel_block<F><<<1, static_cast<unsigned>(threads), 0, stream()>>>(f);
    check(cudaGetLastError(), op, "kernel launch");
  }
  // Stable radix sort (CUB); defined in nms_cuda.cu, its only user.
  template <typename K>
  void sort_pairs(const K* keys_in, K* keys_out, const int64_t* vals_in, int64_t* vals_out,
                  int64_t n, const char* op);
  // One value back to the host: the only synchronise, on the call's stream.
  int64_t read_count(const int64_t* p, const char* op) {
    int64_t v = 0;
    check(cudaMemcpyAsync(&v, p, sizeof(int64_t), cudaMemcpyDeviceToHost, stream()), op,
          "device-to-host copy of a count");
    check(cudaStreamSynchronize(stream()), op, "stream synchronise for a count");
    return v;
  }
};

// What every <op>_cuda.cu entry point runs the orchestration of <op>_kernels.h
// with: a CudaExec that keeps the tensors' device current while it lives.
class DeviceExec : public CudaExec {
 public:
  DeviceExec(int device, const char* op) : guard_(device, op) {}

 private:
  DeviceGuard guard_;
};

}  // namespace cuda
}  // namespace mn
