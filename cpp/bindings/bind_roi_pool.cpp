// Python entry points for RoIPool. Outputs are allocated by Python.
#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "ops/roi_pool/roi_pool.h"

namespace py = pybind11;

namespace mn {

void register_roi_pool(py::module_& m) {
  m.def(
      "roi_pool_forward",
      [](py::handle input, py::handle rois, py::handle output, py::handle argmax,
         double spatial_scale, int64_t pooled_h, int64_t pooled_w, uintptr_t stream) {
        const char* op = "roi_pool";
        ImportedTensor in = import_tensor(input, op, "input");
        ImportedTensor r = import_tensor(rois, op, "rois");
        ImportedTensor out = import_tensor(output, op, "output", true);
        ImportedTensor am = import_tensor(argmax, op, "argmax", true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        roi_pool_forward(in, r, out, am, spatial_scale, pooled_h, pooled_w);
      },
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("argmax"),
      py::arg("spatial_scale"), py::arg("pooled_h"), py::arg("pooled_w"),
      py::arg("stream") = 0);
  m.def(
      "roi_pool_backward",
      [](py::handle grad_output, py::handle rois, py::handle argmax, py::handle grad_input, uintptr_t stream) {
        const char* op = "roi_pool_backward";
        ImportedTensor go = import_tensor(grad_output, op, "grad_output");
        ImportedTensor r = import_tensor(rois, op, "rois");
        ImportedTensor am = import_tensor(argmax, op, "argmax");
        ImportedTensor gi = import_tensor(grad_input, op, "grad_input", true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        roi_pool_backward(go, r, am, gi);
      },
      py::arg("grad_output"), py::arg("rois"), py::arg("argmax"), py::arg("grad_input"),
      py::arg("stream") = 0);
}

}  // namespace mn
