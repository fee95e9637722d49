"""Native operators. Forward ops accept torch tensors (with autograd where it
applies, torch.compile-traceable) and NumPy arrays (no autograd)."""

from .._threads import _ensure_default

_ensure_default()

from .roi import convert_boxes_to_roi_format, roi_align, roi_pool, roi_warp  # noqa: E402

__all__ = [
    "convert_boxes_to_roi_format",
    "roi_align",
    "roi_pool",
    "roi_warp",
]
