"""The native ops the model calls, in one place (all from ``maskrcnn_native.ops``).

Thin adapters only: argument order/shape conventions of the model layer
mapped onto the op signatures. No op is re-implemented here.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

from torch import Tensor

from .. import ops as _native

DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)

roi_align = _native.roi_align
roi_pool = _native.roi_pool
roi_warp = _native.roi_warp
box_iou = _native.box_iou
nms = _native.nms
batched_nms = _native.batched_nms
encode_boxes = _native.encode_boxes
paste_masks = _native.paste_masks


def cell_anchors(sizes: Sequence[int], aspect_ratios: Sequence[float]) -> Tensor:
    """torchvision's base anchors [A, 4] float32 centred at 0 (rounded)."""
    return _native.cell_anchors(list(sizes), list(aspect_ratios))


def grid_anchors(base: Tensor, grid_size: Tuple[int, int], stride: Tuple[int, int]) -> Tensor:
    """Anchors [H*W*A, 4] for a feature map of ``grid_size`` (H, W) with
    ``stride`` (sy, sx): location-major, then anchor (torchvision's order)."""
    return _native.grid_anchors(base, tuple(grid_size), tuple(stride))


def decode_boxes(codes: Tensor, boxes: Tensor, weights: Sequence[float],
                 clamp: float = DEFAULT_SCALE_CLAMP) -> Tensor:
    """Apply codes [N, 4*C] to boxes [N, 4] -> [N, 4*C] XYXY (torchvision BoxCoder)."""
    return _native.decode_boxes(codes, boxes.to(codes.dtype), weights, clamp=clamp)
