// CPU kernels for NMS and box IoU. Arguments are already validated.
#pragma once
#include <cstdint>

#include "ops/nms/nms.h"

namespace mn {
namespace cpu {

#include "ops/nms/nms_backend.inc"

}  // namespace cpu
}  // namespace mn
