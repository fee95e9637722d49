// CUDA kernels for paste_masks (built when MN_WITH_CUDA): plan, bitmap /
// probabilities and crops. COCO RLE is encoded on the host from the crops.
#pragma once
#include "ops/paste_masks/paste_masks.h"

namespace mn {
namespace cuda {

template <typename T>
void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p);

template <typename T>
void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p);

// rects must be paste_masks_plan's (not re-checked on the device); elements
// of output past the sum of the crop areas are left untouched.
template <typename T>
void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p);

}  // namespace cuda
}  // namespace mn
