// RoIAlign / RoIWarp on CUDA: launches the functors of roi_align_kernels.h.
#include "common/cuda_launch.cuh"
#include "ops/roi_align/roi_align_cuda.h"
#include "ops/roi_align/roi_align_kernels.h"

namespace mn {
namespace cuda {

using namespace roi_align_detail;

namespace {
const char* name(const RoiAlignParams& p, bool bwd) {
  return p.quantize ? (bwd ? "roi_warp_backward" : "roi_warp")
                    : (bwd ? "roi_align_backward" : "roi_align");
}
}  // namespace

template <typename T>
void roi_align_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                       const RoiAlignParams& p) {
  const char* op = name(p, false);
  DeviceExec ex(input.device_id, op);
  forward_run<T>(ex, input, rois, output, p, op);
}

template <typename T>
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p) {
  const char* op = name(p, true);
  DeviceExec ex(grad_input.device_id, op);
  backward_run<T>(ex, grad_output, rois, grad_input, p, op);
}

#include "ops/roi_align/roi_align_instances.inc"

}  // namespace cuda
}  // namespace mn
