// CPU kernels for the box coder. Arguments are already validated.
#pragma once
#include "ops/box_coder/box_coder.h"

namespace mn {
namespace cpu {

#include "ops/box_coder/box_coder_backend.inc"

}  // namespace cpu
}  // namespace mn
