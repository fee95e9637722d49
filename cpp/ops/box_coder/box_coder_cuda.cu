#include "common/cuda_launch.cuh"
#include "ops/box_coder/box_coder_cuda.h"
#include "ops/box_coder/box_coder_kernels.h"

namespace mn {
namespace cuda {

template <typename T>
void encode_boxes(const TensorView& reference, const TensorView& proposals,
                  const std::array<double, 4>& w, const TensorView& out) {
  DeviceExec ex(reference.device_id, "encode_boxes");
  box_coder_detail::encode_run<T>(ex, reference, proposals, w, out, "encode_boxes");
}

template <typename T>
void decode_boxes(const TensorView& codes, const TensorView& boxes,
                  const std::array<double, 4>& w, double clamp, const TensorView& out) {
  DeviceExec ex(codes.device_id, "decode_boxes");
  box_coder_detail::decode_run<T>(ex, codes, boxes, w, clamp, out, "decode_boxes");
}

#include "ops/box_coder/box_coder_instances.inc"

}  // namespace cuda
}  // namespace mn
