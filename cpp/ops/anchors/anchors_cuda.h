// CUDA kernel for grid_anchors (built when MN_WITH_CUDA); arguments validated.
#pragma once
#include <cstdint>

#include "ops/anchors/anchors.h"

namespace mn {
namespace cuda {

template <typename T>
void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out);

}  // namespace cuda
}  // namespace mn
