// Paste-masks geometry shared by the CPU kernels and (later) the CUDA kernels.
// See paste_masks.h for the two modes; DESIGN.md section 5.
//
// Everything here works per axis: a box edge pair maps to
//   * a clipped image range [a, b) of pixels that receive mask values, and
//   * for every pixel of that range, two source taps (i0, i1) and weights
//     (l0, l1) into the source grid (the padded (M+2)-grid in torchvision
//     mode, the M-grid in aligned mode).
// A pixel's value is then  (S[y0, x0]*lx0 + S[y0, x1]*lx1) * ly0
//                        + (S[y1, x0]*lx0 + S[y1, x1]*lx1) * ly1,
// evaluated as torch's CPU bilinear upsampling is on x86-64 (its kernels are
// built with FMA contraction): blend(a, wa, b, wb) = fma(a, wa, b * wb), the
// x blend of each row first, then the y blend of the two rows. torch resizes
// small outputs (out_h + out_w <= 128) with another kernel, which multiplies
// the weights first and sums four terms (blend4); torchvision mode follows
// that too, so its results are torch's bits. The CPU kernel
// runs these loops in an FMA-enabled clone when the processor has FMA (the
// results are the same either way; std::fma is exact by definition).
#pragma once
#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace mn {
namespace paste_detail {

template <typename T>
MN_HOST_DEVICE bool finite(T v) { return v == v && v - v == T(0); }

// Coordinates whose magnitude reaches this are treated like non-finite ones
// (empty mask): integer conversion stays defined and int64 sums cannot overflow.
constexpr double kMaxCoord = 4611686018427387904.0;  // 2^62

template <typename T>
MN_HOST_DEVICE T blend(T a, T wa, T b, T wb) { return std::fma(a, wa, b * wb); }

// y0/y1 rows, x0/x1 columns: fma(s11, w11, fma(s10, w10, fma(s00, w00, s01 * w01)))
// with wYX = ly * lx.
template <typename T>
MN_HOST_DEVICE T blend4(T s00, T s01, T s10, T s11, T ly0, T ly1, T lx0, T lx1) {
  const T w00 = ly0 * lx0, w01 = ly0 * lx1, w10 = ly1 * lx0, w11 = ly1 * lx1;
  return std::fma(s11, w11, std::fma(s10, w10, std::fma(s00, w00, s01 * w01)));
}

// torch's choice of the four-term kernel for a resize to (out_h, out_w).
MN_HOST_DEVICE bool resize_uses_blend4(int64_t out_h, int64_t out_w) {
  return out_h + out_w <= 128;
}

template <typename T>
struct Taps {
  int64_t i0, i1;
  T l0, l1;
};

// ------------------------------------------------------------ torchvision ----
//
// torchvision.models.detection.roi_heads.paste_masks_in_image with padding=1:
// the box is scaled about its centre by (M+2)/M in the boxes' dtype (the
// Python float scale rounded to that dtype, as torch does for a scalar
// operand), truncated toward zero to int64 corners (ix1, iy1, ix2, iy2), the
// zero-padded (M+2)-mask is resized to (max(iy2-iy1+1, 1), max(ix2-ix1+1, 1))
// with bilinear, align_corners=False, and pixels [max(ix1,0), min(ix2+1,W))
// (same for rows) receive resized columns x - ix1.

struct IntBox {
  int64_t x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// Returns false for a box that cannot be pasted (non-finite or beyond 2^62).
template <typename T>
MN_HOST_DEVICE bool torchvision_box(const T* box, int64_t M, IntBox* out) {
  const T scale = static_cast<T>(static_cast<double>(M + 2) / static_cast<double>(M));
  T w_half = (box[2] - box[0]) * T(0.5);
  T h_half = (box[3] - box[1]) * T(0.5);
  const T x_c = (box[2] + box[0]) * T(0.5);
  const T y_c = (box[3] + box[1]) * T(0.5);
  w_half = w_half * scale;
  h_half = h_half * scale;
  const T e[4] = {x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half};
  for (int k = 0; k < 4; ++k)
    if (!(finite(e[k]) && std::fabs(static_cast<double>(e[k])) < kMaxCoord)) return false;
  out->x1 = static_cast<int64_t>(e[0]);
  out->y1 = static_cast<int64_t>(e[1]);
  out->x2 = static_cast<int64_t>(e[2]);
  out->y2 = static_cast<int64_t>(e[3]);
  return true;
}

// Clipped pixel range [*a, *b) of one axis; *b == *a when nothing is pasted.
MN_HOST_DEVICE void torchvision_range(int64_t lo, int64_t hi, int64_t size, int64_t* a,
                                      int64_t* b) {
  const int64_t s = lo > 0 ? lo : 0;
  const int64_t e = hi + 1 < size ? hi + 1 : size;
  *a = s;
  *b = e > s ? e : s;
}

// Resized length of one axis: max(hi - lo + 1, 1).
MN_HOST_DEVICE int64_t torchvision_length(int64_t lo, int64_t hi) {
  const int64_t n = hi - lo + 1;
  return n > 1 ? n : 1;
}

// Taps of output index `o` (0 <= o < out_size) when bilinearly resizing an
// axis of `in_size` samples to `out_size` (align_corners=False), following
// ATen's upsample arithmetic: the ratio and source index in T (the index as
// one fused multiply-add, as the FMA-contracted x86-64 build computes it),
// floored through float (floorf), the weight clamped to [0, 1].
template <typename T>
MN_HOST_DEVICE Taps<T> resize_taps(int64_t o, int64_t in_size, int64_t out_size, T ratio) {
  Taps<T> t;
  if (in_size == out_size) {
    t.i0 = t.i1 = o;
    t.l0 = T(1);
    t.l1 = T(0);
    return t;
  }
  T src = std::fma(ratio, static_cast<T>(o) + T(0.5), T(-0.5));
  if (src < T(0)) src = T(0);
  int64_t i = static_cast<int64_t>(std::floor(static_cast<float>(src)));
  if (i > in_size - 1) i = in_size - 1;
  T lam = src - static_cast<T>(i);
  lam = lam > T(0) ? lam : T(0);
  lam = lam < T(1) ? lam : T(1);
  t.i0 = i;
  t.i1 = i + (i < in_size - 1 ? 1 : 0);
  t.l1 = lam;
  t.l0 = T(1) - lam;
  return t;
}

template <typename T>
MN_HOST_DEVICE T resize_ratio(int64_t in_size, int64_t out_size) {
  return static_cast<T>(in_size) / static_cast<T>(out_size);
}

// ---------------------------------------------------------------- aligned ----
//
// Box (x1, y1, x2, y2) with continuous coordinates. Pixel x receives a value
// iff its centre c = x + 0.5 satisfies x1 <= c < x2 (computed in T). The mask
// coordinate of c is u = (c - x1) * (M / (x2 - x1)) - 0.5 (cell i covers
// [x1 + i*w/M, x1 + (i+1)*w/M), its centre is u = i), clamped to [0, M-1];
// i0 = floor(u), i1 = min(i0 + 1, M - 1), l1 = u - i0, l0 = 1 - l1.

template <typename T>
MN_HOST_DEVICE T pixel_centre(int64_t x) { return static_cast<T>(x) + T(0.5); }

// Smallest x in [0, size] whose centre is >= v (size when there is none).
template <typename T>
MN_HOST_DEVICE int64_t first_centre_at_or_after(T v, int64_t size) {
  const double e = std::ceil(static_cast<double>(v) - 0.5);
  int64_t x = e <= 0.0 ? 0 : (e >= static_cast<double>(size) ? size : static_cast<int64_t>(e));
  while (x > 0 && pixel_centre<T>(x - 1) >= v) --x;
  while (x < size && !(pixel_centre<T>(x) >= v)) ++x;
  return x;
}

// Clipped pixel range [*a, *b); returns false (and an empty range) for a
// degenerate (hi <= lo) or non-finite axis.
template <typename T>
MN_HOST_DEVICE bool aligned_range(T lo, T hi, int64_t size, int64_t* a, int64_t* b) {
  *a = *b = 0;
  if (!(finite(lo) && finite(hi) && hi > lo)) return false;
  *a = first_centre_at_or_after<T>(lo, size);
  *b = first_centre_at_or_after<T>(hi, size);
  if (*b < *a) *b = *a;
  return true;
}

template <typename T>
MN_HOST_DEVICE T aligned_scale(T lo, T hi, int64_t M) {
  return static_cast<T>(M) / (hi - lo);
}

template <typename T>
MN_HOST_DEVICE Taps<T> aligned_taps(int64_t x, T lo, T scale, int64_t M) {
  T u = (pixel_centre<T>(x) - lo) * scale - T(0.5);
  const T last = static_cast<T>(M - 1);
  u = u > T(0) ? u : T(0);  // also maps NaN to 0
  u = u < last ? u : last;
  Taps<T> t;
  int64_t i = static_cast<int64_t>(std::floor(u));
  if (i > M - 1) i = M - 1;
  t.i0 = i;
  t.i1 = i < M - 1 ? i + 1 : i;
  t.l1 = u - static_cast<T>(i);
  t.l0 = T(1) - t.l1;
  return t;
}

// ------------------------------------------------------------------- plan ----

// Clipped rectangle [x0, x1) x [y0, y1) of pixels that receive values; an
// empty rectangle is (0, 0, 0, 0).
struct Rect {
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  MN_HOST_DEVICE bool empty() const { return x1 <= x0 || y1 <= y0; }
  MN_HOST_DEVICE int64_t width() const { return x1 - x0; }
  MN_HOST_DEVICE int64_t height() const { return y1 - y0; }
};

template <typename T>
MN_HOST_DEVICE Rect plan_rect(const T* box, int64_t M, int64_t H, int64_t W, bool torchvision) {
  Rect r;
  if (torchvision) {
    IntBox ib;
    if (!torchvision_box<T>(box, M, &ib)) return Rect{};
    torchvision_range(ib.x1, ib.x2, W, &r.x0, &r.x1);
    torchvision_range(ib.y1, ib.y2, H, &r.y0, &r.y1);
  } else {
    if (!aligned_range<T>(box[0], box[2], W, &r.x0, &r.x1)) return Rect{};
    if (!aligned_range<T>(box[1], box[3], H, &r.y0, &r.y1)) return Rect{};
  }
  if (r.empty()) return Rect{};
  return r;
}

}  // namespace paste_detail
}  // namespace mn
