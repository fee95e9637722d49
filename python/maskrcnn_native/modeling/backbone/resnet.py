"""ResNet / ResNeXt trunks with frozen BatchNorm, torchvision's parameter layout.

Module and buffer names follow ``torchvision.models.resnet`` (``conv1``,
``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0/1``...), so importing a
torchvision checkpoint is a prefix rename.

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

import os
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (buffers, not
    parameters). ``forward`` applies the affine map to NCHW input [N, C, H, W]."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale_shift(self) -> Tuple[Tensor, Tensor]:
        return _scale_shift(self)

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift()
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


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


def _training_format_explicit() -> bool:
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


def _scale_shift(bn: nn.Module) -> Tuple[Tensor, Tensor]:
    """Affine map of a frozen or eval-mode BatchNorm: y = x * scale + shift."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    return scale, bn.bias - bn.running_mean * scale


def _param_key(conv: nn.Conv2d, bn: nn.Module):
    ts = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    return tuple((t.data_ptr(), t._version) for t in ts)


def conv_bn(x: Tensor, conv: nn.Conv2d, bn: nn.Module) -> Tensor:
    """conv(x) followed by its norm. Frozen BN, and BatchNorm in eval mode, run
    as one convolution with folded weights; BatchNorm in training mode and
    GroupNorm run after the convolution."""
    if isinstance(bn, nn.GroupNorm) or (isinstance(bn, nn.BatchNorm2d) and bn.training):
        return bn(conv2d(x, conv.weight, conv.bias, conv))
    if not torch.is_grad_enabled() or not (conv.weight.requires_grad or bn.weight.requires_grad):
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
    else:
        scale, shift = _scale_shift(bn)
        w, b = conv.weight * scale.view(-1, 1, 1, 1), shift
    return conv2d(x, w, b, conv)


# 1x1 convolutions on NCHW maps of at least this many pixels run as a GEMM.
_GEMM_MIN_PIXELS = 10000


def conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], conv: nn.Conv2d) -> Tensor:
    """``F.conv2d`` with ``conv``'s geometry. A 1x1, stride-1, ungrouped conv on
    a large NCHW-contiguous map (training runs NCHW) is computed as the batched
    GEMM ``W[O, C] @ X[n][C, H*W]`` instead: oneDNN's NCHW 1x1 kernels are
    slower there, forward and backward (fwd+bwd measured on 2x256x200x304,
    256 -> 256: 360 vs 300 ms; 64 -> 256: 184 vs 107 ms; on maps of 50x76 and
    smaller oneDNN wins, hence the size cut). Same products, summation order aside."""
    if (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1
            and x.dim() == 4 and x.is_contiguous() and x.shape[2] * x.shape[3] >= _GEMM_MIN_PIXELS):
        n, _, h, w = x.shape
        w2 = weight.flatten(1).expand(n, -1, -1)
        y = torch.bmm(w2, x.flatten(2)) if bias is None else torch.baddbmm(bias[None, :, None], w2, x.flatten(2))
        return y.view(n, -1, h, w)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64,
                 norm: str = "frozen_bn"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            make_norm(norm, planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(conv_bn(x, self.conv1, self.bn1))
        out = conv_bn(out, self.conv2, self.bn2)
        idt = x if self.downsample is None else conv_bn(x, self.downsample[0], self.downsample[1])
        return F.relu_(out.add_(idt)) if not out.requires_grad else F.relu(out + idt)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64,
                 norm: str = "frozen_bn"):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = make_norm(norm, width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = make_norm(norm, planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            make_norm(norm, planes * 4))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(conv_bn(x, self.conv1, self.bn1))
        out = F.relu_(conv_bn(out, self.conv2, self.bn2))
        out = conv_bn(out, self.conv3, self.bn3)
        idt = x if self.downsample is None else conv_bn(x, self.downsample[0], self.downsample[1])
        if out.requires_grad:
            return F.relu(out + idt)
        return F.relu_(out.add_(idt))


class ResNet(nn.Module):
    """ResNet trunk returning the requested stages.

    forward(x: Tensor[N, 3, H, W] float32, normalised) -> dict
    ``{"res2": [N, C2, H/4, W/4], "res3": /8, "res4": /16, "res5": /32}`` restricted
    to ``return_stages``, in ``activation_format()``.
    Stages below ``trainable_layers`` have ``requires_grad=False`` (torchvision's
    convention: trainable_layers=3 trains layer2, layer3, layer4).
    """

    def __init__(self, block: str, depths, groups: int = 1, width_per_group: int = 64,
                 trainable_layers: int = 3, return_stages=("res2", "res3", "res4", "res5"),
                 include_layer4: bool = True, norm: str = "frozen_bn"):
        super().__init__()
        blk = Bottleneck if block == "bottleneck" else BasicBlock
        self.return_stages = tuple(return_stages)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, 64)
        inplanes = 64
        self.out_channels: Dict[str, int] = {}
        nstages = 4 if include_layer4 else 3
        for i in range(nstages):
            planes = 64 * 2 ** i
            layers = []
            for j in range(depths[i]):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(blk(inplanes, planes, stride, groups, width_per_group, norm))
                inplanes = planes * blk.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            self.out_channels[f"res{i + 2}"] = inplanes
        self.num_stages = nstages
        # freeze: torchvision order ['layer4', 'layer3', 'layer2', 'layer1', 'conv1']
        trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        if "conv1" in trainable:
            trainable.append("bn1.")  # the stem's norm trains with the stem (a trainable norm only)
        for name, p in self.named_parameters():
            if not any(name.startswith(t) for t in trainable):
                p.requires_grad_(False)
        # BatchNorm of frozen stages keeps its statistics: it stays in eval mode (see train()).
        self._frozen_norms = [m for name, m in self.named_modules() if isinstance(m, nn.BatchNorm2d)
                              and not any(name.startswith(t.rstrip(".")) for t in trainable)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if norm != "frozen_bn":
            _zero_init_residuals(self)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self._frozen_norms:
            m.eval()
        return self

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        # With the automatic layout, frozen stages that autograd does not
        # record (the stem and layer1 with trainable_layers=3) run
        # channels_last even in training: their forward convs are faster that
        # way (510 vs 690 ms for the stem + layer1 on 2x800x1216) and they have
        # no backward. The first recorded stage switches to activation_format().
        # An explicitly chosen layout is honoured by every stage, so that
        # "nchw" means the same summation order as an NCHW reference model.
        fmt = activation_format()
        frozen = (not _training_format_explicit() and not x.requires_grad
                  and not self.conv1.weight.requires_grad)
        x = x.contiguous(memory_format=torch.channels_last if frozen else fmt)
        x = F.relu_(conv_bn(x, self.conv1, self.bn1))
        x = F.max_pool2d(x, 3, 2, 1)
        out = {}
        for i in range(self.num_stages):
            layer = getattr(self, f"layer{i + 1}")
            if frozen and any(p.requires_grad for p in layer.parameters()):
                frozen = False
                x = x.contiguous(memory_format=fmt)
            x = layer(x)
            name = f"res{i + 2}"
            if name in self.return_stages:
                out[name] = x.contiguous(memory_format=fmt)
        return out


def _zero_init_residuals(module: nn.Module) -> None:
    """Trainable norms start each residual branch at zero (the last norm's
    scale = 0; Goyal et al. 2017), so a from-scratch trunk begins as a stack
    of identities instead of amplifying its input block after block."""
    for m in module.modules():
        last = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
        if last is not None and getattr(last, "weight", None) is not None:
            nn.init.zeros_(last.weight)


def make_stage(block: str, depth: int, inplanes: int, planes: int, stride: int, groups: int,
               width_per_group: int, norm: str = "frozen_bn") -> nn.Sequential:
    """One ResNet stage (used as the C4 RoI head = res5)."""
    blk = Bottleneck if block == "bottleneck" else BasicBlock
    layers = []
    for j in range(depth):
        layers.append(blk(inplanes, planes, stride if j == 0 else 1, groups, width_per_group, norm))
        inplanes = planes * blk.expansion
    stage = nn.Sequential(*layers)
    for m in stage.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if norm != "frozen_bn":
        _zero_init_residuals(stage)
    return stage
