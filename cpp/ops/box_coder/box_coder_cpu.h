// CPU kernels for the box coder. Arguments are already validated.
#pragma once
#include "ops/box_coder/box_coder.h"

namespace mn {
namespace cpu {

template <typename T>
void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out);

template <typename T>
void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& weights, double clamp, const TensorView& out);

}  // namespace cpu
}  // namespace mn
