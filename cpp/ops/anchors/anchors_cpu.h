// CPU kernels for anchors. Arguments are already validated.
#pragma once
#include "ops/anchors/anchors.h"

namespace mn {
namespace cpu {

template <typename T>
void cell_anchors(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                  AnchorStyle style, const TensorView& out);

#include "ops/anchors/anchors_backend.inc"

}  // namespace cpu
}  // namespace mn
