// Python entry points for the box coder. Outputs are allocated by Python.
#include <pybind11/stl.h>

#include "bindings/register.h"
#include "ops/box_coder/box_coder.h"

namespace py = pybind11;

namespace mn {

void register_box_coder(py::module_& m) {
  m.def(
      "encode_boxes",
      [](py::handle reference, py::handle proposals, const std::array<double, 4>& weights,
         py::handle out) {
        ImportedTensor r = import_tensor(reference, "encode_boxes", "reference_boxes");
        ImportedTensor p = import_tensor(proposals, "encode_boxes", "proposals");
        ImportedTensor o = import_tensor(out, "encode_boxes", "out", /*writable=*/true);
        py::gil_scoped_release nogil;
        encode_boxes(r, p, weights, o);
      },
      py::arg("reference_boxes"), py::arg("proposals"), py::arg("weights"), py::arg("out"));
  m.def(
      "decode_boxes",
      [](py::handle codes, py::handle boxes, const std::array<double, 4>& weights, double clamp,
         py::handle out) {
        ImportedTensor c = import_tensor(codes, "decode_boxes", "codes");
        ImportedTensor b = import_tensor(boxes, "decode_boxes", "boxes");
        ImportedTensor o = import_tensor(out, "decode_boxes", "out", /*writable=*/true);
        py::gil_scoped_release nogil;
        decode_boxes(c, b, weights, clamp, o);
      },
      py::arg("codes"), py::arg("boxes"), py::arg("weights"), py::arg("clamp"), py::arg("out"));
}

}  // namespace mn
