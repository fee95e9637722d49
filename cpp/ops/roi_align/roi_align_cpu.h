// CPU kernels for RoIAlign / RoIWarp. Arguments are already validated.
#pragma once
#include "ops/roi_align/roi_align.h"

namespace mn {
namespace cpu {

template <typename T>
void roi_align_forward(const TensorView& input, const TensorView& rois,
                       const TensorView& output, const RoiAlignParams& p);

template <typename T>
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p);

}  // namespace cpu
}  // namespace mn
