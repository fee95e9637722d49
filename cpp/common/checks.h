// Validation helpers. Every op validates once, in <op>.cpp, before any kernel
// runs. Errors name the op and the argument, what was expected and what came.
// The bindings map these to Python ValueError / TypeError / IndexError.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "common/tensor_view.h"

namespace mn {

struct ValueError : std::runtime_error { using std::runtime_error::runtime_error; };
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct IndexError : std::runtime_error { using std::runtime_error::runtime_error; };

inline std::string arg_prefix(const char* op, const char* arg) {
  return std::string(op) + ": " + arg;
}

inline void check_cpu(const char* op, const char* arg, const TensorView& t) {
  if (t.device != DeviceType::CPU)
    throw ValueError(arg_prefix(op, arg) + " must be a CPU tensor, got a " +
                     (t.device == DeviceType::CUDA ? "CUDA" : "non-CPU") +
                     " tensor (this build has CPU kernels only)");
}

inline void check_dtype(const char* op, const char* arg, const TensorView& t,
                        std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype == d) return;
  std::string names;
  for (DType d : allowed) {
    if (!names.empty()) names += " or ";
    names += dtype_name(d);
  }
  throw TypeError(arg_prefix(op, arg) + " must be " + names + ", got " +
                  dtype_name(t.dtype));
}

inline void check_same_dtype(const char* op, const char* arg, const TensorView& t,
                             const char* ref_arg, const TensorView& ref) {
  if (t.dtype != ref.dtype)
    throw TypeError(arg_prefix(op, arg) + " must have the same dtype as " + ref_arg +
                    " (" + dtype_name(ref.dtype) + "), got " + dtype_name(t.dtype));
}

inline void check_ndim(const char* op, const char* arg, const TensorView& t, int ndim,
                       const char* expected_shape) {
  if (t.ndim != ndim)
    throw ValueError(arg_prefix(op, arg) + " must have shape " + expected_shape +
                     ", got " + t.shape_str());
}

// Checks t.shape == dims exactly; dims entries < 0 are wildcards.
inline void check_shape(const char* op, const char* arg, const TensorView& t,
                        std::initializer_list<int64_t> dims, const char* expected_shape) {
  bool ok = t.ndim == static_cast<int>(dims.size());
  int i = 0;
  for (int64_t d : dims) {
    if (!ok) break;
    if (d >= 0 && t.shape[i] != d) ok = false;
    ++i;
  }
  if (!ok)
    throw ValueError(arg_prefix(op, arg) + " must have shape " + expected_shape +
                     ", got " + t.shape_str());
}

inline void check_contiguous(const char* op, const char* arg, const TensorView& t) {
  if (!t.is_contiguous())
    throw ValueError(arg_prefix(op, arg) + " must be contiguous (row-major)");
}

inline void check_writable(const char* op, const char* arg, const TensorView& t) {
  if (t.readonly)
    throw ValueError(arg_prefix(op, arg) + " is read-only; outputs must be writable");
}

// Standard checks for an output buffer the Python layer allocated.
inline void check_output(const char* op, const char* arg, const TensorView& t) {
  check_cpu(op, arg, t);
  check_writable(op, arg, t);
}

}  // namespace mn
