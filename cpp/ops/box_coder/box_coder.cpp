// Box coder: validation (once, before any kernel) and dispatch.
#include "ops/box_coder/box_coder.h"

#include <cmath>
#include <string>

#include "common/checks.h"
#include "common/dispatch.h"
#include "ops/box_coder/box_coder_cpu.h"
#if MN_WITH_CUDA
#include "ops/box_coder/box_coder_cuda.h"
#endif

namespace mn {
namespace {

void check_weights(const char* op, const std::array<double, 4>& w) {
  for (int i = 0; i < 4; ++i)
    if (!std::isfinite(w[i]) || w[i] == 0.0)
      throw ValueError(std::string(op) + ": weights[" + std::to_string(i) +
                       "] must be finite and non-zero, got " + std::to_string(w[i]));
}

}  // namespace

void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out) {
  const char* op = "encode_boxes";
  check_float_input(op, "reference_boxes", reference, {-1, 4}, "[N, 4]");
  const int64_t n = reference.size(0);
  check_like(op, "proposals", proposals, "reference_boxes", reference, {n, 4},
             "[N, 4] like reference_boxes");
  check_weights(op, weights);
  check_output_like(op, "out", out, "reference_boxes", reference, {n, 4}, "[N, 4]");
  check_same_device(op, {{"reference_boxes", &reference}, {"proposals", &proposals}, {"out", &out}});
  MN_DISPATCH_DEVICE(op, reference, "reference_boxes",
                     encode_boxes<T>(reference, proposals, weights, out));
}

void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& weights, double clamp, const TensorView& out) {
  const char* op = "decode_boxes";
  check_cpu(op, "codes", codes);
  check_dtype(op, "codes", codes, {DType::Float32, DType::Float64});
  if (codes.ndim != 2 || codes.shape[1] % 4 != 0 || codes.shape[1] == 0)
    throw ValueError(std::string(op) + ": codes must have shape [N, 4 * C] with C >= 1, got " +
                     codes.shape_str());
  check_contiguous(op, "codes", codes);
  const int64_t n = codes.size(0);
  check_like(op, "boxes", boxes, "codes", codes, {n, 4}, "[N, 4] with N = codes.shape[0]");
  check_weights(op, weights);
  if (std::isnan(clamp)) throw ValueError(std::string(op) + ": clamp must not be NaN");
  check_output_like(op, "out", out, "codes", codes, {n, codes.size(1)}, "[N, 4 * C] like codes");
  check_same_device(op, {{"codes", &codes}, {"boxes", &boxes}, {"out", &out}});
  MN_DISPATCH_DEVICE(op, codes, "codes", decode_boxes<T>(codes, boxes, weights, clamp, out));
}

}  // namespace mn
