// RoIPool on CUDA: launches the functors of roi_pool_kernels.h.
#include "common/cuda_launch.cuh"
#include "ops/roi_pool/roi_pool_cuda.h"
#include "ops/roi_pool/roi_pool_kernels.h"

namespace mn {
namespace cuda {

using namespace roi_pool_detail;

template <typename T>
void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t PH, int64_t PW) {
  DeviceExec ex(input.device_id, "roi_pool");
  forward_run<T>(ex, input, rois, output, argmax, spatial_scale, PH, PW, "roi_pool");
}

template <typename T>
void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input) {
  DeviceExec ex(grad_input.device_id, "roi_pool_backward");
  backward_run<T>(ex, grad_output, rois, argmax, grad_input, "roi_pool_backward");
}

#include "ops/roi_pool/roi_pool_instances.inc"

}  // namespace cuda
}  // namespace mn
