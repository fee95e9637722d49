// Python entry points for paste_masks. Outputs are allocated by Python.
#include <string>

#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "common/checks.h"
#include "ops/paste_masks/paste_masks.h"

namespace py = pybind11;

namespace mn {
namespace {

constexpr const char* kOp = "paste_masks";

PasteMasksParams make_params(int64_t height, int64_t width, const std::string& mode,
                             py::object threshold) {
  PasteMasksParams p;
  p.height = height;
  p.width = width;
  p.torchvision = paste_masks_parse_mode(mode);
  p.has_threshold = !threshold.is_none();
  if (p.has_threshold) {
    if (!(py::isinstance<py::float_>(threshold) || py::isinstance<py::int_>(threshold)) ||
        py::isinstance<py::bool_>(threshold))
      throw TypeError(std::string(kOp) + ": threshold must be a float or None, got " +
                      std::string(py::str(py::type::handle_of(threshold).attr("__name__"))));
    p.threshold = threshold.cast<double>();
  }
  return p;
}

}  // namespace

void register_paste_masks(py::module_& m) {
  m.def(
      "paste_masks_plan",
      [](py::handle masks, py::handle boxes, py::handle rects, int64_t height, int64_t width,
         const std::string& mode, uintptr_t stream) {
        ImportedTensor mk = import_tensor(masks, kOp, "masks");
        ImportedTensor bx = import_tensor(boxes, kOp, "boxes");
        ImportedTensor rc = import_tensor(rects, kOp, "rects", /*writable=*/true);
        const PasteMasksParams p = make_params(height, width, mode, py::none());
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        paste_masks_plan(mk, bx, rc, p);
      },
      py::arg("masks"), py::arg("boxes"), py::arg("rects"), py::arg("height"), py::arg("width"),
      py::arg("mode"),
      py::arg("stream") = 0);
  m.def(
      "paste_masks_forward",
      [](py::handle masks, py::handle boxes, py::handle output, int64_t height, int64_t width,
         const std::string& mode, py::object threshold, uintptr_t stream) {
        ImportedTensor mk = import_tensor(masks, kOp, "masks");
        ImportedTensor bx = import_tensor(boxes, kOp, "boxes");
        ImportedTensor out = import_tensor(output, kOp, "output", /*writable=*/true);
        const PasteMasksParams p = make_params(height, width, mode, threshold);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        paste_masks_forward(mk, bx, out, p);
      },
      py::arg("masks"), py::arg("boxes"), py::arg("output"), py::arg("height"), py::arg("width"),
      py::arg("mode"), py::arg("threshold"),
      py::arg("stream") = 0);
  m.def(
      "paste_masks_crops",
      [](py::handle masks, py::handle boxes, py::handle rects, py::handle output, int64_t height,
         int64_t width, const std::string& mode, py::object threshold, uintptr_t stream) {
        ImportedTensor mk = import_tensor(masks, kOp, "masks");
        ImportedTensor bx = import_tensor(boxes, kOp, "boxes");
        ImportedTensor rc = import_tensor(rects, kOp, "rects");
        ImportedTensor out = import_tensor(output, kOp, "output", /*writable=*/true);
        const PasteMasksParams p = make_params(height, width, mode, threshold);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        paste_masks_crops(mk, bx, rc, out, p);
      },
      py::arg("masks"), py::arg("boxes"), py::arg("rects"), py::arg("output"), py::arg("height"),
      py::arg("width"), py::arg("mode"), py::arg("threshold"),
      py::arg("stream") = 0);
  m.def(
      "paste_masks_rle_counts",
      [](py::handle crops, py::handle rects, py::handle counts, py::handle lengths, int64_t height,
         int64_t width, uintptr_t stream) {
        ImportedTensor cr = import_tensor(crops, kOp, "crops");
        ImportedTensor rc = import_tensor(rects, kOp, "rects");
        ImportedTensor ct = import_tensor(counts, kOp, "counts", /*writable=*/true);
        ImportedTensor ln = import_tensor(lengths, kOp, "lengths", /*writable=*/true);
        PasteMasksParams p;
        p.height = height;
        p.width = width;
        p.has_threshold = false;
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        paste_masks_rle_counts(cr, rc, ct, ln, p);
      },
      py::arg("crops"), py::arg("rects"), py::arg("counts"), py::arg("lengths"), py::arg("height"),
      py::arg("width"),
      py::arg("stream") = 0);
}

}  // namespace mn
