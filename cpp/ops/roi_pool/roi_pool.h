// RoIPool (Fast R-CNN), the quantised baseline of the paper's section 4.2.
//
// Contract (CPU views, outputs preallocated by the caller):
//   input   [N, C, H, W] float32|float64, NCHW-contiguous or channels_last
//   rois    [K, 5] same dtype, contiguous: (batch, x1, y1, x2, y2), image pixels
//   output  [K, C, PH, PW] same dtype;  argmax [K, C, PH, PW] int64, the index
//           h * W + w of the maximum inside the input plane (-1 for empty bins).
//           output and argmax share one layout (NCHW-contiguous or channels_last).
// Semantics are torchvision's: corners rounded (half away from zero), RoI size
// end - start + 1 (at least 1), bins floor/ceil quantised and clipped, strict
// '>' so the first maximum in row-major order wins, empty bins give 0.
// Non-finite coordinates give empty bins.
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace mn {

void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t pooled_h,
                      int64_t pooled_w);

// grad_input [N, C, H, W] (NCHW-contiguous or channels_last) is fully overwritten.
void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input);

}  // namespace mn
