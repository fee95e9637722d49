// Anchor math shared by the CPU kernels and (later) CUDA kernels.
#pragma once
#include <cmath>

#include "common/host_device.h"

namespace mn {
namespace anchors_detail {

// torchvision generate_anchors for one (size, ratio), in T.
template <typename T>
MN_HOST_DEVICE void torchvision_cell(T size, T ratio, T* box) {
  const T h_ratio = std::sqrt(ratio);
  const T w_ratio = T(1) / h_ratio;
  const T ws = w_ratio * size, hs = h_ratio * size;
  // torch.round: half to even (nearbyint in the default rounding mode).
  box[0] = std::nearbyint(-ws / T(2));
  box[1] = std::nearbyint(-hs / T(2));
  box[2] = std::nearbyint(ws / T(2));
  box[3] = std::nearbyint(hs / T(2));
}

// detectron2 DefaultAnchorGenerator.generate_cell_anchors, in double.
MN_HOST_DEVICE void detectron2_cell(double size, double ratio, double* box) {
  const double area = size * size;
  const double w = std::sqrt(area / ratio);
  const double h = ratio * w;
  box[0] = -w / 2.0;
  box[1] = -h / 2.0;
  box[2] = w / 2.0;
  box[3] = h / 2.0;
}

// Shift of grid index i: what torch.arange(offset * stride, ..., stride)
// yields (start + i * step in double, then cast).
MN_HOST_DEVICE double grid_shift(int64_t i, double stride, double offset) {
  return offset * stride + static_cast<double>(i) * stride;
}

}  // namespace anchors_detail
}  // namespace mn
