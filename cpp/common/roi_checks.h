// Validation shared by the RoI feature ops (roi_align, roi_warp, roi_pool).
#pragma once
#include <cmath>
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
  check_cpu(op, "rois", rois);
  check_same_dtype(op, "rois", rois, ref_arg, ref);
  check_shape(op, "rois", rois, {-1, 5}, "[K, 5]");
  check_contiguous(op, "rois", rois);
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
