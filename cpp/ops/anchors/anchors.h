// Anchor generation (torchvision AnchorGenerator; detectron2 variant by flag).
//
// cell_anchors: out [A, 4] float32|float64, contiguous, writable; A = S * R for
//   S sizes and R aspect ratios (ratio = height / width). Boxes are XYXY,
//   centred at 0.
//   torchvision style: computed in out's dtype, h_ratio = sqrt(r),
//     w_ratio = 1 / h_ratio, ws = w_ratio * size, hs = h_ratio * size,
//     box = round((-ws, -hs, ws, hs) / 2) (round half to even); order: ratio
//     major, size minor (index = r * S + s).
//   detectron2 style: computed in double, w = sqrt(size^2 / r), h = r * w,
//     box = (-w / 2, -h / 2, w / 2, h / 2), no rounding, then cast; order:
//     size major, ratio minor (index = s * R + r).
// grid_anchors: cell [A, 4], out [H * W * A, 4] same dtype, contiguous,
//   writable. out[(y * W + x) * A + a] = cell[a] + (sx, sy, sx, sy) with
//   sx = T(offset * stride_w + x * stride_w) (computed in double, as
//   torch.arange does), likewise sy. Location-major, then anchor.
#pragma once
#include <cstdint>
#include <vector>

#include "common/tensor_view.h"

namespace mn {

enum class AnchorStyle { Torchvision, Detectron2 };

void cell_anchors(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                  AnchorStyle style, const TensorView& out);

void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out);

}  // namespace mn
