// RoIPool CPU kernels: forward parallel over RoIs (vectorised over channels
// for channels_last), backward parallel over channel slices (no atomics).
#include <algorithm>
#include <type_traits>
#include <cfloat>
#include <vector>

#include "common/host_device.h"
#include "common/parallel.h"
#include "ops/roi_pool/roi_pool_cpu.h"
#include "ops/roi_pool/roi_pool_common.h"

namespace mn {
namespace cpu {

using roi_pool_detail::Bin;
using roi_pool_detail::bin_at;
using roi_pool_detail::roi_bins;

template <typename T>
using IndexLike = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// Max and argmax of one bin over contiguous channels (channels_last), with
// an index as wide as T so both run as vectors. best must hold the bin's
// initial value; arg is set to -1 first. First maximum in row-major order wins.
template <typename T>
MN_ALWAYS_INLINE void bin_max_cl(const T* base, int64_t sH, int64_t sW, int64_t C, const Bin& b,
                                 int64_t W, T* best, IndexLike<T>* arg) {
  using Idx = IndexLike<T>;
  for (int64_t c = 0; c < C; ++c) arg[c] = Idx(-1);
  for (int64_t h = b.h0; h < b.h1; ++h)
    for (int64_t w = b.w0; w < b.w1; ++w) {
      const T* px = base + h * sH + w * sW;
      const Idx idx = static_cast<Idx>(h * W + w);
      int64_t c = 0;
#if defined(__GNUC__)
      typedef T V __attribute__((vector_size(32)));
      typedef Idx VI __attribute__((vector_size(32)));
      constexpr int L = static_cast<int>(32 / sizeof(T));
      const VI iv = VI{} + idx;
      for (; c + L <= C; c += L) {
        V x, m;
        VI a;
        __builtin_memcpy(&x, px + c, sizeof(V));
        __builtin_memcpy(&m, best + c, sizeof(V));
        __builtin_memcpy(&a, arg + c, sizeof(VI));
        const auto gt = x > m;
        m = gt ? x : m;
        a = gt ? iv : a;
        __builtin_memcpy(best + c, &m, sizeof(V));
        __builtin_memcpy(arg + c, &a, sizeof(VI));
      }
#endif
      for (; c < C; ++c)
        if (px[c] > best[c]) { best[c] = px[c]; arg[c] = idx; }
    }
}

#if MN_X86_DISPATCH
template <typename T>
MN_TARGET_AVX2 void bin_max_cl_avx2(const T* base, int64_t sH, int64_t sW, int64_t C, const Bin& b,
                                    int64_t W, T* best, IndexLike<T>* arg) {
  bin_max_cl<T>(base, sH, sW, C, b, W, best, arg);
}
#endif

template <typename T>
void bin_max_dispatch(const T* base, int64_t sH, int64_t sW, int64_t C, const Bin& b, int64_t W,
                      T* best, IndexLike<T>* arg) {
#if MN_X86_DISPATCH
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return bin_max_cl_avx2<T>(base, sH, sW, C, b, W, best, arg);
#endif
  bin_max_cl<T>(base, sH, sW, C, b, W, best, arg);
}

template <typename T>
void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t PH, int64_t PW) {
  const int64_t C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  const T* in = input.ptr<T>();
  const int64_t sN = input.stride(0), sC = input.stride(1), sH = input.stride(2), sW = input.stride(3);
  T* out = output.ptr<T>();
  int64_t* am = argmax.ptr<int64_t>();
  const int64_t oK = output.stride(0), oC = output.stride(1), oH = output.stride(2), oW = output.stride(3);
  const int64_t aK = argmax.stride(0), aC = argmax.stride(1), aH = argmax.stride(2), aW = argmax.stride(3);
  using Idx = IndexLike<T>;
  // Narrow indices need H * W < 2^31; larger maps take the strided path.
  const bool cl = input.is_channels_last() && C > 1 && H * W < (int64_t(1) << 31);
  const T* roi_data = rois.ptr<T>();
  const T lowest = static_cast<T>(-FLT_MAX);

  parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> best(static_cast<size_t>(C));
    std::vector<int64_t> arg(static_cast<size_t>(C));
    std::vector<Idx> arg_narrow(static_cast<size_t>(C));
    for (int64_t k = lo; k < hi; ++k) {
      const auto r = roi_bins<T>(roi_data + k * 5, static_cast<T>(spatial_scale), PH, PW);
      const T* base = in + r.batch * sN;
      for (int64_t ph = 0; ph < PH; ++ph)
        for (int64_t pw = 0; pw < PW; ++pw) {
          const Bin b = bin_at(r, ph, pw, H, W);
          const bool empty = b.empty();
          std::fill(best.begin(), best.end(), empty ? T(0) : lowest);
          std::fill(arg.begin(), arg.end(), int64_t(-1));
          if (!empty) {
            if (cl) {
              bin_max_dispatch<T>(base, sH, sW, C, b, W, best.data(), arg_narrow.data());
              for (int64_t c = 0; c < C; ++c) arg[c] = arg_narrow[c];
            } else {
              for (int64_t c = 0; c < C; ++c) {
                const T* plane = base + c * sC;
                T m = lowest;
                int64_t a = -1;
                for (int64_t h = b.h0; h < b.h1; ++h)
                  for (int64_t w = b.w0; w < b.w1; ++w) {
                    const T v = plane[h * sH + w * sW];
                    if (v > m) { m = v; a = h * W + w; }
                  }
                best[c] = m;
                arg[c] = a;
              }
            }
          }
          T* o = out + k * oK + ph * oH + pw * oW;
          int64_t* ao = am + k * aK + ph * aH + pw * aW;
          for (int64_t c = 0; c < C; ++c) {
            o[c * oC] = best[c];
            ao[c * aC] = arg[c];
          }
        }
    }
  });
}

template <typename T>
void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input) {
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3);
  const int64_t K = rois.size(0), PH = grad_output.size(2), PW = grad_output.size(3);
  T* gi = grad_input.ptr<T>();
  const int64_t sN = grad_input.stride(0), sC = grad_input.stride(1), sH = grad_input.stride(2),
                sW = grad_input.stride(3);
  const T* go = grad_output.ptr<T>();
  const int64_t gK = grad_output.stride(0), gC = grad_output.stride(1), gH = grad_output.stride(2),
                gW = grad_output.stride(3);
  const int64_t* am = argmax.ptr<int64_t>();
  const int64_t aK = argmax.stride(0), aC = argmax.stride(1), aH = argmax.stride(2), aW = argmax.stride(3);
  const T* roi_data = rois.ptr<T>();
  const int64_t HW = H * W;
  parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) gi[n * sN + c * sC + h * sH + w * sW] = T(0);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t n = static_cast<int64_t>(roi_data[k * 5]);
        T* plane = gi + n * sN + c * sC;
        for (int64_t ph = 0; ph < PH; ++ph)
          for (int64_t pw = 0; pw < PW; ++pw) {
            const int64_t a = am[k * aK + c * aC + ph * aH + pw * aW];
            if (a < 0 || a >= HW) continue;  // empty bin (or a foreign argmax): no gradient
            plane[(a / W) * sH + (a % W) * sW] += go[k * gK + c * gC + ph * gH + pw * gW];
          }
      }
    }
  });
}

#include "ops/roi_pool/roi_pool_instances.inc"

}  // namespace cpu

}  // namespace mn
