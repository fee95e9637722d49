// CUDA kernels for NMS, batched NMS and box IoU (built when MN_WITH_CUDA).
// nms / batched_nms finish on the device; the one synchronisation is on the
// call's stream, to copy the keep count (a data-dependent size) to the host.
#pragma once
#include <cstdint>

#include "ops/nms/nms.h"

namespace mn {
namespace cuda {

template <typename T>
int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep);

template <typename T, typename Idx>
int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep);

template <typename T>
void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out);

}  // namespace cuda
}  // namespace mn
