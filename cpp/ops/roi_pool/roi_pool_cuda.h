// CUDA kernels for RoIPool (built when MN_WITH_CUDA); arguments validated.
#pragma once
#include "ops/roi_pool/roi_pool.h"

namespace mn {
namespace cuda {

template <typename T>
void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t pooled_h,
                      int64_t pooled_w);

// Deterministic gather (no atomics); same bits as the CPU kernel.
template <typename T>
void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input);

}  // namespace cuda
}  // namespace mn
