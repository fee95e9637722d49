// CPU kernels for paste_masks. Arguments are already validated.
#pragma once
#include "ops/paste_masks/paste_masks.h"

namespace mn {
namespace cpu {

#include "ops/paste_masks/paste_masks_backend.inc"

void paste_masks_rle_counts(const TensorView& crops, const TensorView& rects,
                            const TensorView& counts, const TensorView& lengths,
                            const PasteMasksParams& p);

}  // namespace cpu
}  // namespace mn
