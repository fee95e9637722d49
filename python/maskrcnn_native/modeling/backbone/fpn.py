"""Feature Pyramid Network (Lin et al. 2017) on a ResNet trunk.

Outputs P2-P5 (256 channels, strides 4/8/16/32) plus P6 = max-pool(P5, k=1,
s=2) used by the RPN only. Parameter names follow torchvision's
``BackboneWithFPN`` (``body.*``, ``fpn.inner_blocks.{i}``, ``fpn.layer_blocks.{i}``)
so checkpoints map one to one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .resnet import ResNet, conv2d


class FPN(nn.Module):
    """Top-down pathway with lateral 1x1 convs and 3x3 output convs.

    forward(feats: list of Tensor[N, C_i, H_i, W_i], finest first) -> list of
    Tensor[N, out_channels, H_i, W_i] (same order) plus the extra max-pooled level.
    """

    def __init__(self, in_channels: List[int], out_channels: int = 256):
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.layer_blocks = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1)
                                          for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, feats: List[Tensor]) -> List[Tensor]:
        def lateral_conv(i: int, x: Tensor) -> Tensor:
            blk = self.inner_blocks[i]
            return conv2d(x, blk.weight, blk.bias, blk)

        last = lateral_conv(len(feats) - 1, feats[-1])
        outs = [self.layer_blocks[-1](last)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = lateral_conv(i, feats[i])
            top = F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            last = lateral.add_(top)
            outs.insert(0, self.layer_blocks[i](last))
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
        self.body = ResNet(cfg.block, cfg.stage_depths, cfg.groups, cfg.width_per_group, cfg.trainable_layers,
                           norm=cfg.norm)
        chans = [self.body.out_channels[f"res{i}"] for i in range(2, 6)]
        self.fpn = FPN(chans, cfg.fpn_channels)
        self.out_channels = cfg.fpn_channels

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        c = self.body(x)
        ps = self.fpn([c["res2"], c["res3"], c["res4"], c["res5"]])
        return OrderedDict(zip(self.rpn_levels, ps))


class ResNetC4(nn.Module):
    """ResNet res2-res4 trunk (stride 16). forward -> {"c4": Tensor[N, C4, H/16, W/16]}.
    The res5 stage lives in the RoI head."""

    pooler_levels = ("c4",)
    rpn_levels = ("c4",)

    def __init__(self, cfg):
        super().__init__()
        # trainable_layers counts stages from layer4 down, as for FPN; layer4
        # (res5) is in the RoI head and always trained.
        self.body = ResNet(cfg.block, cfg.stage_depths, cfg.groups, cfg.width_per_group,
                           cfg.trainable_layers, return_stages=("res4",), include_layer4=False, norm=cfg.norm)
        self.out_channels = self.body.out_channels["res4"]

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        return OrderedDict(c4=self.body(x)["res4"])
