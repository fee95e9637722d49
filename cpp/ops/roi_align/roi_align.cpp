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
  check_features(op, "input", input, "[N, C, H, W]");
  check_params(op, p);
  check_rois(op, rois, input, "input", input.size(0));
  check_output_features(op, "output", output, "input", input,
                        {rois.size(0), input.size(1), p.pooled_h, p.pooled_w}, "[K, C, PH, PW]");
  check_same_device(op, {{"input", &input}, {"rois", &rois}, {"output", &output}});
  MN_DISPATCH_DEVICE(op, input, "input", roi_align_forward<T>(input, rois, output, p));
}

void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p) {
  const char* op = p.quantize ? "roi_warp_backward" : "roi_align_backward";
  check_features(op, "grad_output", grad_output, "[K, C, PH, PW]");
  check_params(op, p);
  check_output_features(op, "grad_input", grad_input, "grad_output", grad_output,
                        {-1, -1, -1, -1}, "[N, C, H, W]");
  check_rois(op, rois, grad_output, "grad_output", grad_input.size(0));
  check_shape(op, "grad_output", grad_output,
              {rois.size(0), grad_input.size(1), p.pooled_h, p.pooled_w}, "[K, C, PH, PW]");
  check_same_device(op, {{"grad_output", &grad_output}, {"rois", &rois}, {"grad_input", &grad_input}});
  MN_DISPATCH_DEVICE(op, grad_output, "grad_output",
                     roi_align_backward<T>(grad_output, rois, grad_input, p));
}

}  // namespace mn
