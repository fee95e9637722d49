// grid_anchors CUDA kernel as a per-thread functor (common/cuda_grid.h): one
// thread per output box (location-major, then anchor), with anchors_common.h's
// shift, so the output equals the CPU kernel's bit for bit. cell_anchors is
// tiny and always computed on the host (the Python layer moves it).
#pragma once
#include <cstdint>

#include "common/cuda_grid.h"
#include "common/tensor_view.h"
#include "ops/anchors/anchors_common.h"

namespace mn {
namespace anchors_detail {

template <typename T>
struct GridAnchors {
  const T* cell;
  int64_t A, H, W;
  double stride_h, stride_w, offset;
  T* out;
  MN_HOST_DEVICE void operator()(GridThread t) const {
    const int64_t total = H * W * A;
    for (int64_t i = t.global(); i < total; i += t.stride()) {
      const int64_t a = i % A, loc = i / A, x = loc % W, y = loc / W;
      const T sx = static_cast<T>(grid_shift(x, stride_w, offset));
      const T sy = static_cast<T>(grid_shift(y, stride_h, offset));
      const T* b = cell + a * 4;
      T* d = out + i * 4;
      d[0] = sx + b[0];
      d[1] = sy + b[1];
      d[2] = sx + b[2];
      d[3] = sy + b[3];
    }
  }
};

template <typename T, class Exec>
void grid_anchors_run(Exec& ex, const TensorView& cell, int64_t grid_h, int64_t grid_w,
                      double stride_h, double stride_w, double offset, const TensorView& out,
                      const char* op) {
  const int64_t A = cell.size(0), total = grid_h * grid_w * A;
  if (total == 0) return;
  ex.launch(launch_1d(total), GridAnchors<T>{cell.ptr<T>(), A, grid_h, grid_w, stride_h, stride_w,
                                             offset, out.ptr<T>()}, op);
}

}  // namespace anchors_detail
}  // namespace mn
