// CUDA kernels for paste_masks (built when MN_WITH_CUDA): plan, bitmap /
// probabilities and crops. COCO RLE is encoded on the host from the crops.
#pragma once
#include "ops/paste_masks/paste_masks.h"

namespace mn {
namespace cuda {

#include "ops/paste_masks/paste_masks_backend.inc"

}  // namespace cuda
}  // namespace mn
