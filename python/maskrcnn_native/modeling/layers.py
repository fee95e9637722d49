"""Shared building blocks of the model: conv + norm folding, the GEMM form of
large 1x1 convolutions, the activation layout policy, and ``ShapeSpec``.

Frozen BatchNorm is an affine map ``y = x * scale + shift`` with
``scale = weight / sqrt(running_var + eps)``, ``shift = bias - running_mean * scale``.
It is never executed as a separate op: every conv+BN pair runs as one
convolution with the BN folded into the weights (``w * scale``, bias
``shift``). That is exact in real arithmetic and also valid in training
(gradients reach the conv weight through the fold). At inference without grad
the folded weights are cached and reused until any parameter changes.
Activations are channels_last at inference; in training the layout depends on
the CPU (see ``training_memory_format``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.winograd import conv3x3_winograd, winograd_weight
from .winograd_train import cpu_autocast_on as _autocast_on
from .winograd_train import winograd_conv3x3, winograd_train_applies

__all__ = [
    "ShapeSpec",
    "FrozenBatchNorm2d",
    "NORMS",
    "make_norm",
    "conv_bn",
    "conv2d",
    "conv_module",
    "conv2d_eager",
    "activation_format",
    "training_memory_format",
    "set_training_memory_format",
    "frozen_bn_calibration",
]


@dataclass(frozen=True)
class ShapeSpec:
    """One feature level a backbone emits: ``channels`` and ``stride`` (input
    pixels per feature pixel)."""

    channels: int
    stride: int


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (buffers, not
    parameters). ``forward`` applies the affine map to NCHW input [N, C, H, W]."""

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        # set by ``frozen_bn_calibration``: the next conv_bn through this norm
        # takes its statistics from the convolution's output
        self.calibrating = False
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale_shift(self) -> Tuple[Tensor, Tensor]:
        """(scale [C], shift [C]) of the affine map y = x * scale + shift."""
        return _scale_shift(self)

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[N, C, H, W] -> x * scale + shift per channel (same shape)."""
        scale, shift = self.scale_shift()
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    @torch.no_grad()
    def calibrate_(self, z: Tensor) -> Tensor:
        """Set the statistics to the per-channel mean and (biased) variance of
        ``z`` [N, C, H, W] with unit scale and zero shift, once; return ``z``
        normalised with them."""
        self.running_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.running_var.copy_(z.var(dim=(0, 2, 3), unbiased=False))
        self.weight.fill_(1.0)
        self.bias.zero_()
        self.calibrating = False
        return self(z)


@contextlib.contextmanager
def frozen_bn_calibration(module: nn.Module) -> Iterator[List[FrozenBatchNorm2d]]:
    """Within the block, each ``FrozenBatchNorm2d`` of ``module`` takes its
    statistics from the first batch that reaches it through ``conv_bn``
    (layer after layer, so each layer sees already-normalised inputs).
    Yields the list of norms; those still ``calibrating`` afterwards were not reached."""
    norms = [m for m in module.modules() if isinstance(m, FrozenBatchNorm2d)]
    for m in norms:
        m.calibrating = True
    try:
        yield norms
    finally:
        for m in norms:
            m.calibrating = False


_TRAIN_FORMAT: Optional[torch.memory_format] = None
# True when the layout was chosen explicitly (set_training_memory_format or
# MN_TRAIN_MEMORY_FORMAT=nchw|channels_last): then every stage honours it.
_TRAIN_FORMAT_EXPLICIT = False


def training_memory_format() -> torch.memory_format:
    """Activation layout while autograd records (training).

    oneDNN's speed for the convolution backward depends on the CPU: on AVX-512
    machines channels_last is the faster layout (measured on the 2-core AMD
    EPYC Zen 5 project machine: R50-FPN train step 2x800x1216 6.4 s
    channels_last vs 7.7 s NCHW; 3x3 256->256 conv on 200x304 fwd+bwd 1120 vs
    1184 ms), while on an AVX2-only machine a previous measurement found the
    channels_last 3x3 backward ~2x slower than NCHW. ``MN_TRAIN_MEMORY_FORMAT``
    = ``channels_last`` | ``nchw`` | ``auto`` (default: channels_last when
    torch's CPU capability is AVX-512, else NCHW) decides; read once.
    """
    global _TRAIN_FORMAT, _TRAIN_FORMAT_EXPLICIT
    if _TRAIN_FORMAT is None:
        choice = os.environ.get("MN_TRAIN_MEMORY_FORMAT", "auto").strip().lower()
        _TRAIN_FORMAT_EXPLICIT = choice != "auto"
        if choice in ("channels_last", "nhwc"):
            cl = True
        elif choice in ("nchw", "contiguous"):
            cl = False
        elif choice == "auto":
            try:
                cl = "AVX512" in torch.backends.cpu.get_cpu_capability()
            except Exception:
                cl = False
        else:
            raise ValueError(f"MN_TRAIN_MEMORY_FORMAT must be 'channels_last', 'nchw' or 'auto', got {choice!r}")
        _TRAIN_FORMAT = torch.channels_last if cl else torch.contiguous_format
    return _TRAIN_FORMAT


def set_training_memory_format(fmt: Optional[str]) -> None:
    """Override the training layout: "channels_last", "nchw", or None to go
    back to ``MN_TRAIN_MEMORY_FORMAT`` / the CPU-based default."""
    global _TRAIN_FORMAT, _TRAIN_FORMAT_EXPLICIT
    if fmt is None:
        _TRAIN_FORMAT = None
        _TRAIN_FORMAT_EXPLICIT = False
    elif fmt in ("channels_last", "nchw"):
        _TRAIN_FORMAT = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        _TRAIN_FORMAT_EXPLICIT = True
    else:
        raise ValueError(f"set_training_memory_format: expected 'channels_last', 'nchw' or None, got {fmt!r}")


def training_format_explicit() -> bool:
    """True when the training layout was chosen explicitly rather than by the
    CPU-based default; an explicit layout is honoured by every stage."""
    training_memory_format()  # resolves the environment choice once
    return _TRAIN_FORMAT_EXPLICIT


def activation_format() -> torch.memory_format:
    """channels_last for inference (faster oneDNN forward convs, and RoIAlign
    reads channels_last natively); ``training_memory_format()`` when autograd
    records."""
    return training_memory_format() if torch.is_grad_enabled() else torch.channels_last


NORMS = ("frozen_bn", "bn", "gn")


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation after each trunk convolution.

    "frozen_bn": fixed statistics and affine (fine-tuning pretrained weights;
    torchvision's layout). "bn": BatchNorm2d trained with batch statistics
    (training from scratch; folded into the conv at inference like frozen
    BN). "gn": GroupNorm with 32 groups (or fewer when ``channels`` is small),
    the batch-independent choice of He et al., "Rethinking ImageNet
    Pre-training" (2019)."""
    if norm == "frozen_bn":
        return FrozenBatchNorm2d(channels)
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        groups = 32
        while channels % groups:
            groups //= 2
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def _scale_shift(bn: Any) -> Tuple[Tensor, Tensor]:
    """Affine map of a frozen or eval-mode BatchNorm: y = x * scale + shift."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    return scale, bn.bias - bn.running_mean * scale


def _param_key(conv: nn.Conv2d, bn: Any):
    ts = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    return tuple((t.data_ptr(), t._version) for t in ts)


def conv_bn(x: Tensor, conv: Any, bn: Any, relu: bool = False, add: Optional[Tensor] = None) -> Tensor:
    """conv(x) followed by its norm, then ``+ add`` (a residual, same shape as
    the output) and ReLU when asked. Frozen BN, and BatchNorm in eval mode, run
    as one convolution with folded weights; BatchNorm in training mode and
    GroupNorm run after the convolution. At inference the whole chain is one
    oneDNN call (see ``conv2d``)."""
    if isinstance(bn, FrozenBatchNorm2d) and bn.calibrating:
        y = bn.calibrate_(F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups))
        return _epilogue(y, relu, add)
    if isinstance(bn, nn.GroupNorm) or (isinstance(bn, nn.BatchNorm2d) and bn.training):
        return _epilogue(bn(conv2d(x, conv.weight, conv.bias, conv)), relu, add)
    frozen = not torch.is_grad_enabled() or not (conv.weight.requires_grad or bn.weight.requires_grad)
    # the folded-weight cache keys on data pointers, which traced (fake)
    # parameters lack: torch.export / torch.compile fold in the graph instead
    # (the same two operations, so the same numbers)
    if frozen and not torch.compiler.is_compiling():
        key = _param_key(conv, bn)
        cache = getattr(conv, "_mn_folded", None)
        if cache is None or cache[0] != key:
            with torch.no_grad():
                scale, shift = _scale_shift(bn)
                # memory format follows the input's (a channels_last weight would force channels_last)
                w = conv.weight * scale.view(-1, 1, 1, 1)
                cache = (key, w, shift.clone())
            # plain attribute: not a parameter/buffer, never saved
            object.__setattr__(conv, "_mn_folded", cache)
        w, b = cache[1], cache[2]
        return conv2d(x, w, b, conv, relu, add, pack_key=key)
    scale, shift = _scale_shift(bn)
    w, b = conv.weight * scale.view(-1, 1, 1, 1), shift
    return conv2d(x, w, b, conv, relu, add)


def _epilogue(y: Tensor, relu: bool, add: Optional[Tensor]) -> Tensor:
    """``relu(y + add)`` / ``relu(y)`` / ``y + add`` in place where autograd allows it."""
    if add is not None:
        if y.requires_grad or add.requires_grad:
            y = y + add
            return F.relu(y) if relu else y
        y = y.add_(add)
    return F.relu_(y) if relu else y


# oneDNN fused inference convolutions (MN_FUSED_CONV=0 turns them off): the
# weight is reordered once into oneDNN's blocked layout and cached, and bias,
# residual add and ReLU run as post-ops of the convolution instead of separate
# passes over the activation. Same arithmetic as conv -> add -> relu (the
# accumulator is rounded to float32 once, then added to, as in eager).
_FUSED = os.environ.get("MN_FUSED_CONV", "1").strip() not in ("0", "false", "off", "")


def _fusable(x: Tensor, weight: Tensor) -> bool:
    """Eager CPU float32 channels_last inference on plain tensors (not under
    autograd, autocast, tracing, scripting, export or compile: those see the
    portable ``F.conv2d`` path)."""
    return (
        _FUSED
        and type(x) is torch.Tensor
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() == 4
        and not torch.is_grad_enabled()
        and x.is_contiguous(memory_format=torch.channels_last)
        and not _autocast_on()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and torch.backends.mkldnn.is_available()
    )


def _packed_weight(conv: Any, weight: Tensor, key: Any, x: Tensor) -> Tensor:
    """``weight`` reordered for oneDNN, cached on ``conv`` until ``key`` changes."""
    cache = getattr(conv, "_mn_packed", None)
    if cache is None or cache[0] != key:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight.contiguous(), list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups, list(x.shape)
        )
        cache = (key, packed)
        object.__setattr__(conv, "_mn_packed", cache)  # plain attribute: never saved
    return cache[1]


# Winograd F(m x m, 3 x 3) for the fused path's 3x3 stride-1 convolutions with at
# least _WINOGRAD_MIN_CHANNELS input and output channels (ops/winograd.py).
# MN_WINOGRAD=4 (default) | 2 | 0 (off: oneDNN's direct convolution). Measured
# on a 2-core Xeon (family 6 model 167), F(4x4,3x3) against oneDNN, same inputs:
# 256 -> 256 on 200x304 114 vs 230 ms, 100x152 24 vs 55 ms, 50x76 6.2 vs 13.8 ms,
# [100, 256, 14, 14] 46 vs 66 ms, 128 -> 128 on 100x152 9.0 vs 14.8 ms; at 64
# channels (200x304) it only ties (14.4 vs 14.5 ms), hence the channel floor.
_WINOGRAD_M = int(os.environ.get("MN_WINOGRAD", "4").strip() or "0")
_WINOGRAD_MIN_CHANNELS = 128


def _winograd_ok(x: Tensor, weight: Tensor, conv: nn.Conv2d) -> bool:
    return (
        _WINOGRAD_M in (2, 4)
        and tuple(weight.shape[2:]) == (3, 3)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
        and min(weight.shape[0], weight.shape[1]) >= _WINOGRAD_MIN_CHANNELS
    )


def _winograd_weight(conv: Any, weight: Tensor, key: Any) -> Tensor:
    """``weight`` transformed for Winograd, cached on ``conv`` until ``key`` changes."""
    key = (key, _WINOGRAD_M)
    cache = getattr(conv, "_mn_winograd", None)
    if cache is None or cache[0] != key:
        cache = (key, winograd_weight(weight, _WINOGRAD_M))
        object.__setattr__(conv, "_mn_winograd", cache)  # plain attribute: never saved
    return cache[1]


# 1x1 convolutions on NCHW maps of at least this many pixels run as a GEMM.
_GEMM_MIN_PIXELS = 10000


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    conv: nn.Conv2d,
    relu: bool = False,
    add: Optional[Tensor] = None,
    pack_key: Any = None,
) -> Tensor:
    """``F.conv2d`` with ``conv``'s geometry, then ``+ add`` and ReLU when asked.

    At eager CPU float32 inference on channels_last input the chain is one
    oneDNN convolution with a cached pre-reordered weight and the add / ReLU
    as post-ops (``pack_key`` identifies a derived weight such as a BN fold;
    default: ``weight`` itself). A 1x1, stride-1, ungrouped conv on a large
    NCHW-contiguous map (training runs NCHW) is computed as the batched GEMM
    ``W[O, C] @ X[n][C, H*W]`` instead: oneDNN's NCHW 1x1 kernels are slower
    there, forward and backward (fwd+bwd measured on 2x256x200x304, 256 -> 256:
    360 vs 300 ms; 64 -> 256: 184 vs 107 ms; on maps of 50x76 and smaller
    oneDNN wins, hence the size cut). Same products, summation order aside."""
    if _fusable(x, weight) and (add is None or add.is_contiguous(memory_format=torch.channels_last)):
        key = pack_key if pack_key is not None else (weight.data_ptr(), weight._version)
        if _winograd_ok(x, weight, conv):
            u = _winograd_weight(conv, weight, key)
            return conv3x3_winograd(x, u, bias, residual=add, relu=relu, m=_WINOGRAD_M)
        wp = _packed_weight(conv, weight, key, x)
        geo = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        unary = "relu" if relu else "none"
        if add is None:
            return torch.ops.mkldnn._convolution_pointwise(x, wp, bias, *geo, unary, [None], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, add, wp, bias, *geo, "add", None, unary if relu else None, [None], ""
        )
    return _epilogue(_conv2d(x, weight, bias, conv, torch.is_grad_enabled()), relu, add)


def conv2d_eager(x: Tensor, weight: Tensor, bias: Optional[Tensor], conv: nn.Conv2d, relu: bool = False) -> Tensor:
    """``conv2d`` as it runs under autograd (never the fused oneDNN inference call),
    whatever the grad mode: for code that must reproduce the training forward's numbers."""
    return _epilogue(_conv2d(x, weight, bias, conv, True), relu, None)


def conv_module(x: Tensor, conv: nn.Module, relu: bool = False, add: Optional[Tensor] = None) -> Tensor:
    """``conv2d`` with a Conv2d's own weight and bias (then ``+ add``, ReLU)."""
    assert isinstance(conv, nn.Conv2d)
    return conv2d(x, conv.weight, conv.bias, conv, relu, add)


def _conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], conv: nn.Conv2d, train: bool) -> Tensor:
    """The convolution as training computes it (``train``: Winograd for the wide
    3x3 ones on large maps, ``winograd_train``) or as the portable inference
    fallback does (``F.conv2d``); 1x1 on large NCHW maps as a GEMM either way."""
    if train and winograd_train_applies(x, weight, conv, _WINOGRAD_M):
        return winograd_conv3x3(x, weight, bias, _WINOGRAD_M)
    if (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.groups == 1
        and x.dim() == 4
        and x.is_contiguous()
        and x.shape[2] * x.shape[3] >= _GEMM_MIN_PIXELS
    ):
        n, _, h, w = x.shape
        w2 = weight.flatten(1).expand(n, -1, -1)
        y = torch.bmm(w2, x.flatten(2)) if bias is None else torch.baddbmm(bias[None, :, None], w2, x.flatten(2))
        return y.view(n, -1, h, w)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
