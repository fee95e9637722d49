// NMS / box IoU: validation (once, before any kernel) and dispatch.
#include "ops/nms/nms.h"

#include <string>

#include "common/checks.h"
#include "common/dispatch.h"
#include "ops/nms/nms_cpu.h"
#if MN_WITH_CUDA
#include "ops/nms/nms_cuda.h"
#endif

namespace mn {
namespace {

// A 1-D tensor with one entry per box.
void check_per_box(const char* op, const char* arg, const TensorView& t, int64_t n) {
  check_cpu(op, arg, t);
  if (t.ndim != 1 || t.shape[0] != n)
    throw ValueError(arg_prefix(op, arg) + " must have shape [N] with N = " + std::to_string(n) +
                     " (boxes.shape[0]), got " + t.shape_str());
  check_contiguous(op, arg, t);
}

void check_keep(const char* op, const TensorView& keep, int64_t n) {
  check_output(op, "keep", keep);
  check_dtype(op, "keep", keep, {DType::Int64});
  check_per_box(op, "keep", keep, n);
}

}  // namespace

int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep) {
  const char* op = "nms";
  check_float_input(op, "boxes", boxes, {-1, 4}, "[N, 4]");
  const int64_t n = boxes.size(0);
  check_same_dtype(op, "scores", scores, "boxes", boxes);
  check_per_box(op, "scores", scores, n);
  check_keep(op, keep, n);
  check_same_device(op, {{"boxes", &boxes}, {"scores", &scores}, {"keep", &keep}});
  return MN_DISPATCH_DEVICE(op, boxes, "boxes", nms<T>(boxes, scores, iou_threshold, keep));
}

int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep) {
  const char* op = "batched_nms";
  check_float_input(op, "boxes", boxes, {-1, 4}, "[N, 4]");
  const int64_t n = boxes.size(0);
  check_same_dtype(op, "scores", scores, "boxes", boxes);
  check_per_box(op, "scores", scores, n);
  check_dtype(op, "idxs", idxs, {DType::Int64, DType::Int32});
  check_per_box(op, "idxs", idxs, n);
  check_keep(op, keep, n);
  check_same_device(op, {{"boxes", &boxes}, {"scores", &scores}, {"idxs", &idxs}, {"keep", &keep}});
  // The kernels take idxs' integer type as a second template argument.
  const auto run = [&](auto idx_tag) -> int64_t {
    using Idx = decltype(idx_tag);
    return MN_DISPATCH_DEVICE(op, boxes, "boxes",
                              batched_nms<T, Idx>(boxes, scores, idxs, iou_threshold, keep));
  };
  return idxs.dtype == DType::Int32 ? run(int32_t{}) : run(int64_t{});
}

void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out) {
  const char* op = "box_iou";
  check_float_input(op, "boxes1", boxes1, {-1, 4}, "[N, 4]");
  check_like(op, "boxes2", boxes2, "boxes1", boxes1, {-1, 4}, "[M, 4]");
  check_output_like(op, "out", out, "boxes1", boxes1, {boxes1.size(0), boxes2.size(0)}, "[N, M]");
  check_same_device(op, {{"boxes1", &boxes1}, {"boxes2", &boxes2}, {"out", &out}});
  MN_DISPATCH_DEVICE(op, boxes1, "boxes1", box_iou<T>(boxes1, boxes2, out));
}

}  // namespace mn
