// CPU Winograd transforms. Channels are innermost (channels_last), so every
// transform is a short fixed linear combination of whole channel rows: the
// loops over a block of channels vectorise, and the per-tile scratch (one
// (m+2)^2 x 64-channel block) stays in L1.
#include "ops/winograd/winograd_cpu.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MN_WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define MN_WINO_INLINE inline __attribute__((always_inline))
#else
#define MN_WINO_CLONES
#define MN_WINO_INLINE inline
#endif

namespace mn {
namespace cpu {
namespace {

constexpr int64_t kBlock = 64;  // channels per block

// F(2x2, 3x3) (points 0, 1, -1, inf)
struct F2 {
  static constexpr int M = 2;
  static constexpr int A = 4;
  // o[i] = sum_r BT[i][r] d[r], BT = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  static MN_WINO_INLINE void bt(const float* const* d, float* const* o, int64_t n) {
    const float* __restrict d0 = d[0];
    const float* __restrict d1 = d[1];
    const float* __restrict d2 = d[2];
    const float* __restrict d3 = d[3];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    float* __restrict o2 = o[2];
    float* __restrict o3 = o[3];
    for (int64_t c = 0; c < n; ++c) {
      const float x0 = d0[c], x1 = d1[c], x2 = d2[c], x3 = d3[c];
      o0[c] = x0 - x2;
      o1[c] = x1 + x2;
      o2[c] = x2 - x1;
      o3[c] = x1 - x3;
    }
  }
  // o[q] = sum_k AT[q][k] s[k], AT = [1 1 1 0; 0 1 -1 -1]
  static MN_WINO_INLINE void at(const float* const* s, float* const* o, int64_t n) {
    const float* __restrict s0 = s[0];
    const float* __restrict s1 = s[1];
    const float* __restrict s2 = s[2];
    const float* __restrict s3 = s[3];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    for (int64_t c = 0; c < n; ++c) {
      const float x1 = s1[c], x2 = s2[c];
      o0[c] = (s0[c] + x1) + x2;
      o1[c] = (x1 - x2) - s3[c];
    }
  }
  // the adjoint of at: o[k] = sum_q AT[q][k] y[q] (M inputs, A outputs)
  static MN_WINO_INLINE void at_adjoint(const float* const* y, float* const* o, int64_t n) {
    const float* __restrict y0 = y[0];
    const float* __restrict y1 = y[1];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    float* __restrict o2 = o[2];
    float* __restrict o3 = o[3];
    for (int64_t c = 0; c < n; ++c) {
      const float a = y0[c], b = y1[c];
      o0[c] = a;
      o1[c] = a + b;
      o2[c] = a - b;
      o3[c] = -b;
    }
  }
};

// F(4x4, 3x3) (points 0, 1, -1, 2, -2, inf)
struct F4 {
  static constexpr int M = 4;
  static constexpr int A = 6;
  // BT = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
  //       0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
  static MN_WINO_INLINE void bt(const float* const* d, float* const* o, int64_t n) {
    const float* __restrict d0 = d[0];
    const float* __restrict d1 = d[1];
    const float* __restrict d2 = d[2];
    const float* __restrict d3 = d[3];
    const float* __restrict d4 = d[4];
    const float* __restrict d5 = d[5];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    float* __restrict o2 = o[2];
    float* __restrict o3 = o[3];
    float* __restrict o4 = o[4];
    float* __restrict o5 = o[5];
    for (int64_t c = 0; c < n; ++c) {
      const float x0 = d0[c], x1 = d1[c], x2 = d2[c], x3 = d3[c], x4 = d4[c], x5 = d5[c];
      const float a = x4 - 4.0f * x2;  // rows 1 and 2 share x4 - 4 x2 and x3 - 4 x1
      const float b = x3 - 4.0f * x1;
      const float e = x4 - x2;  // rows 3 and 4 share x4 - x2 and 2 (x3 - x1)
      const float f = 2.0f * (x3 - x1);
      o0[c] = (4.0f * x0 - 5.0f * x2) + x4;
      o1[c] = a + b;
      o2[c] = a - b;
      o3[c] = e + f;
      o4[c] = e - f;
      o5[c] = (4.0f * x1 - 5.0f * x3) + x5;
    }
  }
  // AT = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  static MN_WINO_INLINE void at(const float* const* s, float* const* o, int64_t n) {
    const float* __restrict s0 = s[0];
    const float* __restrict s1 = s[1];
    const float* __restrict s2 = s[2];
    const float* __restrict s3 = s[3];
    const float* __restrict s4 = s[4];
    const float* __restrict s5 = s[5];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    float* __restrict o2 = o[2];
    float* __restrict o3 = o[3];
    for (int64_t c = 0; c < n; ++c) {
      const float p12 = s1[c] + s2[c], m12 = s1[c] - s2[c];
      const float p34 = s3[c] + s4[c], m34 = s3[c] - s4[c];
      o0[c] = (s0[c] + p12) + p34;
      o1[c] = m12 + 2.0f * m34;
      o2[c] = p12 + 4.0f * p34;
      o3[c] = (m12 + 8.0f * m34) + s5[c];
    }
  }
  // the adjoint of at: o[k] = sum_q AT[q][k] y[q] (M inputs, A outputs)
  static MN_WINO_INLINE void at_adjoint(const float* const* y, float* const* o, int64_t n) {
    const float* __restrict y0 = y[0];
    const float* __restrict y1 = y[1];
    const float* __restrict y2 = y[2];
    const float* __restrict y3 = y[3];
    float* __restrict o0 = o[0];
    float* __restrict o1 = o[1];
    float* __restrict o2 = o[2];
    float* __restrict o3 = o[3];
    float* __restrict o4 = o[4];
    float* __restrict o5 = o[5];
    for (int64_t c = 0; c < n; ++c) {
      const float a = y0[c], b = y1[c], d = y2[c], e = y3[c];
      const float even = a + d, odd = b + e;  // o1, o2 share these
      const float even4 = a + 4.0f * d, odd8 = 2.0f * b + 8.0f * e;  // o3, o4 share these
      o0[c] = a;
      o1[c] = even + odd;
      o2[c] = even - odd;
      o3[c] = even4 + odd8;
      o4[c] = even4 - odd8;
      o5[c] = e;
    }
  }
};

struct Grid {
  int64_t th, tw;
  Grid(int64_t h, int64_t w, int64_t m) : th((h + m - 1) / m), tw((w + m - 1) / m) {}
  void locate(int64_t t, int64_t& n, int64_t& ty, int64_t& tx) const {
    n = t / (th * tw);
    const int64_t r = t - n * th * tw;
    ty = r / tw;
    tx = r - ty * tw;
  }
};

// Tiles lo .. hi-1 of the call (tile0 + i of the map). tmp: A*A*kBlock floats,
// zeros: kBlock zeros (the padding).
template <class F>
MN_WINO_INLINE void input_tiles(const TensorView& in, const TensorView& v, int64_t tile0,
                                int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  constexpr int M = F::M, A = F::A;
  const int64_t C = in.size(1), H = in.size(2), W = in.size(3);
  const int64_t sn = in.stride(0), sh = in.stride(2), sw = in.stride(3);
  const int64_t v0 = v.stride(0), v1 = v.stride(1);
  const float* x = in.ptr<const float>();
  float* vp = v.ptr<float>();
  const Grid g(H, W, M);
  const float* d[A];
  float* o[A];
  for (int64_t i = lo; i < hi; ++i) {
    int64_t n, ty, tx;
    g.locate(tile0 + i, n, ty, tx);
    const int64_t y0 = ty * M - 1, x0 = tx * M - 1;
    for (int64_t cb = 0; cb < C; cb += kBlock) {
      const int64_t cl = std::min(kBlock, C - cb);
      // columns: t[:, j] = BT d[:, j]
      for (int j = 0; j < A; ++j) {
        const int64_t xx = x0 + j;
        const bool col_in = xx >= 0 && xx < W;
        for (int r = 0; r < A; ++r) {
          const int64_t yy = y0 + r;
          d[r] = (col_in && yy >= 0 && yy < H) ? x + n * sn + yy * sh + xx * sw + cb : zeros;
          o[r] = tmp + (r * A + j) * kBlock;
        }
        F::bt(d, o, cl);
      }
      // rows: V[r, :] = BT t[r, :]
      for (int r = 0; r < A; ++r) {
        for (int k = 0; k < A; ++k) {
          d[k] = tmp + (r * A + k) * kBlock;
          o[k] = vp + (r * A + k) * v0 + i * v1 + cb;
        }
        F::bt(d, o, cl);
      }
    }
  }
}

MN_WINO_INLINE void epilogue(float* dst, const float* src, const float* bias, const float* add,
                             int64_t n, bool relu) {
  for (int64_t c = 0; c < n; ++c) {
    float y = src[c];
    if (bias) y += bias[c];
    if (add) y += add[c];
    if (relu) y = y < 0.0f ? 0.0f : y;  // NaN stays NaN, as torch's relu
    dst[c] = y;
  }
}

// tmp: (M*A + M) * kBlock floats.
template <class F>
MN_WINO_INLINE void output_tiles(const TensorView& mt, const float* bias, const TensorView* res,
                                 const TensorView& out, int64_t tile0, int64_t lo, int64_t hi,
                                 bool relu, float* tmp) {
  constexpr int M = F::M, A = F::A;
  const int64_t O = out.size(1), H = out.size(2), W = out.size(3);
  const int64_t sn = out.stride(0), sh = out.stride(2), sw = out.stride(3);
  const int64_t m0 = mt.stride(0), m1 = mt.stride(1);
  const float* mp = mt.ptr<const float>();
  float* yp = out.ptr<float>();
  const float* rp = res ? res->ptr<const float>() : nullptr;
  const int64_t rn = res ? res->stride(0) : 0, rh = res ? res->stride(2) : 0,
                rw = res ? res->stride(3) : 0;
  float* ybuf = tmp + M * A * kBlock;
  const Grid g(H, W, M);
  const float* s[A];
  float* o[A];
  for (int64_t i = lo; i < hi; ++i) {
    int64_t n, ty, tx;
    g.locate(tile0 + i, n, ty, tx);
    const int64_t y0 = ty * M, x0 = tx * M;
    for (int64_t ob = 0; ob < O; ob += kBlock) {
      const int64_t ol = std::min(kBlock, O - ob);
      // columns: S[:, k] = AT M[:, k]
      for (int k = 0; k < A; ++k) {
        for (int r = 0; r < A; ++r) s[r] = mp + (r * A + k) * m0 + i * m1 + ob;
        for (int q = 0; q < M; ++q) o[q] = tmp + (q * A + k) * kBlock;
        F::at(s, o, ol);
      }
      // rows: Y[r, :] = AT S[r, :], then the epilogue per output pixel
      for (int r = 0; r < M && y0 + r < H; ++r) {
        for (int k = 0; k < A; ++k) s[k] = tmp + (r * A + k) * kBlock;
        for (int q = 0; q < M; ++q) o[q] = ybuf + q * kBlock;
        F::at(s, o, ol);
        const int64_t yy = y0 + r;
        for (int q = 0; q < M && x0 + q < W; ++q) {
          const int64_t xx = x0 + q;
          epilogue(yp + n * sn + yy * sh + xx * sw + ob, ybuf + q * kBlock,
                   bias ? bias + ob : nullptr, rp ? rp + n * rn + yy * rh + xx * rw + ob : nullptr,
                   ol, relu);
        }
      }
    }
  }
}

// The output-gradient transform of tiles lo .. hi-1: dM = A dY A^T per tile, dY
// the tile's m x m output gradient (zeros beyond the map). tmp: A*M*kBlock floats.
template <class F>
MN_WINO_INLINE void grad_tiles(const TensorView& gy, const TensorView& dm, int64_t tile0,
                               int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  constexpr int M = F::M, A = F::A;
  const int64_t O = gy.size(1), H = gy.size(2), W = gy.size(3);
  const int64_t sn = gy.stride(0), sh = gy.stride(2), sw = gy.stride(3);
  const int64_t d0 = dm.stride(0), d1 = dm.stride(1);
  const float* g = gy.ptr<const float>();
  float* dp = dm.ptr<float>();
  const Grid grid(H, W, M);
  const float* y[M];
  float* o[A];
  for (int64_t i = lo; i < hi; ++i) {
    int64_t n, ty, tx;
    grid.locate(tile0 + i, n, ty, tx);
    const int64_t y0 = ty * M, x0 = tx * M;
    for (int64_t ob = 0; ob < O; ob += kBlock) {
      const int64_t ol = std::min(kBlock, O - ob);
      // columns: t[:, j] = A dY[:, j]   (A x M, the adjoint of AT)
      for (int j = 0; j < M; ++j) {
        const int64_t xx = x0 + j;
        for (int q = 0; q < M; ++q) {
          const int64_t yy = y0 + q;
          y[q] = (xx < W && yy < H) ? g + n * sn + yy * sh + xx * sw + ob : zeros;
        }
        for (int r = 0; r < A; ++r) o[r] = tmp + (r * M + j) * kBlock;
        F::at_adjoint(y, o, ol);
      }
      // rows: dM[r, :] = A t[r, :]
      for (int r = 0; r < A; ++r) {
        for (int q = 0; q < M; ++q) y[q] = tmp + (r * M + q) * kBlock;
        for (int k = 0; k < A; ++k) o[k] = dp + (r * A + k) * d0 + i * d1 + ob;
        F::at_adjoint(y, o, ol);
      }
    }
  }
}

MN_WINO_CLONES void grad_range2(const TensorView& gy, const TensorView& dm, int64_t tile0,
                                int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  grad_tiles<F2>(gy, dm, tile0, lo, hi, tmp, zeros);
}
MN_WINO_CLONES void grad_range4(const TensorView& gy, const TensorView& dm, int64_t tile0,
                                int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  grad_tiles<F4>(gy, dm, tile0, lo, hi, tmp, zeros);
}

MN_WINO_CLONES void input_range2(const TensorView& in, const TensorView& v, int64_t tile0,
                                 int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  input_tiles<F2>(in, v, tile0, lo, hi, tmp, zeros);
}
MN_WINO_CLONES void input_range4(const TensorView& in, const TensorView& v, int64_t tile0,
                                 int64_t lo, int64_t hi, float* tmp, const float* zeros) {
  input_tiles<F4>(in, v, tile0, lo, hi, tmp, zeros);
}
MN_WINO_CLONES void output_range2(const TensorView& mt, const float* bias, const TensorView* res,
                                  const TensorView& out, int64_t tile0, int64_t lo, int64_t hi,
                                  bool relu, float* tmp) {
  output_tiles<F2>(mt, bias, res, out, tile0, lo, hi, relu, tmp);
}
MN_WINO_CLONES void output_range4(const TensorView& mt, const float* bias, const TensorView* res,
                                  const TensorView& out, int64_t tile0, int64_t lo, int64_t hi,
                                  bool relu, float* tmp) {
  output_tiles<F4>(mt, bias, res, out, tile0, lo, hi, relu, tmp);
}

constexpr int64_t kGrain = 8;  // tiles per task

}  // namespace

void winograd_input_transform(const TensorView& input, const TensorView& v, int64_t tile0,
                              int64_t m) {
  const int64_t count = v.size(1), a = m + 2;
  if (count == 0 || input.size(1) == 0) return;
  parallel_for(0, count, kGrain, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp(static_cast<size_t>(a * a * kBlock));
    const std::vector<float> zeros(static_cast<size_t>(kBlock), 0.0f);
    if (m == 2)
      input_range2(input, v, tile0, lo, hi, tmp.data(), zeros.data());
    else
      input_range4(input, v, tile0, lo, hi, tmp.data(), zeros.data());
  });
}

void winograd_grad_transform(const TensorView& grad_output, const TensorView& dm, int64_t tile0,
                             int64_t m) {
  const int64_t count = dm.size(1), a = m + 2;
  if (count == 0 || grad_output.size(1) == 0) return;
  parallel_for(0, count, kGrain, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp(static_cast<size_t>(a * m * kBlock));
    const std::vector<float> zeros(static_cast<size_t>(kBlock), 0.0f);
    if (m == 2)
      grad_range2(grad_output, dm, tile0, lo, hi, tmp.data(), zeros.data());
    else
      grad_range4(grad_output, dm, tile0, lo, hi, tmp.data(), zeros.data());
  });
}

void winograd_output_transform(const TensorView& mt, const TensorView* bias,
                               const TensorView* residual, const TensorView& output,
                               int64_t tile0, int64_t m, bool relu) {
  const int64_t count = mt.size(1), a = m + 2;
  if (count == 0 || output.size(1) == 0) return;
  const float* b = bias ? bias->ptr<const float>() : nullptr;
  parallel_for(0, count, kGrain, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp(static_cast<size_t>((m * a + m) * kBlock));
    if (m == 2)
      output_range2(mt, b, residual, output, tile0, lo, hi, relu, tmp.data());
    else
      output_range4(mt, b, residual, output, tile0, lo, hi, relu, tmp.data());
  });
}

}  // namespace cpu
}  // namespace mn
