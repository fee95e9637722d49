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

// A tensor on a device this build has kernels for: the CPU, or a CUDA device
// when the CUDA kernels are built (MN_WITH_CUDA). The name is historical.
inline void check_cpu(const char* op, const char* arg, const TensorView& t) {
  if (t.device == DeviceType::CPU) return;
#if MN_WITH_CUDA
  if (t.device == DeviceType::CUDA) return;
  throw ValueError(arg_prefix(op, arg) + " must be a CPU or CUDA tensor, got another device");
#else
  throw ValueError(arg_prefix(op, arg) + " must be a CPU tensor, got a " +
                   (t.device == DeviceType::CUDA ? "CUDA" : "non-CPU") +
                   " tensor (this build has CPU kernels only)");
#endif
}

// Host memory only (for the parts that always run on the CPU).
inline void check_host(const char* op, const char* arg, const TensorView& t) {
  if (t.device != DeviceType::CPU)
    throw ValueError(arg_prefix(op, arg) + " must be a CPU tensor, got a " +
                     (t.device == DeviceType::CUDA ? "CUDA" : "non-CPU") + " tensor");
}

inline std::string device_str(const TensorView& t) {
  if (t.device == DeviceType::CPU) return "cpu";
  if (t.device == DeviceType::CUDA) return "cuda:" + std::to_string(t.device_id);
  return "an unsupported device";
}

struct NamedView {
  const char* arg;
  const TensorView* view;
};

// All tensors of one call live on the device of the first one.
inline void check_same_device(const char* op, std::initializer_list<NamedView> views) {
  const NamedView* first = views.begin();
  for (const NamedView& v : views) {
    check_cpu(op, v.arg, *v.view);
    if (v.view->device != first->view->device ||
        (v.view->device == DeviceType::CUDA && v.view->device_id != first->view->device_id))
      throw ValueError(arg_prefix(op, v.arg) + " must be on the same device as " + first->arg +
                       " (" + device_str(*first->view) + "), got " + device_str(*v.view));
  }
}

inline bool on_cuda(const TensorView& t) { return t.device == DeviceType::CUDA; }

// Thrown by <op>.cpp for a CUDA tensor when the build has no CUDA kernels
// (check_cpu rejects those earlier; this keeps dispatch total).
[[noreturn]] inline void no_cuda_kernels(const char* op) {
  throw ValueError(std::string(op) + ": this build has no CUDA kernels");
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

// A contiguous float32 / float64 input on a kernel device, of shape dims.
inline void check_float_input(const char* op, const char* arg, const TensorView& t,
                              std::initializer_list<int64_t> dims, const char* expected_shape) {
  check_cpu(op, arg, t);
  check_dtype(op, arg, t, {DType::Float32, DType::Float64});
  check_shape(op, arg, t, dims, expected_shape);
  check_contiguous(op, arg, t);
}

// A contiguous tensor on a kernel device with the dtype of ref, of shape dims.
inline void check_like(const char* op, const char* arg, const TensorView& t, const char* ref_arg,
                       const TensorView& ref, std::initializer_list<int64_t> dims,
                       const char* expected_shape) {
  check_cpu(op, arg, t);
  check_same_dtype(op, arg, t, ref_arg, ref);
  check_shape(op, arg, t, dims, expected_shape);
  check_contiguous(op, arg, t);
}

// check_like for an output buffer.
inline void check_output_like(const char* op, const char* arg, const TensorView& t,
                              const char* ref_arg, const TensorView& ref,
                              std::initializer_list<int64_t> dims, const char* expected_shape) {
  check_output(op, arg, t);
  check_like(op, arg, t, ref_arg, ref, dims, expected_shape);
}

}  // namespace mn
