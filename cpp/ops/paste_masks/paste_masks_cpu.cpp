// paste_masks CPU kernels.
//
// Per mask, separable tables: for every column of the clipped rectangle the
// two source columns and weights, likewise for every row. A horizontal pass
// resamples each needed source row to the rectangle's width once; every
// output row is then a two-row blend of those, thresholded in the same loop
// and written straight into the output (bool or float). Only the clipped
// rectangle is computed; for full-image outputs the rest of the mask is
// zero-filled here, by the thread that owns the mask. Parallel over masks,
// each writing only its own output, so results are bitwise reproducible.
#include "ops/paste_masks/paste_masks_cpu.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/memory.h"
#include "common/parallel.h"
#include "ops/paste_masks/paste_masks_common.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mn {
namespace cpu {
namespace {

using paste_detail::IntBox;
using paste_detail::Rect;
using paste_detail::Taps;

template <typename T>
struct Scratch {
  std::vector<T> padded;       // (M+2)^2 zero-padded mask (torchvision mode)
  std::vector<Taps<T>> tx, ty;  // per rectangle column / row
  std::vector<T> hrows;        // horizontally resampled source rows
  bool blend4 = false;         // torch's small-output arithmetic (torchvision mode)
};

// Source grid and taps of one mask. Returns false when nothing is pasted.
template <typename T>
bool prepare(const T* mask, const T* box, int64_t M, const PasteMasksParams& p, Scratch<T>& s,
             Rect* r, const T** src, int64_t* S) {
  *r = paste_detail::plan_rect<T>(box, M, p.height, p.width, p.torchvision);
  if (r->empty()) return false;
  const int64_t cw = r->width(), ch = r->height();
  s.tx.resize(static_cast<size_t>(cw));
  s.ty.resize(static_cast<size_t>(ch));
  if (p.torchvision) {
    IntBox ib;
    if (!paste_detail::torchvision_box<T>(box, M, &ib)) return false;  // (plan_rect checked)
    const int64_t P = M + 2;
    s.padded.assign(static_cast<size_t>(P * P), T(0));
    for (int64_t i = 0; i < M; ++i)
      std::copy(mask + i * M, mask + (i + 1) * M, s.padded.data() + (i + 1) * P + 1);
    const int64_t bw = paste_detail::torchvision_length(ib.x1, ib.x2);
    const int64_t bh = paste_detail::torchvision_length(ib.y1, ib.y2);
    s.blend4 = paste_detail::resize_uses_blend4(bh, bw);
    const T rx = paste_detail::resize_ratio<T>(P, bw), ry = paste_detail::resize_ratio<T>(P, bh);
    for (int64_t j = 0; j < cw; ++j)
      s.tx[j] = paste_detail::resize_taps<T>(r->x0 + j - ib.x1, P, bw, rx);
    for (int64_t i = 0; i < ch; ++i)
      s.ty[i] = paste_detail::resize_taps<T>(r->y0 + i - ib.y1, P, bh, ry);
    *src = s.padded.data();
    *S = P;
  } else {
    const T sx = paste_detail::aligned_scale<T>(box[0], box[2], M);
    const T sy = paste_detail::aligned_scale<T>(box[1], box[3], M);
    for (int64_t j = 0; j < cw; ++j) s.tx[j] = paste_detail::aligned_taps<T>(r->x0 + j, box[0], sx, M);
    for (int64_t i = 0; i < ch; ++i) s.ty[i] = paste_detail::aligned_taps<T>(r->y0 + i, box[1], sy, M);
    s.blend4 = false;
    *src = mask;
    *S = M;
  }
  return true;
}

// The per-mask arithmetic, inlined into a plain and an FMA-enabled clone.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MN_PASTE_FMA_CLONE 1
#define MN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MN_PASTE_FMA_CLONE 0
#define MN_ALWAYS_INLINE inline
#endif

// Horizontal pass over the source rows the row taps use. Returns the first row.
template <typename T>
MN_ALWAYS_INLINE int64_t resample_rows(const T* src, int64_t S, Scratch<T>& s) {
  int64_t lo = S, hi = -1;
  for (const auto& t : s.ty) {
    lo = std::min(lo, t.i0);
    hi = std::max(hi, t.i1);
  }
  const int64_t cw = static_cast<int64_t>(s.tx.size());
  s.hrows.resize(static_cast<size_t>((hi - lo + 1) * cw));
  const Taps<T>* tx = s.tx.data();
  for (int64_t r = lo; r <= hi; ++r) {
    const T* row = src + r * S;
    T* h = s.hrows.data() + (r - lo) * cw;
    for (int64_t j = 0; j < cw; ++j)
      h[j] = paste_detail::blend<T>(row[tx[j].i0], tx[j].l0, row[tx[j].i1], tx[j].l1);
  }
  return lo;
}

// Writes the rectangle's values (row i of the rectangle at out + i * stride).
// `before` / `after` elements left / right of every row are zeroed too
// (for full-image outputs), so each output row is touched once.
template <typename T, typename Out>
MN_ALWAYS_INLINE void fill_rect_blend4(const T* src, int64_t S, Scratch<T>& s, T thr, Out* out,
                                       int64_t stride, int64_t before, int64_t after) {
  const int64_t cw = static_cast<int64_t>(s.tx.size());
  const int64_t ch = static_cast<int64_t>(s.ty.size());
  const Taps<T>* tx = s.tx.data();
  for (int64_t i = 0; i < ch; ++i) {
    Out* __restrict o = out + i * stride;
    if (before) std::memset(o - before, 0, static_cast<size_t>(before) * sizeof(Out));
    const Taps<T>& t = s.ty[i];
    const T* r0 = src + t.i0 * S;
    const T* r1 = src + t.i1 * S;
    for (int64_t j = 0; j < cw; ++j) {
      const T v = paste_detail::blend4<T>(r0[tx[j].i0], r0[tx[j].i1], r1[tx[j].i0], r1[tx[j].i1],
                                          t.l0, t.l1, tx[j].l0, tx[j].l1);
      if constexpr (std::is_same<Out, uint8_t>::value)
        o[j] = static_cast<uint8_t>(v > thr);
      else
        o[j] = v;
    }
    if (after) std::memset(o + cw, 0, static_cast<size_t>(after) * sizeof(Out));
  }
}

template <typename T, typename Out>
MN_ALWAYS_INLINE void fill_rect_body(const T* src, int64_t S, Scratch<T>& s, T thr, Out* out,
                                     int64_t stride, int64_t before, int64_t after) {
  if (s.blend4) return fill_rect_blend4<T, Out>(src, S, s, thr, out, stride, before, after);
  const int64_t first = resample_rows(src, S, s);
  const int64_t cw = static_cast<int64_t>(s.tx.size());
  const int64_t ch = static_cast<int64_t>(s.ty.size());
  for (int64_t i = 0; i < ch; ++i) {
    Out* __restrict o = out + i * stride;
    if (before) std::memset(o - before, 0, static_cast<size_t>(before) * sizeof(Out));
    const Taps<T>& t = s.ty[i];
    const T* __restrict a = s.hrows.data() + (t.i0 - first) * cw;
    const T* __restrict b = s.hrows.data() + (t.i1 - first) * cw;
    const T w0 = t.l0, w1 = t.l1;
    if constexpr (std::is_same<Out, uint8_t>::value) {
      for (int64_t j = 0; j < cw; ++j)
        o[j] = static_cast<uint8_t>(paste_detail::blend<T>(a[j], w0, b[j], w1) > thr);
    } else {
      for (int64_t j = 0; j < cw; ++j) o[j] = paste_detail::blend<T>(a[j], w0, b[j], w1);
    }
    if (after) std::memset(o + cw, 0, static_cast<size_t>(after) * sizeof(Out));
  }
}

template <typename T, typename Out>
void fill_rect_plain(const T* src, int64_t S, Scratch<T>& s, T thr, Out* out, int64_t stride,
                     int64_t before, int64_t after) {
  fill_rect_body<T, Out>(src, S, s, thr, out, stride, before, after);
}

#if MN_PASTE_FMA_CLONE
template <typename T, typename Out>
__attribute__((target("avx2,fma"))) void fill_rect_fma(const T* src, int64_t S, Scratch<T>& s,
                                                        T thr, Out* out, int64_t stride,
                                                        int64_t before, int64_t after) {
  fill_rect_body<T, Out>(src, S, s, thr, out, stride, before, after);
}

bool cpu_has_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

template <typename T, typename Out>
void fill_rect(const T* src, int64_t S, Scratch<T>& s, T thr, Out* out, int64_t stride,
               int64_t before, int64_t after) {
#if MN_PASTE_FMA_CLONE
  if (cpu_has_fma()) return fill_rect_fma<T, Out>(src, S, s, thr, out, stride, before, after);
#endif
  fill_rect_plain<T, Out>(src, S, s, thr, out, stride, before, after);
}


// Zero fill of large blocks (the rows above and below a box) with streaming
// stores: the output is not read back here, so skipping the cache halves the
// memory traffic of the dominant part of a full-image paste.
void zero_fill(void* data, size_t bytes) {
#if defined(__SSE2__)
  if (bytes >= (size_t(1) << 16)) {
    char* p = static_cast<char*>(data);
    const size_t head = (16 - (reinterpret_cast<uintptr_t>(p) & 15)) & 15;
    std::memset(p, 0, head);
    p += head;
    bytes -= head;
    const __m128i z = _mm_setzero_si128();
    const size_t n = bytes / 64;
    for (size_t i = 0; i < n; ++i, p += 64) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(p), z);
      _mm_stream_si128(reinterpret_cast<__m128i*>(p + 16), z);
      _mm_stream_si128(reinterpret_cast<__m128i*>(p + 32), z);
      _mm_stream_si128(reinterpret_cast<__m128i*>(p + 48), z);
    }
    std::memset(p, 0, bytes - n * 64);
    _mm_sfence();
    return;
  }
#endif
  std::memset(data, 0, bytes);
}

template <typename T, typename Out>
void forward_impl(const TensorView& masks, const TensorView& boxes, const TensorView& output,
                  const PasteMasksParams& p) {
  const int64_t N = masks.size(0), M = masks.size(1), H = p.height, W = p.width;
  const T* mdata = masks.ptr<T>();
  const T* bdata = boxes.ptr<T>();
  Out* odata = output.ptr<Out>();
  const T thr = static_cast<T>(p.threshold);
  advise_huge_pages(odata, static_cast<size_t>(N * H * W) * sizeof(Out));
  parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s;
    for (int64_t k = begin; k < end; ++k) {
      Out* img = odata + k * H * W;
      Rect r;
      const T* src;
      int64_t S;
      if (!prepare<T>(mdata + k * M * M, bdata + k * 4, M, p, s, &r, &src, &S)) {
        zero_fill(img, static_cast<size_t>(H * W) * sizeof(Out));
        continue;
      }
      zero_fill(img, static_cast<size_t>(r.y0 * W) * sizeof(Out));
      zero_fill(img + r.y1 * W, static_cast<size_t>((H - r.y1) * W) * sizeof(Out));
      fill_rect<T, Out>(src, S, s, thr, img + r.y0 * W + r.x0, W, r.x0, W - r.x1);
    }
  });
}

template <typename T, typename Out>
void crops_impl(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                const TensorView& output, const PasteMasksParams& p) {
  const int64_t N = masks.size(0), M = masks.size(1);
  const T* mdata = masks.ptr<T>();
  const T* bdata = boxes.ptr<T>();
  const int64_t* rd = rects.ptr<int64_t>();
  std::vector<int64_t> offset(static_cast<size_t>(N) + 1, 0);
  for (int64_t k = 0; k < N; ++k)
    offset[k + 1] = offset[k] + (rd[4 * k + 2] - rd[4 * k]) * (rd[4 * k + 3] - rd[4 * k + 1]);
  Out* odata = output.ptr<Out>();
  const T thr = static_cast<T>(p.threshold);
  parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s;
    for (int64_t k = begin; k < end; ++k) {
      Rect r;
      const T* src;
      int64_t S;
      if (!prepare<T>(mdata + k * M * M, bdata + k * 4, M, p, s, &r, &src, &S)) continue;
      fill_rect<T, Out>(src, S, s, thr, odata + offset[k], r.width(), 0, 0);
    }
  });
}

// Run-length writer for COCO's column-major RLE (runs alternate 0, 1, 0, ...).
struct RunWriter {
  int64_t* out;
  int64_t n = 0;
  uint8_t value = 0;
  int64_t run = 0;

  void push(uint8_t v, int64_t len) {
    if (len == 0) return;
    if (v == value) {
      run += len;
    } else {
      out[n++] = run;
      value = v;
      run = len;
    }
  }
  int64_t finish() {
    out[n++] = run;
    return n;
  }
};

}  // namespace

template <typename T>
void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p) {
  const int64_t N = masks.size(0), M = masks.size(1);
  const T* b = boxes.ptr<T>();
  int64_t* out = rects.ptr<int64_t>();
  for (int64_t k = 0; k < N; ++k) {
    const Rect r = paste_detail::plan_rect<T>(b + 4 * k, M, p.height, p.width, p.torchvision);
    out[4 * k] = r.x0;
    out[4 * k + 1] = r.y0;
    out[4 * k + 2] = r.x1;
    out[4 * k + 3] = r.y1;
  }
}

template <typename T>
void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p) {
  if (p.has_threshold)
    forward_impl<T, uint8_t>(masks, boxes, output, p);
  else
    forward_impl<T, T>(masks, boxes, output, p);
}

template <typename T>
void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p) {
  if (p.has_threshold)
    crops_impl<T, uint8_t>(masks, boxes, rects, output, p);
  else
    crops_impl<T, T>(masks, boxes, rects, output, p);
}

void paste_masks_rle_counts(const TensorView& crops, const TensorView& rects,
                            const TensorView& counts, const TensorView& lengths,
                            const PasteMasksParams& p) {
  const int64_t N = rects.size(0), H = p.height, W = p.width;
  const int64_t* rd = rects.ptr<int64_t>();
  std::vector<int64_t> offset(static_cast<size_t>(N) + 1, 0), cap(static_cast<size_t>(N) + 1, 0);
  for (int64_t k = 0; k < N; ++k) {
    const int64_t w = rd[4 * k + 2] - rd[4 * k], h = rd[4 * k + 3] - rd[4 * k + 1];
    offset[k + 1] = offset[k] + w * h;
    cap[k + 1] = cap[k] + paste_masks_rle_capacity(w, h);
  }
  const uint8_t* cdata = crops.ptr<uint8_t>();
  int64_t* out = counts.ptr<int64_t>();
  int64_t* len = lengths.ptr<int64_t>();
  parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t x0 = rd[4 * k], y0 = rd[4 * k + 1];
      const int64_t w = rd[4 * k + 2] - x0, h = rd[4 * k + 3] - y0;
      const uint8_t* crop = cdata + offset[k];
      RunWriter rw{out + cap[k]};
      if (w > 0 && h > 0) {
        rw.push(0, x0 * H + y0);
        for (int64_t c = 0; c < w; ++c) {
          if (c) rw.push(0, H - h);  // below this column's crop + above the next one's
          const uint8_t* col = crop + c;
          for (int64_t i = 0; i < h; ++i) rw.push(col[i * w] != 0, 1);
        }
        rw.push(0, (H - y0 - h) + (W - x0 - w) * H);
      } else {
        rw.push(0, H * W);
      }
      len[k] = rw.finish();
    }
  });
}

#include "ops/paste_masks/paste_masks_instances.inc"

}  // namespace cpu
}  // namespace mn
