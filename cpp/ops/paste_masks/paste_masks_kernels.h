// paste_masks CUDA kernels as per-thread functors (common/cuda_grid.h), run on
// a GPU by paste_masks_cuda.cu and over the whole grid on the host by the
// grid-emulation test hook. The geometry and the blends are
// paste_masks_common.h's, in the CPU kernel's order of operations (explicit
// fma, no contraction elsewhere), so the values are the CPU kernel's bits.
//   PastePlan      one thread per mask: its clipped rectangle.
//   PasteForward   one thread per output pixel of the [N, H, W] output (bool
//                  or probabilities); outside the rectangle 0.
//   PasteOffsets   one block (phased): crop offsets, the prefix sum of areas.
//   PasteCrops     one thread per element of the flat crops buffer: its mask
//                  by binary search in the offsets, then the same value.
// No full-image float masks are ever made for bool / crop outputs. COCO RLE is
// encoded on the host from the crops (the Python layer copies them).
#pragma once
#include <cstdint>
#include <type_traits>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/paste_masks/paste_masks.h"
#include "ops/paste_masks/paste_masks_common.h"

namespace mn {
namespace paste_detail {

template <typename T>
MN_HOST_DEVICE T padded_at(const T* mask, int64_t M, int64_t i, int64_t j) {
  return (i >= 1 && i <= M && j >= 1 && j <= M) ? mask[(i - 1) * M + (j - 1)] : T(0);
}

// Value of image pixel (x, y), which lies inside the mask's planned rectangle.
template <typename T>
MN_HOST_DEVICE T paste_value(const T* mask, const T* box, int64_t M, int64_t x, int64_t y,
                             bool torchvision) {
  if (torchvision) {
    IntBox ib;
    torchvision_box<T>(box, M, &ib);
    const int64_t P = M + 2;
    const int64_t bw = torchvision_length(ib.x1, ib.x2), bh = torchvision_length(ib.y1, ib.y2);
    const Taps<T> tx = resize_taps<T>(x - ib.x1, P, bw, resize_ratio<T>(P, bw));
    const Taps<T> ty = resize_taps<T>(y - ib.y1, P, bh, resize_ratio<T>(P, bh));
    const T s00 = padded_at(mask, M, ty.i0, tx.i0), s01 = padded_at(mask, M, ty.i0, tx.i1);
    const T s10 = padded_at(mask, M, ty.i1, tx.i0), s11 = padded_at(mask, M, ty.i1, tx.i1);
    if (resize_uses_blend4(bh, bw)) return blend4<T>(s00, s01, s10, s11, ty.l0, ty.l1, tx.l0, tx.l1);
    const T a = blend<T>(s00, tx.l0, s01, tx.l1);
    const T b = blend<T>(s10, tx.l0, s11, tx.l1);
    return blend<T>(a, ty.l0, b, ty.l1);
  }
  const Taps<T> tx = aligned_taps<T>(x, box[0], aligned_scale<T>(box[0], box[2], M), M);
  const Taps<T> ty = aligned_taps<T>(y, box[1], aligned_scale<T>(box[1], box[3], M), M);
  const T* r0 = mask + ty.i0 * M;
  const T* r1 = mask + ty.i1 * M;
  const T a = blend<T>(r0[tx.i0], tx.l0, r0[tx.i1], tx.l1);
  const T b = blend<T>(r1[tx.i0], tx.l0, r1[tx.i1], tx.l1);
  return blend<T>(a, ty.l0, b, ty.l1);
}

template <typename T, typename Out>
MN_HOST_DEVICE Out paste_store(T v, T thr) {
  if constexpr (std::is_same<Out, uint8_t>::value)
    return static_cast<uint8_t>(v > thr);
  else
    return v;
}

template <typename T>
struct PastePlan {
  const T* boxes;
  int64_t N, M, H, W;
  bool torchvision;
  int64_t* rects;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t k = t.global(); k < N; k += t.stride()) {
      const Rect r = plan_rect<T>(boxes + 4 * k, M, H, W, torchvision);
      rects[4 * k] = r.x0;
      rects[4 * k + 1] = r.y0;
      rects[4 * k + 2] = r.x1;
      rects[4 * k + 3] = r.y1;
    }
  }
};

template <typename T, typename Out>
struct PasteForward {
  const T* masks;
  const T* boxes;
  const int64_t* rects;
  int64_t N, M, H, W;
  bool torchvision;
  T thr;
  Out* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t total = N * H * W;
    for (int64_t e = t.global(); e < total; e += t.stride()) {
      const int64_t x = e % W, y = (e / W) % H, k = e / (H * W);
      const int64_t* r = rects + 4 * k;
      if (x >= r[0] && x < r[2] && y >= r[1] && y < r[3])
        out[e] = paste_store<T, Out>(
            paste_value<T>(masks + k * M * M, boxes + 4 * k, M, x, y, torchvision), thr);
      else
        out[e] = Out(0);
    }
  }
};

constexpr int64_t kOffsetThreads = 1024;

// offsets[0..N]: offsets[k] = sum of the areas of rects[0..k).
struct PasteOffsets {
  const int64_t* rects;
  int64_t N;
  int64_t* offsets;
  struct Shared {
    int64_t sum[kOffsetThreads];
  };
  static constexpr int kPhases = 3;
  MN_HOST_DEVICE int64_t area(int64_t k) const {
    const int64_t* r = rects + 4 * k;
    return (r[2] - r[0]) * (r[3] - r[1]);
  }
  MN_HOST_DEVICE void phase(int p, GridThread t, Shared& s) const {
    const ThreadChunk ch = thread_chunk(N, t);
    if (p == 0) {
      int64_t a = 0;
      for (int64_t k = ch.beg; k < ch.end; ++k) a += area(k);
      s.sum[t.thread] = a;
    } else if (p == 1) {
      if (t.thread == 0) offsets[N] = exclusive_scan(s.sum, t.block_dim);
    } else {
      int64_t off = s.sum[t.thread];
      for (int64_t k = ch.beg; k < ch.end; ++k) {
        offsets[k] = off;
        off += area(k);
      }
    }
  }
};

template <typename T, typename Out>
struct PasteCrops {
  const T* masks;
  const T* boxes;
  const int64_t* rects;
  const int64_t* offsets;
  int64_t N, M, L;
  bool torchvision;
  T thr;
  Out* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t total = offsets[N] < L ? offsets[N] : L;
    for (int64_t e = t.global(); e < total; e += t.stride()) {
      int64_t lo = 0, hi = N;  // last k with offsets[k] <= e
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (offsets[mid] <= e) lo = mid; else hi = mid;
      }
      const int64_t k = lo;
      const int64_t* r = rects + 4 * k;
      const int64_t w = r[2] - r[0], local = e - offsets[k];
      const int64_t x = r[0] + local % w, y = r[1] + local / w;
      out[e] = paste_store<T, Out>(paste_value<T>(masks + k * M * M, boxes + 4 * k, M, x, y,
                                                  torchvision), thr);
    }
  }
};

template <typename T, class Exec>
void plan_run(Exec& ex, const TensorView& masks, const TensorView& boxes, const TensorView& rects,
              const PasteMasksParams& p, const char* op) {
  const int64_t N = masks.size(0);
  if (N == 0) return;
  ex.launch(launch_1d(N), PastePlan<T>{boxes.ptr<T>(), N, masks.size(1), p.height, p.width,
                                       p.torchvision, rects.ptr<int64_t>()}, op);
}

template <typename T, class Exec>
void forward_run(Exec& ex, const TensorView& masks, const TensorView& boxes,
                 const TensorView& output, const PasteMasksParams& p, const char* op) {
  const int64_t N = masks.size(0), M = masks.size(1);
  if (N == 0) return;
  typename Exec::template Buffer<int64_t> rects(static_cast<size_t>(4 * N), op);
  ex.launch(launch_1d(N), PastePlan<T>{boxes.ptr<T>(), N, M, p.height, p.width, p.torchvision,
                                       rects.get()}, op);
  const Launch l = launch_1d(N * p.height * p.width);
  const T thr = static_cast<T>(p.threshold);
  if (p.has_threshold)
    ex.launch(l, PasteForward<T, uint8_t>{masks.ptr<T>(), boxes.ptr<T>(), rects.get(), N, M,
                                          p.height, p.width, p.torchvision, thr,
                                          output.ptr<uint8_t>()}, op);
  else
    ex.launch(l, PasteForward<T, T>{masks.ptr<T>(), boxes.ptr<T>(), rects.get(), N, M, p.height,
                                    p.width, p.torchvision, thr, output.ptr<T>()}, op);
}

template <typename T, class Exec>
void crops_run(Exec& ex, const TensorView& masks, const TensorView& boxes, const TensorView& rects,
               const TensorView& output, const PasteMasksParams& p, const char* op) {
  const int64_t N = masks.size(0), M = masks.size(1), L = output.size(0);
  if (N == 0 || L == 0) return;
  typename Exec::template Buffer<int64_t> offsets(static_cast<size_t>(N + 1), op);
  ex.launch_phased(Launch{1, kOffsetThreads}, PasteOffsets{rects.ptr<int64_t>(), N, offsets.get()},
                   op);
  const Launch l = launch_1d(L);
  const T thr = static_cast<T>(p.threshold);
  if (p.has_threshold)
    ex.launch(l, PasteCrops<T, uint8_t>{masks.ptr<T>(), boxes.ptr<T>(), rects.ptr<int64_t>(),
                                        offsets.get(), N, M, L, p.torchvision, thr,
                                        output.ptr<uint8_t>()}, op);
  else
    ex.launch(l, PasteCrops<T, T>{masks.ptr<T>(), boxes.ptr<T>(), rects.ptr<int64_t>(),
                                  offsets.get(), N, M, L, p.torchvision, thr, output.ptr<T>()}, op);
}

}  // namespace paste_detail
}  // namespace mn
