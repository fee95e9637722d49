#include "common/cuda_launch.cuh"
#include "ops/paste_masks/paste_masks_cuda.h"
#include "ops/paste_masks/paste_masks_kernels.h"

namespace mn {
namespace cuda {

using namespace paste_detail;

namespace {
constexpr const char* kOp = "paste_masks";
}  // namespace

template <typename T>
void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p) {
  DeviceExec ex(masks.device_id, kOp);
  plan_run<T>(ex, masks, boxes, rects, p, kOp);
}

template <typename T>
void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p) {
  DeviceExec ex(masks.device_id, kOp);
  forward_run<T>(ex, masks, boxes, output, p, kOp);
}

template <typename T>
void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p) {
  DeviceExec ex(masks.device_id, kOp);
  crops_run<T>(ex, masks, boxes, rects, output, p, kOp);
}

#include "ops/paste_masks/paste_masks_instances.inc"

}  // namespace cuda
}  // namespace mn
