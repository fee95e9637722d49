// RoIAlign geometry shared by the CPU kernels and (later) the CUDA kernels.
// Follows torchvision's arithmetic operation by operation so that results
// agree to rounding; see DESIGN.md section 5.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace mn {
namespace roi_align_detail {

// Element strides of an NCHW-indexed tensor (any memory format).
struct Strides4 {
  int64_t n, c, h, w;
};

template <typename T>
struct RoiGeometry {
  int64_t batch = 0;
  T start_h = 0, start_w = 0;
  T bin_h = 0, bin_w = 0;
  int64_t grid_h = 0, grid_w = 0;
  T inv_count = 1;  // 1 / max(grid_h * grid_w, 1)
  bool empty = true;  // contributes zeros everywhere
};

constexpr double kMaxGrid = 1099511627776.0;  // 2^40 samples per axis per bin

template <typename T>
MN_HOST_DEVICE bool finite(T v) { return v == v && v - v == T(0); }

// `roi` points at (batch, x1, y1, x2, y2).
template <typename T>
MN_HOST_DEVICE RoiGeometry<T> roi_geometry(const T* roi, T spatial_scale, int64_t pooled_h,
                                           int64_t pooled_w, int64_t sampling_ratio,
                                           bool aligned, bool quantize) {
  RoiGeometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  if (!(finite(roi[1]) && finite(roi[2]) && finite(roi[3]) && finite(roi[4]))) return g;
  T x1 = roi[1] * spatial_scale, y1 = roi[2] * spatial_scale;
  T x2 = roi[3] * spatial_scale, y2 = roi[4] * spatial_scale;
  if (quantize) {
    x1 = std::round(x1); y1 = std::round(y1);
    x2 = std::round(x2); y2 = std::round(y2);
    aligned = false;
  }
  const T offset = aligned ? T(0.5) : T(0);
  g.start_w = x1 - offset;
  g.start_h = y1 - offset;
  T roi_w = (x2 - offset) - g.start_w;
  T roi_h = (y2 - offset) - g.start_h;
  // Finite corners can overflow once scaled (1e38 * 8 in float32): such an
  // RoI is empty, as a non-finite one is, instead of NaN positions reaching
  // integer conversions.
  if (!(finite(g.start_w) && finite(g.start_h) && finite(roi_w) && finite(roi_h))) {
    g.start_w = g.start_h = T(0);
    return g;
  }
  if (!aligned) {
    roi_w = roi_w > T(1) ? roi_w : T(1);
    roi_h = roi_h > T(1) ? roi_h : T(1);
  }
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  double gh, gw;
  if (sampling_ratio > 0) {
    gh = gw = static_cast<double>(sampling_ratio);
  } else {
    gh = std::ceil(static_cast<double>(roi_h / static_cast<T>(pooled_h)));
    gw = std::ceil(static_cast<double>(roi_w / static_cast<T>(pooled_w)));
  }
  if (!(std::fabs(gh) <= kMaxGrid && std::fabs(gw) <= kMaxGrid)) return g;
  g.grid_h = static_cast<int64_t>(gh);
  g.grid_w = static_cast<int64_t>(gw);
  const double count = static_cast<double>(g.grid_h) * static_cast<double>(g.grid_w);
  g.inv_count = static_cast<T>(1) / static_cast<T>(count > 1.0 ? count : 1.0);
  g.empty = g.grid_h <= 0 || g.grid_w <= 0;
  return g;
}

// Position of sample `i` of bin `p` along one axis (torchvision's expression).
template <typename T>
MN_HOST_DEVICE T sample_pos(T start, T bin, int64_t p, int64_t i, int64_t grid) {
  return start + static_cast<T>(p) * bin +
         static_cast<T>(static_cast<float>(i) + .5f) * bin / static_cast<T>(grid);
}

// Bilinear neighbours of coordinate v on an axis of `size` pixels.
// Returns false when the sample lies outside [-1, size] (it contributes 0).
template <typename T>
MN_HOST_DEVICE bool axis_taps(T v, int64_t size, int64_t* lo, int64_t* hi, T* w_lo, T* w_hi) {
  if (!(v >= T(-1.0) && v <= static_cast<T>(size)) || size <= 0) return false;  // NaN too
  if (v <= 0) v = 0;
  int64_t l = static_cast<int64_t>(v);
  int64_t h;
  if (l >= size - 1) {
    h = l = size - 1;
    v = static_cast<T>(l);
  } else {
    h = l + 1;
  }
  const T frac = v - static_cast<T>(l);
  *lo = l;
  *hi = h;
  *w_lo = T(1.) - frac;
  *w_hi = frac;
  return true;
}

}  // namespace roi_align_detail
}  // namespace mn
