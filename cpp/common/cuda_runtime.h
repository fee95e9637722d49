// Host-side CUDA runtime helpers usable from plain C++ (no CUDA headers here).
// Without CUDA kernels in the build they report "no device" and do nothing.
#pragma once
#include <cstdint>
#include <string>

namespace mn {
namespace cuda {

// Number of visible CUDA devices; 0 when the build has no CUDA kernels, or no
// driver / no device is present (never throws, never aborts).
int device_count();
// CUDA runtime version the extension was built with (e.g. 13000), 0 without CUDA.
int runtime_version();
// Driver version (0 when no driver is installed).
int driver_version();

// The stream the kernels of the current call launch on (thread-local; set by
// the bindings from torch.cuda.current_stream(device).cuda_stream).
void* current_stream();

class StreamScope {
 public:
  explicit StreamScope(uintptr_t stream);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  void* prev_;
};

}  // namespace cuda
}  // namespace mn
