// CPU kernels for RoIAlign / RoIWarp. Arguments are already validated.
#pragma once
#include "ops/roi_align/roi_align.h"

namespace mn {
namespace cpu {

#include "ops/roi_align/roi_align_backend.inc"

}  // namespace cpu
}  // namespace mn
