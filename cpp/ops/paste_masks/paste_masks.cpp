// paste_masks: validation (once, before any kernel) and dispatch.
#include "ops/paste_masks/paste_masks.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/checks.h"
#include "common/dispatch.h"
#include "ops/paste_masks/paste_masks_common.h"
#include "ops/paste_masks/paste_masks_cpu.h"
#if MN_WITH_CUDA
#include "ops/paste_masks/paste_masks_cuda.h"
#endif

namespace mn {
namespace {

constexpr const char* kOp = "paste_masks";
constexpr int64_t kMaxSide = 2147483647;  // image sides fit int32; H * W fits easily

void check_masks_boxes(const TensorView& masks, const TensorView& boxes) {
  check_cpu(kOp, "masks", masks);
  check_dtype(kOp, "masks", masks, {DType::Float32, DType::Float64});
  if (masks.ndim != 3 || masks.size(1) != masks.size(2) || masks.size(1) < 1)
    throw ValueError(std::string(kOp) + ": masks must have shape [N, M, M] with M >= 1, got " +
                     masks.shape_str());
  check_contiguous(kOp, "masks", masks);
  check_cpu(kOp, "boxes", boxes);
  check_same_dtype(kOp, "boxes", boxes, "masks", masks);
  if (boxes.ndim != 2 || boxes.size(0) != masks.size(0) || boxes.size(1) != 4)
    throw ValueError(std::string(kOp) + ": boxes must have shape [" +
                     std::to_string(masks.size(0)) + ", 4] (one box per mask), got " +
                     boxes.shape_str());
  check_contiguous(kOp, "boxes", boxes);
}

void check_params(const PasteMasksParams& p) {
  if (p.height < 1 || p.width < 1 || p.height > kMaxSide || p.width > kMaxSide)
    throw ValueError(std::string(kOp) + ": image_size must be two positive ints below 2^31, got (" +
                     std::to_string(p.height) + ", " + std::to_string(p.width) + ")");
  if (p.has_threshold && !(std::isfinite(p.threshold) && p.threshold >= 0.0))
    throw ValueError(std::string(kOp) + ": threshold must be a finite number >= 0 (or None), got " +
                     std::to_string(p.threshold));
}

void check_output_dtype(const char* arg, const TensorView& out, const TensorView& masks,
                        const PasteMasksParams& p) {
  if (p.has_threshold) {
    check_dtype(kOp, arg, out, {DType::Bool});
  } else {
    check_same_dtype(kOp, arg, out, "masks", masks);
  }
}

void check_rects_tensor(const TensorView& rects, int64_t N) {
  check_cpu(kOp, "rects", rects);
  check_dtype(kOp, "rects", rects, {DType::Int64});
  if (rects.ndim != 2 || rects.size(0) != N || rects.size(1) != 4)
    throw ValueError(std::string(kOp) + ": rects must have shape [" + std::to_string(N) +
                     ", 4], got " + rects.shape_str());
  check_contiguous(kOp, "rects", rects);
}

// total += add, refusing sums past int64 (no buffer could hold them anyway).
void accumulate(int64_t* total, int64_t add, const char* what) {
  if (add > std::numeric_limits<int64_t>::max() - *total)
    throw ValueError(std::string(kOp) + ": " + what + " exceeds 2^63 elements");
  *total += add;
}

std::string rect_str(const int64_t* r) {
  return "(" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + ", " + std::to_string(r[2]) +
         ", " + std::to_string(r[3]) + ")";
}

// A flat 1-D buffer of exactly `expected` elements (as the caller's plan implies).
void check_flat(const char* arg, const TensorView& t, int64_t expected, const char* what) {
  if (t.ndim != 1 || t.size(0) != expected)
    throw ValueError(std::string(kOp) + ": " + arg + " must have shape [" +
                     std::to_string(expected) + "] (" + what + "), got " + t.shape_str());
  check_contiguous(kOp, arg, t);
}

}  // namespace

bool paste_masks_parse_mode(const std::string& mode) {
  if (mode == "aligned") return false;
  if (mode == "torchvision") return true;
  throw ValueError(std::string(kOp) + ": mode must be 'aligned' or 'torchvision', got '" + mode +
                   "'");
}

void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p) {
  check_masks_boxes(masks, boxes);
  check_params(p);
  check_output(kOp, "rects", rects);
  check_rects_tensor(rects, masks.size(0));
  check_same_device(kOp, {{"masks", &masks}, {"boxes", &boxes}, {"rects", &rects}});
  MN_DISPATCH_DEVICE(kOp, masks, "masks", paste_masks_plan<T>(masks, boxes, rects, p));
}

void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p) {
  check_masks_boxes(masks, boxes);
  check_params(p);
  check_output(kOp, "output", output);
  check_output_dtype("output", output, masks, p);
  check_shape(kOp, "output", output, {masks.size(0), p.height, p.width}, "[N, H, W]");
  check_contiguous(kOp, "output", output);
  check_same_device(kOp, {{"masks", &masks}, {"boxes", &boxes}, {"output", &output}});
  MN_DISPATCH_DEVICE(kOp, masks, "masks", paste_masks_forward<T>(masks, boxes, output, p));
}

void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p) {
  check_masks_boxes(masks, boxes);
  check_params(p);
  check_rects_tensor(rects, masks.size(0));
  check_output(kOp, "output", output);
  check_output_dtype("output", output, masks, p);
  check_same_device(kOp, {{"masks", &masks}, {"boxes", &boxes}, {"rects", &rects}, {"output", &output}});
  if (on_cuda(masks)) {
    // Device rects are not read back (that would synchronise): they must be
    // paste_masks_plan's; the kernel never writes past output's length.
    if (output.ndim != 1)
      throw ValueError(std::string(kOp) + ": output must have shape [sum of the crop areas], got " +
                       output.shape_str());
    check_contiguous(kOp, "output", output);
#if MN_WITH_CUDA
    dispatch_float(masks.dtype, kOp, "masks", [&](auto tag) {
      cuda::paste_masks_crops<decltype(tag)>(masks, boxes, rects, output, p);
    });
    return;
#else
    no_cuda_kernels(kOp);
#endif
  }
  // The rectangles must be the plan's: they decide where every crop is written.
  const int64_t N = masks.size(0), M = masks.size(1);
  const int64_t* rd = rects.ptr<int64_t>();
  int64_t total = 0;
  dispatch_float(masks.dtype, kOp, "masks", [&](auto tag) {
    using T = decltype(tag);
    const T* b = boxes.ptr<T>();
    for (int64_t k = 0; k < N; ++k) {
      const paste_detail::Rect r =
          paste_detail::plan_rect<T>(b + 4 * k, M, p.height, p.width, p.torchvision);
      const int64_t want[4] = {r.x0, r.y0, r.x1, r.y1};
      for (int c = 0; c < 4; ++c)
        if (rd[4 * k + c] != want[c])
          throw ValueError(std::string(kOp) + ": rects[" + std::to_string(k) + "] = " +
                           rect_str(rd + 4 * k) + " does not match the plan of boxes[" +
                           std::to_string(k) + "], " + rect_str(want));
      accumulate(&total, r.width() * r.height(), "the sum of the crop areas");
    }
  });
  check_flat("output", output, total, "the sum of the crop areas");
  dispatch_float(masks.dtype, kOp, "masks", [&](auto tag) {
    cpu::paste_masks_crops<decltype(tag)>(masks, boxes, rects, output, p);
  });
}

void paste_masks_rle_counts(const TensorView& crops, const TensorView& rects,
                            const TensorView& counts, const TensorView& lengths,
                            const PasteMasksParams& p) {
  check_params(p);
  if (static_cast<double>(p.height) * static_cast<double>(p.width) > 4294967295.0)
    throw ValueError(std::string(kOp) + ": COCO RLE needs H * W < 2^32, got (" +
                     std::to_string(p.height) + ", " + std::to_string(p.width) + ")");
  // RLE is encoded on the host (the Python layer copies device crops first).
  check_host(kOp, "crops", crops);
  check_host(kOp, "rects", rects);
  check_host(kOp, "counts", counts);
  check_host(kOp, "lengths", lengths);
  check_dtype(kOp, "crops", crops, {DType::Bool});
  if (rects.ndim != 2 || rects.size(1) != 4)
    throw ValueError(std::string(kOp) + ": rects must have shape [N, 4], got " +
                     rects.shape_str());
  const int64_t N = rects.size(0);
  check_rects_tensor(rects, N);
  const int64_t* rd = rects.ptr<int64_t>();
  int64_t area = 0, cap = 0;
  for (int64_t k = 0; k < N; ++k) {
    const int64_t* r = rd + 4 * k;
    if (!(0 <= r[0] && r[0] <= r[2] && r[2] <= p.width && 0 <= r[1] && r[1] <= r[3] &&
          r[3] <= p.height))
      throw ValueError(std::string(kOp) + ": rects[" + std::to_string(k) + "] = " + rect_str(r) +
                       " is not a rectangle inside the " + std::to_string(p.height) + "x" +
                       std::to_string(p.width) + " image");
    accumulate(&area, (r[2] - r[0]) * (r[3] - r[1]), "the sum of the crop areas");
    accumulate(&cap, paste_masks_rle_capacity(r[2] - r[0], r[3] - r[1]),
               "the sum of the run capacities");
  }
  check_flat("crops", crops, area, "the sum of the crop areas");
  check_output(kOp, "counts", counts);
  check_dtype(kOp, "counts", counts, {DType::Int64});
  check_flat("counts", counts, cap, "the sum of the run capacities w * (h + 1) + 2");
  check_output(kOp, "lengths", lengths);
  check_dtype(kOp, "lengths", lengths, {DType::Int64});
  check_flat("lengths", lengths, N, "one per mask");
  cpu::paste_masks_rle_counts(crops, rects, counts, lengths, p);
}

}  // namespace mn
