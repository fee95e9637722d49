// CPU kernels for RoIPool. Arguments are already validated.
#pragma once
#include "ops/roi_pool/roi_pool.h"

namespace mn {
namespace cpu {

#include "ops/roi_pool/roi_pool_backend.inc"

}  // namespace cpu
}  // namespace mn
