"""Winograd F(m x m, 3 x 3) for the wide 3x3 convolutions of training.

The forward and the input gradient of a 3x3 stride-1 "same" convolution are
both such convolutions (the input gradient correlates the output gradient with
the weight flipped in space and transposed in channels), so both run as
``conv3x3_winograd``; the weight gradient runs the same tiles backwards
(``conv3x3_winograd_weight_grad``: dU[a] = sum over tiles V[a]^T dM[a], dW =
G^T dU G), all in channels_last (ops/winograd.py). Same function as ``F.conv2d``
up to the transforms' float32 rounding (relative differences of ~2e-5 on the
input gradient and ~5e-6 on the weight gradient, measured on 2x256x200x304).

Measured on a 2-core Xeon (family 6, model 167), 2x256 -> 256 on 200x304: forward
+ input gradient + oneDNN's weight gradient 1.73 -> 1.42 s (channels_last,
AVX-512); with oneDNN held to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, NCHW, the AVX2
machines' training layout) 2.40 -> 1.93 s; the weight gradient alone 0.55 -> 0.27 s
(AVX-512, channels_last) and 0.90 -> 0.45 s (AVX2-held, NCHW). On maps of 50x76
the forward + backward was slower (0.086 vs 0.095 s), hence ``MIN_PIXELS``. The
whole R50-FPN train step 2x800x1216 (``bench_model.py`` M2), AVX2-held: 13.73 s
-> 11.94 s (forward and input gradient) -> 11.07 s (weight gradient too), against
12.90 s when the output and the input gradient were converted back to the
input's NCHW layout (hence channels_last out). ``MN_WINOGRAD_TRAIN=0`` turns it
off; ``MN_WINOGRAD=0`` turns off Winograd everywhere.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..ops.winograd import conv3x3_winograd, conv3x3_winograd_weight_grad, winograd_weight

__all__ = ["winograd_train_applies", "winograd_conv3x3"]

ENABLED = os.environ.get("MN_WINOGRAD_TRAIN", "1").strip().lower() not in ("0", "false", "off", "")
# at least this many pixels per map (H * W) and channels in and out. With 128
# channels (R50's layer2 3x3 convs, 100x152 at 800 px) it was slower on NCHW
# (2x128x100x152 fwd+bwd: 0.089 -> 0.120 s, AVX2-held 0.143 -> 0.160 s) and the
# AVX2-held M2 step went 10.63 s (floor 256) -> 11.07 s (floor 128).
MIN_PIXELS = 10000
MIN_CHANNELS = 256


def cpu_autocast_on() -> bool:
    """True inside ``torch.autocast("cpu")`` (shared with ``layers``)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 spelling
        return torch.is_autocast_cpu_enabled()


def winograd_train_applies(x: Tensor, weight: Tensor, conv: nn.Conv2d, m: int) -> bool:
    """Eager CPU float32 3x3 stride-1 padding-1 ungrouped convolution of at least
    ``MIN_CHANNELS`` channels on a map of at least ``MIN_PIXELS`` pixels, with
    Winograd on (``m`` 2 or 4), outside tracing, scripting, export, compile and
    autocast (those see ``F.conv2d``)."""
    # tracing / compile first: under them shape arithmetic is recorded, not evaluated
    return (
        ENABLED
        and m in (2, 4)
        and not torch.jit.is_scripting()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not cpu_autocast_on()
        and type(x) is Tensor
        and x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and tuple(weight.shape[2:]) == (3, 3)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
        and getattr(conv, "padding_mode", "zeros") == "zeros"
        and min(weight.shape[0], weight.shape[1]) >= MIN_CHANNELS
        and x.shape[2] * x.shape[3] >= MIN_PIXELS
    )


class _Winograd3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Optional[Tensor], m: int) -> Tensor:  # type: ignore[override]
        # one channels_last copy of x (the transforms' layout) serves the forward and the weight gradient
        x_cl = x.detach().contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(x_cl, weight)
        ctx.m, ctx.has_bias = m, bias is not None
        return conv3x3_winograd(x_cl, winograd_weight(weight, m), bias, m=m)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor):  # type: ignore[override]
        x_cl, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = g.contiguous(memory_format=torch.channels_last)
        gx = gw = gb = None
        if need_x:
            wt = weight.detach().flip(2, 3).transpose(0, 1)
            gx = conv3x3_winograd(g, winograd_weight(wt, ctx.m), m=ctx.m)
        if need_w:
            gw = conv3x3_winograd_weight_grad(x_cl, g, ctx.m).to(weight.dtype)
        if need_b and ctx.has_bias:
            gb = g.sum(dim=(0, 2, 3))
        return gx, gw, gb, None


def winograd_conv3x3(x: Tensor, weight: Tensor, bias: Optional[Tensor], m: int) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` (3x3, stride 1) by Winograd F(m x m, 3 x 3),
    differentiable in x, weight and bias. The output and the input gradient are
    channels_last whatever x's layout (the transforms' layout: converting them back
    to NCHW cost more than it saved, see the module docstring). Call it where
    :func:`winograd_train_applies`."""
    return _Winograd3x3.apply(x, weight, bias, m)
