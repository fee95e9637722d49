// Box coder CUDA kernels as per-thread functors (common/cuda_grid.h), with
// box_coder_common.h's per-box arithmetic (the CPU kernels' too).
#pragma once
#include <array>
#include <cstdint>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/box_coder/box_coder_common.h"

namespace mn {
namespace box_coder_detail {

template <typename T>
struct EncodeBoxes {
  const T* ref;
  const T* prop;
  int64_t n;
  T wx, wy, ww, wh;
  T* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t i = t.global(); i < n; i += t.stride())
      encode_one<T>(ref + i * 4, prop + i * 4, wx, wy, ww, wh, out + i * 4);
  }
};

// One thread per decoded box (row i, class j).
template <typename T>
struct DecodeBoxes {
  const T* codes;
  const T* boxes;
  int64_t n, k;
  T wx, wy, ww, wh, clamp;
  T* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    for (int64_t e = t.global(); e < n * k; e += t.stride()) {
      const T* bx = boxes + (e / k) * 4;
      const T w = bx[2] - bx[0];
      const T h = bx[3] - bx[1];
      const T cx = bx[0] + T(0.5) * w;
      const T cy = bx[1] + T(0.5) * h;
      decode_one<T>(codes + e * 4, w, h, cx, cy, wx, wy, ww, wh, clamp, out + e * 4);
    }
  }
};

template <typename T, class Exec>
void encode_run(Exec& ex, const TensorView& reference, const TensorView& proposals,
                const std::array<double, 4>& w, const TensorView& out, const char* op) {
  const int64_t n = reference.size(0);
  if (n == 0) return;
  ex.launch(launch_1d(n), EncodeBoxes<T>{reference.ptr<T>(), proposals.ptr<T>(), n,
                                         static_cast<T>(w[0]), static_cast<T>(w[1]),
                                         static_cast<T>(w[2]), static_cast<T>(w[3]), out.ptr<T>()},
            op);
}

template <typename T, class Exec>
void decode_run(Exec& ex, const TensorView& codes, const TensorView& boxes,
                const std::array<double, 4>& w, double clamp, const TensorView& out,
                const char* op) {
  const int64_t n = codes.size(0), k = codes.size(1) / 4;
  if (n * k == 0) return;
  ex.launch(launch_1d(n * k),
            DecodeBoxes<T>{codes.ptr<T>(), boxes.ptr<T>(), n, k, static_cast<T>(w[0]),
                           static_cast<T>(w[1]), static_cast<T>(w[2]), static_cast<T>(w[3]),
                           static_cast<T>(clamp), out.ptr<T>()}, op);
}

}  // namespace box_coder_detail
}  // namespace mn
