// RoIAlign (He et al. 2017, section 3) and RoIWarp (the section 4.2 ablation).
//
// Contract (all views CPU; outputs preallocated by the caller):
//   input       [N, C, H, W] float32|float64, NCHW-contiguous or channels_last
//   rois        [K, 5] same dtype, contiguous: (batch, x1, y1, x2, y2), image pixels
//   output      [K, C, PH, PW] same dtype, NCHW-contiguous or channels_last
//   quantize    false: RoIAlign (torchvision semantics); true: RoIWarp, i.e.
//               the scaled RoI corners are rounded to integers (as RoIPool
//               does) before the same bilinear sampling (aligned is ignored).
// A RoI whose coordinates are not finite, or whose sampling grid would exceed
// 2^40 samples per bin, gives zeros. Batch indices must lie in [0, N).
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace mn {

struct RoiAlignParams {
  double spatial_scale = 1.0;
  int64_t pooled_h = 1, pooled_w = 1;
  int64_t sampling_ratio = -1;
  bool aligned = false;
  bool quantize = false;
};

void roi_align_forward(const TensorView& input, const TensorView& rois,
                       const TensorView& output, const RoiAlignParams& p);

// grad_input is fully overwritten (zeroed, then accumulated into);
// its layout may be NCHW-contiguous or channels_last, independent of grad_output's.
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p);

}  // namespace mn
