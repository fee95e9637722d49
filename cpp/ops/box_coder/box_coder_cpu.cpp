// Box coder CPU kernels: rows split across the thread pool (disjoint outputs).
#include "ops/box_coder/box_coder_cpu.h"

#include <algorithm>

#include "common/parallel.h"
#include "ops/box_coder/box_coder_common.h"

namespace mn {
namespace cpu {

template <typename T>
void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out) {
  const int64_t n = reference.size(0);
  const T* r = reference.ptr<T>();
  const T* p = proposals.ptr<T>();
  T* o = out.ptr<T>();
  const T wx = static_cast<T>(weights[0]), wy = static_cast<T>(weights[1]);
  const T ww = static_cast<T>(weights[2]), wh = static_cast<T>(weights[3]);
  parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      box_coder_detail::encode_one<T>(r + i * 4, p + i * 4, wx, wy, ww, wh, o + i * 4);
  });
}

template <typename T>
void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& weights, double clamp, const TensorView& out) {
  const int64_t n = codes.size(0), k = codes.size(1) / 4;
  const T* c = codes.ptr<T>();
  const T* b = boxes.ptr<T>();
  T* o = out.ptr<T>();
  const T wx = static_cast<T>(weights[0]), wy = static_cast<T>(weights[1]);
  const T ww = static_cast<T>(weights[2]), wh = static_cast<T>(weights[3]);
  const T cl = static_cast<T>(clamp);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1));
  parallel_for(0, n, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* bx = b + i * 4;
      const T w = bx[2] - bx[0];
      const T h = bx[3] - bx[1];
      const T cx = bx[0] + T(0.5) * w;
      const T cy = bx[1] + T(0.5) * h;
      for (int64_t j = 0; j < k; ++j)
        box_coder_detail::decode_one<T>(c + (i * k + j) * 4, w, h, cx, cy, wx, wy, ww, wh, cl,
                                        o + (i * k + j) * 4);
    }
  });
}

#include "ops/box_coder/box_coder_instances.inc"

}  // namespace cpu
}  // namespace mn
