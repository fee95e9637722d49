"""Backbones: ResNet/ResNeXt trunks with frozen (folded) BatchNorm, FPN and C4.

Every backbone has ``output_shape()`` -> {level name: ShapeSpec(channels,
stride)}, ``rpn_levels`` (the levels the RPN reads) and ``pooler_levels``
(the levels the RoI heads pool from), finest first.
"""

from typing import Union

from ..layers import FrozenBatchNorm2d, conv_bn
from .c4 import ResNetC4
from .fpn import FPN, ResNetFPN
from .resnet import BasicBlock, Bottleneck, ResNet, make_stage


def build_backbone(cfg) -> Union[ResNetFPN, ResNetC4]:
    """ResNetFPN for cfg.arch == "fpn", ResNetC4 for "c4"."""
    return ResNetFPN(cfg) if cfg.arch == "fpn" else ResNetC4(cfg)


__all__ = [
    "FPN",
    "ResNetC4",
    "ResNetFPN",
    "BasicBlock",
    "Bottleneck",
    "FrozenBatchNorm2d",
    "ResNet",
    "conv_bn",
    "make_stage",
    "build_backbone",
]
