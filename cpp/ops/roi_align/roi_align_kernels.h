// RoIAlign / RoIWarp CUDA kernels as per-thread functors (common/cuda_grid.h):
// roi_align_cuda.cu launches them on a GPU, the grid-emulation test hook runs
// the same functors over the whole grid in a host loop. The per-sample
// arithmetic is roi_align_common.h's, shared with the CPU kernels.
//
// Forward: one thread per (RoI, bin, block of 8 channels), in the output's
// memory order.
// Backward, deterministic without atomics (a gather):
//   1. RoiAlignPrep: one thread per RoI: its geometry and the rows / columns of
//      the map its samples can touch (its footprint).
//   2. RoiTileLists: one thread per (image, tile of TS x TS pixels): the RoIs
//      whose footprint meets the tile, in increasing RoI index.
//   3. RoiAlignBackward: one thread per grad_input pixel and block of 8
//      channels: for each channel the sum over the tile's RoIs (in index
//      order), bins and samples of weight * grad, so the summation order,
//      hence every bit, is fixed.
// Batch indices outside [0, N) (not validated on CUDA: that would need a
// device-to-host copy) give zeros / no gradient.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/roi_align/roi_align.h"
#include "ops/roi_align/roi_align_common.h"

namespace mn {
namespace roi_align_detail {

// Sample indices [*a, *b) of a bin whose positions base + (i + 0.5) * step can
// lie in [lo, hi] (conservative; the exact test is axis_taps).
MN_HOST_DEVICE void sample_window(double base, double step, int64_t grid, double lo, double hi,
                                  int64_t* a, int64_t* b) {
  *a = 0;
  *b = grid;
  if (grid <= 16 || step == 0.0 || !(step == step)) return;
  double i0 = (lo - base) / step - 0.5, i1 = (hi - base) / step - 0.5;
  if (i0 > i1) { const double s = i0; i0 = i1; i1 = s; }
  i0 = i0 < -2.0 ? -2.0 : (i0 > double(grid) + 2.0 ? double(grid) + 2.0 : i0);
  i1 = i1 < -2.0 ? -2.0 : (i1 > double(grid) + 2.0 ? double(grid) + 2.0 : i1);
  const int64_t s = static_cast<int64_t>(std::floor(i0)) - 1;
  const int64_t e = static_cast<int64_t>(std::floor(i1)) + 2;
  *a = s < 0 ? 0 : s;
  *b = e > grid ? grid : e;
  if (*b < *a) *b = *a;
}

// Bins [*a, *b) (of `pooled`) whose samples can lie in [lo, hi].
MN_HOST_DEVICE void bin_window(double start, double bin, int64_t pooled, double lo, double hi,
                               int64_t* a, int64_t* b) {
  *a = 0;
  *b = pooled;
  if (bin == 0.0 || !(bin == bin)) return;
  double p0 = (lo - start) / bin, p1 = (hi - start) / bin;
  if (p0 > p1) { const double s = p0; p0 = p1; p1 = s; }
  const double lim = double(pooled) + 2.0;
  p0 = p0 < -2.0 ? -2.0 : (p0 > lim ? lim : p0);
  p1 = p1 < -2.0 ? -2.0 : (p1 > lim ? lim : p1);
  const int64_t s = static_cast<int64_t>(std::floor(p0)) - 1;
  const int64_t e = static_cast<int64_t>(std::floor(p1)) + 2;
  *a = s < 0 ? 0 : s;
  *b = e > pooled ? pooled : e;
  if (*b < *a) *b = *a;
}

// Sum of the bilinear weights that the samples of bin p give pixel `pix` of an
// axis of `size` pixels.
template <typename T>
MN_HOST_DEVICE T axis_weight(T start, T bin, int64_t p, int64_t grid, int64_t size, int64_t pix) {
  int64_t a, b;
  sample_window(double(start) + double(p) * double(bin), double(bin) / double(grid), grid,
                double(pix) - 1.0, double(pix) + 1.0, &a, &b);
  T w = 0;
  for (int64_t i = a; i < b; ++i) {
    int64_t lo, hi;
    T wl, wh;
    if (!axis_taps(sample_pos(start, bin, p, i, grid), size, &lo, &hi, &wl, &wh)) continue;
    if (lo == pix) w += wl;
    if (hi == pix) w += wh;
  }
  return w;
}

struct Footprint {
  int64_t batch;
  int64_t r0, r1, c0, c1;  // inclusive pixel ranges; r1 < r0 when empty
};

// Pixels one axis of a RoI can give gradient to: [*lo, *hi] (inclusive).
template <typename T>
MN_HOST_DEVICE void axis_footprint(T start, T bin, int64_t pooled, int64_t size, int64_t* lo,
                                   int64_t* hi) {
  double a = double(start), b = double(start) + double(pooled) * double(bin);
  if (a > b) { const double s = a; a = b; b = s; }
  a = a < -2.0 ? -2.0 : (a > double(size) + 2.0 ? double(size) + 2.0 : a);
  b = b < -2.0 ? -2.0 : (b > double(size) + 2.0 ? double(size) + 2.0 : b);
  const int64_t s = static_cast<int64_t>(std::floor(a)) - 1;
  const int64_t e = static_cast<int64_t>(std::ceil(b)) + 1;
  *lo = s < 0 ? 0 : s;
  *hi = e > size - 1 ? size - 1 : e;
}

// Channels per thread: the geometry and the bilinear taps are computed once
// for kChannelBlock channels (each channel's sum keeps the same order).
constexpr int64_t kChannelBlock = 8;

// One thread per (RoI, bin, block of channels).
template <typename T>
struct RoiAlignForward {
  const T* in;
  Strides4 is;
  int64_t N, C, H, W;
  const T* rois;
  int64_t K;
  T* out;
  Strides4 os;
  bool out_cl;
  T scale;
  int64_t PH, PW, sampling_ratio;
  bool aligned, quantize;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t CB = (C + kChannelBlock - 1) / kChannelBlock;
    const int64_t total = K * CB * PH * PW;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      const Index4 ix = unravel4(i, out_cl, CB, PH, PW);
      const int64_t k = ix.a, cb = ix.b, ph = ix.y, pw = ix.x;
      const int64_t c0 = cb * kChannelBlock;
      const int64_t nc = C - c0 < kChannelBlock ? C - c0 : kChannelBlock;
      T acc[kChannelBlock];
      for (int64_t j = 0; j < kChannelBlock; ++j) acc[j] = T(0);
      const RoiGeometry<T> g =
          roi_geometry<T>(rois + k * 5, scale, PH, PW, sampling_ratio, aligned, quantize);
      if (!g.empty && g.batch >= 0 && g.batch < N && H > 0 && W > 0) {
        const T* base = in + g.batch * is.n + c0 * is.c;
        int64_t ya, yb, xa, xb;
        sample_window(double(g.start_h) + double(ph) * double(g.bin_h),
                      double(g.bin_h) / double(g.grid_h), g.grid_h, -1.0, double(H), &ya, &yb);
        sample_window(double(g.start_w) + double(pw) * double(g.bin_w),
                      double(g.bin_w) / double(g.grid_w), g.grid_w, -1.0, double(W), &xa, &xb);
        for (int64_t iy = ya; iy < yb; ++iy) {
          int64_t y0, y1;
          T wy0, wy1;
          if (!axis_taps(sample_pos(g.start_h, g.bin_h, ph, iy, g.grid_h), H, &y0, &y1, &wy0, &wy1))
            continue;
          for (int64_t ix = xa; ix < xb; ++ix) {
            int64_t x0, x1;
            T wx0, wx1;
            if (!axis_taps(sample_pos(g.start_w, g.bin_w, pw, ix, g.grid_w), W, &x0, &x1, &wx0, &wx1))
              continue;
            const T w00 = wy0 * wx0, w01 = wy0 * wx1, w10 = wy1 * wx0, w11 = wy1 * wx1;
            const int64_t o00 = y0 * is.h + x0 * is.w, o01 = y0 * is.h + x1 * is.w;
            const int64_t o10 = y1 * is.h + x0 * is.w, o11 = y1 * is.h + x1 * is.w;
            for (int64_t j = 0; j < nc; ++j) {
              const T* p = base + j * is.c;
              acc[j] += w00 * p[o00] + w01 * p[o01] + w10 * p[o10] + w11 * p[o11];
            }
          }
        }
      }
      T* o = out + k * os.n + c0 * os.c + ph * os.h + pw * os.w;
      for (int64_t j = 0; j < nc; ++j) o[j * os.c] = acc[j] * g.inv_count;
    }
  }
};

template <typename T>
struct RoiAlignPrep {
  const T* rois;
  int64_t K, N, H, W;
  T scale;
  int64_t PH, PW, sampling_ratio;
  bool aligned, quantize;
  RoiGeometry<T>* geo;
  Footprint* fp;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t k = t.global(); k < K; k += t.stride()) {
      const RoiGeometry<T> g =
          roi_geometry<T>(rois + k * 5, scale, PH, PW, sampling_ratio, aligned, quantize);
      geo[k] = g;
      Footprint f{g.batch, 0, -1, 0, -1};
      if (!g.empty && g.batch >= 0 && g.batch < N && H > 0 && W > 0) {
        axis_footprint<T>(g.start_h, g.bin_h, PH, H, &f.r0, &f.r1);
        axis_footprint<T>(g.start_w, g.bin_w, PW, W, &f.c0, &f.c1);
      }
      fp[k] = f;
    }
  }
};

// Tiles of ts x ts pixels per image; lists[tile * K + j], counts[tile].
struct RoiTileLists {
  const Footprint* fp;
  int64_t K, N, H, W, ts;
  int32_t* lists;
  int32_t* counts;

  MN_HOST_DEVICE int64_t tiles_h() const { return (H + ts - 1) / ts; }
  MN_HOST_DEVICE int64_t tiles_w() const { return (W + ts - 1) / ts; }
  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t th = tiles_h(), tw = tiles_w(), total = N * th * tw;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      const int64_t tx = i % tw, ty = (i / tw) % th, n = i / (tw * th);
      const int64_t y0 = ty * ts, y1 = y0 + ts - 1, x0 = tx * ts, x1 = x0 + ts - 1;
      int32_t cnt = 0;
      int32_t* list = lists + i * K;
      for (int64_t k = 0; k < K; ++k) {
        const Footprint& f = fp[k];
        if (f.batch != n || f.r1 < y0 || f.r0 > y1 || f.c1 < x0 || f.c0 > x1) continue;
        list[cnt++] = static_cast<int32_t>(k);
      }
      counts[i] = cnt;
    }
  }
};

// One thread per (image, pixel, block of channels); pixels vary fastest so a
// warp walks one tile's RoI list together.
template <typename T>
struct RoiAlignBackward {
  const T* go;
  Strides4 gs;
  const RoiGeometry<T>* geo;
  const int32_t* lists;
  const int32_t* counts;
  int64_t K, ts;
  T* gi;
  Strides4 is;
  int64_t N, C, H, W, PH, PW;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t CB = (C + kChannelBlock - 1) / kChannelBlock;
    const int64_t total = N * CB * H * W;
    const int64_t th = (H + ts - 1) / ts, tw = (W + ts - 1) / ts;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      int64_t r = i;
      const int64_t w = r % W; r /= W;
      const int64_t h = r % H; r /= H;
      const int64_t cb = r % CB, n = r / CB;
      const int64_t c0 = cb * kChannelBlock;
      const int64_t nc = C - c0 < kChannelBlock ? C - c0 : kChannelBlock;
      const int64_t tile = (n * th + h / ts) * tw + w / ts;
      const int32_t* list = lists + tile * K;
      const int32_t cnt = counts[tile];
      T acc[kChannelBlock];
      for (int64_t j = 0; j < kChannelBlock; ++j) acc[j] = T(0);
      for (int32_t l = 0; l < cnt; ++l) {
        const int64_t k = list[l];
        const RoiGeometry<T>& g = geo[k];
        int64_t pa, pb, qa, qb;
        bin_window(double(g.start_h), double(g.bin_h), PH, double(h) - 1.0, double(h) + 1.0, &pa, &pb);
        bin_window(double(g.start_w), double(g.bin_w), PW, double(w) - 1.0, double(w) + 1.0, &qa, &qb);
        const T* src = go + k * gs.n + c0 * gs.c;
        for (int64_t ph = pa; ph < pb; ++ph) {
          const T wy = axis_weight<T>(g.start_h, g.bin_h, ph, g.grid_h, H, h);
          if (wy == T(0)) continue;
          const T wyc = wy * g.inv_count;
          for (int64_t pw = qa; pw < qb; ++pw) {
            const T wx = axis_weight<T>(g.start_w, g.bin_w, pw, g.grid_w, W, w);
            if (wx == T(0)) continue;
            const T wt = wyc * wx;
            const T* s = src + ph * gs.h + pw * gs.w;
            for (int64_t j = 0; j < nc; ++j) acc[j] += wt * s[j * gs.c];
          }
        }
      }
      T* d = gi + n * is.n + c0 * is.c + h * is.h + w * is.w;
      for (int64_t j = 0; j < nc; ++j) d[j * is.c] = acc[j];
    }
  }
};

// Tile side for the backward's RoI lists: 16, doubled until the lists
// (tiles * K entries) stay below 2^26.
inline int64_t backward_tile(int64_t N, int64_t H, int64_t W, int64_t K) {
  int64_t ts = 16;
  while (ts < (int64_t(1) << 20) &&
         double(N) * double((H + ts - 1) / ts) * double((W + ts - 1) / ts) * double(K) >
             double(int64_t(1) << 26))
    ts *= 2;
  return ts;
}

inline Strides4 strides4(const TensorView& t) {
  return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

inline bool cl_order(const TensorView& t) { return t.is_channels_last() && !t.is_contiguous(); }

// The launches of one call (validated arguments), on a CUDA device
// (CudaExec) or emulated on the host (HostExec).
template <typename T, class Exec>
void forward_run(Exec& ex, const TensorView& input, const TensorView& rois,
                 const TensorView& output, const RoiAlignParams& p, const char* op) {
  const int64_t total = output.numel();
  if (total == 0) return;
  RoiAlignForward<T> f{input.ptr<T>(), strides4(input), input.size(0), input.size(1),
                       input.size(2), input.size(3), rois.ptr<T>(), rois.size(0),
                       output.ptr<T>(), strides4(output), cl_order(output),
                       static_cast<T>(p.spatial_scale), p.pooled_h, p.pooled_w,
                       p.sampling_ratio, p.aligned, p.quantize};
  const int64_t blocks = (input.size(1) + kChannelBlock - 1) / kChannelBlock;
  ex.launch(launch_1d(rois.size(0) * blocks * p.pooled_h * p.pooled_w), f, op);
}

template <typename T, class Exec>
void backward_run(Exec& ex, const TensorView& grad_output, const TensorView& rois,
                  const TensorView& grad_input, const RoiAlignParams& p, const char* op) {
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3), K = rois.size(0);
  if (grad_input.numel() == 0) return;
  const int64_t ts = backward_tile(N, H, W, K);
  const int64_t tiles = N * ((H + ts - 1) / ts) * ((W + ts - 1) / ts);
  typename Exec::template Buffer<RoiGeometry<T>> geo(static_cast<size_t>(K), op);
  typename Exec::template Buffer<Footprint> fp(static_cast<size_t>(K), op);
  typename Exec::template Buffer<int32_t> lists(static_cast<size_t>(tiles * K), op);
  typename Exec::template Buffer<int32_t> counts(static_cast<size_t>(tiles), op);
  ex.launch(launch_1d(K),
            RoiAlignPrep<T>{rois.ptr<T>(), K, N, H, W, static_cast<T>(p.spatial_scale),
                            p.pooled_h, p.pooled_w, p.sampling_ratio, p.aligned, p.quantize,
                            geo.get(), fp.get()}, op);
  ex.launch(launch_1d(tiles, 128), RoiTileLists{fp.get(), K, N, H, W, ts, lists.get(), counts.get()},
            op);
  const int64_t CB = (C + kChannelBlock - 1) / kChannelBlock;
  ex.launch(launch_1d(N * CB * H * W),
            RoiAlignBackward<T>{grad_output.ptr<T>(), strides4(grad_output), geo.get(),
                                lists.get(), counts.get(), K, ts, grad_input.ptr<T>(),
                                strides4(grad_input), N, C, H, W, p.pooled_h, p.pooled_w}, op);
}

}  // namespace roi_align_detail
}  // namespace mn
