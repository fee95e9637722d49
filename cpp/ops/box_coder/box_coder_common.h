// Box coder math shared by the CPU kernels and (later) CUDA kernels. Each
// operation mirrors torchvision's tensor expression (one rounding per op, no
// fused multiply-add), in the box dtype T.
#pragma once
#include <cmath>

#include "common/host_device.h"

namespace mn {
namespace box_coder_detail {

template <typename T>
MN_HOST_DEVICE void encode_one(const T* ref, const T* prop, T wx, T wy, T ww, T wh, T* out) {
  const T ex_w = prop[2] - prop[0];
  const T ex_h = prop[3] - prop[1];
  const T ex_cx = prop[0] + T(0.5) * ex_w;
  const T ex_cy = prop[1] + T(0.5) * ex_h;
  const T gt_w = ref[2] - ref[0];
  const T gt_h = ref[3] - ref[1];
  const T gt_cx = ref[0] + T(0.5) * gt_w;
  const T gt_cy = ref[1] + T(0.5) * gt_h;
  const T ddx = wx * (gt_cx - ex_cx);
  const T ddy = wy * (gt_cy - ex_cy);
  out[0] = ddx / ex_w;
  out[1] = ddy / ex_h;
  out[2] = ww * std::log(gt_w / ex_w);
  out[3] = wh * std::log(gt_h / ex_h);
}

// One decoded box from its code and the reference box geometry.
template <typename T>
MN_HOST_DEVICE void decode_one(const T* code, T w, T h, T cx, T cy, T wx, T wy, T ww, T wh,
                               T clamp, T* out) {
  const T dx = code[0] / wx;
  const T dy = code[1] / wy;
  T dw = code[2] / ww;
  T dh = code[3] / wh;
  dw = dw > clamp ? clamp : dw;  // torch.clamp(max=): NaN stays NaN
  dh = dh > clamp ? clamp : dh;
  const T mx = dx * w;
  const T my = dy * h;
  const T pcx = mx + cx;
  const T pcy = my + cy;
  const T pw = std::exp(dw) * w;
  const T ph = std::exp(dh) * h;
  const T hw = T(0.5) * pw;
  const T hh = T(0.5) * ph;
  out[0] = pcx - hw;
  out[1] = pcy - hh;
  out[2] = pcx + hw;
  out[3] = pcy + hh;
}

}  // namespace box_coder_detail
}  // namespace mn
