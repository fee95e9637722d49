"""ResNet-C4 backbone (the paper's C4 variant): res2-res4 of the trunk at
stride 16; res5 runs per RoI in ``roi_heads.Res5RoIHeads``."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict

from torch import Tensor, nn

from ..layers import ShapeSpec
from .resnet import ResNet


class ResNetC4(nn.Module):
    """ResNet res2-res4 trunk (stride 16). forward -> {"c4": Tensor[N, C4, H/16, W/16]}.
    The res5 stage lives in the RoI head."""

    pooler_levels = ("c4",)
    rpn_levels = ("c4",)

    def __init__(self, cfg):
        super().__init__()
        # trainable_layers counts stages from layer4 down, as for FPN; layer4
        # (res5) is in the RoI head and always trained.
        self.body = ResNet.from_config(cfg, return_stages=("res4",), include_layer4=False)
        self.out_channels = self.body.out_channels["res4"]

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of the one output level."""
        return {"c4": ShapeSpec(self.out_channels, 16)}

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """images Tensor[N, 3, H, W] normalised -> {"c4": Tensor[N, C4, H/16, W/16]}."""
        return OrderedDict(c4=self.body(x)["res4"])
