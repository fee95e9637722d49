// Dtype dispatch: calls f(T{}) with T the C++ type for a float dtype.
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
