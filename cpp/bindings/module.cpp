// The extension module: only register_*(m) calls live here.
#include <pybind11/pybind11.h>

#include "bindings/register.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "maskrcnn_native native operators (C++ core behind DLPack)";
  mn::register_exceptions(m);
  mn::register_common(m);
  mn::register_roi_align(m);
  mn::register_roi_pool(m);
  mn::register_nms(m);
  mn::register_anchors(m);
  mn::register_box_coder(m);
  mn::register_paste_masks(m);
  mn::register_winograd(m);
  mn::register_grid_emulation(m);
}
