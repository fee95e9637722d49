#include "common/cuda_launch.cuh"
#include "ops/anchors/anchors_cuda.h"
#include "ops/anchors/anchors_kernels.h"

namespace mn {
namespace cuda {

template <typename T>
void grid_anchors(const TensorView& cell, int64_t grid_h, int64_t grid_w, double stride_h,
                  double stride_w, double offset, const TensorView& out) {
  DeviceGuard guard(cell.device_id, "grid_anchors");
  CudaExec ex;
  anchors_detail::grid_anchors_run<T>(ex, cell, grid_h, grid_w, stride_h, stride_w, offset, out,
                                      "grid_anchors");
}

template void grid_anchors<float>(const TensorView&, int64_t, int64_t, double, double, double,
                                  const TensorView&);
template void grid_anchors<double>(const TensorView&, int64_t, int64_t, double, double, double,
                                   const TensorView&);

}  // namespace cuda
}  // namespace mn
