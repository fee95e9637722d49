"""Box regression targets: torchvision ``BoxCoder`` encode / decode.

Boxes are XYXY; width = x2 - x1 (no +1), centre = x1 + 0.5 * width. All
arithmetic happens in the input dtype (the weights and clamp are cast to it),
operation by operation as torchvision does. ``log`` / ``exp`` come from the
C library, so float results can differ from torch's vectorised ones by an
ulp. Neither op is differentiable (box regression losses are computed on the
encoded targets, which need no gradient).
"""

import math
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._lib import stream as _stream
from . import _validate as _V
from ._lib import FLOATS, HALF, INTS, _C, check_tensor, compute_dtype, is_numpy
from .nms import _both_or_neither, _np_nrows, _nrows

Array = Union[Tensor, np.ndarray]
DEFAULT_CLAMP = math.log(1000.0 / 16)


def _weights(op: str, weights) -> Tuple[float, float, float, float]:
    if isinstance(weights, Tensor) or is_numpy(weights):
        weights = weights.tolist()
    try:
        w = tuple(_V.real(op, "weights", v, finite=False) for v in weights)
    except (TypeError, ValueError) as e:
        if isinstance(e, _V.ShapeError) and "too large" in str(e):
            raise
        raise TypeError(f"{op}: weights must be a sequence of 4 numbers, got {weights!r}") from None
    if len(w) != 4:
        raise ValueError(f"{op}: weights must have 4 entries (wx, wy, ww, wh), got {len(w)}")
    return w  # type: ignore[return-value]


@torch.library.custom_op("maskrcnn_native::encode_boxes", mutates_args=())
def _encode_op(reference_boxes: Tensor, proposals: Tensor, weights: Sequence[float]) -> Tensor:
    reference_boxes = reference_boxes.detach().contiguous()
    out = torch.empty((_nrows(reference_boxes), 4), dtype=reference_boxes.dtype, device=reference_boxes.device)
    _C.encode_boxes(reference_boxes, proposals.detach().contiguous(), list(weights), out, stream=_stream(out))
    return out


@_encode_op.register_fake
def _(reference_boxes, proposals, weights):
    torch._check(reference_boxes.dim() == 2, lambda: "encode_boxes: reference_boxes must have shape [N, 4]")
    return reference_boxes.new_empty((reference_boxes.shape[0], 4))


def encode_boxes(reference_boxes: Array, proposals: Array, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> Array:
    """Regression targets of ``reference_boxes`` relative to ``proposals``.

    torchvision.models.detection._utils.encode_boxes semantics.

    Args:
        reference_boxes: Tensor[N, 4] float32|float64, XYXY (the targets,
            e.g. matched ground-truth boxes). NumPy arrays work too.
        proposals: Tensor[N, 4], same dtype (the anchors / proposals).
        weights: (wx, wy, ww, wh), e.g. (10, 10, 5, 5) for the box head.
    Returns:
        Tensor[N, 4] (dx, dy, dw, dh) with dx = wx * (ref_cx - prop_cx) / prop_w
        and dw = ww * log(ref_w / prop_w).
    """
    w = _weights("encode_boxes", weights)
    _V.array("encode_boxes", "reference_boxes", reference_boxes)
    _V.array("encode_boxes", "proposals", proposals)
    if _both_or_neither("encode_boxes", reference_boxes, proposals):
        reference_boxes = np.ascontiguousarray(reference_boxes)
        out = np.empty((_np_nrows(reference_boxes), 4), dtype=reference_boxes.dtype)
        _C.encode_boxes(reference_boxes, np.ascontiguousarray(proposals), list(w), out)
        return out
    check_tensor("encode_boxes", "reference_boxes", reference_boxes, (torch.float32, torch.float64))
    check_tensor("encode_boxes", "proposals", proposals, (torch.float32, torch.float64))
    return _encode_op(reference_boxes, proposals, list(w))


@torch.library.custom_op("maskrcnn_native::decode_boxes", mutates_args=())
def _decode_op(codes: Tensor, boxes: Tensor, weights: Sequence[float], clamp: float) -> Tensor:
    dtype = codes.dtype
    codes = codes.detach().to(compute_dtype(codes)).contiguous()
    boxes = boxes.detach()
    if dtype in HALF:  # the float32 kernel; float16/bfloat16 boxes upcast exactly
        check_tensor("decode_boxes", "boxes", boxes, FLOATS[:3])
        boxes = boxes.float()
    out = torch.empty(codes.shape, dtype=codes.dtype, device=codes.device)
    _C.decode_boxes(codes, boxes.contiguous(), list(weights), clamp, out, stream=_stream(out))
    return out if out.dtype == dtype else out.to(dtype)


@_decode_op.register_fake
def _(codes, boxes, weights, clamp):
    torch._check(codes.dim() == 2, lambda: "decode_boxes: codes must have shape [N, 4 * C]")
    return codes.new_empty(codes.shape)


def decode_boxes(
    codes: Tensor,
    boxes: Tensor,
    weights: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    clamp: float = DEFAULT_CLAMP,
) -> Tensor:
    """Boxes from regression codes (torchvision BoxCoder.decode_single).

    Args:
        codes: Tensor[N, 4 * C] float16|bfloat16|float32|float64: C sets of
            (dx, dy, dw, dh) per reference box (C = 1 for the RPN, C = classes
            for the box head). float16/bfloat16 codes run the float32 kernel
            (boxes in float32) and the result is rounded once to codes' dtype.
            Under ``torch.autocast`` both run in float32 and the result stays
            float32 (see ``ops/_autocast.py``).
        boxes: Tensor[N, 4] XYXY reference boxes; converted to codes' dtype
            (to float32 for half codes).
        weights: (wx, wy, ww, wh); the codes are divided by them.
        clamp: dw and dh are clamped to at most this (default log(1000 / 16)).
    Returns:
        Tensor[N, 4 * C] XYXY: (cx - w/2, cy - h/2, cx + w/2, cy + h/2) with
        cx = dx * bw + bcx and w = exp(dw) * bw, per set. Scriptable (weights a
        tuple of 4 floats there).
    """
    if torch.jit.is_scripting():
        if boxes.dtype != codes.dtype:
            boxes = boxes.to(codes.dtype)
        return torch.ops.maskrcnn_native.decode_boxes(
            codes, boxes, [weights[0], weights[1], weights[2], weights[3]], clamp
        )
    w = _weights("decode_boxes", weights)
    clamp = _V.real("decode_boxes", "clamp", clamp, finite=False)
    _V.array("decode_boxes", "codes", codes)
    _V.array("decode_boxes", "boxes", boxes, ints=True)
    if _both_or_neither("decode_boxes", codes, boxes):
        codes = np.ascontiguousarray(codes)
        boxes = np.ascontiguousarray(boxes, dtype=codes.dtype)
        out = np.empty(codes.shape, dtype=codes.dtype)
        _C.decode_boxes(codes, boxes, list(w), float(clamp), out)
        return out
    check_tensor("decode_boxes", "codes", codes, FLOATS)
    check_tensor("decode_boxes", "boxes", boxes, FLOATS + INTS)
    box_dtype = compute_dtype(codes)
    if boxes.dtype != box_dtype and not (codes.dtype in HALF and boxes.dtype in HALF):
        boxes = boxes.to(box_dtype)
    return torch.ops.maskrcnn_native.decode_boxes(codes, boxes, list(w), float(clamp))
