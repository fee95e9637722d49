// Python entry points for NMS and box IoU. Outputs (the keep buffer, the IoU
// matrix) are allocated by Python; nms returns how many keep entries it wrote.
#include "bindings/register.h"
#include "common/cuda_runtime.h"
#include "ops/nms/nms.h"

namespace py = pybind11;

namespace mn {

void register_nms(py::module_& m) {
  m.def(
      "nms",
      [](py::handle boxes, py::handle scores, double iou_threshold, py::handle keep, uintptr_t stream) {
        ImportedTensor b = import_tensor(boxes, "nms", "boxes");
        ImportedTensor s = import_tensor(scores, "nms", "scores");
        ImportedTensor k = import_tensor(keep, "nms", "keep", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        return nms(b, s, iou_threshold, k);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"), py::arg("keep"),
      py::arg("stream") = 0);
  m.def(
      "batched_nms",
      [](py::handle boxes, py::handle scores, py::handle idxs, double iou_threshold,
         py::handle keep, uintptr_t stream) {
        ImportedTensor b = import_tensor(boxes, "batched_nms", "boxes");
        ImportedTensor s = import_tensor(scores, "batched_nms", "scores");
        ImportedTensor i = import_tensor(idxs, "batched_nms", "idxs");
        ImportedTensor k = import_tensor(keep, "batched_nms", "keep", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        return batched_nms(b, s, i, iou_threshold, k);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("idxs"), py::arg("iou_threshold"),
      py::arg("keep"),
      py::arg("stream") = 0);
  m.def(
      "box_iou",
      [](py::handle boxes1, py::handle boxes2, py::handle out, uintptr_t stream) {
        ImportedTensor a = import_tensor(boxes1, "box_iou", "boxes1");
        ImportedTensor b = import_tensor(boxes2, "box_iou", "boxes2");
        ImportedTensor o = import_tensor(out, "box_iou", "out", /*writable=*/true);
        cuda::StreamScope stream_scope(stream);
        py::gil_scoped_release nogil;
        box_iou(a, b, o);
      },
      py::arg("boxes1"), py::arg("boxes2"), py::arg("out"),
      py::arg("stream") = 0);
}

}  // namespace mn
