"""The native ops the model calls, in one place (all from ``maskrcnn_native.ops``).

Thin adapters only: argument order/shape conventions of the model layer
mapped onto the op signatures. No op is re-implemented here.
"""

from __future__ import annotations

from typing import Sequence, Tuple, cast

from torch import Tensor

from .. import ops as _native
from ..ops.box_coder import DEFAULT_CLAMP

# dw/dh bound before exp: log(1000 / 16), defined once by the op (torchvision's value)
DEFAULT_SCALE_CLAMP = DEFAULT_CLAMP

roi_align = _native.roi_align
roi_pool = _native.roi_pool
roi_warp = _native.roi_warp
nms = _native.nms
batched_nms = _native.batched_nms
paste_masks = _native.paste_masks


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU matrix [N, M] of XYXY boxes [N, 4] and [M, 4] (tensor in, tensor out)."""
    return _native.box_iou(boxes1, boxes2)


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights: Sequence[float]) -> Tensor:
    """Box codes [N, 4] turning ``proposals`` [N, 4] into ``reference_boxes`` [N, 4]."""
    return cast(Tensor, _native.encode_boxes(reference_boxes, proposals, weights))


def cell_anchors(sizes: Sequence[int], aspect_ratios: Sequence[float]) -> Tensor:
    """torchvision's base anchors [A, 4] float32 centred at 0 (rounded)."""
    return cast(Tensor, _native.cell_anchors(list(sizes), list(aspect_ratios)))


def grid_anchors(base: Tensor, grid_size: Tuple[int, int], stride: Tuple[int, int]) -> Tensor:
    """Anchors [H*W*A, 4] for a feature map of ``grid_size`` (H, W) with
    ``stride`` (sy, sx): location-major, then anchor (torchvision's order)."""
    return _native.grid_anchors(base, [int(g) for g in grid_size], [float(s) for s in stride])


def decode_boxes(codes: Tensor, boxes: Tensor, weights: Sequence[float], clamp: float = DEFAULT_SCALE_CLAMP) -> Tensor:
    """Apply codes [N, 4*C] to boxes [N, 4] -> [N, 4*C] XYXY (torchvision BoxCoder)."""
    wx, wy, ww, wh = (float(w) for w in weights)
    return _native.decode_boxes(codes, boxes, (wx, wy, ww, wh), clamp=clamp)
