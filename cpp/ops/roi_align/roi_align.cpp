// RoIAlign / RoIWarp: validation (once, before any kernel) and dispatch.
#include "ops/roi_align/roi_align.h"

#include "common/roi_checks.h"
#include "ops/roi_align/roi_align_cpu.h"
#if MN_WITH_CUDA
#include "ops/roi_align/roi_align_cuda.h"
#endif

namespace mn {
namespace {

void check_params(const char* op, const RoiAlignParams& p) {
  check_pooled_size(op, p.pooled_h, p.pooled_w);
  check_spatial_scale(op, p.spatial_scale);
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
  check_same_device(op, {{"input", &input}, {"rois", &rois}, {"output", &output}});
  dispatch_float(input.dtype, op, "input", [&](auto tag) {
    if (on_cuda(input)) {
#if MN_WITH_CUDA
      return cuda::roi_align_forward<decltype(tag)>(input, rois, output, p);
#else
      no_cuda_kernels(op);
#endif
    }
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
  check_same_device(op, {{"grad_output", &grad_output}, {"rois", &rois}, {"grad_input", &grad_input}});
  dispatch_float(grad_output.dtype, op, "grad_output", [&](auto tag) {
    if (on_cuda(grad_output)) {
#if MN_WITH_CUDA
      return cuda::roi_align_backward<decltype(tag)>(grad_output, rois, grad_input, p);
#else
      no_cuda_kernels(op);
#endif
    }
    cpu::roi_align_backward<decltype(tag)>(grad_output, rois, grad_input, p);
  });
}

}  // namespace mn
