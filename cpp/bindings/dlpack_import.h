// Imports Python objects (torch tensors, NumPy arrays, DLPack capsules) as
// non-owning TensorViews. The imported tensor is kept alive until the
// ImportedTensor is destroyed; the producer's deleter is then called once.
#pragma once
#include <pybind11/pybind11.h>

#include "common/tensor_view.h"

namespace mn {

class ImportedTensor {
 public:
  ImportedTensor() = default;
  ImportedTensor(const ImportedTensor&) = delete;
  ImportedTensor& operator=(const ImportedTensor&) = delete;
  ImportedTensor(ImportedTensor&& o) noexcept;
  ImportedTensor& operator=(ImportedTensor&& o) noexcept;
  ~ImportedTensor();

  const TensorView& view() const { return view_; }
  operator const TensorView&() const { return view_; }

 private:
  friend ImportedTensor import_tensor(pybind11::handle, const char*, const char*, bool);
  void release() noexcept;
  TensorView view_;
  void* managed_ = nullptr;
  bool versioned_ = false;
};

// `op` and `arg` name the caller in error messages. With `writable` the
// tensor is an output: a read-only export is rejected.
ImportedTensor import_tensor(pybind11::handle obj, const char* op, const char* arg,
                             bool writable = false);

// Maps mn::ValueError / TypeError / IndexError to _C.ShapeError / DTypeError /
// BatchIndexError (subclasses of ValueError / TypeError / IndexError and RuntimeError).
void register_exceptions(pybind11::module_& m);

}  // namespace mn
