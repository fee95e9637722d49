#include "common/cuda_launch.cuh"
#include "ops/anchors/anchors_cuda.h"
#include "ops/anchors/anchors_kernels.h"

namespace mn {
namespace cuda {

template <typename T>
void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out) {
  DeviceExec ex(cell.device_id, "grid_anchors");
  anchors_detail::grid_anchors_run<T>(ex, cell, grid_h, grid_w, stride_h, stride_w, offset, out,
                                      "grid_anchors");
}

#include "ops/anchors/anchors_instances.inc"

}  // namespace cuda
}  // namespace mn
