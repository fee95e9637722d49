// Anchors: validation (once, before any kernel) and dispatch.
#include "ops/anchors/anchors.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/checks.h"
#include "common/dispatch.h"
#include "ops/anchors/anchors_cpu.h"
#if MN_WITH_CUDA
#include "ops/anchors/anchors_cuda.h"
#endif

namespace mn {
namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  return s;
}

void check_positive_list(const char* op, const char* arg, const std::vector<double>& v) {
  if (v.empty()) throw ValueError(std::string(op) + ": " + arg + " must not be empty");
  for (size_t i = 0; i < v.size(); ++i)
    if (!(std::isfinite(v[i]) && v[i] > 0))
      throw ValueError(std::string(op) + ": " + arg + "[" + std::to_string(i) +
                       "] must be a positive finite number, got " + num(v[i]));
}

}  // namespace

void cell_anchors(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                  AnchorStyle style, const TensorView& out) {
  const char* op = "cell_anchors";
  check_positive_list(op, "sizes", sizes);
  check_positive_list(op, "aspect_ratios", aspect_ratios);
  check_host(op, "out", out);  // a few boxes: always computed on the host
  check_output(op, "out", out);
  check_dtype(op, "out", out, {DType::Float32, DType::Float64});
  const int64_t A = static_cast<int64_t>(sizes.size() * aspect_ratios.size());
  check_shape(op, "out", out, {A, 4}, "[A, 4] with A = len(sizes) * len(aspect_ratios)");
  check_contiguous(op, "out", out);
  dispatch_float(out.dtype, op, "out", [&](auto tag) {
    cpu::cell_anchors<decltype(tag)>(sizes, aspect_ratios, style, out);
  });
}

void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out) {
  const char* op = "grid_anchors";
  check_float_input(op, "cell_anchors", cell, {-1, 4}, "[A, 4]");
  if (grid_h < 0 || grid_w < 0)
    throw ValueError(std::string(op) + ": grid_size must be non-negative, got (" +
                     std::to_string(grid_h) + ", " + std::to_string(grid_w) + ")");
  if (!(std::isfinite(stride_h) && std::isfinite(stride_w) && stride_h > 0 && stride_w > 0))
    throw ValueError(std::string(op) + ": stride must be positive and finite, got (" +
                     num(stride_h) + ", " + num(stride_w) + ")");
  if (!std::isfinite(offset))
    throw ValueError(std::string(op) + ": offset must be finite, got " + num(offset));
  const int64_t A = cell.size(0);
  const int64_t limit = std::numeric_limits<int64_t>::max() / 4;
  if (grid_h > 0 && grid_w > 0 && A > 0 &&
      (grid_w > limit / grid_h || grid_h * grid_w > limit / A))
    throw ValueError(std::string(op) + ": grid_size x anchors is too large");
  check_output_like(op, "out", out, "cell_anchors", cell, {grid_h * grid_w * A, 4},
                    "[H * W * A, 4]");
  check_same_device(op, {{"cell_anchors", &cell}, {"out", &out}});
  MN_DISPATCH_DEVICE(op, cell, "cell_anchors",
                     grid_anchors<T>(cell, grid_h, grid_w, stride_h, stride_w, offset, out));
}

}  // namespace mn
