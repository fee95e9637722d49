// One register_<op>(m) per bind_<op>.cpp.
#pragma once
#include <pybind11/pybind11.h>

#include "bindings/dlpack_import.h"

namespace mn {
void register_common(pybind11::module_& m);
void register_roi_align(pybind11::module_& m);
void register_roi_pool(pybind11::module_& m);
void register_nms(pybind11::module_& m);
void register_anchors(pybind11::module_& m);
void register_box_coder(pybind11::module_& m);
void register_paste_masks(pybind11::module_& m);
void register_winograd(pybind11::module_& m);
void register_grid_emulation(pybind11::module_& m);  // test hook (_C._grid)
}  // namespace mn
