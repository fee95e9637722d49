"""Backbones: ResNet/ResNeXt trunks with frozen (folded) BatchNorm, FPN and C4."""

from .fpn import FPN, ResNetC4, ResNetFPN
from .resnet import BasicBlock, Bottleneck, FrozenBatchNorm2d, ResNet, conv_bn, make_stage


def build_backbone(cfg):
    """ResNetFPN for cfg.arch == "fpn", ResNetC4 for "c4"."""
    return ResNetFPN(cfg) if cfg.arch == "fpn" else ResNetC4(cfg)


__all__ = ["FPN", "ResNetC4", "ResNetFPN", "BasicBlock", "Bottleneck", "FrozenBatchNorm2d", "ResNet",
           "conv_bn", "make_stage", "build_backbone"]
