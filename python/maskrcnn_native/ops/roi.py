"""RoI feature extraction: RoIAlign (the paper's layer) and the section 4.2
ablations RoIPool and RoIWarp.

Tensors: ``input`` Tensor[N, C, H, W] float32|float64, NCHW or channels_last;
``boxes`` Tensor[K, 5] (batch_index, x1, y1, x2, y2) in image pixels, or a
list of Tensor[L_i, 4] (x1, y1, x2, y2), one per image. Outputs are
Tensor[K, C, PH, PW] in the input's memory format.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ._lib import _C, as_feature_map, empty_like_layout, is_numpy, np_feature_map, wants_channels_last
from ._lib import stream as _stream

BoxesArg = Union[Tensor, np.ndarray, Sequence[Tensor]]


def _pair(output_size, op: str) -> Tuple[int, int]:
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        return output_size, output_size
    try:
        h, w = output_size
        return int(h), int(w)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: output_size must be an int or a pair of ints, got {output_size!r}") from None


def convert_boxes_to_roi_format(boxes: Sequence[Tensor]) -> Tensor:
    """List of Tensor[L_i, 4] -> Tensor[sum L_i, 5] with the image index first."""
    if len(boxes) == 0:
        return torch.zeros((0, 5))
    parts = []
    for i, b in enumerate(boxes):
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
            shape = list(b.shape) if isinstance(b, Tensor) else type(b).__name__
            raise ValueError(f"boxes[{i}] must be a Tensor[L, 4], got {shape}")
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], dim=1))
    return torch.cat(parts, dim=0)


def _rois(boxes: BoxesArg, op: str):
    if isinstance(boxes, (Tensor, np.ndarray)):
        return boxes
    if isinstance(boxes, (list, tuple)):
        return convert_boxes_to_roi_format(boxes)
    raise TypeError(f"{op}: boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}")


# ---------------------------------------------------------------- RoIAlign ----

@torch.library.custom_op("maskrcnn_native::roi_align", mutates_args=())
def _roi_align_op(
    input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
    sampling_ratio: int, aligned: bool, quantize: bool,
) -> Tensor:
    input = as_feature_map(input)
    rois = rois.contiguous()
    out = empty_like_layout(
        (rois.shape[0], input.shape[1], pooled_height, pooled_width), input, wants_channels_last(input)
    )
    _C.roi_align_forward(input.detach(), rois.detach(), out, spatial_scale, pooled_height,
                         pooled_width, sampling_ratio, aligned, quantize, stream=_stream(out))
    return out


@_roi_align_op.register_fake
def _(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, quantize):
    torch._check(input.dim() == 4, lambda: "roi_align: input must have shape [N, C, H, W]")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "roi_align: rois must have shape [K, 5]")
    return empty_like_layout(
        (rois.shape[0], input.shape[1], pooled_height, pooled_width), input, wants_channels_last(input)
    )


@torch.library.custom_op("maskrcnn_native::roi_align_backward", mutates_args=())
def _roi_align_backward_op(
    grad: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
    sampling_ratio: int, aligned: bool, quantize: bool, batch_size: int, channels: int,
    height: int, width: int, channels_last: bool,
) -> Tensor:
    grad = as_feature_map(grad)
    grad_input = empty_like_layout((batch_size, channels, height, width), grad, channels_last)
    _C.roi_align_backward(grad, rois.contiguous(), grad_input, spatial_scale, pooled_height,
                          pooled_width, sampling_ratio, aligned, quantize, stream=_stream(grad_input))
    return grad_input


@_roi_align_backward_op.register_fake
def _(grad, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, quantize,
      batch_size, channels, height, width, channels_last):
    return empty_like_layout((batch_size, channels, height, width), grad, channels_last)


def _roi_align_setup(ctx, inputs, output):
    input, rois, spatial_scale, ph, pw, sampling_ratio, aligned, quantize = inputs
    ctx.save_for_backward(rois)
    ctx.params = (spatial_scale, ph, pw, sampling_ratio, aligned, quantize)
    ctx.shape = tuple(input.shape)
    ctx.channels_last = wants_channels_last(input)


def _roi_align_grad(ctx, grad):
    (rois,) = ctx.saved_tensors
    n, c, h, w = ctx.shape
    gi = _roi_align_backward_op(grad, rois, *ctx.params, n, c, h, w, ctx.channels_last)
    return gi, None, None, None, None, None, None, None


_roi_align_op.register_autograd(_roi_align_grad, setup_context=_roi_align_setup)


def _roi_sample(op, input, boxes, output_size, spatial_scale, sampling_ratio, aligned, quantize):
    ph, pw = _pair(output_size, op)
    rois = _rois(boxes, op)
    if is_numpy(input) or is_numpy(rois):
        if not (is_numpy(input) and is_numpy(rois)):
            raise TypeError(f"{op}: input and boxes must both be NumPy arrays or both be tensors")
        input = np_feature_map(input)
        rois = np.ascontiguousarray(rois)
        if input.ndim != 4:
            raise ValueError(f"{op}: input must have shape [N, C, H, W], got {list(input.shape)}")
        out = np.empty((rois.shape[0] if rois.ndim == 2 else 0, input.shape[1], ph, pw), dtype=input.dtype)
        _C.roi_align_forward(input, rois, out, float(spatial_scale), ph, pw, int(sampling_ratio),
                             bool(aligned), quantize)
        return out
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor or a NumPy array, got {type(input).__name__}")
    if isinstance(boxes, (list, tuple)):
        rois = rois.to(dtype=input.dtype, device=input.device)
    return _roi_align_op(input, rois, float(spatial_scale), ph, pw, int(sampling_ratio),
                         bool(aligned), quantize)


def roi_align(input, boxes: BoxesArg, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False):
    """RoIAlign (He et al. 2017), torchvision's semantics and signature.

    Args:
        input: Tensor[N, C, H, W] float32|float64 (NCHW or channels_last) or a NumPy array.
        boxes: Tensor[K, 5] (batch, x1, y1, x2, y2) or list of Tensor[L, 4], XYXY image pixels.
        output_size: int or (PH, PW).
        spatial_scale: feature-map size / image size (e.g. 0.25 for stride 4).
        sampling_ratio: samples per bin per axis; <= 0 means ceil(roi_size / output_size).
        aligned: shift the RoI by -0.5 pixel (the pixel-centre-correct variant).
    Returns:
        Tensor[K, C, PH, PW] in input's dtype and memory format; differentiable w.r.t. input.
    """
    return _roi_sample("roi_align", input, boxes, output_size, spatial_scale, sampling_ratio, aligned, False)


def roi_warp(input, boxes: BoxesArg, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1):
    """RoIWarp (paper section 4.2 ablation): the scaled RoI corners are rounded to
    integer feature-map coordinates, as RoIPool does, then bins are bilinearly
    sampled exactly as roi_align(aligned=False). Same shapes as roi_align."""
    return _roi_sample("roi_warp", input, boxes, output_size, spatial_scale, sampling_ratio, False, True)


# ----------------------------------------------------------------- RoIPool ----

@torch.library.custom_op("maskrcnn_native::roi_pool", mutates_args=())
def _roi_pool_op(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                 pooled_width: int) -> Tuple[Tensor, Tensor]:
    input = as_feature_map(input)
    rois = rois.contiguous()
    cl = wants_channels_last(input)
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    out = empty_like_layout(shape, input, cl)
    argmax = torch.empty(shape, dtype=torch.int64, device=input.device,
                         memory_format=torch.channels_last if cl else torch.contiguous_format)
    _C.roi_pool_forward(input.detach(), rois.detach(), out, argmax, spatial_scale, pooled_height, pooled_width,
                        stream=_stream(out))
    return out, argmax


@_roi_pool_op.register_fake
def _(input, rois, spatial_scale, pooled_height, pooled_width):
    torch._check(input.dim() == 4, lambda: "roi_pool: input must have shape [N, C, H, W]")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "roi_pool: rois must have shape [K, 5]")
    cl = wants_channels_last(input)
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    out = empty_like_layout(shape, input, cl)
    argmax = torch.empty(shape, dtype=torch.int64, device=input.device,
                         memory_format=torch.channels_last if cl else torch.contiguous_format)
    return out, argmax


@torch.library.custom_op("maskrcnn_native::roi_pool_backward", mutates_args=())
def _roi_pool_backward_op(grad: Tensor, rois: Tensor, argmax: Tensor, batch_size: int, channels: int,
                          height: int, width: int, channels_last: bool) -> Tensor:
    grad = as_feature_map(grad)
    grad_input = empty_like_layout((batch_size, channels, height, width), grad, channels_last)
    _C.roi_pool_backward(grad, rois.contiguous(), as_feature_map(argmax), grad_input, stream=_stream(grad_input))
    return grad_input


@_roi_pool_backward_op.register_fake
def _(grad, rois, argmax, batch_size, channels, height, width, channels_last):
    return empty_like_layout((batch_size, channels, height, width), grad, channels_last)


def _roi_pool_setup(ctx, inputs, output):
    input, rois, _, _, _ = inputs
    ctx.save_for_backward(rois, output[1])
    ctx.shape = tuple(input.shape)
    ctx.channels_last = wants_channels_last(input)


def _roi_pool_grad(ctx, grad, grad_argmax):
    rois, argmax = ctx.saved_tensors
    n, c, h, w = ctx.shape
    return _roi_pool_backward_op(grad, rois, argmax, n, c, h, w, ctx.channels_last), None, None, None, None


_roi_pool_op.register_autograd(_roi_pool_grad, setup_context=_roi_pool_setup)


def roi_pool(input, boxes: BoxesArg, output_size, spatial_scale: float = 1.0):
    """RoIPool (Fast R-CNN; the paper's section 4.2 baseline), torchvision's semantics:
    RoI corners rounded, bins quantised with floor/ceil, max over each bin
    (empty bins give 0). Same shapes as roi_align; differentiable w.r.t. input."""
    op = "roi_pool"
    ph, pw = _pair(output_size, op)
    rois = _rois(boxes, op)
    if is_numpy(input) or is_numpy(rois):
        if not (is_numpy(input) and is_numpy(rois)):
            raise TypeError(f"{op}: input and boxes must both be NumPy arrays or both be tensors")
        input = np_feature_map(input)
        rois = np.ascontiguousarray(rois)
        if input.ndim != 4:
            raise ValueError(f"{op}: input must have shape [N, C, H, W], got {list(input.shape)}")
        shape = (rois.shape[0] if rois.ndim == 2 else 0, input.shape[1], ph, pw)
        out = np.empty(shape, dtype=input.dtype)
        argmax = np.empty(shape, dtype=np.int64)
        _C.roi_pool_forward(input, rois, out, argmax, float(spatial_scale), ph, pw)
        return out
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor or a NumPy array, got {type(input).__name__}")
    if isinstance(boxes, (list, tuple)):
        rois = rois.to(dtype=input.dtype, device=input.device)
    return _roi_pool_op(input, rois, float(spatial_scale), ph, pw)[0]
