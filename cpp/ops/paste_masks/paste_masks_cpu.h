// CPU kernels for paste_masks. Arguments are already validated.
#pragma once
#include "ops/paste_masks/paste_masks.h"

namespace mn {
namespace cpu {

template <typename T>
void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p);

template <typename T>
void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p);

template <typename T>
void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p);

void paste_masks_rle_counts(const TensorView& crops, const TensorView& rects,
                            const TensorView& counts, const TensorView& lengths,
                            const PasteMasksParams& p);

}  // namespace cpu
}  // namespace mn
