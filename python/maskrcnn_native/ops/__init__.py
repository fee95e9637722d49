"""Native operators. Forward ops accept torch tensors (with autograd where it
applies, torch.compile-traceable) and NumPy arrays (no autograd)."""

from .._threads import _ensure_default

_ensure_default()

from .roi import convert_boxes_to_roi_format, roi_align, roi_pool, roi_warp  # noqa: E402
from .nms import batched_nms, box_iou, nms  # noqa: E402
from .anchors import cell_anchors, clear_anchor_cache, grid_anchors, multilevel_grid_anchors  # noqa: E402
from .box_coder import decode_boxes, encode_boxes  # noqa: E402
from .paste import MaskCrops, paste_masks  # noqa: E402
from . import _autocast  # noqa: E402,F401  (autocast kernels for the ops)
from ._lib import BatchIndexError, DTypeError, ShapeError  # noqa: E402

__all__ = [
    "BatchIndexError",
    "DTypeError",
    "ShapeError",
    "batched_nms",
    "box_iou",
    "cell_anchors",
    "clear_anchor_cache",
    "decode_boxes",
    "encode_boxes",
    "grid_anchors",
    "multilevel_grid_anchors",
    "nms",
    "MaskCrops",
    "paste_masks",
    "convert_boxes_to_roi_format",
    "roi_align",
    "roi_pool",
    "roi_warp",
]
