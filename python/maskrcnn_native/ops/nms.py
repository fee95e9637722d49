"""Non-maximum suppression and pairwise IoU.

Boxes are ``(x1, y1, x2, y2)`` (XYXY) in any consistent unit, widths are
``x2 - x1`` (no +1). Semantics follow torchvision exactly:

* Boxes are visited in a stable descending sort of the scores: equal scores
  keep input order, ``-0.0`` ties ``+0.0``, and NaN scores rank above every
  number (that is what ``torch.sort(descending=True, stable=True)`` does, so
  torchvision visits them first too).
* A visited box is kept unless an already kept box has
  ``IoU > iou_threshold``. IoU is ``inter / (area_a + area_b - inter)``
  computed in the boxes' dtype with the same operations as torchvision's CPU
  kernel, and compared with the threshold in double, so keep lists are
  identical, duplicates and ties included. Boxes with a NaN coordinate, zero
  or negative area have IoU 0 or NaN with everything: they are kept (for
  ``iou_threshold >= 0``) and suppress nothing.
* ``batched_nms`` runs an independent NMS per category (not the coordinate
  offset trick, which can change answers) and returns the kept indices in the
  same global visiting order as ``nms``: by score descending, ties by index.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch import Tensor

from ._lib import _C, is_numpy, stream as _stream

Array = Union[Tensor, np.ndarray]


def _nrows(t) -> int:
    return int(t.shape[0]) if t.dim() >= 1 else 0


def _np_nrows(a: np.ndarray) -> int:
    return int(a.shape[0]) if a.ndim >= 1 else 0


def _both_or_neither(op: str, *xs) -> bool:
    """True for NumPy inputs; TypeError when NumPy and tensors are mixed."""
    nps = [is_numpy(x) for x in xs]
    if any(nps) and not all(nps):
        raise TypeError(f"{op}: inputs must all be NumPy arrays or all be tensors")
    if not any(nps):
        for x in xs:
            if not isinstance(x, Tensor):
                raise TypeError(f"{op}: expected a Tensor or a NumPy array, got {type(x).__name__}")
    return all(nps)


# --------------------------------------------------------------------- nms ----

@torch.library.custom_op("maskrcnn_native::nms", mutates_args=())
def _nms_op(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    boxes = boxes.detach().contiguous()
    scores = scores.detach().contiguous()
    keep = torch.empty(_nrows(boxes), dtype=torch.int64, device=boxes.device)
    count = _C.nms(boxes, scores, iou_threshold, keep, stream=_stream(keep))
    return keep[:count].clone()


@_nms_op.register_fake
def _(boxes, scores, iou_threshold):
    torch._check(boxes.dim() == 2 and boxes.shape[1] == 4, lambda: "nms: boxes must have shape [N, 4]")
    torch._check(scores.dim() == 1, lambda: "nms: scores must have shape [N]")
    k = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((k,), dtype=torch.int64)


def nms(boxes: Array, scores: Array, iou_threshold: float) -> Array:
    """Greedy non-maximum suppression (torchvision.ops.nms semantics).

    Args:
        boxes: Tensor[N, 4] float32|float64, XYXY, or a NumPy array.
        scores: Tensor[N], same dtype as boxes.
        iou_threshold: boxes with IoU > iou_threshold with a kept, higher-ranked
            box are dropped.
    Returns:
        int64 Tensor[K] (NumPy array for NumPy inputs): indices of the kept
        boxes, sorted by decreasing score (ties by index, NaN scores first).
    """
    if _both_or_neither("nms", boxes, scores):
        boxes = np.ascontiguousarray(boxes)
        scores = np.ascontiguousarray(scores)
        keep = np.empty(_np_nrows(boxes), dtype=np.int64)
        count = _C.nms(boxes, scores, float(iou_threshold), keep)
        return keep[:count].copy()
    return _nms_op(boxes, scores, float(iou_threshold))


# ------------------------------------------------------------- batched_nms ----

def _int_idxs(idxs):
    if isinstance(idxs, Tensor) and idxs.dtype in (torch.int8, torch.int16, torch.uint8):
        return idxs.to(torch.int64)
    if is_numpy(idxs) and idxs.dtype in (np.int8, np.int16, np.uint8, np.uint16):
        return idxs.astype(np.int64)
    return idxs


@torch.library.custom_op("maskrcnn_native::batched_nms", mutates_args=())
def _batched_nms_op(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    boxes = boxes.detach().contiguous()
    keep = torch.empty(_nrows(boxes), dtype=torch.int64, device=boxes.device)
    count = _C.batched_nms(boxes, scores.detach().contiguous(), idxs.contiguous(), iou_threshold, keep, stream=_stream(keep))
    return keep[:count].clone()


@_batched_nms_op.register_fake
def _(boxes, scores, idxs, iou_threshold):
    torch._check(boxes.dim() == 2 and boxes.shape[1] == 4,
                 lambda: "batched_nms: boxes must have shape [N, 4]")
    k = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((k,), dtype=torch.int64)


def batched_nms(boxes: Array, scores: Array, idxs: Array, iou_threshold: float) -> Array:
    """NMS applied independently per category (torchvision.ops.batched_nms).

    Args:
        boxes: Tensor[N, 4] float32|float64, XYXY, or a NumPy array.
        scores: Tensor[N], same dtype as boxes.
        idxs: Tensor[N] int64|int32 (int8/int16/uint8 are widened): the
            category (or image * classes + class) of each box.
        iou_threshold: as in :func:`nms`.
    Returns:
        int64 Tensor[K]: kept indices sorted by decreasing score, ties by index
        (equal to running ``nms`` per category and merging by a stable sort).
    """
    idxs = _int_idxs(idxs)
    if _both_or_neither("batched_nms", boxes, scores, idxs):
        boxes = np.ascontiguousarray(boxes)
        keep = np.empty(_np_nrows(boxes), dtype=np.int64)
        count = _C.batched_nms(boxes, np.ascontiguousarray(scores), np.ascontiguousarray(idxs),
                               float(iou_threshold), keep)
        return keep[:count].copy()
    return _batched_nms_op(boxes, scores, idxs, float(iou_threshold))


# ----------------------------------------------------------------- box_iou ----

@torch.library.custom_op("maskrcnn_native::box_iou", mutates_args=())
def _box_iou_op(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    boxes1 = boxes1.detach().contiguous()
    boxes2 = boxes2.detach().contiguous()
    out = torch.empty((_nrows(boxes1), _nrows(boxes2)), dtype=boxes1.dtype, device=boxes1.device)
    _C.box_iou(boxes1, boxes2, out, stream=_stream(out))
    return out


@_box_iou_op.register_fake
def _(boxes1, boxes2):
    torch._check(boxes1.dim() == 2 and boxes1.shape[1] == 4, lambda: "box_iou: boxes1 must have shape [N, 4]")
    torch._check(boxes2.dim() == 2 and boxes2.shape[1] == 4, lambda: "box_iou: boxes2 must have shape [M, 4]")
    return boxes1.new_empty((boxes1.shape[0], boxes2.shape[0]))


def box_iou(boxes1: Array, boxes2: Array) -> Array:
    """Pairwise IoU (torchvision.ops.box_iou, XYXY, no +1).

    Args:
        boxes1: Tensor[N, 4] float32|float64 (or NumPy).
        boxes2: Tensor[M, 4], same dtype.
    Returns:
        Tensor[N, M] in the boxes' dtype: inter / (area1 + area2 - inter);
        NaN where a coordinate is NaN or the union is 0. Not differentiable.
    """
    if _both_or_neither("box_iou", boxes1, boxes2):
        boxes1 = np.ascontiguousarray(boxes1)
        boxes2 = np.ascontiguousarray(boxes2)
        out = np.empty((_np_nrows(boxes1), _np_nrows(boxes2)), dtype=boxes1.dtype)
        _C.box_iou(boxes1, boxes2, out)
        return out
    return _box_iou_op(boxes1, boxes2)
