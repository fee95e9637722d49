// Dtype dispatch: calls f(T{}) with T the C++ type for a float dtype; and the
// device dispatch every <op>.cpp ends with (MN_DISPATCH_DEVICE).
#pragma once
#include "common/checks.h"

namespace mn {

template <typename F>
decltype(auto) dispatch_float(DType dt, const char* op, const char* arg, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default:
      throw TypeError(arg_prefix(op, arg) + " must be float32 or float64, got " +
                      dtype_name(dt));
  }
}

}  // namespace mn

// MN_DISPATCH_DEVICE(op, x, "x", kernel<T>(args...)) evaluates to
// mn::cuda::kernel<T>(args...) when x is a CUDA tensor, else to
// mn::cpu::kernel<T>(args...), with T the C++ type of x's float dtype ("x"
// names x in a dtype error). A macro, not a template, because the backends'
// kernels are same-named templates in two namespaces and mn::cuda is declared
// only in CUDA builds. In a CPU-only build a CUDA tensor throws (check_cpu
// rejects one earlier; this keeps the dispatch total).
#define MN_DISPATCH_DEVICE(op, x, arg, ...)                  \
  ::mn::dispatch_float((x).dtype, op, arg, [&](auto mn_tag_) { \
    using T = decltype(mn_tag_);                             \
    MN_DETAIL_ON_DEVICE_(op, x, __VA_ARGS__);                \
  })

#if MN_WITH_CUDA
#define MN_DETAIL_ON_DEVICE_(op, x, ...)                  \
  if (::mn::on_cuda(x)) return ::mn::cuda::__VA_ARGS__; \
  return ::mn::cpu::__VA_ARGS__
#else
#define MN_DETAIL_ON_DEVICE_(op, x, ...)              \
  if (::mn::on_cuda(x)) ::mn::no_cuda_kernels(op); \
  return ::mn::cpu::__VA_ARGS__
#endif
