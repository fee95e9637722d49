// Python entry points for anchor generation. Outputs are allocated by Python.
#include <pybind11/stl.h>

#include <string>

#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "common/checks.h"
#include "ops/anchors/anchors.h"

namespace py = pybind11;

namespace mn {

void register_anchors(py::module_& m) {
  m.def(
      "cell_anchors",
      [](const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
         const std::string& style, py::handle out, uintptr_t stream) {
        AnchorStyle st;
        if (style == "torchvision") {
          st = AnchorStyle::Torchvision;
        } else if (style == "detectron2") {
          st = AnchorStyle::Detectron2;
        } else {
          throw ValueError("cell_anchors: style must be 'torchvision' or 'detectron2', got '" +
                           style + "'");
        }
        ImportedTensor o = import_tensor(out, "cell_anchors", "out", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        cell_anchors(sizes, aspect_ratios, st, o);
      },
      py::arg("sizes"), py::arg("aspect_ratios"), py::arg("style"), py::arg("out"),
      py::arg("stream") = 0);
  m.def(
      "grid_anchors",
      [](py::handle cell, int64_t grid_h, int64_t grid_w, double stride_h, double stride_w,
         double offset, py::handle out, uintptr_t stream) {
        ImportedTensor c = import_tensor(cell, "grid_anchors", "cell_anchors");
        ImportedTensor o = import_tensor(out, "grid_anchors", "out", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        grid_anchors(c, grid_h, grid_w, stride_h, stride_w, offset, o);
      },
      py::arg("cell_anchors"), py::arg("grid_h"), py::arg("grid_w"), py::arg("stride_h"),
      py::arg("stride_w"), py::arg("offset"), py::arg("out"),
      py::arg("stream") = 0);
}

}  // namespace mn
