"""Mask pasting: per-detection M x M mask probabilities -> image-sized masks.

``paste_masks`` turns the mask head's ``[N, M, M]`` probabilities and the
detections' boxes into image masks, with the threshold fused in, and can
return box-local crops or COCO RLE instead of N full-image masks.

Modes (``boxes`` are XYXY in image pixels; pixel ``x`` spans ``[x, x+1)``):

``"aligned"`` (default)
    Pixel ``(x, y)`` receives a value iff its centre lies in the half-open box:
    ``x1 <= x + 0.5 < x2`` and ``y1 <= y + 0.5 < y2``. Mask cell ``i`` covers
    ``[x1 + i*w/M, x1 + (i+1)*w/M)`` with ``w = x2 - x1``, so the centre maps to
    the continuous mask coordinate ``u = (x + 0.5 - x1) * (M / w) - 0.5``, which
    is clamped to ``[0, M-1]``; with ``i0 = floor(u)``, ``i1 = min(i0+1, M-1)``,
    ``l1 = u - i0``, ``l0 = 1 - l1`` (same for rows, ``v``, ``j0``, ``j1``,
    ``k0``, ``k1``) the value is
    ``(m[j0,i0]*l0 + m[j0,i1]*l1)*k0 + (m[j1,i0]*l0 + m[j1,i1]*l1)*k1``
    (each ``a*wa + b*wb`` is evaluated as ``fma(a, wa, b*wb)``). No rounding of
    the box anywhere; all arithmetic in the masks' dtype. Degenerate boxes
    (``x2 <= x1`` or ``y2 <= y1``) paste nothing.
``"torchvision"``
    Exactly ``torchvision.models.detection.roi_heads.paste_masks_in_image``
    (padding 1): the mask is zero-padded to ``M+2``, the box is scaled about its
    centre by ``(M+2)/M`` and truncated to integers ``(X1, Y1, X2, Y2)``, the
    padded mask is resized with ``F.interpolate(mode="bilinear",
    align_corners=False)`` to ``(max(Y2-Y1+1, 1), max(X2-X1+1, 1))`` and pixels
    ``[max(X1, 0), min(X2+1, W))`` x ``[max(Y1, 0), min(Y2+1, H))`` receive it.
    The arithmetic follows torch's CPU bilinear kernels operation by operation
    (including their fused multiply-adds and their separate kernel for outputs
    with h + w <= 128), so results are torchvision's bits on x86-64 (checked
    with torch 2.14 / torchvision 0.29.1) and within float rounding of them
    elsewhere. Where torchvision raises (some
    boxes entirely left of / above the image trip its negative slicing) the
    mask is simply empty.

In both modes pixels outside the pasted rectangle are 0 / False, and a box
with a non-finite coordinate (or beyond 2^62) pastes nothing.

Performance: separable per-mask tap tables, only the clipped box rectangle is
computed, the threshold is fused, masks run in parallel on the native thread
pool and bool output is written directly (the zero fill of a full-image mask
is done by the thread that owns it).
"""

import operator
from typing import Any, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._lib import stream as _stream
from . import _validate as _V
from ._lib import FLOATS, HALF, INTS, DTypeError, ShapeError, _C, check_tensor, is_numpy

_OP = "paste_masks"
_OUTPUTS = ("bitmap", "crops", "rle")

ArrayLike = Union[Tensor, np.ndarray]


class MaskCrops(NamedTuple):
    """Box-local masks: what ``paste_masks(..., output="crops")`` returns.

    ``masks[i]`` is the ``[h_i, w_i]`` crop (bool, or the masks' dtype when
    ``threshold=None``) of mask i's pasted rectangle; it sits at column
    ``offsets[i, 0]`` and row ``offsets[i, 1]`` of the image, everything else
    of mask i being 0. A mask that pastes nothing has a ``[0, 0]`` crop at
    ``(0, 0)``. The crops are views into one flat buffer. Tensors in, tensors
    out; NumPy in, NumPy out.
    """

    masks: List[ArrayLike]
    offsets: ArrayLike  # int64 [N, 2]: (x0, y0)
    image_size: Tuple[int, int]

    def to_bitmap(self) -> ArrayLike:
        """The full ``[N, H, W]`` masks (materialises them; for convenience and tests)."""
        h, w = self.image_size
        n = len(self.masks)
        if isinstance(self.offsets, np.ndarray):
            dtype = self.masks[0].dtype if n else np.bool_
            out = np.zeros((n, h, w), dtype=dtype)
        else:
            dtype = self.masks[0].dtype if n else torch.bool
            out = torch.zeros((n, h, w), dtype=dtype, device=self.offsets.device)
        for i, (crop, (x0, y0)) in enumerate(zip(self.masks, self.offsets.tolist())):
            ch, cw = crop.shape
            out[i, y0 : y0 + ch, x0 : x0 + cw] = crop
        return out


# ----------------------------------------------------------- bitmap (op) ----


def _out_shape(masks, height: int, width: int) -> Tuple[int, int, int]:
    # Never fails on bad arguments: the native validation words those errors.
    n = masks.shape[0] if masks.ndim >= 1 else 0
    if not (0 < height < 2**31 and 0 < width < 2**31):
        return n, 0, 0
    return n, height, width


@torch.library.custom_op("maskrcnn_native::paste_masks", mutates_args=())
def _paste_masks_op(
    masks: Tensor, boxes: Tensor, height: int, width: int, mode: str, threshold: Optional[float]
) -> Tensor:
    half = masks.dtype in HALF
    m, b = _to_compute(masks.detach(), boxes.detach())
    dtype = torch.bool if threshold is not None else m.dtype
    out = torch.empty(_out_shape(m, height, width), dtype=dtype, device=m.device)
    _C.paste_masks_forward(m, b, out, height, width, mode, threshold, stream=_stream(out))
    return out.to(masks.dtype) if half and threshold is None else out


def _to_compute(masks: Tensor, boxes: Tensor):
    """masks [N, M, M] contiguous in a kernel dtype (float16/bfloat16 -> float32),
    boxes converted to it (float32 for float32 / half masks)."""
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dtype in HALF:
        masks = masks.float()
    masks = masks.contiguous()
    if masks.dtype in (torch.float32, torch.float64) and boxes.dtype != masks.dtype:
        boxes = boxes.to(masks.dtype)
    return masks, boxes.contiguous()


@_paste_masks_op.register_fake
def _(masks, boxes, height, width, mode, threshold):
    torch._check(masks.dim() == 3, lambda: f"{_OP}: masks must have shape [N, M, M]")
    torch._check(boxes.dim() == 2 and boxes.shape[1] == 4, lambda: f"{_OP}: boxes must have shape [N, 4]")
    dtype = torch.bool if threshold is not None else masks.dtype
    return masks.new_empty((masks.shape[0], height, width), dtype=dtype)


# ------------------------------------------------------------- arguments ----


def _image_size(image_size) -> Tuple[int, int]:
    try:
        h, w = image_size
    except (TypeError, ValueError):
        raise ValueError(f"{_OP}: image_size must be a pair (H, W), got {image_size!r:.60}") from None
    try:
        if isinstance(h, bool) or isinstance(w, bool):
            raise TypeError
        h, w = operator.index(h), operator.index(w)
    except TypeError:
        raise TypeError(f"{_OP}: image_size must hold two ints, got {image_size!r:.60}") from None
    if h < 1 or w < 1:  # here, not only in C++: an int beyond int64 would fail the op's cast first
        raise ShapeError(f"{_OP}: image_size must be two positive ints below 2^31, got ({h}, {w})")
    for name, v in (("image_size[0]", h), ("image_size[1]", w)):
        if v > _V.MAX_IMAGE_SIDE:
            raise ShapeError(f"{_OP}: {name} = {v} is over the limit of {_V.MAX_IMAGE_SIDE} pixels")
    return h, w


def _threshold(threshold) -> Optional[float]:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"{_OP}: threshold must be a float or None, got {type(threshold).__name__}")
    return _V.real(_OP, "threshold", threshold, finite=False)


def _prepare(masks, boxes):
    """Same container kind for both, masks [N, M, M] contiguous, boxes in masks' dtype."""
    _V.array(_OP, "masks", masks)
    _V.array(_OP, "boxes", boxes, ints=True)
    if is_numpy(masks) or is_numpy(boxes):
        if not (is_numpy(masks) and is_numpy(boxes)):
            raise TypeError(f"{_OP}: masks and boxes must both be NumPy arrays or both be tensors")
        if masks.ndim == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        masks = np.ascontiguousarray(masks)
        if masks.dtype in (np.float32, np.float64) and boxes.dtype != masks.dtype:
            boxes = boxes.astype(masks.dtype)
        return masks, np.ascontiguousarray(boxes), True
    if not isinstance(masks, Tensor) or not isinstance(boxes, Tensor):
        bad = masks if not isinstance(masks, Tensor) else boxes
        raise TypeError(f"{_OP}: masks and boxes must be tensors or NumPy arrays, got {type(bad).__name__}")
    check_tensor(_OP, "masks", masks)
    check_tensor(_OP, "boxes", boxes, FLOATS + INTS)
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    # negative-bit views (torch._neg_view) export their raw memory through DLPack
    return masks.detach().resolve_neg(), boxes.detach().resolve_neg(), False


# ----------------------------------------------------------------- crops ----


def _crops(masks, boxes, h: int, w: int, mode: str, threshold: Optional[float], numpy: bool):
    """(flat buffer, rects int64 [N, 4], list of crop views)."""
    n = masks.shape[0] if masks.ndim >= 1 else 0
    lib = np if numpy else torch
    rects = lib.empty((n, 4), dtype=lib.int64) if numpy else torch.empty((n, 4), dtype=torch.int64, device=masks.device)
    _C.paste_masks_plan(masks, boxes, rects, h, w, mode, stream=_stream(rects))
    cw = rects[:, 2] - rects[:, 0]
    ch = rects[:, 3] - rects[:, 1]
    areas = (cw * ch).tolist()
    total = int(sum(areas))
    if threshold is not None:
        dtype = np.bool_ if numpy else torch.bool
    else:
        dtype = masks.dtype
    flat = lib.empty((total,), dtype=dtype) if numpy else torch.empty((total,), dtype=dtype, device=masks.device)
    _C.paste_masks_crops(masks, boxes, rects, flat, h, w, mode, threshold, stream=_stream(flat))
    shapes = zip(ch.tolist(), cw.tolist())
    if numpy:
        starts = np.concatenate([[0], np.cumsum(areas)]).astype(np.int64).tolist() if n else [0]
        crops = [flat[starts[i] : starts[i + 1]].reshape(s) for i, s in enumerate(shapes)]
    else:
        crops = [part.view(s) for part, s in zip(torch.split(flat, areas), shapes)] if n else []
    return flat, rects, crops


# ------------------------------------------------------------------- RLE ----


def _rle(flat, rects, h: int, w: int) -> list:
    n = rects.shape[0]
    if n == 0:
        return []
    from pycocotools import mask as mask_util

    rects_np = rects if isinstance(rects, np.ndarray) else rects.cpu().numpy()  # RLE: encoded on the host
    flat_np = flat if isinstance(flat, np.ndarray) else flat.cpu().numpy()
    cw = rects_np[:, 2] - rects_np[:, 0]
    ch = rects_np[:, 3] - rects_np[:, 1]
    caps = cw * (ch + 1) + 2
    starts = np.concatenate([[0], np.cumsum(caps)]).astype(np.int64)
    counts = np.empty((int(starts[-1]),), dtype=np.int64)
    lengths = np.empty((n,), dtype=np.int64)
    _C.paste_masks_rle_counts(flat_np, rects_np, counts, lengths, h, w)
    size = [h, w]
    objs = [{"size": size, "counts": counts[s : s + k]} for s, k in zip(starts[:-1].tolist(), lengths.tolist())]
    # pycocotools' rleToString writes past its buffer for a single run of
    # >= 2^24 pixels (an empty mask on a large image): those are encoded here.
    out: list = [None] * n
    rest = [i for i, k in enumerate(lengths.tolist()) if k != 1]
    for i, k in enumerate(lengths.tolist()):
        if k == 1:
            out[i] = {"size": list(size), "counts": rle_string(objs[i]["counts"].tolist())}
    if rest:
        for i, r in zip(rest, mask_util.frPyObjects([objs[i] for i in rest], h, w)):
            out[i] = r
    return out


def rle_string(counts) -> bytes:
    """COCO compressed RLE string of run lengths ``counts`` (pycocotools' format:
    runs after the second as differences to the run two before, 5-bit chunks
    with a continuation bit, offset by 48)."""
    out = bytearray()
    for i, x in enumerate(counts):
        x = int(x)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(c + 48)
    return bytes(out)


# ---------------------------------------------------------------- public ----


def paste_masks(
    masks: Tensor,
    boxes: Tensor,
    image_size: List[int],
    mode: str = "aligned",
    threshold: Optional[float] = 0.5,
    output: str = "bitmap",
) -> Tensor:
    """Pastes per-box mask probabilities into an image (see the module docstring for the modes).

    Args:
        masks: Tensor[N, M, M] float16|bfloat16|float32|float64 probabilities (``[N, 1, M, M]``
            is accepted), or a NumPy array. float16/bfloat16 masks (and boxes) are computed in
            float32: probabilities are the float32 result rounded once, the threshold compares
            the float32 value.
        boxes: Tensor[N, 4] XYXY, absolute image pixels (converted to masks' dtype; geometry is
            computed in that dtype, so pass float32 for float32 masks to match torchvision's bits).
        image_size: (H, W), both >= 1.
        mode: ``"aligned"`` (default) or ``"torchvision"``.
        threshold: pixels with ``value > threshold`` (compared in masks' dtype) are True; must be
            finite and >= 0. ``None`` returns the probabilities instead of bool.
        output: ``"bitmap"``: Tensor[N, H, W] bool (masks' dtype with ``threshold=None``).
            ``"crops"``: a :class:`MaskCrops` (box-local crops + int64 [N, 2] (x0, y0) offsets),
            never materialising N full-image masks. ``"rle"``: a list of N COCO RLE dicts
            ``{"size": [H, W], "counts": bytes}``, identical to ``pycocotools.mask.encode`` of the
            full bitmaps, computed from the crops (needs a threshold).
    Returns:
        As selected by ``output``; NumPy inputs give NumPy arrays. Not differentiable.
        Scriptable (``output="bitmap"`` only, image_size a list of two ints).
    """
    if not torch.jit.is_scripting():
        return _paste_masks_eager(masks, boxes, image_size, mode, threshold, output)
    # The scripted (tensor-only) path: bitmap output.
    if output != "bitmap":
        raise ValueError("paste_masks: only output='bitmap' is available in TorchScript")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    return torch.ops.maskrcnn_native.paste_masks(masks, boxes, image_size[0], image_size[1], mode, threshold)


def _paste_masks_eager(masks, boxes, image_size, mode: str, threshold: Optional[float], output: str) -> Any:
    if output not in _OUTPUTS:
        raise ShapeError(f"{_OP}: output must be 'bitmap', 'crops' or 'rle', got {output!r}")
    if not isinstance(mode, str):
        raise TypeError(f"{_OP}: mode must be a str, got {type(mode).__name__}")
    h, w = _image_size(image_size)
    thr = _threshold(threshold)
    if output == "rle" and thr is None:
        raise ValueError(f"{_OP}: output='rle' needs a threshold (COCO RLE is binary), got None")
    masks, boxes, numpy = _prepare(masks, boxes)
    if output == "bitmap":
        if getattr(masks, "ndim", 0) >= 1:
            _V.elements(_OP, "the pasted masks", (masks.shape[0], h, w))
        if numpy:
            out = np.empty(_out_shape(masks, h, w), dtype=np.bool_ if thr is not None else masks.dtype)
            _C.paste_masks_forward(masks, boxes, out, h, w, mode, thr)
            return out
        return _paste_masks_op(masks, boxes, h, w, mode, thr)
    half_dtype = masks.dtype if (not numpy and masks.dtype in HALF) else None
    if not numpy:
        masks, boxes = _to_compute(masks, boxes)
    flat, rects, crops = _crops(masks, boxes, h, w, mode, thr, numpy)
    if half_dtype is not None and thr is None:
        flat = flat.to(half_dtype)
        crops = [c.to(half_dtype) for c in crops]
    if output == "crops":
        return MaskCrops(crops, rects[:, :2].copy() if numpy else rects[:, :2].clone(), (h, w))
    return _rle(flat, rects, h, w)
