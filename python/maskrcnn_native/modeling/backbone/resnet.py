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
Activations are channels_last at inference and NCHW in training (see
``activation_format``).
"""

from __future__ import annotations

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
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift()
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def activation_format() -> torch.memory_format:
    """channels_last for inference (faster oneDNN forward convs, and RoIAlign
    reads channels_last natively); NCHW when autograd records, because oneDNN's
    channels_last 3x3 convolution backward is ~2x slower than NCHW on CPU."""
    return torch.contiguous_format if torch.is_grad_enabled() else torch.channels_last


def _param_key(conv: nn.Conv2d, bn: FrozenBatchNorm2d):
    ts = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    return tuple((t.data_ptr(), t._version) for t in ts)


def conv_bn(x: Tensor, conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> Tensor:
    """conv(x) followed by frozen BN, computed as one convolution with folded weights."""
    if not torch.is_grad_enabled() or not conv.weight.requires_grad:
        key = _param_key(conv, bn)
        cache = getattr(conv, "_mn_folded", None)
        if cache is None or cache[0] != key:
            with torch.no_grad():
                scale, shift = bn.scale_shift()
                # memory format follows the input's (a channels_last weight would force channels_last)
                w = conv.weight * scale.view(-1, 1, 1, 1)
                cache = (key, w, shift.clone())
            # plain attribute: not a parameter/buffer, never saved
            object.__setattr__(conv, "_mn_folded", cache)
        w, b = cache[1], cache[2]
    else:
        scale, shift = bn.scale_shift()
        w, b = conv.weight * scale.view(-1, 1, 1, 1), shift
    return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            FrozenBatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(conv_bn(x, self.conv1, self.bn1))
        out = conv_bn(out, self.conv2, self.bn2)
        idt = x if self.downsample is None else conv_bn(x, self.downsample[0], self.downsample[1])
        return F.relu_(out.add_(idt)) if not out.requires_grad else F.relu(out + idt)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            FrozenBatchNorm2d(planes * 4))

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
    to ``return_stages``; all outputs channels_last.
    Stages below ``trainable_layers`` have ``requires_grad=False`` (torchvision's
    convention: trainable_layers=3 trains layer2, layer3, layer4).
    """

    def __init__(self, block: str, depths, groups: int = 1, width_per_group: int = 64,
                 trainable_layers: int = 3, return_stages=("res2", "res3", "res4", "res5"),
                 include_layer4: bool = True):
        super().__init__()
        blk = Bottleneck if block == "bottleneck" else BasicBlock
        self.return_stages = tuple(return_stages)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        inplanes = 64
        self.out_channels: Dict[str, int] = {}
        nstages = 4 if include_layer4 else 3
        for i in range(nstages):
            planes = 64 * 2 ** i
            layers = []
            for j in range(depths[i]):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(blk(inplanes, planes, stride, groups, width_per_group))
                inplanes = planes * blk.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            self.out_channels[f"res{i + 2}"] = inplanes
        self.num_stages = nstages
        # freeze: torchvision order ['layer4', 'layer3', 'layer2', 'layer1', 'conv1']
        trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        for name, p in self.named_parameters():
            if not any(name.startswith(t) for t in trainable):
                p.requires_grad_(False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        x = x.contiguous(memory_format=activation_format())
        x = F.relu_(conv_bn(x, self.conv1, self.bn1))
        x = F.max_pool2d(x, 3, 2, 1)
        out = {}
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            name = f"res{i + 2}"
            if name in self.return_stages:
                out[name] = x
        return out


def make_stage(block: str, depth: int, inplanes: int, planes: int, stride: int, groups: int,
               width_per_group: int) -> nn.Sequential:
    """One ResNet stage (used as the C4 RoI head = res5)."""
    blk = Bottleneck if block == "bottleneck" else BasicBlock
    layers = []
    for j in range(depth):
        layers.append(blk(inplanes, planes, stride if j == 0 else 1, groups, width_per_group))
        inplanes = planes * blk.expansion
    for m in nn.Sequential(*layers).modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(*layers)
