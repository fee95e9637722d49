// CUDA kernels for box encoding / decoding (built when MN_WITH_CUDA).
#pragma once
#include <array>

#include "ops/box_coder/box_coder.h"

namespace mn {
namespace cuda {

#include "ops/box_coder/box_coder_backend.inc"

}  // namespace cuda
}  // namespace mn
