// Python entry points for the box coder. Outputs are allocated by Python.
#include <pybind11/stl.h>

#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "ops/box_coder/box_coder.h"

namespace py = pybind11;

namespace mn {

void register_box_coder(py::module_& m) {
  m.def(
      "encode_boxes",
      [](py::handle reference, py::handle proposals, const std::array<double, 4>& weights,
         py::handle out, uintptr_t stream) {
        ImportedTensor r = import_tensor(reference, "encode_boxes", "reference_boxes");
        ImportedTensor p = import_tensor(proposals, "encode_boxes", "proposals");
        ImportedTensor o = import_tensor(out, "encode_boxes", "out", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        encode_boxes(r, p, weights, o);
      },
      py::arg("reference_boxes"), py::arg("proposals"), py::arg("weights"), py::arg("out"),
      py::arg("stream") = 0);
  m.def(
      "decode_boxes",
      [](py::handle codes, py::handle boxes, const std::array<double, 4>& weights, double clamp,
         py::handle out, uintptr_t stream) {
        ImportedTensor c = import_tensor(codes, "decode_boxes", "codes");
        ImportedTensor b = import_tensor(boxes, "decode_boxes", "boxes");
        ImportedTensor o = import_tensor(out, "decode_boxes", "out", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        decode_boxes(c, b, weights, clamp, o);
      },
      py::arg("codes"), py::arg("boxes"), py::arg("weights"), py::arg("clamp"), py::arg("out"),
      py::arg("stream") = 0);
}

}  // namespace mn
