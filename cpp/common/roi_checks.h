// Validation shared by the RoI feature ops (roi_align, roi_warp, roi_pool).
#pragma once
#include <cmath>
#include <initializer_list>
#include <string>

#include "common/checks.h"
#include "common/dispatch.h"

namespace mn {

inline void check_feature_layout(const char* op, const char* arg, const TensorView& t) {
  if (!t.is_contiguous() && !t.is_channels_last())
    throw ValueError(arg_prefix(op, arg) +
                     " must be NCHW-contiguous or channels_last, got another layout of shape " +
                     t.shape_str());
}

// A 4-d float32 / float64 feature map (or gradient) on a kernel device.
inline void check_features(const char* op, const char* arg, const TensorView& t,
                           const char* expected_shape) {
  check_cpu(op, arg, t);
  check_dtype(op, arg, t, {DType::Float32, DType::Float64});
  check_ndim(op, arg, t, 4, expected_shape);
  check_feature_layout(op, arg, t);
}

// An output feature map (or gradient) with the dtype of ref, of shape dims.
inline void check_output_features(const char* op, const char* arg, const TensorView& t,
                                  const char* ref_arg, const TensorView& ref,
                                  std::initializer_list<int64_t> dims,
                                  const char* expected_shape) {
  check_output(op, arg, t);
  check_same_dtype(op, arg, t, ref_arg, ref);
  check_shape(op, arg, t, dims, expected_shape);
  check_feature_layout(op, arg, t);
}

inline void check_pooled_size(const char* op, int64_t ph, int64_t pw) {
  if (ph <= 0 || pw <= 0)
    throw ValueError(std::string(op) + ": output_size must be positive, got (" +
                     std::to_string(ph) + ", " + std::to_string(pw) + ")");
}

inline void check_spatial_scale(const char* op, double s) {
  if (!(std::isfinite(s) && s > 0))
    throw ValueError(std::string(op) + ": spatial_scale must be a positive finite number, got " +
                     std::to_string(s));
}

// rois [K, 5] with the same dtype as `ref`, batch indices (truncated toward
// zero, as torchvision does) inside [0, N). CUDA rois are not read here (that
// would need a device-to-host copy and a synchronise): the CUDA kernels give
// zeros / no gradient for RoIs whose batch index is out of range.
inline void check_rois(const char* op, const TensorView& rois, const TensorView& ref,
                       const char* ref_arg, int64_t N) {
  check_like(op, "rois", rois, ref_arg, ref, {-1, 5}, "[K, 5]");
  if (rois.device != DeviceType::CPU) return;
  dispatch_float(rois.dtype, op, "rois", [&](auto tag) {
    using T = decltype(tag);
    const T* r = rois.ptr<T>();
    for (int64_t k = 0; k < rois.size(0); ++k) {
      const T b = r[k * 5];
      if (!(b > T(-1) && b < static_cast<T>(N)))
        throw IndexError(std::string(op) + ": rois[" + std::to_string(k) +
                         ", 0] (batch index) = " + std::to_string(static_cast<double>(b)) +
                         " is out of range for input with " + std::to_string(N) + " images");
    }
  });
}

}  // namespace mn
