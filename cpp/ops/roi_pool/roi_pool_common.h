// RoIPool bin geometry shared by CPU and (later) CUDA kernels.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace mn {
namespace roi_pool_detail {

struct Bin {
  int64_t h0, h1, w0, w1;  // [h0, h1) x [w0, w1), clipped to the map
  MN_HOST_DEVICE bool empty() const { return h1 <= h0 || w1 <= w0; }
};

// Rounded RoI corner, clamped far outside any map so integer math cannot overflow.
template <typename T>
MN_HOST_DEVICE int64_t round_coord(T v) {
  const double r = std::round(static_cast<double>(v));
  const double lim = 4.0e15;
  return static_cast<int64_t>(r < -lim ? -lim : (r > lim ? lim : r));
}

template <typename T>
struct RoiBins {
  int64_t batch = 0, start_h = 0, start_w = 0;
  T bin_h = 0, bin_w = 0;
  bool valid = false;
};

template <typename T>
MN_HOST_DEVICE RoiBins<T> roi_bins(const T* roi, T spatial_scale, int64_t pooled_h,
                                   int64_t pooled_w) {
  RoiBins<T> r;
  r.batch = static_cast<int64_t>(roi[0]);
  for (int i = 1; i < 5; ++i)
    if (!(roi[i] == roi[i] && roi[i] - roi[i] == T(0))) return r;
  r.start_w = round_coord<T>(roi[1] * spatial_scale);
  r.start_h = round_coord<T>(roi[2] * spatial_scale);
  const int64_t end_w = round_coord<T>(roi[3] * spatial_scale);
  const int64_t end_h = round_coord<T>(roi[4] * spatial_scale);
  const int64_t roi_w = end_w - r.start_w + 1 > 1 ? end_w - r.start_w + 1 : 1;
  const int64_t roi_h = end_h - r.start_h + 1 > 1 ? end_h - r.start_h + 1 : 1;
  r.bin_h = static_cast<T>(roi_h) / static_cast<T>(pooled_h);
  r.bin_w = static_cast<T>(roi_w) / static_cast<T>(pooled_w);
  r.valid = true;
  return r;
}

MN_HOST_DEVICE int64_t clip(int64_t v, int64_t size) { return v < 0 ? 0 : (v > size ? size : v); }

template <typename T>
MN_HOST_DEVICE Bin bin_at(const RoiBins<T>& r, int64_t ph, int64_t pw, int64_t H, int64_t W) {
  Bin b{0, 0, 0, 0};
  if (!r.valid) return b;
  const double h0 = std::floor(static_cast<double>(static_cast<T>(ph) * r.bin_h));
  const double h1 = std::ceil(static_cast<double>(static_cast<T>(ph + 1) * r.bin_h));
  const double w0 = std::floor(static_cast<double>(static_cast<T>(pw) * r.bin_w));
  const double w1 = std::ceil(static_cast<double>(static_cast<T>(pw + 1) * r.bin_w));
  b.h0 = clip(static_cast<int64_t>(h0) + r.start_h, H);
  b.h1 = clip(static_cast<int64_t>(h1) + r.start_h, H);
  b.w0 = clip(static_cast<int64_t>(w0) + r.start_w, W);
  b.w1 = clip(static_cast<int64_t>(w1) + r.start_w, W);
  return b;
}

}  // namespace roi_pool_detail
}  // namespace mn
