// CUDA kernels for box encoding / decoding (built when MN_WITH_CUDA).
#pragma once
#include <array>

#include "ops/box_coder/box_coder.h"

namespace mn {
namespace cuda {

template <typename T>
void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out);

template <typename T>
void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& weights, double clamp, const TensorView& out);

}  // namespace cuda
}  // namespace mn
