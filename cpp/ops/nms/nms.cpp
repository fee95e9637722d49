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

void check_boxes(const char* op, const char* arg, const TensorView& b) {
  check_cpu(op, arg, b);
  check_dtype(op, arg, b, {DType::Float32, DType::Float64});
  check_shape(op, arg, b, {-1, 4}, "[N, 4]");
  check_contiguous(op, arg, b);
}

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
  check_boxes(op, "boxes", boxes);
  const int64_t n = boxes.size(0);
  check_same_dtype(op, "scores", scores, "boxes", boxes);
  check_per_box(op, "scores", scores, n);
  check_keep(op, keep, n);
  check_same_device(op, {{"boxes", &boxes}, {"scores", &scores}, {"keep", &keep}});
  return dispatch_float(boxes.dtype, op, "boxes", [&](auto tag) -> int64_t {
    if (on_cuda(boxes)) {
#if MN_WITH_CUDA
      return cuda::nms<decltype(tag)>(boxes, scores, iou_threshold, keep);
#else
      no_cuda_kernels(op);
#endif
    }
    return cpu::nms<decltype(tag)>(boxes, scores, iou_threshold, keep);
  });
}

int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep) {
  const char* op = "batched_nms";
  check_boxes(op, "boxes", boxes);
  const int64_t n = boxes.size(0);
  check_same_dtype(op, "scores", scores, "boxes", boxes);
  check_per_box(op, "scores", scores, n);
  check_dtype(op, "idxs", idxs, {DType::Int64, DType::Int32});
  check_per_box(op, "idxs", idxs, n);
  check_keep(op, keep, n);
  check_same_device(op, {{"boxes", &boxes}, {"scores", &scores}, {"idxs", &idxs}, {"keep", &keep}});
  return dispatch_float(boxes.dtype, op, "boxes", [&](auto tag) -> int64_t {
    using T = decltype(tag);
    if (on_cuda(boxes)) {
#if MN_WITH_CUDA
      if (idxs.dtype == DType::Int32)
        return cuda::batched_nms<T, int32_t>(boxes, scores, idxs, iou_threshold, keep);
      return cuda::batched_nms<T, int64_t>(boxes, scores, idxs, iou_threshold, keep);
#else
      no_cuda_kernels(op);
#endif
    }
    if (idxs.dtype == DType::Int32)
      return cpu::batched_nms<T, int32_t>(boxes, scores, idxs, iou_threshold, keep);
    return cpu::batched_nms<T, int64_t>(boxes, scores, idxs, iou_threshold, keep);
  });
}

void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out) {
  const char* op = "box_iou";
  check_boxes(op, "boxes1", boxes1);
  check_cpu(op, "boxes2", boxes2);
  check_same_dtype(op, "boxes2", boxes2, "boxes1", boxes1);
  check_shape(op, "boxes2", boxes2, {-1, 4}, "[M, 4]");
  check_contiguous(op, "boxes2", boxes2);
  check_output(op, "out", out);
  check_same_dtype(op, "out", out, "boxes1", boxes1);
  check_shape(op, "out", out, {boxes1.size(0), boxes2.size(0)}, "[N, M]");
  check_contiguous(op, "out", out);
  check_same_device(op, {{"boxes1", &boxes1}, {"boxes2", &boxes2}, {"out", &out}});
  dispatch_float(boxes1.dtype, op, "boxes1", [&](auto tag) {
    if (on_cuda(boxes1)) {
#if MN_WITH_CUDA
      return cuda::box_iou<decltype(tag)>(boxes1, boxes2, out);
#else
      no_cuda_kernels(op);
#endif
    }
    cpu::box_iou<decltype(tag)>(boxes1, boxes2, out);
  });
}

}  // namespace mn
