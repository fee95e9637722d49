// CUDA kernel for grid_anchors (built when MN_WITH_CUDA); arguments validated.
#pragma once
#include <cstdint>

#include "ops/anchors/anchors.h"

namespace mn {
namespace cuda {

#include "ops/anchors/anchors_backend.inc"

}  // namespace cuda
}  // namespace mn
