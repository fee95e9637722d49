// CUDA kernels for NMS, batched NMS and box IoU (built when MN_WITH_CUDA).
// nms / batched_nms finish on the device; the one synchronisation is on the
// call's stream, to copy the keep count (a data-dependent size) to the host.
#pragma once
#include <cstdint>

#include "ops/nms/nms.h"

namespace mn {
namespace cuda {

#include "ops/nms/nms_backend.inc"

}  // namespace cuda
}  // namespace mn
