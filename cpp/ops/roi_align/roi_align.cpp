// RoIAlign / RoIWarp: validation (once, before any kernel) and dispatch.
#include "ops/roi_align/roi_align.h"

#include <cmath>
#include <string>

#include "common/checks.h"
#include "common/dispatch.h"
#include "ops/roi_align/roi_align_cpu.h"

namespace mn {
namespace {

void check_feature_layout(const char* op, const char* arg, const TensorView& t) {
  if (!t.is_contiguous() && !t.is_channels_last())
    throw ValueError(arg_prefix(op, arg) +
                     " must be NCHW-contiguous or channels_last, got strides with shape " +
                     t.shape_str());
}

void check_params(const char* op, const RoiAlignParams& p) {
  if (p.pooled_h <= 0 || p.pooled_w <= 0)
    throw ValueError(std::string(op) + ": output_size must be positive, got (" +
                     std::to_string(p.pooled_h) + ", " + std::to_string(p.pooled_w) + ")");
  if (!(std::isfinite(p.spatial_scale) && p.spatial_scale > 0))
    throw ValueError(std::string(op) + ": spatial_scale must be a positive finite number, got " +
                     std::to_string(p.spatial_scale));
}

template <typename T>
void check_batch_indices(const char* op, const TensorView& rois, int64_t N) {
  const T* r = rois.ptr<T>();
  for (int64_t k = 0; k < rois.size(0); ++k) {
    const T b = r[k * 5];
    // The batch index truncates toward zero, as in torchvision.
    if (!(b > T(-1) && b < static_cast<T>(N)))
      throw IndexError(std::string(op) + ": rois[" + std::to_string(k) +
                       ", 0] (batch index) = " + std::to_string(static_cast<double>(b)) +
                       " is out of range for input with " + std::to_string(N) + " images");
  }
}

void check_rois(const char* op, const TensorView& rois, const TensorView& ref, const char* ref_arg,
                int64_t N) {
  check_cpu(op, "rois", rois);
  check_same_dtype(op, "rois", rois, ref_arg, ref);
  check_shape(op, "rois", rois, {-1, 5}, "[K, 5]");
  check_contiguous(op, "rois", rois);
  dispatch_float(rois.dtype, op, "rois", [&](auto tag) {
    check_batch_indices<decltype(tag)>(op, rois, N);
  });
}

const char* op_name(const RoiAlignParams& p) { return p.quantize ? "roi_warp" : "roi_align"; }

}  // namespace

void roi_align_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                       const RoiAlignParams& p) {
  const char* op = op_name(p);
  check_cpu(op, "input", input);
  check_dtype(op, "input", input, {DType::Float32, DType::Float64});
  check_ndim(op, "input", input, 4, "[N, C, H, W]");
  check_feature_layout(op, "input", input);
  check_params(op, p);
  check_rois(op, rois, input, "input", input.size(0));
  check_output(op, "output", output);
  check_same_dtype(op, "output", output, "input", input);
  check_shape(op, "output", output, {rois.size(0), input.size(1), p.pooled_h, p.pooled_w},
              "[K, C, PH, PW]");
  check_feature_layout(op, "output", output);
  dispatch_float(input.dtype, op, "input", [&](auto tag) {
    cpu::roi_align_forward<decltype(tag)>(input, rois, output, p);
  });
}

void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p) {
  const char* op = p.quantize ? "roi_warp_backward" : "roi_align_backward";
  check_cpu(op, "grad_output", grad_output);
  check_dtype(op, "grad_output", grad_output, {DType::Float32, DType::Float64});
  check_ndim(op, "grad_output", grad_output, 4, "[K, C, PH, PW]");
  check_feature_layout(op, "grad_output", grad_output);
  check_params(op, p);
  check_output(op, "grad_input", grad_input);
  check_same_dtype(op, "grad_input", grad_input, "grad_output", grad_output);
  check_ndim(op, "grad_input", grad_input, 4, "[N, C, H, W]");
  check_feature_layout(op, "grad_input", grad_input);
  check_rois(op, rois, grad_output, "grad_output", grad_input.size(0));
  check_shape(op, "grad_output", grad_output,
              {rois.size(0), grad_input.size(1), p.pooled_h, p.pooled_w}, "[K, C, PH, PW]");
  dispatch_float(grad_output.dtype, op, "grad_output", [&](auto tag) {
    cpu::roi_align_backward<decltype(tag)>(grad_output, rois, grad_input, p);
  });
}

}  // namespace mn
