// RoIPool: validation (once, before any kernel) and dispatch.
#include "ops/roi_pool/roi_pool.h"

#include "common/roi_checks.h"
#include "ops/roi_pool/roi_pool_cpu.h"
#if MN_WITH_CUDA
#include "ops/roi_pool/roi_pool_cuda.h"
#endif

namespace mn {
namespace {

void check_pair_layout(const char* op, const TensorView& out, const TensorView& argmax) {
  const bool same = (out.is_contiguous() && argmax.is_contiguous()) ||
                    (out.is_channels_last() && argmax.is_channels_last());
  if (!same) throw ValueError(std::string(op) + ": output and argmax must share one layout");
}

}  // namespace

void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t pooled_h,
                      int64_t pooled_w) {
  const char* op = "roi_pool";
  check_features(op, "input", input, "[N, C, H, W]");
  check_pooled_size(op, pooled_h, pooled_w);
  check_spatial_scale(op, spatial_scale);
  check_rois(op, rois, input, "input", input.size(0));
  check_output_features(op, "output", output, "input", input,
                        {rois.size(0), input.size(1), pooled_h, pooled_w}, "[K, C, PH, PW]");
  check_output(op, "argmax", argmax);
  check_dtype(op, "argmax", argmax, {DType::Int64});
  check_shape(op, "argmax", argmax, {rois.size(0), input.size(1), pooled_h, pooled_w},
              "[K, C, PH, PW]");
  check_pair_layout(op, output, argmax);
  check_same_device(op, {{"input", &input}, {"rois", &rois}, {"output", &output}, {"argmax", &argmax}});
  MN_DISPATCH_DEVICE(op, input, "input",
                     roi_pool_forward<T>(input, rois, output, argmax, spatial_scale, pooled_h,
                                         pooled_w));
}

void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input) {
  const char* op = "roi_pool_backward";
  check_features(op, "grad_output", grad_output, "[K, C, PH, PW]");
  check_output_features(op, "grad_input", grad_input, "grad_output", grad_output,
                        {-1, -1, -1, -1}, "[N, C, H, W]");
  check_rois(op, rois, grad_output, "grad_output", grad_input.size(0));
  check_shape(op, "grad_output", grad_output,
              {rois.size(0), grad_input.size(1), -1, -1}, "[K, C, PH, PW]");
  check_cpu(op, "argmax", argmax);
  check_dtype(op, "argmax", argmax, {DType::Int64});
  check_shape(op, "argmax", argmax,
              {grad_output.size(0), grad_output.size(1), grad_output.size(2), grad_output.size(3)},
              "the shape of grad_output");
  check_feature_layout(op, "argmax", argmax);
  check_same_device(op, {{"grad_output", &grad_output}, {"rois", &rois}, {"argmax", &argmax},
                         {"grad_input", &grad_input}});
  MN_DISPATCH_DEVICE(op, grad_output, "grad_output",
                     roi_pool_backward<T>(grad_output, rois, argmax, grad_input));
}

}  // namespace mn
