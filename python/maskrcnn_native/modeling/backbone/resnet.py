"""ResNet / ResNeXt trunks with frozen BatchNorm, torchvision's parameter layout.

Module and buffer names follow ``torchvision.models.resnet`` (``conv1``,
``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0/1``...), so importing a
torchvision checkpoint is a prefix rename.

Every conv + norm pair runs through ``layers.conv_bn`` (frozen BN folded into
the convolution); activations follow ``layers.activation_format()``.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import (  # noqa: F401  (re-exported: the trunk's public building blocks)
    NORMS,
    FrozenBatchNorm2d,
    activation_format,
    conv2d,
    conv_bn,
    make_norm,
    set_training_memory_format,
    training_format_explicit,
    training_memory_format,
)


class _ResidualBlock(nn.Module):
    """What both blocks share: the shortcut, ``downsample`` (torchvision's name), a 1x1
    conv + norm where the block changes the channels or the resolution, else None."""

    downsample: Optional[nn.Sequential]

    def _set_shortcut(self, inplanes: int, out: int, stride: int, norm: str) -> None:
        # Registered after the convs of the main branch: torchvision's module order
        # (state_dict, parameters(), the kaiming init's draws).
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), make_norm(norm, out))

    def _shortcut(self, x: Tensor) -> Tensor:
        return x if self.downsample is None else conv_bn(x, self.downsample[0], self.downsample[1])


class BasicBlock(_ResidualBlock):
    """ResNet-18/34 block: two 3x3 conv + norm, identity or 1x1 projection shortcut."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        groups: int = 1,
        base_width: int = 64,
        norm: str = "frozen_bn",
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self._set_shortcut(inplanes, planes, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[N, C_in, H, W] -> Tensor[N, planes, H/stride, W/stride]."""
        out = conv_bn(x, self.conv1, self.bn1, relu=True)
        return conv_bn(out, self.conv2, self.bn2, relu=True, add=self._shortcut(x))


class Bottleneck(_ResidualBlock):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        groups: int = 1,
        base_width: int = 64,
        norm: str = "frozen_bn",
    ):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = make_norm(norm, width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = make_norm(norm, planes * 4)
        self._set_shortcut(inplanes, planes * 4, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[N, C_in, H, W] -> Tensor[N, 4 * planes, H/stride, W/stride]."""
        out = conv_bn(x, self.conv1, self.bn1, relu=True)
        out = conv_bn(out, self.conv2, self.bn2, relu=True)
        return conv_bn(out, self.conv3, self.bn3, relu=True, add=self._shortcut(x))


class ResNet(nn.Module):
    """ResNet trunk returning the requested stages.

    forward(x: Tensor[N, 3, H, W] float32, normalised) -> dict
    ``{"res2": [N, C2, H/4, W/4], "res3": /8, "res4": /16, "res5": /32}`` restricted
    to ``return_stages``, in ``activation_format()``.
    Stages below ``trainable_layers`` have ``requires_grad=False`` (torchvision's
    convention: trainable_layers=3 trains layer2, layer3, layer4).
    """

    def __init__(
        self,
        block: str,
        depths,
        groups: int = 1,
        width_per_group: int = 64,
        trainable_layers: int = 3,
        return_stages=("res2", "res3", "res4", "res5"),
        include_layer4: bool = True,
        norm: str = "frozen_bn",
        base_channels: int = 64,
    ):
        super().__init__()
        blk = Bottleneck if block == "bottleneck" else BasicBlock
        self.return_stages = tuple(return_stages)
        self.conv1 = nn.Conv2d(3, base_channels, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, base_channels)
        inplanes = base_channels
        self.out_channels: Dict[str, int] = {}
        nstages = 4 if include_layer4 else 3
        for i in range(nstages):
            planes = base_channels * 2**i
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
        self._frozen_norms = [
            m
            for name, m in self.named_modules()
            if isinstance(m, nn.BatchNorm2d) and not any(name.startswith(t.rstrip(".")) for t in trainable)
        ]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if norm != "frozen_bn":
            _zero_init_residuals(self)

    @classmethod
    def from_config(cls, cfg, **kwargs) -> "ResNet":
        """The trunk a model config describes; kwargs (return_stages, include_layer4) are the
        backbone's own."""
        return cls(
            cfg.block,
            cfg.stage_depths,
            cfg.groups,
            cfg.width_per_group,
            cfg.trainable_layers,
            norm=cfg.norm,
            base_channels=cfg.backbone_channels,
            **kwargs,
        )

    def train(self, mode: bool = True):
        """Train mode, except the BatchNorm of frozen stages, which keeps its statistics (eval mode)."""
        super().train(mode)
        for m in self._frozen_norms:
            m.eval()
        return self

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """x Tensor[N, 3, H, W] normalised -> {stage: Tensor[N, C_s, H/s, W/s]} for ``return_stages``."""
        # With the automatic layout, frozen stages that autograd does not
        # record (the stem and layer1 with trainable_layers=3) run
        # channels_last even in training: their forward convs are faster that
        # way (510 vs 690 ms for the stem + layer1 on 2x800x1216) and they have
        # no backward. The first recorded stage switches to activation_format().
        # An explicitly chosen layout is honoured by every stage, so that
        # "nchw" sums in the same order as an NCHW reference model.
        fmt = activation_format()
        frozen = not training_format_explicit() and not x.requires_grad and not self.conv1.weight.requires_grad
        x = x.contiguous(memory_format=torch.channels_last if frozen else fmt)
        x = conv_bn(x, self.conv1, self.bn1, relu=True)
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
            nn.init.zeros_(last.weight)  # type: ignore[arg-type]


def make_stage(
    block: str,
    depth: int,
    inplanes: int,
    planes: int,
    stride: int,
    groups: int,
    width_per_group: int,
    norm: str = "frozen_bn",
) -> nn.Sequential:
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
