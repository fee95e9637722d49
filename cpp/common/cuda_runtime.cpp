#include "common/cuda_runtime.h"

#if MN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace mn {
namespace cuda {
namespace {
thread_local void* t_stream = nullptr;
}  // namespace

int device_count() {
#if MN_WITH_CUDA
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: clear the sticky error
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

int runtime_version() {
#if MN_WITH_CUDA
  return CUDART_VERSION;
#else
  return 0;
#endif
}

int driver_version() {
#if MN_WITH_CUDA
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
#else
  return 0;
#endif
}

void* current_stream() { return t_stream; }

StreamScope::StreamScope(uintptr_t stream) : prev_(t_stream) {
  t_stream = reinterpret_cast<void*>(stream);
}

StreamScope::~StreamScope() { t_stream = prev_; }

}  // namespace cuda
}  // namespace mn
