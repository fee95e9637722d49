// Python entry points for RoIAlign / RoIWarp. Outputs are allocated by Python.
#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "ops/roi_align/roi_align.h"

namespace py = pybind11;

namespace mn {

void register_roi_align(py::module_& m) {
  m.def(
      "roi_align_forward",
      [](py::handle input, py::handle rois, py::handle output, double spatial_scale,
         int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio, bool aligned, bool quantize, uintptr_t stream) {
        const char* op = quantize ? "roi_warp" : "roi_align";
        ImportedTensor in = import_tensor(input, op, "input");
        ImportedTensor r = import_tensor(rois, op, "rois");
        ImportedTensor out = import_tensor(output, op, "output", /*writable=*/true);
        RoiAlignParams p{spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned, quantize};
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        roi_align_forward(in, r, out, p);
      },
      py::arg("input"), py::arg("rois"), py::arg("output"), py::arg("spatial_scale"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"),
      py::arg("quantize") = false,
      py::arg("stream") = 0);
  m.def(
      "roi_align_backward",
      [](py::handle grad_output, py::handle rois, py::handle grad_input, double spatial_scale,
         int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio, bool aligned, bool quantize, uintptr_t stream) {
        const char* op = quantize ? "roi_warp_backward" : "roi_align_backward";
        ImportedTensor go = import_tensor(grad_output, op, "grad_output");
        ImportedTensor r = import_tensor(rois, op, "rois");
        ImportedTensor gi = import_tensor(grad_input, op, "grad_input", /*writable=*/true);
        RoiAlignParams p{spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned, quantize};
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        roi_align_backward(go, r, gi, p);
      },
      py::arg("grad_output"), py::arg("rois"), py::arg("grad_input"), py::arg("spatial_scale"),
      py::arg("pooled_h"), py::arg("pooled_w"), py::arg("sampling_ratio"), py::arg("aligned"),
      py::arg("quantize") = false,
      py::arg("stream") = 0);
}

}  // namespace mn
