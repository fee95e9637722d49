// CPU kernels for NMS and box IoU. Arguments are already validated.
#pragma once
#include <cstdint>

#include "ops/nms/nms.h"

namespace mn {
namespace cpu {

template <typename T>
int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep);

// Idx is int64_t or int32_t (the idxs dtype).
template <typename T, typename Idx>
int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep);

template <typename T>
void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out);

}  // namespace cpu
}  // namespace mn
