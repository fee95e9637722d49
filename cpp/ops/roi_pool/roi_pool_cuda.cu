// RoIPool on CUDA: launches the functors of roi_pool_kernels.h.
#include "common/cuda_launch.cuh"
#include "ops/roi_pool/roi_pool_cuda.h"
#include "ops/roi_pool/roi_pool_kernels.h"

namespace mn {
namespace cuda {

using namespace roi_pool_detail;
using roi_align_detail::RoiTileLists;

namespace {
Strides4 strides(const TensorView& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }
}  // namespace

template <typename T>
void roi_pool_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                      const TensorView& argmax, double spatial_scale, int64_t PH, int64_t PW) {
  const char* op = "roi_pool";
  DeviceGuard guard(input.device_id, op);
  const int64_t total = output.numel();
  if (total == 0) return;
  RoiPoolForward<T> f{input.ptr<T>(), strides(input), input.size(0), input.size(1),
                      input.size(2), input.size(3), rois.ptr<T>(), rois.size(0),
                      output.ptr<T>(), strides(output), argmax.ptr<int64_t>(), strides(argmax),
                      output.is_channels_last() && !output.is_contiguous(),
                      static_cast<T>(spatial_scale), PH, PW};
  launch(launch_1d(total), f, op);
}

template <typename T>
void roi_pool_backward(const TensorView& grad_output, const TensorView& rois,
                       const TensorView& argmax, const TensorView& grad_input) {
  const char* op = "roi_pool_backward";
  DeviceGuard guard(grad_input.device_id, op);
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3), K = rois.size(0), PH = grad_output.size(2),
                PW = grad_output.size(3);
  if (grad_input.numel() == 0) return;
  const int64_t ts = roi_align_detail::backward_tile(N, H, W, K);
  const int64_t tiles = N * ((H + ts - 1) / ts) * ((W + ts - 1) / ts);
  DeviceBuffer<int64_t> rlo(static_cast<size_t>(K * PH), op), rhi(static_cast<size_t>(K * PH), op);
  DeviceBuffer<int64_t> clo(static_cast<size_t>(K * PW), op), chi(static_cast<size_t>(K * PW), op);
  DeviceBuffer<Footprint> fp(static_cast<size_t>(K), op);
  DeviceBuffer<int32_t> lists(static_cast<size_t>(tiles * K), op);
  DeviceBuffer<int32_t> counts(static_cast<size_t>(tiles), op);
  const int64_t* am = argmax.ptr<int64_t>();
  launch(launch_1d(K * PH), RoiPoolRanges{am, strides(argmax), K, C, PH, PW, H, W, true,
                                          rlo.get(), rhi.get()}, op);
  launch(launch_1d(K * PW), RoiPoolRanges{am, strides(argmax), K, C, PH, PW, H, W, false,
                                          clo.get(), chi.get()}, op);
  launch(launch_1d(K), RoiPoolFootprint<T>{rois.ptr<T>(), K, N, PH, PW, rlo.get(), rhi.get(),
                                           clo.get(), chi.get(), fp.get()}, op);
  launch(launch_1d(tiles, 128), RoiTileLists{fp.get(), K, N, H, W, ts, lists.get(), counts.get()}, op);
  RoiPoolBackward<T> b{grad_output.ptr<T>(), strides(grad_output), am, strides(argmax),
                       rlo.get(), rhi.get(), clo.get(), chi.get(), lists.get(), counts.get(), K,
                       ts, grad_input.ptr<T>(), strides(grad_input),
                       grad_input.is_channels_last() && !grad_input.is_contiguous(),
                       N, C, H, W, PH, PW};
  launch(launch_1d(N * C * H * W), b, op);
}

template void roi_pool_forward<float>(const TensorView&, const TensorView&, const TensorView&,
                                      const TensorView&, double, int64_t, int64_t);
template void roi_pool_forward<double>(const TensorView&, const TensorView&, const TensorView&,
                                       const TensorView&, double, int64_t, int64_t);
template void roi_pool_backward<float>(const TensorView&, const TensorView&, const TensorView&,
                                       const TensorView&);
template void roi_pool_backward<double>(const TensorView&, const TensorView&, const TensorView&,
                                        const TensorView&);

}  // namespace cuda
}  // namespace mn
