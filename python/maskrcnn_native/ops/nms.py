"""Non-maximum suppression and pairwise IoU.

Boxes are ``(x1, y1, x2, y2)`` (XYXY) in any consistent unit, widths are
``x2 - x1`` (no +1). Semantics follow torchvision exactly:

* Boxes are visited in a stable descending sort of the scores: equal scores
  keep input order, ``-0.0`` ties ``+0.0``, and NaN scores rank above every
  number (that is what ``torch.sort(descending=True, stable=True)`` does, so
  torchvision visits them first too).
* A visited box is kept unless an already kept box has
  ``IoU > iou_threshold``. IoU is ``inter / (area_a + area_b - inter)``
  computed in the boxes' dtype (float16/bfloat16 boxes and scores: in
  float32, which holds them exactly) with the same operations as torchvision's CPU
  kernel, and compared with the threshold in double, so keep lists are
  identical, duplicates and ties included. Boxes with a NaN coordinate, zero
  or negative area have IoU 0 or NaN with everything: they are kept (for
  ``iou_threshold >= 0``) and suppress nothing.
* ``batched_nms`` runs an independent NMS per category (not the coordinate
  offset trick, which can change answers) and returns the kept indices in the
  same global visiting order as ``nms``: by score descending, ties by index.
* ``box_iou`` on float16/bfloat16 or integer boxes returns float32 IoU computed
  as torchvision's ``box_iou`` does (areas and intersections in the upcast type).

The public functions are TorchScript-scriptable; NumPy inputs take an
eager-only path.
"""

from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.fx.experimental.symbolic_shapes import guard_or_false

from ._lib import stream as _stream
from . import _validate as _V
from ._lib import FLOATS, HALF, INTS, DTypeError, _C, check_same_dtype, check_tensor, is_numpy

Array = Union[Tensor, np.ndarray]


def _nrows(t) -> int:
    return int(t.shape[0]) if t.dim() >= 1 else 0


def _np_nrows(a: np.ndarray) -> int:
    return int(a.shape[0]) if a.ndim >= 1 else 0


def _both_or_neither(op: str, *xs) -> bool:
    """True for NumPy inputs; TypeError when NumPy and tensors are mixed."""
    nps = [is_numpy(x) for x in xs]
    if any(nps) and not all(nps):
        raise DTypeError(f"{op}: inputs must all be NumPy arrays or all be tensors")
    if not any(nps):
        for x in xs:
            if not isinstance(x, Tensor):
                raise DTypeError(f"{op}: expected a Tensor or a NumPy array, got {type(x).__name__}")
    return all(nps)


def _half_pair(op: str, boxes: Tensor, scores: Tensor):
    """float16/bfloat16 boxes and scores run the float32 kernel (exact upcast)."""
    if boxes.dtype in HALF or scores.dtype in HALF:
        check_same_dtype(op, "scores", scores, "boxes", boxes)
        return boxes.float(), scores.float()
    return boxes, scores


# --------------------------------------------------------------------- nms ----


@torch.library.custom_op("maskrcnn_native::nms", mutates_args=())
def _nms_op(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    boxes, scores = _half_pair("nms", boxes.detach(), scores.detach())
    boxes = boxes.contiguous()
    scores = scores.contiguous()
    keep = torch.empty(_nrows(boxes), dtype=torch.int64, device=boxes.device)
    count = _C.nms(boxes, scores, iou_threshold, keep, stream=_stream(keep))
    return keep[:count].clone()


@_nms_op.register_fake
def _(boxes, scores, iou_threshold):
    torch._check(boxes.dim() == 2 and boxes.shape[1] == 4, lambda: "nms: boxes must have shape [N, 4]")
    torch._check(scores.dim() == 1, lambda: "nms: scores must have shape [N]")
    k = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((k,), dtype=torch.int64)


def _nms_numpy(boxes, scores, iou_threshold):
    boxes = np.ascontiguousarray(boxes)
    scores = np.ascontiguousarray(scores)
    keep = np.empty(_np_nrows(boxes), dtype=np.int64)
    count = _C.nms(boxes, scores, float(iou_threshold), keep)
    return keep[:count].copy()


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression (torchvision.ops.nms semantics).

    Args:
        boxes: Tensor[N, 4] float16|bfloat16|float32|float64, XYXY, or a NumPy array.
        scores: Tensor[N], same dtype as boxes.
        iou_threshold: boxes with IoU > iou_threshold with a kept, higher-ranked
            box are dropped.
    Returns:
        int64 Tensor[K] (NumPy array for NumPy inputs): indices of the kept
        boxes, sorted by decreasing score (ties by index, NaN scores first).
        On CUDA the whole pass runs on the device; the one synchronisation is
        on the current stream, to copy K (8 bytes) back and size the result.
    """
    if not torch.jit.is_scripting():
        iou_threshold = _V.real("nms", "iou_threshold", iou_threshold, finite=False)
        _V.array("nms", "boxes", boxes)
        _V.array("nms", "scores", scores)
        if _both_or_neither("nms", boxes, scores):
            return _nms_numpy(boxes, scores, iou_threshold)
        check_tensor("nms", "boxes", boxes)
        check_tensor("nms", "scores", scores)
    return torch.ops.maskrcnn_native.nms(boxes, scores, float(iou_threshold))


# ------------------------------------------------------------- batched_nms ----


def _int_idxs(idxs):
    if isinstance(idxs, Tensor) and idxs.dtype in (torch.int8, torch.int16, torch.uint8):
        return idxs.to(torch.int64)
    if is_numpy(idxs) and idxs.dtype in (np.int8, np.int16, np.uint8, np.uint16):
        return idxs.astype(np.int64)
    return idxs


@torch.library.custom_op("maskrcnn_native::batched_nms", mutates_args=())
def _batched_nms_op(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    boxes, scores = _half_pair("batched_nms", boxes.detach(), scores.detach())
    boxes = boxes.contiguous()
    keep = torch.empty(_nrows(boxes), dtype=torch.int64, device=boxes.device)
    count = _C.batched_nms(
        boxes, scores.contiguous(), idxs.detach().contiguous(), iou_threshold, keep, stream=_stream(keep)
    )
    return keep[:count].clone()


@_batched_nms_op.register_fake
def _(boxes, scores, idxs, iou_threshold):
    torch._check(boxes.dim() == 2 and boxes.shape[1] == 4, lambda: "batched_nms: boxes must have shape [N, 4]")
    k = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((k,), dtype=torch.int64)


def _batched_nms_numpy(boxes, scores, idxs, iou_threshold):
    boxes = np.ascontiguousarray(boxes)
    keep = np.empty(_np_nrows(boxes), dtype=np.int64)
    count = _C.batched_nms(boxes, np.ascontiguousarray(scores), np.ascontiguousarray(idxs), float(iou_threshold), keep)
    return keep[:count].copy()


def _known_empty(t: Tensor) -> bool:
    """``t.numel() == 0``; under torch.export / torch.compile a data-dependent
    (unbacked) size counts as not known to be empty, so the kernel runs and
    returns the empty result itself."""
    if torch.jit.is_scripting():
        return t.numel() == 0
    return bool(guard_or_false(t.numel() == 0))


def batched_nms(boxes: Tensor, scores: Optional[Tensor], idxs: Optional[Tensor], iou_threshold: float) -> Tensor:
    """NMS applied independently per category (torchvision.ops.batched_nms).

    Args:
        boxes: Tensor[N, 4] float16|bfloat16|float32|float64, XYXY, or a NumPy array.
        scores: Tensor[N], same dtype as boxes. May be None when boxes is empty.
        idxs: Tensor[N] int64|int32 (int8/int16/uint8 are widened): the
            category (or image * classes + class) of each box. May be None when
            boxes is empty.
        iou_threshold: as in :func:`nms`.
    Returns:
        int64 Tensor[K]: kept indices sorted by decreasing score, ties by index
        (equal to running ``nms`` per category and merging by a stable sort).
        Empty boxes give an empty int64 tensor whatever scores and idxs are (as torchvision).
        On CUDA all categories run in one pass on the device; the one
        synchronisation is on the current stream, for the keep count.
    """
    if isinstance(boxes, Tensor) and _known_empty(boxes):
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if not torch.jit.is_scripting():
        iou_threshold = _V.real("batched_nms", "iou_threshold", iou_threshold, finite=False)
        _V.array("batched_nms", "boxes", boxes)
        _V.array("batched_nms", "scores", scores)
        _V.array("batched_nms", "idxs", idxs, ints=True)
        idxs = _int_idxs(idxs)
        if _both_or_neither("batched_nms", boxes, scores, idxs):
            return _batched_nms_numpy(boxes, scores, idxs, iou_threshold)
        check_tensor("batched_nms", "boxes", boxes)
        check_tensor("batched_nms", "scores", scores)
        check_tensor("batched_nms", "idxs", idxs, INTS)
    assert scores is not None and idxs is not None, "batched_nms: scores and idxs must be tensors"
    if idxs.dtype != torch.int64 and idxs.dtype != torch.int32:
        idxs = idxs.to(torch.int64)
    return torch.ops.maskrcnn_native.batched_nms(boxes, scores, idxs, float(iou_threshold))


# ----------------------------------------------------------------- box_iou ----


@torch.library.custom_op("maskrcnn_native::box_iou", mutates_args=())
def _box_iou_op(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    boxes1 = boxes1.detach()
    boxes2 = boxes2.detach()
    if boxes1.dtype not in (torch.float32, torch.float64) or boxes2.dtype != boxes1.dtype:
        return _box_iou_upcast(boxes1, boxes2)
    boxes1 = boxes1.contiguous()
    boxes2 = boxes2.contiguous()
    out = torch.empty((_nrows(boxes1), _nrows(boxes2)), dtype=boxes1.dtype, device=boxes1.device)
    _C.box_iou(boxes1, boxes2, out, stream=_stream(out))
    return out


@_box_iou_op.register_fake
def _(boxes1, boxes2):
    torch._check(boxes1.dim() == 2 and boxes1.shape[1] == 4, lambda: "box_iou: boxes1 must have shape [N, 4]")
    torch._check(boxes2.dim() == 2 and boxes2.shape[1] == 4, lambda: "box_iou: boxes2 must have shape [M, 4]")
    return boxes1.new_empty((boxes1.shape[0], boxes2.shape[0]), dtype=_iou_dtype(boxes1, boxes2))


def _iou_dtype(boxes1: Tensor, boxes2: Tensor) -> torch.dtype:
    if boxes1.dtype == boxes2.dtype and boxes1.dtype in (torch.float32, torch.float64):
        return boxes1.dtype
    if torch.float64 in (boxes1.dtype, boxes2.dtype):
        return torch.float64
    return torch.float32


def _upcast(t: Tensor) -> Tensor:
    # Half floats -> float32, small ints -> int32 (what torchvision's box_iou does).
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def _box_iou_upcast(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU for float16/bfloat16/integer (or mixed) boxes, operation by operation as
    torchvision.ops.box_iou: areas in the upcast type, the corner differences in
    the promoted input type, then upcast, clamped and multiplied; float IoU out."""
    if boxes1.dim() != 2 or boxes1.shape[-1] != 4:
        raise _C.ShapeError(f"box_iou: boxes1 must have shape [N, 4], got {list(boxes1.shape)}")
    if boxes2.dim() != 2 or boxes2.shape[-1] != 4:
        raise _C.ShapeError(f"box_iou: boxes2 must have shape [M, 4], got {list(boxes2.shape)}")
    u1, u2 = _upcast(boxes1), _upcast(boxes2)
    area1 = (u1[:, 2] - u1[:, 0]) * (u1[:, 3] - u1[:, 1])
    area2 = (u2[:, 2] - u2[:, 0]) * (u2[:, 3] - u2[:, 1])
    lo = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    hi = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = _upcast(hi - lo).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return (inter / union).to(_iou_dtype(boxes1, boxes2))


def _box_iou_numpy(boxes1, boxes2):
    boxes1 = np.ascontiguousarray(boxes1)
    boxes2 = np.ascontiguousarray(boxes2)
    out = np.empty((_np_nrows(boxes1), _np_nrows(boxes2)), dtype=boxes1.dtype)
    _C.box_iou(boxes1, boxes2, out)
    return out


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU (torchvision.ops.box_iou, XYXY, no +1).

    Args:
        boxes1: Tensor[N, 4] float16|bfloat16|float32|float64 or integer (or NumPy float).
        boxes2: Tensor[M, 4], same dtype.
    Returns:
        Tensor[N, M]: inter / (area1 + area2 - inter), in the boxes' dtype for
        float32/float64 and float32 for float16/bfloat16/integer boxes (as
        torchvision); NaN where a coordinate is NaN or the union is 0. Not differentiable.
    """
    if not torch.jit.is_scripting():
        _V.array("box_iou", "boxes1", boxes1)
        _V.array("box_iou", "boxes2", boxes2)
        if getattr(boxes1, "ndim", 0) >= 1 and getattr(boxes2, "ndim", 0) >= 1:
            _V.elements("box_iou", "the IoU matrix", (boxes1.shape[0], boxes2.shape[0]))
        if _both_or_neither("box_iou", boxes1, boxes2):
            return _box_iou_numpy(boxes1, boxes2)
        check_tensor("box_iou", "boxes1", boxes1, FLOATS + INTS)
        check_tensor("box_iou", "boxes2", boxes2, FLOATS + INTS)
    return torch.ops.maskrcnn_native.box_iou(boxes1, boxes2)
