// RoIPool CUDA kernels as per-thread functors (common/cuda_grid.h), run on a
// GPU by roi_pool_cuda.cu and over the whole grid on the host by the
// grid-emulation test hook. Bin geometry is roi_pool_common.h's.
// Forward: one thread per output element. Backward, deterministic without
// atomics: per (RoI, bin row / column) the image rows / columns its argmax
// entries point at, RoI footprints from those, per-tile RoI lists
// (roi_align_kernels.h's RoiTileLists), then one thread per grad_input element
// summing, in RoI, bin row, bin column order (the CPU kernel's order, so the
// same bits), the gradients of the bins whose argmax is that element.
#pragma once
#include <cstdint>
#include <climits>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/roi_align/roi_align_kernels.h"
#include "ops/roi_pool/roi_pool_common.h"

namespace mn {
namespace roi_pool_detail {

using roi_align_detail::Footprint;
using roi_align_detail::Strides4;

template <typename T>
MN_HOST_DEVICE T lowest_value() { return static_cast<T>(-3.402823466e+38); }  // -FLT_MAX, as the CPU

template <typename T>
struct RoiPoolForward {
  const T* in;
  Strides4 is;
  int64_t N, C, H, W;
  const T* rois;
  int64_t K;
  T* out;
  Strides4 os;
  int64_t* argmax;
  Strides4 as;
  bool out_cl;
  T scale;
  int64_t PH, PW;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t total = K * C * PH * PW;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      const Index4 ix = unravel4(i, out_cl, C, PH, PW);
      const int64_t k = ix.a, c = ix.b, ph = ix.y, pw = ix.x;
      RoiBins<T> rb = roi_bins<T>(rois + k * 5, scale, PH, PW);
      if (rb.batch < 0 || rb.batch >= N) rb.valid = false;
      const Bin b = bin_at(rb, ph, pw, H, W);
      T best = 0;
      int64_t arg = -1;
      if (!b.empty()) {
        best = lowest_value<T>();
        const T* plane = in + rb.batch * is.n + c * is.c;
        for (int64_t h = b.h0; h < b.h1; ++h)
          for (int64_t w = b.w0; w < b.w1; ++w) {
            const T v = plane[h * is.h + w * is.w];
            if (v > best) { best = v; arg = h * W + w; }
          }
      }
      out[k * os.n + c * os.c + ph * os.h + pw * os.w] = best;
      argmax[k * as.n + c * as.c + ph * as.h + pw * as.w] = arg;
    }
  }
};

// Per (RoI, bin row) [rows = true] or (RoI, bin column): the range of image
// rows (columns) that the argmax entries of that bin row (column) point at,
// over all channels; *hi < *lo when none. Derived from argmax itself, so any
// argmax in range gets its gradient, exactly as on the CPU.
struct RoiPoolRanges {
  const int64_t* argmax;
  Strides4 as;
  int64_t K, C, PH, PW, H, W;
  bool rows;
  int64_t* lo;
  int64_t* hi;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t P = rows ? PH : PW, Q = rows ? PW : PH, HW = H * W;
    for (int64_t i = t.global(); i < K * P; i += t.stride()) {
      const int64_t k = i / P, p = i % P;
      int64_t mn = HW, mx = -1;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t ph = rows ? p : q, pw = rows ? q : p;
          const int64_t a = argmax[k * as.n + c * as.c + ph * as.h + pw * as.w];
          if (a < 0 || a >= HW) continue;
          const int64_t v = rows ? a / W : a % W;
          mn = v < mn ? v : mn;
          mx = v > mx ? v : mx;
        }
      lo[i] = mn;
      hi[i] = mx;
    }
  }
};

template <typename T>
struct RoiPoolFootprint {
  const T* rois;
  int64_t K, N, PH, PW;
  const int64_t* row_lo;
  const int64_t* row_hi;
  const int64_t* col_lo;
  const int64_t* col_hi;
  Footprint* fp;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t k = t.global(); k < K; k += t.stride()) {
      const T b = rois[k * 5];
      Footprint f{-1, 0, -1, 0, -1};
      if (b > T(-1) && b < static_cast<T>(N)) {
        f.batch = static_cast<int64_t>(b);
        int64_t r0 = INT64_MAX, r1 = -1, c0 = INT64_MAX, c1 = -1;
        for (int64_t p = 0; p < PH; ++p)
          if (row_hi[k * PH + p] >= row_lo[k * PH + p]) {
            r0 = row_lo[k * PH + p] < r0 ? row_lo[k * PH + p] : r0;
            r1 = row_hi[k * PH + p] > r1 ? row_hi[k * PH + p] : r1;
          }
        for (int64_t p = 0; p < PW; ++p)
          if (col_hi[k * PW + p] >= col_lo[k * PW + p]) {
            c0 = col_lo[k * PW + p] < c0 ? col_lo[k * PW + p] : c0;
            c1 = col_hi[k * PW + p] > c1 ? col_hi[k * PW + p] : c1;
          }
        if (r1 >= 0 && c1 >= 0) { f.r0 = r0; f.r1 = r1; f.c0 = c0; f.c1 = c1; }
      }
      fp[k] = f;
    }
  }
};

template <typename T>
struct RoiPoolBackward {
  const T* go;
  Strides4 gs;
  const int64_t* argmax;
  Strides4 as;
  const int64_t* row_lo;
  const int64_t* row_hi;
  const int64_t* col_lo;
  const int64_t* col_hi;
  const int32_t* lists;
  const int32_t* counts;
  int64_t K, ts;
  T* gi;
  Strides4 is;
  bool in_cl;
  int64_t N, C, H, W, PH, PW;

  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t total = N * C * H * W;
    const int64_t th = (H + ts - 1) / ts, tw = (W + ts - 1) / ts;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      const Index4 ix = unravel4(i, in_cl, C, H, W);
      const int64_t n = ix.a, c = ix.b, h = ix.y, w = ix.x;
      const int64_t tile = (n * th + h / ts) * tw + w / ts;
      const int32_t* list = lists + tile * K;
      const int32_t cnt = counts[tile];
      const int64_t target = h * W + w;
      T acc = 0;
      for (int32_t j = 0; j < cnt; ++j) {
        const int64_t k = list[j];
        for (int64_t ph = 0; ph < PH; ++ph) {
          if (h < row_lo[k * PH + ph] || h > row_hi[k * PH + ph]) continue;
          for (int64_t pw = 0; pw < PW; ++pw) {
            if (w < col_lo[k * PW + pw] || w > col_hi[k * PW + pw]) continue;
            if (argmax[k * as.n + c * as.c + ph * as.h + pw * as.w] == target)
              acc += go[k * gs.n + c * gs.c + ph * gs.h + pw * gs.w];
          }
        }
      }
      gi[n * is.n + c * is.c + h * is.h + w * is.w] = acc;
    }
  }
};

using roi_align_detail::cl_order;
using roi_align_detail::strides4;

template <typename T, class Exec>
void forward_run(Exec& ex, const TensorView& input, const TensorView& rois,
                 const TensorView& output, const TensorView& argmax, double spatial_scale,
                 int64_t PH, int64_t PW, const char* op) {
  const int64_t total = output.numel();
  if (total == 0) return;
  ex.launch(launch_1d(total),
            RoiPoolForward<T>{input.ptr<T>(), strides4(input), input.size(0), input.size(1),
                              input.size(2), input.size(3), rois.ptr<T>(), rois.size(0),
                              output.ptr<T>(), strides4(output), argmax.ptr<int64_t>(),
                              strides4(argmax), cl_order(output), static_cast<T>(spatial_scale),
                              PH, PW}, op);
}

template <typename T, class Exec>
void backward_run(Exec& ex, const TensorView& grad_output, const TensorView& rois,
                  const TensorView& argmax, const TensorView& grad_input, const char* op) {
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3), K = rois.size(0), PH = grad_output.size(2),
                PW = grad_output.size(3);
  if (grad_input.numel() == 0) return;
  const int64_t ts = roi_align_detail::backward_tile(N, H, W, K);
  const int64_t tiles = N * ((H + ts - 1) / ts) * ((W + ts - 1) / ts);
  using I64 = typename Exec::template Buffer<int64_t>;
  I64 rlo(static_cast<size_t>(K * PH), op), rhi(static_cast<size_t>(K * PH), op);
  I64 clo(static_cast<size_t>(K * PW), op), chi(static_cast<size_t>(K * PW), op);
  typename Exec::template Buffer<Footprint> fp(static_cast<size_t>(K), op);
  typename Exec::template Buffer<int32_t> lists(static_cast<size_t>(tiles * K), op);
  typename Exec::template Buffer<int32_t> counts(static_cast<size_t>(tiles), op);
  const int64_t* am = argmax.ptr<int64_t>();
  const Strides4 as = strides4(argmax);
  ex.launch(launch_1d(K * PH), RoiPoolRanges{am, as, K, C, PH, PW, H, W, true, rlo.get(), rhi.get()}, op);
  ex.launch(launch_1d(K * PW), RoiPoolRanges{am, as, K, C, PH, PW, H, W, false, clo.get(), chi.get()}, op);
  ex.launch(launch_1d(K), RoiPoolFootprint<T>{rois.ptr<T>(), K, N, PH, PW, rlo.get(), rhi.get(),
                                              clo.get(), chi.get(), fp.get()}, op);
  ex.launch(launch_1d(tiles, 128),
            roi_align_detail::RoiTileLists{fp.get(), K, N, H, W, ts, lists.get(), counts.get()}, op);
  ex.launch(launch_1d(N * C * H * W),
            RoiPoolBackward<T>{grad_output.ptr<T>(), strides4(grad_output), am, as, rlo.get(),
                               rhi.get(), clo.get(), chi.get(), lists.get(), counts.get(), K, ts,
                               grad_input.ptr<T>(), strides4(grad_input), cl_order(grad_input),
                               N, C, H, W, PH, PW}, op);
}

}  // namespace roi_pool_detail
}  // namespace mn
