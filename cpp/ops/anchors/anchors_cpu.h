// CPU kernels for anchors. Arguments are already validated.
#pragma once
#include "ops/anchors/anchors.h"

namespace mn {
namespace cpu {

template <typename T>
void cell_anchors(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                  AnchorStyle style, const TensorView& out);

template <typename T>
void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out);

}  // namespace cpu
}  // namespace mn
