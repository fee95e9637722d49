// NMS / IoU math shared by the CPU kernels and (later) CUDA kernels.
// The arithmetic mirrors torchvision's CPU nms kernel operation by operation,
// so keep lists match bit for bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/host_device.h"

namespace mn {
namespace nms_detail {

// True when a kept box k suppresses candidate c: torchvision computes
//   ovr = inter / (area_k + area_c - inter)   in the box dtype
// and tests ovr > iou_threshold in double. `thr` is the threshold converted
// by threshold_for<T>, which makes the T comparison equal to the double one.
template <typename T>
MN_HOST_DEVICE bool suppresses(T kx1, T ky1, T kx2, T ky2, T karea, T cx1, T cy1, T cx2, T cy2,
                               T carea, T thr) {
  const T xx1 = kx1 < cx1 ? cx1 : kx1;  // std::max(k, c)
  const T yy1 = ky1 < cy1 ? cy1 : ky1;
  const T xx2 = cx2 < kx2 ? cx2 : kx2;  // std::min(k, c)
  const T yy2 = cy2 < ky2 ? cy2 : ky2;
  const T dw = xx2 - xx1, dh = yy2 - yy1;
  const T w = T(0) < dw ? dw : T(0);
  const T h = T(0) < dh ? dh : T(0);
  const T inter = w * h;
  const T ovr = inter / (karea + carea - inter);
  return ovr > thr;
}

// x > t (x of type T, t double) equals x > threshold_for<T>(t) for every x:
// for float, t rounded toward -infinity to a float. NaN stays NaN.
template <typename T>
inline T threshold_for(double t) { return static_cast<T>(t); }

template <>
inline float threshold_for<float>(double t) {
  if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
  const double fmax = static_cast<double>(std::numeric_limits<float>::max());
  const float inf = std::numeric_limits<float>::infinity();
  if (t > fmax) return t == static_cast<double>(inf) ? inf : std::numeric_limits<float>::max();
  if (t < -fmax) return -inf;  // x > t  <=>  x > -inf
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// Keys whose ascending order is the descending score order used by
// torch.sort(descending=True, stable=True): NaN first, then +inf ... -inf;
// -0.0 and +0.0 get the same key.
MN_HOST_DEVICE uint32_t descending_key(float s) {
  if (s != s) return 0u;
  uint32_t u;
  std::memcpy(&u, &s, sizeof u);
  if (s == 0.0f) u = 0u;
  const uint32_t asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~asc + 1u;  // NaN (0) < +inf key < ... ; asc >= 1 for non-NaN
}

MN_HOST_DEVICE uint64_t descending_key(double s) {
  if (s != s) return 0u;
  uint64_t u;
  std::memcpy(&u, &s, sizeof u);
  if (s == 0.0) u = 0u;
  const uint64_t top = uint64_t(1) << 63;
  const uint64_t asc = (u & top) ? ~u : (u | top);
  return ~asc + 1u;
}

}  // namespace nms_detail
}  // namespace mn
