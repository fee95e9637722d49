#include "bindings/dlpack_import.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "common/checks.h"
#include "common/dlpack.h"

namespace py = pybind11;

namespace mn {
namespace {

constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kLegacyName = "dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";

DType to_dtype(const dlpack::DataType& t) {
  if (t.lanes != 1) return DType::Other;
  switch (t.code) {
    case dlpack::kDLFloat:
      if (t.bits == 32) return DType::Float32;
      if (t.bits == 64) return DType::Float64;
      if (t.bits == 16) return DType::Float16;
      break;
    case dlpack::kDLBfloat:
      if (t.bits == 16) return DType::BFloat16;
      break;
    case dlpack::kDLInt:
      if (t.bits == 8) return DType::Int8;
      if (t.bits == 16) return DType::Int16;
      if (t.bits == 32) return DType::Int32;
      if (t.bits == 64) return DType::Int64;
      break;
    case dlpack::kDLUInt:
      if (t.bits == 8) return DType::UInt8;
      break;
    case dlpack::kDLBool:
      if (t.bits == 8) return DType::Bool;
      break;
    default:
      break;
  }
  return DType::Other;
}

// Asks the object for a capsule: versioned first (DLPack >= 1.0), then legacy.
py::object get_capsule(py::handle obj, const char* op, const char* arg) {
  if (PyCapsule_CheckExact(obj.ptr())) return py::reinterpret_borrow<py::object>(obj);
  if (!py::hasattr(obj, "__dlpack__")) {
    std::string tname = py::str(py::type::handle_of(obj).attr("__name__"));
    throw TypeError(arg_prefix(op, arg) +
                    " must be a tensor or array supporting DLPack (torch.Tensor, "
                    "numpy.ndarray), got " + tname);
  }
  py::object fn = obj.attr("__dlpack__");
  try {
    return fn(py::arg("max_version") = py::make_tuple(1, 0));
  } catch (py::error_already_set& e) {
    // Producers that predate DLPack 1.0 do not know max_version.
    if (!e.matches(PyExc_TypeError)) throw;
  }
  return fn();
}

}  // namespace

ImportedTensor::ImportedTensor(ImportedTensor&& o) noexcept
    : view_(o.view_), managed_(o.managed_), versioned_(o.versioned_) {
  o.managed_ = nullptr;
}

ImportedTensor& ImportedTensor::operator=(ImportedTensor&& o) noexcept {
  if (this != &o) {
    release();
    view_ = o.view_;
    managed_ = o.managed_;
    versioned_ = o.versioned_;
    o.managed_ = nullptr;
  }
  return *this;
}

ImportedTensor::~ImportedTensor() { release(); }

void ImportedTensor::release() noexcept {
  if (!managed_) return;
  if (versioned_) {
    auto* m = static_cast<dlpack::ManagedTensorVersioned*>(managed_);
    if (m->deleter) m->deleter(m);
  } else {
    auto* m = static_cast<dlpack::ManagedTensor*>(managed_);
    if (m->deleter) m->deleter(m);
  }
  managed_ = nullptr;
}

ImportedTensor import_tensor(py::handle obj, const char* op, const char* arg,
                             bool writable) {
  py::object cap = get_capsule(obj, op, arg);
  PyObject* c = cap.ptr();
  if (!PyCapsule_CheckExact(c))
    throw TypeError(arg_prefix(op, arg) + ": __dlpack__ did not return a capsule");
  const char* name = PyCapsule_GetName(c);
  if (!name) throw py::error_already_set();

  ImportedTensor out;
  const dlpack::Tensor* t = nullptr;
  uint64_t flags = 0;
  if (std::strcmp(name, kVersionedName) == 0) {
    auto* m = static_cast<dlpack::ManagedTensorVersioned*>(PyCapsule_GetPointer(c, name));
    if (!m) throw py::error_already_set();
    if (m->version.major != 1) {
      throw ValueError(arg_prefix(op, arg) + ": unsupported DLPack major version " +
                       std::to_string(m->version.major));
    }
    // Take ownership: the renamed capsule no longer deletes the tensor.
    if (PyCapsule_SetName(c, kUsedVersionedName) != 0) throw py::error_already_set();
    out.managed_ = m;
    out.versioned_ = true;
    t = &m->dl_tensor;
    flags = m->flags;
  } else if (std::strcmp(name, kLegacyName) == 0) {
    auto* m = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(c, name));
    if (!m) throw py::error_already_set();
    if (PyCapsule_SetName(c, kUsedLegacyName) != 0) throw py::error_already_set();
    out.managed_ = m;
    out.versioned_ = false;
    t = &m->dl_tensor;
  } else {
    throw TypeError(arg_prefix(op, arg) + ": DLPack capsule has unexpected name '" +
                    name + "' (already consumed?)");
  }

  TensorView& v = out.view_;
  if (t->ndim < 0 || t->ndim > kMaxDims)
    throw ValueError(arg_prefix(op, arg) + " has " + std::to_string(t->ndim) +
                     " dimensions; at most " + std::to_string(kMaxDims) + " are supported");
  v.ndim = t->ndim;
  v.dtype = to_dtype(t->dtype);
  switch (t->device.device_type) {
    case dlpack::kDLCPU: v.device = DeviceType::CPU; break;
    case dlpack::kDLCUDA: v.device = DeviceType::CUDA; break;
    default: v.device = DeviceType::Other; break;
  }
  v.device_id = t->device.device_id;
  v.readonly = (flags & dlpack::kFlagReadOnly) != 0;
  int64_t expected = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    if (t->shape[i] < 0)
      throw ValueError(arg_prefix(op, arg) + " has a negative dimension");
    v.shape[i] = t->shape[i];
    v.strides[i] = t->strides ? t->strides[i] : expected;
    expected *= t->shape[i];
  }
  v.data = t->data ? static_cast<char*>(t->data) + t->byte_offset : nullptr;
  // Kernels load whole elements: a view at an odd byte offset (np.frombuffer(..., offset=1))
  // would be a misaligned load, undefined behaviour.
  const uint64_t item = (static_cast<uint64_t>(t->dtype.bits) * t->dtype.lanes + 7) / 8;
  if (v.data && item > 1 && expected > 0 &&
      reinterpret_cast<uintptr_t>(v.data) % (item > 8 ? 8 : item) != 0)
    throw ValueError(arg_prefix(op, arg) + " is not aligned to its " + std::to_string(item) +
                     "-byte elements (a view at an odd byte offset?); pass a copy, e.g. "
                     "numpy.array(x) or x.clone()");
  if (writable) check_writable(op, arg, v);
  return out;
}

// Python classes for the op errors. Each is also a RuntimeError, which is what
// torchvision raises for bad inputs, so code written against torchvision
// (`except RuntimeError`) catches them as well as `except ValueError` etc.
namespace {
PyObject* g_shape_error = nullptr;
PyObject* g_dtype_error = nullptr;
PyObject* g_index_error = nullptr;

PyObject* new_error(py::module_& m, const char* name, PyObject* base, const char* doc) {
  std::string qual = std::string("maskrcnn_native._C.") + name;
  PyObject* bases = PyTuple_Pack(2, base, PyExc_RuntimeError);
  if (!bases) throw py::error_already_set();
  PyObject* cls = PyErr_NewExceptionWithDoc(qual.c_str(), doc, bases, nullptr);
  Py_DECREF(bases);
  if (!cls) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;  // one reference kept for the translator (module lifetime)
}
}  // namespace

void register_exceptions(py::module_& m) {
  g_shape_error = new_error(m, "ShapeError", PyExc_ValueError,
                            "An op argument has a bad shape or value (ValueError and RuntimeError).");
  g_dtype_error = new_error(m, "DTypeError", PyExc_TypeError,
                            "An op argument has an unsupported dtype or type (TypeError and RuntimeError).");
  g_index_error = new_error(m, "BatchIndexError", PyExc_IndexError,
                            "A batch index is out of range (IndexError and RuntimeError).");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ValueError& e) {
      PyErr_SetString(g_shape_error, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(g_dtype_error, e.what());
    } catch (const IndexError& e) {
      PyErr_SetString(g_index_error, e.what());
    }
  });
}

}  // namespace mn
