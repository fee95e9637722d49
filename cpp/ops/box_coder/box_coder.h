// Box encoding / decoding relative to reference boxes (torchvision BoxCoder).
//
// encode_boxes: reference [N, 4], proposals [N, 4] (same float dtype,
//   contiguous, XYXY), out [N, 4] writable. Per row, in the dtype (weights cast
//   to it): w = x2 - x1 (no +1), cx = x1 + 0.5 * w, and
//   dx = wx * (ref_cx - prop_cx) / prop_w, dw = ww * log(ref_w / prop_w) (same
//   for y / h).
// decode_boxes: codes [N, 4 * C], boxes [N, 4] (same dtype), out [N, 4 * C]:
//   dx = code / wx, dw = min(code / ww, clamp) (NaN propagates),
//   pcx = dx * w + cx, pw = exp(dw) * w, box = (pcx - 0.5 * pw, pcy - 0.5 * ph,
//   pcx + 0.5 * pw, pcy + 0.5 * ph) for each of the C boxes of a row.
#pragma once
#include <array>

#include "common/tensor_view.h"

namespace mn {

void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out);

void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& weights, double clamp, const TensorView& out);

}  // namespace mn
