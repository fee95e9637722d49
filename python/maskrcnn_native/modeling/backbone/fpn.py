"""Feature Pyramid Network (Lin et al. 2017) on a ResNet trunk.

Outputs P2-P5 (256 channels, strides 4/8/16/32) plus P6 = max-pool(P5, k=1,
s=2) used by the RPN only. Parameter names follow torchvision's
``BackboneWithFPN`` (``body.*``, ``fpn.inner_blocks.{i}``, ``fpn.layer_blocks.{i}``)
so checkpoints map one to one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import ShapeSpec, conv_module
from .resnet import ResNet


class FPN(nn.Module):
    """Top-down pathway with lateral 1x1 convs and 3x3 output convs.

    forward(feats: list of Tensor[N, C_i, H_i, W_i], finest first) -> list of
    Tensor[N, out_channels, H_i, W_i] (same order) plus the extra max-pooled level.
    """

    def __init__(self, in_channels: List[int], out_channels: int = 256):
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.layer_blocks = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, feats: List[Tensor]) -> List[Tensor]:
        """feats: list of Tensor[N, C_i, H_i, W_i] (res2..res5) -> list of Tensor[N, out_channels,
        H_i, W_i] plus the stride-2 max-pooled last level."""

        def lateral_conv(i: int, x: Tensor, top: Optional[Tensor] = None) -> Tensor:
            """1x1 lateral conv of level i, plus the upsampled coarser level (GEMM form on large
            NCHW maps, one fused oneDNN call at inference: see ``layers.conv2d``)."""
            return conv_module(x, self.inner_blocks[i], add=top)

        def output_conv(i: int, x: Tensor) -> Tensor:
            return conv_module(x, self.layer_blocks[i])

        last = lateral_conv(len(feats) - 1, feats[-1])
        outs = [output_conv(len(feats) - 1, last)]
        for i in range(len(feats) - 2, -1, -1):
            top = F.interpolate(last, size=feats[i].shape[-2:], mode="nearest")
            last = lateral_conv(i, feats[i], top)
            outs.insert(0, output_conv(i, last))
        outs.append(F.max_pool2d(outs[-1], 1, 2, 0))
        return outs


class ResNetFPN(nn.Module):
    """ResNet + FPN. forward(images Tensor[N, 3, H, W]) -> OrderedDict
    ``{"p2": .., "p3": .., "p4": .., "p5": .., "p6": ..}`` (channels_last,
    ``out_channels`` each; strides 4, 8, 16, 32, 64)."""

    pooler_levels = ("p2", "p3", "p4", "p5")
    rpn_levels = ("p2", "p3", "p4", "p5", "p6")

    def __init__(self, cfg):
        super().__init__()
        self.body = ResNet.from_config(cfg)
        chans = [self.body.out_channels[f"res{i}"] for i in range(2, 6)]
        self.fpn = FPN(chans, cfg.fpn_channels)
        self.out_channels = cfg.fpn_channels

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of every output level, finest first."""
        return {name: ShapeSpec(self.out_channels, 2 ** (i + 2)) for i, name in enumerate(self.rpn_levels)}

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """images Tensor[N, 3, H, W] normalised -> OrderedDict p2..p6 of Tensor[N, out_channels,
        H/s, W/s], s = 4..64."""
        c = self.body(x)
        ps = self.fpn([c["res2"], c["res3"], c["res4"], c["res5"]])
        return OrderedDict(zip(self.rpn_levels, ps))
