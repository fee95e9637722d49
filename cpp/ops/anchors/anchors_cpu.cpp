// Anchor CPU kernels. grid_anchors writes each output row once; rows of the
// grid are split across the thread pool (disjoint outputs).
#include "ops/anchors/anchors_cpu.h"

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "ops/anchors/anchors_common.h"

namespace mn {
namespace cpu {

template <typename T>
void cell_anchors(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                  AnchorStyle style, const TensorView& out) {
  T* o = out.ptr<T>();
  const size_t S = sizes.size(), R = aspect_ratios.size();
  if (style == AnchorStyle::Torchvision) {
    for (size_t r = 0; r < R; ++r)
      for (size_t s = 0; s < S; ++s)
        anchors_detail::torchvision_cell<T>(static_cast<T>(sizes[s]),
                                            static_cast<T>(aspect_ratios[r]), o + (r * S + s) * 4);
  } else {
    for (size_t s = 0; s < S; ++s)
      for (size_t r = 0; r < R; ++r) {
        double box[4];
        anchors_detail::detectron2_cell(sizes[s], aspect_ratios[r], box);
        T* dst = o + (s * R + r) * 4;
        for (int c = 0; c < 4; ++c) dst[c] = static_cast<T>(box[c]);
      }
  }
}

template <typename T>
void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out) {
  const int64_t A = cell.size(0);
  if (A == 0 || grid_h == 0 || grid_w == 0) return;
  const T* base = cell.ptr<T>();
  T* o = out.ptr<T>();
  std::vector<T> sx(static_cast<size_t>(grid_w));
  for (int64_t x = 0; x < grid_w; ++x)
    sx[x] = static_cast<T>(anchors_detail::grid_shift(x, stride_w, offset));
  const int64_t row = grid_w * A * 4;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(row, 1));
  parallel_for(0, grid_h, grain, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const T sy = static_cast<T>(anchors_detail::grid_shift(y, stride_h, offset));
      T* dst = o + y * row;
      for (int64_t x = 0; x < grid_w; ++x) {
        const T s = sx[x];
        for (int64_t a = 0; a < A; ++a, dst += 4) {
          const T* b = base + a * 4;
          // torchvision adds shift + base (same result either order).
          dst[0] = s + b[0];
          dst[1] = sy + b[1];
          dst[2] = s + b[2];
          dst[3] = sy + b[3];
        }
      }
    }
  });
}

template void cell_anchors<float>(const std::vector<double>&, const std::vector<double>&,
                                  AnchorStyle, const TensorView&);
template void cell_anchors<double>(const std::vector<double>&, const std::vector<double>&,
                                   AnchorStyle, const TensorView&);

#include "ops/anchors/anchors_instances.inc"

}  // namespace cpu
}  // namespace mn
