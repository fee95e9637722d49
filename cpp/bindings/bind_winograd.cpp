// Python entry points for the Winograd transforms (CPU only). Outputs are
// allocated by Python.
#include <optional>

#include "bindings/register.h"
#include "ops/winograd/winograd.h"

namespace py = pybind11;

namespace mn {

void register_winograd(py::module_& m) {
  m.def(
      "winograd_input_transform",
      [](py::handle input, py::handle v, int64_t tile0, int64_t m) {
        const char* op = "winograd_input_transform";
        ImportedTensor in = import_tensor(input, op, "input");
        ImportedTensor out = import_tensor(v, op, "v", /*writable=*/true);
        py::gil_scoped_release nogil;
        winograd_input_transform(in, out, tile0, m);
      },
      py::arg("input"), py::arg("v"), py::arg("tile0"), py::arg("m"));
  m.def(
      "winograd_grad_transform",
      [](py::handle grad_output, py::handle dm, int64_t tile0, int64_t m) {
        const char* op = "winograd_grad_transform";
        ImportedTensor gy = import_tensor(grad_output, op, "grad_output");
        ImportedTensor out = import_tensor(dm, op, "dm", /*writable=*/true);
        py::gil_scoped_release nogil;
        winograd_grad_transform(gy, out, tile0, m);
      },
      py::arg("grad_output"), py::arg("dm"), py::arg("tile0"), py::arg("m"));
  m.def(
      "winograd_output_transform",
      [](py::handle tiles_in, py::object bias, py::object residual, py::handle output, int64_t tile0,
         int64_t m, bool relu) {
        const char* op = "winograd_output_transform";
        ImportedTensor tiles = import_tensor(tiles_in, op, "tiles");
        std::optional<ImportedTensor> b, r;
        if (!bias.is_none()) b.emplace(import_tensor(bias, op, "bias"));
        if (!residual.is_none()) r.emplace(import_tensor(residual, op, "residual"));
        ImportedTensor out = import_tensor(output, op, "output", /*writable=*/true);
        const TensorView* bp = b ? &b->view() : nullptr;
        const TensorView* rp = r ? &r->view() : nullptr;
        py::gil_scoped_release nogil;
        winograd_output_transform(tiles, bp, rp, out, tile0, m, relu);
      },
      py::arg("tiles"), py::arg("bias"), py::arg("residual"), py::arg("output"), py::arg("tile0"),
      py::arg("m"), py::arg("relu"));
}

}  // namespace mn
