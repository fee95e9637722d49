// Non-maximum suppression and pairwise IoU (torchvision semantics).
//
// Contract (all views CPU; outputs preallocated by the caller):
//   boxes   [N, 4] float32|float64, contiguous, (x1, y1, x2, y2), no +1 in widths
//   scores  [N]    same dtype, contiguous
//   idxs    [N]    int64 or int32, contiguous: category of each box (batched_nms)
//   keep    [N]    int64, contiguous, writable; the first `count` entries are
//                  written, count is returned.
// Order: boxes are visited by a stable sort on score, descending (ties keep
// input order; NaN scores rank above every number, as torch.sort does; -0.0
// and +0.0 tie). A box is dropped when IoU with an already kept box of the
// same category is > iou_threshold, IoU computed in the boxes' dtype exactly as
// torchvision's CPU kernel does (the comparison with the double threshold is
// exact). keep is written in the visiting order.
// batched_nms runs an independent NMS per category (categories in parallel)
// and returns the union of the kept boxes in the same global visiting order.
//
// box_iou: boxes1 [N, 4], boxes2 [M, 4] (same dtype, contiguous), out [N, M]
// writable, same dtype: inter / (area1 + area2 - inter), NaN-propagating like
// torchvision.ops.box_iou.
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace mn {

int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep);

int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep);

void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out);

}  // namespace mn
