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

void check_rows(const char* op, const char* arg, const TensorView& t, const TensorView& ref,
                const char* ref_arg, int64_t n, const char* shape) {
  check_cpu(op, arg, t);
  check_same_dtype(op, arg, t, ref_arg, ref);
  check_shape(op, arg, t, {n, 4}, shape);
  check_contiguous(op, arg, t);
}

}  // namespace

void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& weights, const TensorView& out) {
  const char* op = "encode_boxes";
  check_cpu(op, "reference_boxes", reference);
  check_dtype(op, "reference_boxes", reference, {DType::Float32, DType::Float64});
  check_shape(op, "reference_boxes", reference, {-1, 4}, "[N, 4]");
  check_contiguous(op, "reference_boxes", reference);
  const int64_t n = reference.size(0);
  check_rows(op, "proposals", proposals, reference, "reference_boxes", n,
             "[N, 4] like reference_boxes");
  check_weights(op, weights);
  check_output(op, "out", out);
  check_rows(op, "out", out, reference, "reference_boxes", n, "[N, 4]");
  check_same_device(op, {{"reference_boxes", &reference}, {"proposals", &proposals}, {"out", &out}});
  dispatch_float(reference.dtype, op, "reference_boxes", [&](auto tag) {
    if (on_cuda(reference)) {
#if MN_WITH_CUDA
      return cuda::encode_boxes<decltype(tag)>(reference, proposals, weights, out);
#else
      no_cuda_kernels(op);
#endif
    }
    cpu::encode_boxes<decltype(tag)>(reference, proposals, weights, out);
  });
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
  check_rows(op, "boxes", boxes, codes, "codes", n, "[N, 4] with N = codes.shape[0]");
  check_weights(op, weights);
  if (std::isnan(clamp)) throw ValueError(std::string(op) + ": clamp must not be NaN");
  check_output(op, "out", out);
  check_cpu(op, "out", out);
  check_same_dtype(op, "out", out, "codes", codes);
  check_shape(op, "out", out, {n, codes.size(1)}, "[N, 4 * C] like codes");
  check_contiguous(op, "out", out);
  check_same_device(op, {{"codes", &codes}, {"boxes", &boxes}, {"out", &out}});
  dispatch_float(codes.dtype, op, "codes", [&](auto tag) {
    if (on_cuda(codes)) {
#if MN_WITH_CUDA
      return cuda::decode_boxes<decltype(tag)>(codes, boxes, weights, clamp, out);
#else
      no_cuda_kernels(op);
#endif
    }
    cpu::decode_boxes<decltype(tag)>(codes, boxes, weights, clamp, out);
  });
}

}  // namespace mn
