// RoIAlign / RoIWarp on CUDA: launches the functors of roi_align_kernels.h.
#include "common/cuda_launch.cuh"
#include "ops/roi_align/roi_align_cuda.h"
#include "ops/roi_align/roi_align_kernels.h"

namespace mn {
namespace cuda {

using namespace roi_align_detail;

namespace {
Strides4 strides(const TensorView& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }
const char* name(const RoiAlignParams& p, bool bwd) {
  return p.quantize ? (bwd ? "roi_warp_backward" : "roi_warp")
                    : (bwd ? "roi_align_backward" : "roi_align");
}
}  // namespace

template <typename T>
void roi_align_forward(const TensorView& input, const TensorView& rois, const TensorView& output,
                       const RoiAlignParams& p) {
  const char* op = name(p, false);
  DeviceGuard guard(input.device_id, op);
  const int64_t total = output.numel();
  if (total == 0) return;
  RoiAlignForward<T> f{input.ptr<T>(), strides(input), input.size(0), input.size(1),
                       input.size(2), input.size(3), rois.ptr<T>(), rois.size(0),
                       output.ptr<T>(), strides(output),
                       output.is_channels_last() && !output.is_contiguous(),
                       static_cast<T>(p.spatial_scale), p.pooled_h, p.pooled_w,
                       p.sampling_ratio, p.aligned, p.quantize};
  launch(launch_1d(total), f, op);
}

template <typename T>
void roi_align_backward(const TensorView& grad_output, const TensorView& rois,
                        const TensorView& grad_input, const RoiAlignParams& p) {
  const char* op = name(p, true);
  DeviceGuard guard(grad_input.device_id, op);
  const int64_t N = grad_input.size(0), C = grad_input.size(1), H = grad_input.size(2),
                W = grad_input.size(3), K = rois.size(0);
  if (grad_input.numel() == 0) return;
  const int64_t ts = backward_tile(N, H, W, K);
  const int64_t tiles = N * ((H + ts - 1) / ts) * ((W + ts - 1) / ts);
  DeviceBuffer<RoiGeometry<T>> geo(static_cast<size_t>(K), op);
  DeviceBuffer<Footprint> fp(static_cast<size_t>(K), op);
  DeviceBuffer<int32_t> lists(static_cast<size_t>(tiles * K), op);
  DeviceBuffer<int32_t> counts(static_cast<size_t>(tiles), op);
  RoiAlignPrep<T> prep{rois.ptr<T>(), K, N, H, W, static_cast<T>(p.spatial_scale),
                       p.pooled_h, p.pooled_w, p.sampling_ratio, p.aligned, p.quantize,
                       geo.get(), fp.get()};
  launch(launch_1d(K), prep, op);
  RoiTileLists tl{fp.get(), K, N, H, W, ts, lists.get(), counts.get()};
  launch(launch_1d(tiles, 128), tl, op);
  RoiAlignBackward<T> b{grad_output.ptr<T>(), strides(grad_output), geo.get(), lists.get(),
                        counts.get(), K, ts, grad_input.ptr<T>(), strides(grad_input),
                        grad_input.is_channels_last() && !grad_input.is_contiguous(),
                        N, C, H, W, p.pooled_h, p.pooled_w};
  launch(launch_1d(N * C * H * W), b, op);
}

template void roi_align_forward<float>(const TensorView&, const TensorView&, const TensorView&,
                                       const RoiAlignParams&);
template void roi_align_forward<double>(const TensorView&, const TensorView&, const TensorView&,
                                        const RoiAlignParams&);
template void roi_align_backward<float>(const TensorView&, const TensorView&, const TensorView&,
                                        const RoiAlignParams&);
template void roi_align_backward<double>(const TensorView&, const TensorView&, const TensorView&,
                                         const RoiAlignParams&);

}  // namespace cuda
}  // namespace mn
