"""RoI feature extraction: RoIAlign (the paper's layer) and the section 4.2
ablations RoIPool and RoIWarp.

Tensors: ``input`` Tensor[N, C, H, W] float16|bfloat16|float32|float64, NCHW or
channels_last; ``boxes`` Tensor[K, 5] (batch_index, x1, y1, x2, y2) in image
pixels, same dtype as input, or a list of Tensor[L_i, 4] (x1, y1, x2, y2), one
per image. Outputs are Tensor[K, C, PH, PW] in the input's dtype and memory
format. float16/bfloat16 run the float32 kernels (geometry and accumulation in
float32) and round once on store, so the result equals the float32 computation
rounded to the dtype; the same holds for the gradients.

The public functions are TorchScript-scriptable (tensor-only path through
``torch.ops.maskrcnn_native.*``); the NumPy convenience path sits behind
``torch.jit.is_scripting()``. The boxes never receive a gradient.
"""

import functools
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch._jit_internal import BroadcastingList2

from ._lib import stream as _stream
from . import _validate as _V
from ._lib import (
    HALF,
    DTypeError,
    ShapeError,
    _C,
    as_feature_map,
    check_same_dtype,
    check_tensor,
    empty_like_layout,
    is_numpy,
    np_feature_map,
    wants_channels_last,
)


def _pair(output_size, op: str) -> Tuple[int, int]:
    ph, pw = _V.pair(op, "output_size", output_size, None, _V.MAX_OUTPUT_SIDE)
    if ph <= 0 or pw <= 0:  # before the output is allocated
        raise ShapeError(f"{op}: output_size must be positive, got ({ph}, {pw})")
    return ph, pw


def _scalars(op: str, input, boxes, spatial_scale, sampling_ratio=None):
    """(spatial_scale, sampling_ratio) checked before any allocation; NumPy dtypes too."""
    _V.array(op, "input", input)
    _V.array(op, "boxes", boxes)
    scale = _V.real(op, "spatial_scale", spatial_scale, finite=False)  # the kernel words NaN/inf/<= 0
    if sampling_ratio is None:
        return scale, 0
    sr = _V.integer(op, "sampling_ratio", sampling_ratio, -(2**31), _V.MAX_SAMPLING_RATIO, " samples per bin per axis")
    return scale, sr


def _check_out(op: str, input, rois, ph: int, pw: int) -> None:
    if getattr(input, "ndim", 0) == 4 and getattr(rois, "ndim", 0) == 2:
        _V.elements(op, "the output", (rois.shape[0], input.shape[1], ph, pw))


def convert_boxes_to_roi_format(boxes: List[Tensor]) -> Tensor:
    """List of Tensor[L_i, 4] -> Tensor[sum L_i, 5] with the image index first."""
    if len(boxes) == 0:
        return torch.zeros((0, 5))
    parts: List[Tensor] = []
    for i, b in enumerate(boxes):
        if not torch.jit.is_scripting():
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                shape = list(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise ShapeError(f"boxes[{i}] must be a Tensor[L, 4], got {shape}")
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], dim=1))
    return torch.cat(parts, dim=0)


def _check_boxes_arg(op: str, boxes) -> None:
    if not isinstance(boxes, (Tensor, list, tuple)):
        raise DTypeError(f"{op}: boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}")


def _rois_tensor(boxes: Union[Tensor, List[Tensor]], input: Tensor) -> Tensor:
    if isinstance(boxes, list):
        return convert_boxes_to_roi_format(boxes).to(dtype=input.dtype, device=input.device)
    return boxes


def _rois_eager(op: str, input, boxes):
    """Eager-only argument checks (dtype TypeErrors before DLPack export)."""
    _check_boxes_arg(op, boxes)
    check_tensor(op, "input", input)
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            check_tensor(op, f"boxes[{i}]", b)
        return convert_boxes_to_roi_format(list(boxes)).to(dtype=input.dtype, device=input.device)
    check_tensor(op, "rois", boxes)
    return boxes


def _is_numpy_call(op: str, input, boxes) -> bool:
    if is_numpy(input) or is_numpy(boxes):
        if not (is_numpy(input) and is_numpy(boxes)):
            raise DTypeError(f"{op}: input and boxes must both be NumPy arrays or both be tensors")
        return True
    return False


def _roi_eager(
    op: str,
    input,
    boxes,
    output_size,
    spatial_scale,
    sampling_ratio: Optional[int],
    numpy_fn: Callable[..., np.ndarray],
    tensor_fn: Callable[..., Tensor],
):
    """The eager path of roi_align / roi_warp / roi_pool: checks the arguments
    once, then calls ``numpy_fn(input, rois, ph, pw, scale, sampling_ratio)`` for
    NumPy arrays or ``tensor_fn(...)`` (the same arguments, rois Tensor[K, 5])
    for tensors."""
    ph, pw = _pair(output_size, op)
    scale, sr = _scalars(op, input, boxes, spatial_scale, sampling_ratio)
    if _is_numpy_call(op, input, boxes):
        _check_out(op, input, boxes, ph, pw)
        return numpy_fn(input, boxes, ph, pw, scale, sr)
    rois = _rois_eager(op, input, boxes)
    _check_out(op, input, rois, ph, pw)
    return tensor_fn(input, rois, ph, pw, scale, sr)


# The eager entry points hand these to _roi_eager. Named functions, not
# lambdas: torch.jit.script parses the (never compiled) eager branch as well,
# and its frontend rejects lambda expressions.
def _align_tensor(x: Tensor, r: Tensor, ph: int, pw: int, s: float, sr: int, aligned: bool, quantize: bool) -> Tensor:
    return torch.ops.maskrcnn_native.roi_align(x, r, s, ph, pw, sr, aligned, quantize)


def _pool_tensor(x: Tensor, r: Tensor, ph: int, pw: int, s: float, _sr) -> Tensor:
    return torch.ops.maskrcnn_native.roi_pool(x, r, s, ph, pw)[0]


def _pool_numpy(x, r, ph: int, pw: int, s: float, _sr) -> np.ndarray:
    return _roi_pool_numpy(x, r, ph, pw, s)


def _in_dtype(out: Tensor, dtype: torch.dtype) -> Tensor:
    """The kernels' result (float32 for half inputs) in the caller's dtype."""
    return out if out.dtype == dtype else out.to(dtype)


# ---------------------------------------------------------------- RoIAlign ----


def _half_in(op: str, input: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """float16/bfloat16 input: float32 copies for the kernels (rois must match input)."""
    if input.dtype in HALF:
        check_same_dtype(op, "rois", rois, "input", input)
        return input.float(), rois.float()
    return input, rois


@torch.library.custom_op("maskrcnn_native::roi_align", mutates_args=())
def _roi_align_op(
    input: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
    quantize: bool,
) -> Tensor:
    op = "roi_warp" if quantize else "roi_align"
    dtype = input.dtype
    x, r = _half_in(op, as_feature_map(input.detach()), rois.detach())
    r = r.contiguous()
    out = empty_like_layout((r.shape[0], x.shape[1], pooled_height, pooled_width), x, wants_channels_last(x))
    _C.roi_align_forward(
        x, r, out, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, quantize, stream=_stream(out)
    )
    return _in_dtype(out, dtype)


@_roi_align_op.register_fake
def _(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, quantize):
    torch._check(input.dim() == 4, lambda: "roi_align: input must have shape [N, C, H, W]")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "roi_align: rois must have shape [K, 5]")
    return empty_like_layout(
        (rois.shape[0], input.shape[1], pooled_height, pooled_width), input, wants_channels_last(input)
    )


@torch.library.custom_op("maskrcnn_native::roi_align_backward", mutates_args=())
def _roi_align_backward_op(
    grad: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
    quantize: bool,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    channels_last: bool,
) -> Tensor:
    op = "roi_warp_backward" if quantize else "roi_align_backward"
    dtype = grad.dtype
    g, r = _half_in(op, as_feature_map(grad.detach()), rois.detach())
    grad_input = empty_like_layout((batch_size, channels, height, width), g, channels_last)
    _C.roi_align_backward(
        g,
        r.contiguous(),
        grad_input,
        spatial_scale,
        pooled_height,
        pooled_width,
        sampling_ratio,
        aligned,
        quantize,
        stream=_stream(grad_input),
    )
    return _in_dtype(grad_input, dtype)


@_roi_align_backward_op.register_fake
def _(
    grad,
    rois,
    spatial_scale,
    pooled_height,
    pooled_width,
    sampling_ratio,
    aligned,
    quantize,
    batch_size,
    channels,
    height,
    width,
    channels_last,
):
    return empty_like_layout((batch_size, channels, height, width), grad, channels_last)


def _roi_align_setup(ctx, inputs, output):
    input, rois, spatial_scale, ph, pw, sampling_ratio, aligned, quantize = inputs
    ctx.save_for_backward(rois.detach())
    ctx.params = (spatial_scale, ph, pw, sampling_ratio, aligned, quantize)
    ctx.shape = tuple(input.shape)
    ctx.channels_last = wants_channels_last(input)


def _roi_align_grad(ctx, grad):
    (rois,) = ctx.saved_tensors
    n, c, h, w = ctx.shape
    gi = _roi_align_backward_op(grad, rois, *ctx.params, n, c, h, w, ctx.channels_last)
    return gi, None, None, None, None, None, None, None


_roi_align_op.register_autograd(_roi_align_grad, setup_context=_roi_align_setup)


def _roi_sample_numpy(op: str, input, rois, ph: int, pw: int, spatial_scale, sampling_ratio, aligned, quantize: bool):
    input = np_feature_map(input)
    rois = np.ascontiguousarray(rois)
    if input.ndim != 4:
        raise ShapeError(f"{op}: input must have shape [N, C, H, W], got {list(input.shape)}")
    out = np.empty((rois.shape[0] if rois.ndim == 2 else 0, input.shape[1], ph, pw), dtype=input.dtype)
    _C.roi_align_forward(input, rois, out, float(spatial_scale), ph, pw, int(sampling_ratio), bool(aligned), quantize)
    return out


def roi_align(
    input: Tensor,
    boxes: Union[Tensor, List[Tensor]],
    output_size: BroadcastingList2[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (He et al. 2017), torchvision's semantics and signature.

    Args:
        input: Tensor[N, C, H, W] float16|bfloat16|float32|float64 (NCHW or
            channels_last) or a NumPy array.
        boxes: Tensor[K, 5] (batch, x1, y1, x2, y2), same dtype as input, or a list of
            Tensor[L, 4], XYXY image pixels.
        output_size: int or (PH, PW).
        spatial_scale: feature-map size / image size (e.g. 0.25 for stride 4).
        sampling_ratio: samples per bin per axis; <= 0 means ceil(roi_size / output_size).
        aligned: shift the RoI by -0.5 pixel (the pixel-centre-correct variant).
    Returns:
        Tensor[K, C, PH, PW] in input's dtype and memory format; differentiable w.r.t. input.
        Scriptable with torch.jit.script; registered for autocast (runs in float32 and
        returns the input's dtype, as torchvision).
    """
    if not torch.jit.is_scripting():
        return _roi_eager(
            "roi_align",
            input,
            boxes,
            output_size,
            spatial_scale,
            sampling_ratio,
            functools.partial(_roi_sample_numpy, "roi_align", aligned=aligned, quantize=False),
            functools.partial(_align_tensor, aligned=bool(aligned), quantize=False),
        )
    return torch.ops.maskrcnn_native.roi_align(
        input, _rois_tensor(boxes, input), spatial_scale, output_size[0], output_size[1], sampling_ratio, aligned, False
    )


def roi_warp(
    input: Tensor,
    boxes: Union[Tensor, List[Tensor]],
    output_size: BroadcastingList2[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
) -> Tensor:
    """RoIWarp (paper section 4.2 ablation): the scaled RoI corners are rounded to
    integer feature-map coordinates, as RoIPool does, then bins are bilinearly
    sampled exactly as roi_align(aligned=False). Same shapes and dtypes as roi_align."""
    if not torch.jit.is_scripting():
        return _roi_eager(
            "roi_warp",
            input,
            boxes,
            output_size,
            spatial_scale,
            sampling_ratio,
            functools.partial(_roi_sample_numpy, "roi_warp", aligned=False, quantize=True),
            functools.partial(_align_tensor, aligned=False, quantize=True),
        )
    return torch.ops.maskrcnn_native.roi_align(
        input, _rois_tensor(boxes, input), spatial_scale, output_size[0], output_size[1], sampling_ratio, False, True
    )


# ----------------------------------------------------------------- RoIPool ----


@torch.library.custom_op("maskrcnn_native::roi_pool", mutates_args=())
def _roi_pool_op(
    input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int
) -> Tuple[Tensor, Tensor]:
    dtype = input.dtype
    x, r = _half_in("roi_pool", as_feature_map(input.detach()), rois.detach())
    r = r.contiguous()
    cl = wants_channels_last(x)
    shape = (r.shape[0], x.shape[1], pooled_height, pooled_width)
    out = empty_like_layout(shape, x, cl)
    argmax = torch.empty(
        shape, dtype=torch.int64, device=x.device, memory_format=torch.channels_last if cl else torch.contiguous_format
    )
    _C.roi_pool_forward(x, r, out, argmax, spatial_scale, pooled_height, pooled_width, stream=_stream(out))
    return _in_dtype(out, dtype), argmax


@_roi_pool_op.register_fake
def _(input, rois, spatial_scale, pooled_height, pooled_width):
    torch._check(input.dim() == 4, lambda: "roi_pool: input must have shape [N, C, H, W]")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "roi_pool: rois must have shape [K, 5]")
    cl = wants_channels_last(input)
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    out = empty_like_layout(shape, input, cl)
    argmax = torch.empty(
        shape,
        dtype=torch.int64,
        device=input.device,
        memory_format=torch.channels_last if cl else torch.contiguous_format,
    )
    return out, argmax


@torch.library.custom_op("maskrcnn_native::roi_pool_backward", mutates_args=())
def _roi_pool_backward_op(
    grad: Tensor,
    rois: Tensor,
    argmax: Tensor,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    channels_last: bool,
) -> Tensor:
    dtype = grad.dtype
    g, r = _half_in("roi_pool_backward", as_feature_map(grad.detach()), rois.detach())
    grad_input = empty_like_layout((batch_size, channels, height, width), g, channels_last)
    _C.roi_pool_backward(g, r.contiguous(), as_feature_map(argmax), grad_input, stream=_stream(grad_input))
    return _in_dtype(grad_input, dtype)


@_roi_pool_backward_op.register_fake
def _(grad, rois, argmax, batch_size, channels, height, width, channels_last):
    return empty_like_layout((batch_size, channels, height, width), grad, channels_last)


def _roi_pool_setup(ctx, inputs, output):
    input, rois, _, _, _ = inputs
    ctx.save_for_backward(rois.detach(), output[1])
    ctx.shape = tuple(input.shape)
    ctx.channels_last = wants_channels_last(input)


def _roi_pool_grad(ctx, grad, grad_argmax):
    rois, argmax = ctx.saved_tensors
    n, c, h, w = ctx.shape
    return _roi_pool_backward_op(grad, rois, argmax, n, c, h, w, ctx.channels_last), None, None, None, None


_roi_pool_op.register_autograd(_roi_pool_grad, setup_context=_roi_pool_setup)


def _roi_pool_numpy(input, rois, ph: int, pw: int, spatial_scale):
    input = np_feature_map(input)
    rois = np.ascontiguousarray(rois)
    if input.ndim != 4:
        raise ShapeError(f"roi_pool: input must have shape [N, C, H, W], got {list(input.shape)}")
    shape = (rois.shape[0] if rois.ndim == 2 else 0, input.shape[1], ph, pw)
    out = np.empty(shape, dtype=input.dtype)
    argmax = np.empty(shape, dtype=np.int64)
    _C.roi_pool_forward(input, rois, out, argmax, float(spatial_scale), ph, pw)
    return out


def roi_pool(
    input: Tensor, boxes: Union[Tensor, List[Tensor]], output_size: BroadcastingList2[int], spatial_scale: float = 1.0
) -> Tensor:
    """RoIPool (Fast R-CNN; the paper's section 4.2 baseline), torchvision's semantics:
    RoI corners rounded, bins quantised with floor/ceil, max over each bin
    (empty bins give 0). Same shapes and dtypes as roi_align; differentiable w.r.t. input."""
    if not torch.jit.is_scripting():
        return _roi_eager(
            "roi_pool",
            input,
            boxes,
            output_size,
            spatial_scale,
            None,
            _pool_numpy,
            _pool_tensor,
        )
    return torch.ops.maskrcnn_native.roi_pool(
        input, _rois_tensor(boxes, input), spatial_scale, output_size[0], output_size[1]
    )[0]
