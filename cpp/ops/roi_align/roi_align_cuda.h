// CUDA kernels for RoIAlign / RoIWarp (built when MN_WITH_CUDA). Arguments are
// already validated; they run on mn::cuda::current_stream(), never synchronise.
#pragma once
#include "ops/roi_align/roi_align.h"

namespace mn {
namespace cuda {

#include "ops/roi_align/roi_align_backend.inc"

}  // namespace cuda
}  // namespace mn
