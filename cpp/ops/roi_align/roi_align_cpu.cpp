// RoIAlign CPU kernels.
//
// Per RoI we build separable tap tables: for every output row ph the list of
// (feature row, weight) pairs that its samples touch, merged when adjacent
// samples share a row, and the same for columns. A bin's value is then
//   sum_{rows} sum_{cols} wy * wx * F[row, col]
// which is torchvision's sum over samples and bilinear neighbours regrouped.
// channels_last: the inner loop runs over contiguous channels (vectorised).
// NCHW: large workloads are transposed once into a channels_last scratch copy;
// small ones run a per-channel scalar kernel on the same tables.
// Backward: parallel over channel slices, so no two threads write the same
// element and results are bitwise reproducible.
#include "ops/roi_align/roi_align_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "common/memory.h"
#include "common/parallel.h"
#include "ops/roi_align/roi_align_common.h"

namespace mn {
namespace cpu {
// A named namespace, not an anonymous one: the kernels are instantiated from
// roi_align_instances.inc, and GCC warns (-Wsubobject-linkage) when a lambda
// there captures a type of the anonymous namespace.
namespace roi_align_impl {

using roi_align_detail::axis_taps;
using roi_align_detail::RoiGeometry;
using roi_align_detail::roi_geometry;
using roi_align_detail::sample_pos;
using roi_align_detail::Strides4;

template <typename T>
struct AxisTable {
  std::vector<int32_t> off;  // pooled + 1 offsets into idx / w
  std::vector<int64_t> idx;
  std::vector<T> w;

  void clear() { off.clear(); idx.clear(); w.clear(); }
  // Samples of a bin come in increasing position, so a pixel index recurs as
  // the last or the second-last entry (lo, hi pairs): merging both keeps a
  // bin's table at most (pixels it covers + 2) long whatever the grid, and a
  // bin's cost O(pixels^2) instead of O(grid^2).
  void add(int64_t i, T weight) {
    if (weight == T(0)) return;
    const size_t first = static_cast<size_t>(off.back());
    const size_t n = idx.size() - first;
    if (n >= 1 && idx.back() == i) {
      w.back() += weight;
    } else if (n >= 2 && idx[idx.size() - 2] == i) {
      w[w.size() - 2] += weight;
    } else {
      idx.push_back(i);
      w.push_back(weight);
    }
  }
};

// Indices [a, b) of the samples of one bin that can fall inside [-1, size].
inline void sample_range(double base, double step, int64_t grid, int64_t size,
                         int64_t* a, int64_t* b) {
  if (grid <= 4096 || step == 0.0) {
    *a = 0;
    *b = grid;
    return;
  }
  double lo = (-1.0 - base) / step - 0.5, hi = (static_cast<double>(size) - base) / step - 0.5;
  if (lo > hi) std::swap(lo, hi);
  lo = std::max(lo, -1.0);
  hi = std::min(hi, static_cast<double>(grid));
  *a = std::max<int64_t>(0, static_cast<int64_t>(std::floor(lo)) - 1);
  *b = std::min<int64_t>(grid, static_cast<int64_t>(std::floor(hi)) + 2);
  if (*b < *a) *b = *a;
}

template <typename T>
void build_axis(T start, T bin, int64_t pooled, int64_t grid, int64_t size, T scale,
                AxisTable<T>& t) {
  t.clear();
  t.off.push_back(0);
  for (int64_t p = 0; p < pooled; ++p) {
    if (bin == T(0) && grid > 1) {
      // Every sample sits at the same place: one sample, weighted grid times.
      int64_t lo, hi;
      T wl, wh;
      if (axis_taps(sample_pos(start, bin, p, 0, grid), size, &lo, &hi, &wl, &wh)) {
        const T k = scale * static_cast<T>(grid);
        t.add(lo, wl * k);
        t.add(hi, wh * k);
      }
    } else {
      const double base = static_cast<double>(start) + static_cast<double>(p) * bin;
      int64_t a, b;
      sample_range(base, static_cast<double>(bin) / static_cast<double>(grid), grid, size, &a, &b);
      for (int64_t i = a; i < b; ++i) {
        int64_t lo, hi;
        T wl, wh;
        if (!axis_taps(sample_pos(start, bin, p, i, grid), size, &lo, &hi, &wl, &wh)) continue;
        t.add(lo, wl * scale);
        t.add(hi, wh * scale);
      }
    }
    t.off.push_back(static_cast<int32_t>(t.idx.size()));
  }
}

template <typename T>
struct RoiTables {
  RoiGeometry<T> g;
  AxisTable<T> y, x;
};

// Returns false when the RoI contributes nothing (all-zero output).
template <typename T>
bool build_tables(const T* roi, const RoiAlignParams& p, int64_t H, int64_t W,
                  RoiTables<T>& t) {
  t.g = roi_geometry<T>(roi, static_cast<T>(p.spatial_scale), p.pooled_h, p.pooled_w,
                        p.sampling_ratio, p.aligned, p.quantize);
  if (t.g.empty || H <= 0 || W <= 0) return false;
  build_axis<T>(t.g.start_h, t.g.bin_h, p.pooled_h, t.g.grid_h, H, t.g.inv_count, t.y);
  build_axis<T>(t.g.start_w, t.g.bin_w, p.pooled_w, t.g.grid_w, W, T(1), t.x);
  return true;
}

// One bin, a compile-time block of B channels held in registers across all
// of the bin's taps. GCC/Clang vector types make the vectorisation explicit
// (the auto-vectoriser gave up on this loop nest).
#if defined(__GNUC__)
template <typename T>
struct Vec32 {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int lanes = static_cast<int>(32 / sizeof(T));
};

template <typename T, int B>
MN_ALWAYS_INLINE void bin_block(const T* base, int64_t sH, int64_t sW, const RoiTables<T>& t,
                                int64_t ph, int64_t pw, T* out) {
  using V = typename Vec32<T>::type;
  constexpr int L = Vec32<T>::lanes;
  static_assert(B % L == 0, "block must be whole vectors");
  constexpr int NV = B / L;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = V{};
  for (int32_t ty = t.y.off[ph]; ty < t.y.off[ph + 1]; ++ty) {
    const T* row = base + t.y.idx[ty] * sH;
    const T wy = t.y.w[ty];
    for (int32_t tx = t.x.off[pw]; tx < t.x.off[pw + 1]; ++tx) {
      const V w = V{} + wy * t.x.w[tx];
      const T* src = row + t.x.idx[tx] * sW;
      for (int v = 0; v < NV; ++v) {
        V x;
        __builtin_memcpy(&x, src + v * L, sizeof(V));
        acc[v] += w * x;
      }
    }
  }
  for (int v = 0; v < NV; ++v) __builtin_memcpy(out + v * L, &acc[v], sizeof(V));
}
#endif

// Scalar block (remainder channels, and compilers without vector types).
template <typename T>
MN_ALWAYS_INLINE void bin_scalar(const T* base, int64_t sH, int64_t sW, const RoiTables<T>& t,
                                 int64_t ph, int64_t pw, T* out) {
  T acc = 0;
  for (int32_t ty = t.y.off[ph]; ty < t.y.off[ph + 1]; ++ty) {
    const T* row = base + t.y.idx[ty] * sH;
    const T wy = t.y.w[ty];
    for (int32_t tx = t.x.off[pw]; tx < t.x.off[pw + 1]; ++tx)
      acc += (wy * t.x.w[tx]) * row[t.x.idx[tx] * sW];
  }
  *out = acc;
}

// One bin, channels contiguous: out[0:C] = sum over taps.
template <typename T>
MN_ALWAYS_INLINE void bin_channels_last(const T* base, int64_t sH, int64_t sW, int64_t C,
                                        const RoiTables<T>& t, int64_t ph, int64_t pw, T* out) {
  int64_t c = 0;
#if defined(__GNUC__)
  constexpr int L = Vec32<T>::lanes;
  constexpr int B = 8 * L;  // eight 256-bit accumulators
  for (; c + B <= C; c += B) bin_block<T, B>(base + c, sH, sW, t, ph, pw, out + c);
  for (; c + L <= C; c += L) bin_block<T, L>(base + c, sH, sW, t, ph, pw, out + c);
#endif
  for (; c < C; ++c) bin_scalar<T>(base + c, sH, sW, t, ph, pw, out + c);
}

// All bins of one RoI from a channels_last map into dst (bins at strides dH, dW,
// channels contiguous).
template <typename T>
MN_ALWAYS_INLINE void roi_channels_last(const T* base, int64_t sH, int64_t sW, int64_t C,
                                        const RoiTables<T>& t, int64_t PH, int64_t PW, T* dst,
                                        int64_t dH, int64_t dW) {
  for (int64_t ph = 0; ph < PH; ++ph)
    for (int64_t pw = 0; pw < PW; ++pw)
      bin_channels_last<T>(base, sH, sW, C, t, ph, pw, dst + ph * dH + pw * dW);
}

#if MN_X86_DISPATCH
template <typename T>
MN_TARGET_AVX2 void roi_channels_last_avx2(const T* base, int64_t sH, int64_t sW, int64_t C,
                                           const RoiTables<T>& t, int64_t PH, int64_t PW, T* dst,
                                           int64_t dH, int64_t dW) {
  roi_channels_last<T>(base, sH, sW, C, t, PH, PW, dst, dH, dW);
}
#endif

template <typename T>
void roi_channels_last_dispatch(const T* base, int64_t sH, int64_t sW, int64_t C,
                                const RoiTables<T>& t, int64_t PH, int64_t PW, T* dst, int64_t dH,
                                int64_t dW) {
#if MN_X86_DISPATCH
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return roi_channels_last_avx2<T>(base, sH, sW, C, t, PH, PW, dst, dH, dW);
#endif
  roi_channels_last<T>(base, sH, sW, C, t, PH, PW, dst, dH, dW);
}

// One bin of one channel plane (NCHW).
template <typename T>
inline T bin_plane(const T* plane, int64_t sH, const RoiTables<T>& t, int64_t ph, int64_t pw) {
  // Same products and summation order as bin_channels_last, so NCHW and
  // channels_last inputs give bitwise identical results.
  T sum = 0;
  for (int32_t ty = t.y.off[ph]; ty < t.y.off[ph + 1]; ++ty) {
    const T* row = plane + t.y.idx[ty] * sH;
    const T wy = t.y.w[ty];
    for (int32_t tx = t.x.off[pw]; tx < t.x.off[pw + 1]; ++tx) sum += (wy * t.x.w[tx]) * row[t.x.idx[tx]];
  }
  return sum;
}

// RoIs visited in a spatially coherent order (batch, then Morton order of the
// RoI centre on a 16-pixel grid of the feature map), so consecutive RoIs reuse
// the feature rows already in cache. Ties keep the input order.
template <typename T>
std::vector<int64_t> spatial_order(const T* rois, int64_t K, double scale) {
  std::vector<uint64_t> key(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const T* r = rois + k * 5;
    const double cx = 0.5 * (double(r[1]) + double(r[3])) * scale / 16.0;
    const double cy = 0.5 * (double(r[2]) + double(r[4])) * scale / 16.0;
    uint64_t code = 0xffffffffULL;
    if (std::isfinite(cx) && std::isfinite(cy)) {
      const uint32_t ix = static_cast<uint32_t>(std::min(std::max(cx + 1.0, 0.0), 65535.0));
      const uint32_t iy = static_cast<uint32_t>(std::min(std::max(cy + 1.0, 0.0), 65535.0));
      code = 0;
      for (int b = 0; b < 16; ++b)
        code |= (uint64_t((ix >> b) & 1u) << (2 * b)) | (uint64_t((iy >> b) & 1u) << (2 * b + 1));
    }
    const uint64_t batch = static_cast<uint64_t>(static_cast<int64_t>(r[0])) & 0xffffffULL;
    key[k] = (batch << 33) | code;
  }
  std::vector<int64_t> order(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  return order;
}

// Whether an NCHW map is worth a channels_last scratch copy (forward: of the
// input; backward: of the gradient, transposed back afterwards): when the
// sampled taps, about 16 per bin, outnumber twice the map's pixels, one pass
// over the map buys the vectorised channels_last kernel for all of them.
inline bool transpose_pays(int64_t K, int64_t PH, int64_t PW, int64_t N, int64_t C, int64_t H,
                           int64_t W) {
  const double taps = double(K) * double(PH) * double(PW) * 16.0;
  const double pixels = double(N) * double(H) * double(W) * 2.0;
  return taps > pixels && C >= 8;
}

inline Strides4 channels_last_strides(int64_t C, int64_t H, int64_t W) {
  return Strides4{H * W * C, 1, W * C, C};
}

template <typename T>
std::unique_ptr<T[]> scratch_buffer(int64_t n) {
  std::unique_ptr<T[]> b(new T[static_cast<size_t>(n)]);
  advise_huge_pages(b.get(), static_cast<size_t>(n) * sizeof(T));
  return b;
}

// dst[n, c, h, w] = src[n, c, h, w] between two memory formats (the NCHW <->
// channels_last transpose of both directions), parallel over (n, h) rows. The
// channels go in blocks of 16, so each pass over a row touches one 64-byte
// line of floats per pixel on the channels_last side.
template <typename T>
void copy_layout(const T* src, Strides4 s, T* dst, Strides4 d, int64_t N, int64_t C, int64_t H,
                 int64_t W) {
  parallel_for(0, N * H, 1, [&](int64_t lo, int64_t hi) {
    constexpr int64_t CB = 16;
    for (int64_t nh = lo; nh < hi; ++nh) {
      const int64_t n = nh / H, h = nh % H;
      const T* sr = src + n * s.n + h * s.h;
      T* dr = dst + n * d.n + h * d.h;
      for (int64_t c0 = 0; c0 < C; c0 += CB) {
        const int64_t c1 = std::min(C, c0 + CB);
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = c0; c < c1; ++c) dr[c * d.c + w * d.w] = sr[c * s.c + w * s.w];
      }
    }
  });
}

}  // namespace roi_align_impl

using namespace roi_align_impl;

template <typename T>
void roi_align_forward(const TensorView& input, const TensorView& rois,
                       const TensorView& output, const RoiAlignParams& p) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t K = rois.size(0), PH = p.pooled_h, PW = p.pooled_w;
  if (K == 0 || C == 0) return;
  const T* roi_data = rois.ptr<T>();
  T* out = output.ptr<T>();
  const int64_t oK = output.stride(0), oC = output.stride(1), oH = output.stride(2),
                oW = output.stride(3);
  const bool out_cl = output.is_channels_last() && C > 1;

  // Feature source in channels_last form: the input itself, or a scratch copy.
  const T* feat = input.ptr<T>();
  Strides4 fs{input.stride(0), input.stride(1), input.stride(2), input.stride(3)};
  bool cl = input.is_channels_last() || C == 1;
  std::unique_ptr<T[]> scratch;
  if (!cl && transpose_pays(K, PH, PW, N, C, H, W)) {
    scratch = scratch_buffer<T>(N * H * W * C);
    const Strides4 ss = channels_last_strides(C, H, W);
    copy_layout<T>(feat, fs, scratch.get(), ss, N, C, H, W);
    feat = scratch.get();
    fs = ss;
    cl = true;
  }
  const int64_t sN = fs.n, sC = fs.c, sH = fs.h, sW = fs.w;

  advise_huge_pages(out, static_cast<size_t>(K * C * PH * PW) * sizeof(T));
  const std::vector<int64_t> order = spatial_order<T>(roi_data, K, p.spatial_scale);
  parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) {
    RoiTables<T> t;
    std::vector<T> local;
    if (cl && !out_cl) local.resize(static_cast<size_t>(PH * PW * C));
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t k = order[i];
      T* o = out + k * oK;
      if (!build_tables<T>(roi_data + k * 5, p, H, W, t)) {
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ph = 0; ph < PH; ++ph)
            for (int64_t pw = 0; pw < PW; ++pw) o[c * oC + ph * oH + pw * oW] = T(0);
        continue;
      }
      const int64_t n = t.g.batch;
      if (cl) {
        const T* base = feat + n * sN;
        if (out_cl)
          roi_channels_last_dispatch<T>(base, sH, sW, C, t, PH, PW, o, oH, oW);
        else
          roi_channels_last_dispatch<T>(base, sH, sW, C, t, PH, PW, local.data(), PW * C, C);
        if (!out_cl) {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ph = 0; ph < PH; ++ph)
              for (int64_t pw = 0; pw < PW; ++pw)
                o[c * oC + ph * oH + pw * oW] = local[(ph * PW + pw) * C + c];
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const T* plane = feat + n * sN + c * sC;
          for (int64_t ph = 0; ph < PH; ++ph)
            for (int64_t pw = 0; pw < PW; ++pw) {
              // sW == 1 for NCHW-contiguous input (validated).
              o[c * oC + ph * oH + pw * oW] = bin_plane<T>(plane, sH, t, ph, pw);
            }
        }
      }
    }
  });
}

namespace roi_align_impl {

// The channels_last backward's inputs: grad_output, every RoI's tap tables
// (with whether it contributes) in visiting order, and the accumulator.
template <typename T>
struct BackwardSlices {
  const T* go;  // grad_output [K, C, PH, PW]
  Strides4 gs;
  const RoiTables<T>* tables;  // [K]
  const char* live;            // [K]
  const int64_t* order;        // [K]
  int64_t K, PH, PW;
  T* acc;  // [N, C, H, W], channels contiguous (as.c unused)
  Strides4 as;
  int64_t N, H, W;
};

// Zeroes channels [c0, c0 + nc) of the accumulator and accumulates every
// RoI's gradient into them; g is scratch for nc values. Each channel sees the
// same RoI / bin / tap order whatever the slice, so results are deterministic.
template <typename T>
MN_ALWAYS_INLINE void backward_slice_cl(const BackwardSlices<T>& a, int64_t c0, int64_t nc, T* g) {
  const T* go = a.go;
  const Strides4 gs = a.gs, as = a.as;
  const int64_t K = a.K, PH = a.PH, PW = a.PW;
  T* acc = a.acc;
  for (int64_t n = 0; n < a.N; ++n)
    for (int64_t h = 0; h < a.H; ++h)
      for (int64_t w = 0; w < a.W; ++w) {
        T* d = acc + n * as.n + h * as.h + w * as.w + c0;
        for (int64_t c = 0; c < nc; ++c) d[c] = T(0);
      }
  for (int64_t i = 0; i < K; ++i) {
    const int64_t k = a.order[i];
    if (!a.live[k]) continue;
    const RoiTables<T>& t = a.tables[k];
    T* base = acc + t.g.batch * as.n + c0;
    for (int64_t ph = 0; ph < PH; ++ph)
      for (int64_t pw = 0; pw < PW; ++pw) {
        const T* src = go + k * gs.n + ph * gs.h + pw * gs.w + c0 * gs.c;
        for (int64_t c = 0; c < nc; ++c) g[c] = src[c * gs.c];
        for (int32_t ty = t.y.off[ph]; ty < t.y.off[ph + 1]; ++ty) {
          T* row = base + t.y.idx[ty] * as.h;
          const T wy = t.y.w[ty];
          for (int32_t tx = t.x.off[pw]; tx < t.x.off[pw + 1]; ++tx) {
            const T wgt = wy * t.x.w[tx];
            T* __restrict dst = row + t.x.idx[tx] * as.w;
            const T* __restrict gg = g;
            for (int64_t c = 0; c < nc; ++c) dst[c] += wgt * gg[c];
          }
        }
      }
  }
}

#if MN_X86_DISPATCH
template <typename T>
MN_TARGET_AVX2 void backward_slice_cl_avx2(const BackwardSlices<T>& a, int64_t c0, int64_t nc, T* g) {
  backward_slice_cl<T>(a, c0, nc, g);
}
#endif

}  // namespace roi_align_impl

template <typename T>
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p) {
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3);
  const int64_t K = rois.size(0), PH = p.pooled_h, PW = p.pooled_w;
  if (C == 0 || N * H * W == 0) return;
  T* gi = grad_input.ptr<T>();
  const int64_t sN = grad_input.stride(0), sC = grad_input.stride(1), sH = grad_input.stride(2),
                sW = grad_input.stride(3);
  const T* go = grad_output.ptr<T>();
  const Strides4 gis{sN, sC, sH, sW};
  const Strides4 gs{grad_output.stride(0), grad_output.stride(1), grad_output.stride(2),
                    grad_output.stride(3)};

  // Tap tables for every RoI, built once in parallel and shared by all slices.
  std::vector<RoiTables<T>> tables(static_cast<size_t>(K));
  std::vector<char> live(static_cast<size_t>(K), 0);
  const T* roi_data = rois.ptr<T>();
  parallel_for(0, K, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) live[k] = build_tables<T>(roi_data + k * 5, p, H, W, tables[k]);
  });
  const std::vector<int64_t> order = spatial_order<T>(roi_data, K, p.spatial_scale);

  // Accumulate in channels_last form: into grad_input itself, or (NCHW with
  // many taps) into a scratch buffer transposed afterwards.
  const bool cl = grad_input.is_channels_last() || C == 1;
  if (cl || transpose_pays(K, PH, PW, N, C, H, W)) {
    BackwardSlices<T> a{go, gs, tables.data(), live.data(), order.data(), K, PH, PW, gi, gis, N, H, W};
    std::unique_ptr<T[]> scratch;
    if (!cl) {
      scratch = scratch_buffer<T>(N * H * W * C);
      a.acc = scratch.get();
      a.as = channels_last_strides(C, H, W);
    }
    advise_huge_pages(gi, static_cast<size_t>(N * H * W * C) * sizeof(T));
    const int64_t threads = get_num_threads();
    int64_t block = (C + 2 * threads - 1) / (2 * threads);
    block = std::max<int64_t>(16, (block + 15) / 16 * 16);
    const int64_t nblocks = (C + block - 1) / block;
    parallel_for(0, nblocks, 1, [&](int64_t blo, int64_t bhi) {
      std::vector<T> g(static_cast<size_t>(block));
      for (int64_t bi = blo; bi < bhi; ++bi) {
        const int64_t c0 = bi * block, nc = std::min(C, c0 + block) - c0;
#if MN_X86_DISPATCH
        static const bool avx2 = __builtin_cpu_supports("avx2");
        if (avx2) {
          backward_slice_cl_avx2<T>(a, c0, nc, g.data());
          continue;
        }
#endif
        backward_slice_cl<T>(a, c0, nc, g.data());
      }
    });
    if (!cl) copy_layout<T>(a.acc, a.as, gi, gis, N, C, H, W);
    return;
  }

  parallel_for(0, C, 1, [&](int64_t clo, int64_t chi) {
    for (int64_t c = clo; c < chi; ++c) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) gi[n * sN + c * sC + h * sH + w * sW] = T(0);
      for (int64_t i = 0; i < K; ++i) {
        const int64_t k = order[i];
        if (!live[k]) continue;
        const RoiTables<T>& t = tables[k];
        T* plane = gi + t.g.batch * sN + c * sC;
        const T* src = go + k * gs.n + c * gs.c;
        for (int64_t ph = 0; ph < PH; ++ph)
          for (int64_t pw = 0; pw < PW; ++pw) {
            const T g = src[ph * gs.h + pw * gs.w];
            for (int32_t ty = t.y.off[ph]; ty < t.y.off[ph + 1]; ++ty) {
              T* row = plane + t.y.idx[ty] * sH;
              const T wy = t.y.w[ty];
              for (int32_t tx = t.x.off[pw]; tx < t.x.off[pw + 1]; ++tx)
                row[t.x.idx[tx] * sW] += (wy * t.x.w[tx]) * g;  // as the channels_last path
            }
          }
      }
    }
  });
}

#include "ops/roi_align/roi_align_instances.inc"

}  // namespace cpu
}  // namespace mn
