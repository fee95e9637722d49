// CUDA kernels for RoIPool (built when MN_WITH_CUDA); arguments validated.
#pragma once
#include "ops/roi_pool/roi_pool.h"

namespace mn {
namespace cuda {

#include "ops/roi_pool/roi_pool_backend.inc"

}  // namespace cuda
}  // namespace mn
