// CUDA kernels for RoIAlign / RoIWarp (built when MN_WITH_CUDA). Arguments are
// already validated; they run on mn::cuda::current_stream(), never synchronise.
#pragma once
#include "ops/roi_align/roi_align.h"

namespace mn {
namespace cuda {

template <typename T>
void roi_align_forward(const TensorView& input, const TensorView& rois,
                       const TensorView& output, const RoiAlignParams& p);

// Deterministic: a gather per grad_input element, no atomics.
template <typename T>
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p);

}  // namespace cuda
}  // namespace mn
