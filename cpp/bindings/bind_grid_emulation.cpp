// Test hook: maskrcnn_native._C._grid runs every CUDA kernel's per-thread
// functor over its whole launch grid in a host loop (common/cuda_grid.h
// HostExec), through the same orchestration code the CUDA launchers use
// (<op>_kernels.h), on host tensors. Only CUB's radix sort (nms) is replaced,
// by std::stable_sort on the same keys. tests/cuda/test_grid_emulation.py
// compares the results with the CPU kernels. Built with or without CUDA.
// Arguments are expected to be valid (the tests pass what the ops accept);
// only device and dtype are checked here.
#include <array>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/register.h"
#include "common/checks.h"
#include "common/cuda_grid.h"
#include "common/dispatch.h"
#include "ops/anchors/anchors_kernels.h"
#include "ops/box_coder/box_coder_kernels.h"
#include "ops/nms/nms_kernels.h"
#include "ops/paste_masks/paste_masks_kernels.h"
#include "ops/roi_align/roi_align_kernels.h"
#include "ops/roi_pool/roi_pool_kernels.h"

namespace py = pybind11;

namespace mn {
namespace {

constexpr const char* kOp = "_grid";

ImportedTensor host(py::handle h, const char* arg, bool writable = false) {
  ImportedTensor t = import_tensor(h, kOp, arg, writable);
  check_host(kOp, arg, t.view());
  return t;
}

template <typename F>
void floating(const TensorView& t, F&& f) {
  dispatch_float(t.dtype, kOp, "input", std::forward<F>(f));
}

}  // namespace

void register_grid_emulation(py::module_& parent) {
  py::module_ m = parent.def_submodule(
      "_grid", "CUDA kernels' per-thread functors run over their whole grid on the host (tests)");
  m.def("roi_align_forward", [](py::handle input, py::handle rois, py::handle output, double scale,
                                int64_t ph, int64_t pw, int64_t sr, bool aligned, bool quantize) {
    ImportedTensor in = host(input, "input"), r = host(rois, "rois"), out = host(output, "output", true);
    const RoiAlignParams p{scale, ph, pw, sr, aligned, quantize};
    HostExec ex;
    floating(in, [&](auto tag) { roi_align_detail::forward_run<decltype(tag)>(ex, in, r, out, p, kOp); });
  });
  m.def("roi_align_backward", [](py::handle grad_output, py::handle rois, py::handle grad_input,
                                 double scale, int64_t ph, int64_t pw, int64_t sr, bool aligned,
                                 bool quantize) {
    ImportedTensor go = host(grad_output, "grad_output"), r = host(rois, "rois"),
                   gi = host(grad_input, "grad_input", true);
    const RoiAlignParams p{scale, ph, pw, sr, aligned, quantize};
    HostExec ex;
    floating(go, [&](auto tag) { roi_align_detail::backward_run<decltype(tag)>(ex, go, r, gi, p, kOp); });
  });
  m.def("roi_pool_forward", [](py::handle input, py::handle rois, py::handle output,
                               py::handle argmax, double scale, int64_t ph, int64_t pw) {
    ImportedTensor in = host(input, "input"), r = host(rois, "rois"),
                   out = host(output, "output", true), am = host(argmax, "argmax", true);
    HostExec ex;
    floating(in, [&](auto tag) {
      roi_pool_detail::forward_run<decltype(tag)>(ex, in, r, out, am, scale, ph, pw, kOp);
    });
  });
  m.def("roi_pool_backward", [](py::handle grad_output, py::handle rois, py::handle argmax,
                                py::handle grad_input) {
    ImportedTensor go = host(grad_output, "grad_output"), r = host(rois, "rois"),
                   am = host(argmax, "argmax"), gi = host(grad_input, "grad_input", true);
    HostExec ex;
    floating(go, [&](auto tag) { roi_pool_detail::backward_run<decltype(tag)>(ex, go, r, am, gi, kOp); });
  });
  m.def("nms", [](py::handle boxes, py::handle scores, double thr, py::handle keep) {
    ImportedTensor b = host(boxes, "boxes"), s = host(scores, "scores"), k = host(keep, "keep", true);
    HostExec ex;
    int64_t n = 0;
    floating(b, [&](auto tag) {
      n = nms_detail::nms_run<decltype(tag), int64_t>(ex, b, s, nullptr, thr, k, kOp);
    });
    return n;
  });
  m.def("batched_nms", [](py::handle boxes, py::handle scores, py::handle idxs, double thr,
                          py::handle keep) {
    ImportedTensor b = host(boxes, "boxes"), s = host(scores, "scores"), i = host(idxs, "idxs"),
                   k = host(keep, "keep", true);
    check_dtype(kOp, "idxs", i, {DType::Int64, DType::Int32});
    HostExec ex;
    int64_t n = 0;
    floating(b, [&](auto tag) {
      using T = decltype(tag);
      if (i.view().dtype == DType::Int32)
        n = nms_detail::nms_run<T, int32_t>(ex, b, s, i.view().ptr<int32_t>(), thr, k, kOp);
      else
        n = nms_detail::nms_run<T, int64_t>(ex, b, s, i.view().ptr<int64_t>(), thr, k, kOp);
    });
    return n;
  });
  m.def("box_iou", [](py::handle boxes1, py::handle boxes2, py::handle out) {
    ImportedTensor a = host(boxes1, "boxes1"), b = host(boxes2, "boxes2"), o = host(out, "out", true);
    HostExec ex;
    floating(a, [&](auto tag) { nms_detail::box_iou_run<decltype(tag)>(ex, a, b, o, kOp); });
  });
  m.def("grid_anchors", [](py::handle cell, int64_t gh, int64_t gw, double sh, double sw,
                           double offset, py::handle out) {
    ImportedTensor c = host(cell, "cell_anchors"), o = host(out, "out", true);
    HostExec ex;
    floating(c, [&](auto tag) {
      anchors_detail::grid_anchors_run<decltype(tag)>(ex, c, gh, gw, sh, sw, offset, o, kOp);
    });
  });
  m.def("encode_boxes", [](py::handle reference, py::handle proposals, std::array<double, 4> w,
                           py::handle out) {
    ImportedTensor r = host(reference, "reference_boxes"), p = host(proposals, "proposals"),
                   o = host(out, "out", true);
    HostExec ex;
    floating(r, [&](auto tag) { box_coder_detail::encode_run<decltype(tag)>(ex, r, p, w, o, kOp); });
  });
  m.def("decode_boxes", [](py::handle codes, py::handle boxes, std::array<double, 4> w,
                           double clamp, py::handle out) {
    ImportedTensor c = host(codes, "codes"), b = host(boxes, "boxes"), o = host(out, "out", true);
    HostExec ex;
    floating(c, [&](auto tag) {
      box_coder_detail::decode_run<decltype(tag)>(ex, c, b, w, clamp, o, kOp);
    });
  });
  auto params = [](int64_t h, int64_t w, const std::string& mode, py::object thr) {
    PasteMasksParams p;
    p.height = h;
    p.width = w;
    p.torchvision = paste_masks_parse_mode(mode);
    p.has_threshold = !thr.is_none();
    if (p.has_threshold) p.threshold = thr.cast<double>();
    return p;
  };
  m.def("paste_masks_plan", [params](py::handle masks, py::handle boxes, py::handle rects,
                                     int64_t h, int64_t w, const std::string& mode) {
    ImportedTensor mk = host(masks, "masks"), bx = host(boxes, "boxes"), rc = host(rects, "rects", true);
    const PasteMasksParams p = params(h, w, mode, py::none());
    HostExec ex;
    floating(mk, [&](auto tag) { paste_detail::plan_run<decltype(tag)>(ex, mk, bx, rc, p, kOp); });
  });
  m.def("paste_masks_forward", [params](py::handle masks, py::handle boxes, py::handle output,
                                        int64_t h, int64_t w, const std::string& mode,
                                        py::object thr) {
    ImportedTensor mk = host(masks, "masks"), bx = host(boxes, "boxes"),
                   out = host(output, "output", true);
    const PasteMasksParams p = params(h, w, mode, thr);
    HostExec ex;
    floating(mk, [&](auto tag) { paste_detail::forward_run<decltype(tag)>(ex, mk, bx, out, p, kOp); });
  });
  m.def("paste_masks_crops", [params](py::handle masks, py::handle boxes, py::handle rects,
                                      py::handle output, int64_t h, int64_t w,
                                      const std::string& mode, py::object thr) {
    ImportedTensor mk = host(masks, "masks"), bx = host(boxes, "boxes"), rc = host(rects, "rects"),
                   out = host(output, "output", true);
    const PasteMasksParams p = params(h, w, mode, thr);
    HostExec ex;
    floating(mk, [&](auto tag) {
      paste_detail::crops_run<decltype(tag)>(ex, mk, bx, rc, out, p, kOp);
    });
  });
}

}  // namespace mn
