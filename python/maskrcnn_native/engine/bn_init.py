"""Data-dependent initialisation of frozen BatchNorm for training from scratch.

The model's BatchNorm is frozen (the paper fine-tunes ImageNet backbones).
Started from random weights, a frozen BN with default statistics is the
identity, so the trunk trains as an unnormalised ResNet, which converges
slowly. ``init_frozen_bn_from_data`` runs one forward pass of the backbone on
a few training images and sets every frozen BN's ``running_mean`` /
``running_var`` to the per-channel statistics of its convolution's output,
layer after layer (each layer sees already-normalised inputs). Training then
proceeds with these fixed statistics, like BatchNorm evaluated with its
statistics at initialisation.

It relies on the backbone computing conv + frozen BN through
``maskrcnn_native.modeling.backbone.resnet.conv_bn``; with any other model it
does nothing and returns 0.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["init_frozen_bn_from_data"]

log = logging.getLogger("maskrcnn_native.train")


def init_frozen_bn_from_data(model: torch.nn.Module, images: Sequence[torch.Tensor]) -> int:
    """Sets frozen-BN statistics from ``images`` (list of Tensor[3, H, W] in
    [0, 1]); returns how many BN layers were initialised."""
    try:
        from ..modeling.backbone import resnet as R
    except Exception:
        return 0
    if not hasattr(model, "preprocess") or not hasattr(model, "backbone") or not hasattr(R, "conv_bn"):
        return 0
    original = R.conv_bn
    seen = set()

    def calibrating_conv_bn(x, conv, bn):
        if not isinstance(bn, R.FrozenBatchNorm2d):  # trainable norms compute their own statistics
            return original(x, conv, bn)
        z = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if id(bn) not in seen:
            seen.add(id(bn))
            bn.running_mean.copy_(z.mean(dim=(0, 2, 3)))
            bn.running_var.copy_(z.var(dim=(0, 2, 3), unbiased=False))
            bn.weight.fill_(1.0)
            bn.bias.zero_()
        scale, shift = bn.scale_shift()
        return z * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    was_training = model.training
    model.eval()
    R.conv_bn = calibrating_conv_bn
    try:
        with torch.no_grad():
            batch, _, _ = model.preprocess([im.float() for im in images], None, training=False)
            model.backbone(batch.tensors)
    finally:
        R.conv_bn = original
        model.train(was_training)
    log.info("initialised %d frozen BatchNorm layers from %d images", len(seen), len(images))
    return len(seen)
