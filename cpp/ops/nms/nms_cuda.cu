// NMS on CUDA: the pipeline of nms_kernels.h, with CUB's stable radix sort.
#include <cub/device/device_radix_sort.cuh>

#include "common/cuda_launch.cuh"
#include "ops/nms/nms_cuda.h"
#include "ops/nms/nms_kernels.h"

namespace mn {
namespace cuda {

using namespace nms_detail;

template <typename K>
void CudaExec::sort_pairs(const K* keys_in, K* keys_out, const int64_t* vals_in,
                          int64_t* vals_out, int64_t n, const char* op) {
  size_t bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys_in, keys_out, vals_in, vals_out, n,
                                        0, static_cast<int>(sizeof(K) * 8), stream()),
        op, "cub::DeviceRadixSort (size query)");
  DeviceBuffer<char> tmp(bytes, op);
  check(cub::DeviceRadixSort::SortPairs(tmp.get(), bytes, keys_in, keys_out, vals_in, vals_out, n,
                                        0, static_cast<int>(sizeof(K) * 8), stream()),
        op, "cub::DeviceRadixSort");
}

template <typename T>
int64_t nms(const TensorView& boxes, const TensorView& scores, double iou_threshold,
            const TensorView& keep) {
  DeviceExec ex(boxes.device_id, "nms");
  return nms_run<T, int64_t>(ex, boxes, scores, nullptr, iou_threshold, keep, "nms");
}

template <typename T, typename Idx>
int64_t batched_nms(const TensorView& boxes, const TensorView& scores, const TensorView& idxs,
                    double iou_threshold, const TensorView& keep) {
  DeviceExec ex(boxes.device_id, "batched_nms");
  return nms_run<T, Idx>(ex, boxes, scores, idxs.ptr<Idx>(), iou_threshold, keep, "batched_nms");
}

template <typename T>
void box_iou(const TensorView& boxes1, const TensorView& boxes2, const TensorView& out) {
  DeviceExec ex(boxes1.device_id, "box_iou");
  box_iou_run<T>(ex, boxes1, boxes2, out, "box_iou");
}

#include "ops/nms/nms_instances.inc"

}  // namespace cuda
}  // namespace mn
