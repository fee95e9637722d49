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

It uses the calibration mode of ``modeling.layers.FrozenBatchNorm2d``
(``frozen_bn_calibration``): the backbone's own ``conv_bn`` calls set the
statistics. A model without ``preprocess`` and ``backbone`` is left alone (0).
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from ..modeling.layers import frozen_bn_calibration
from ..structures import image_to_float

__all__ = ["init_frozen_bn_from_data"]

log = logging.getLogger("maskrcnn_native.train")


def init_frozen_bn_from_data(model: torch.nn.Module, images: Sequence[torch.Tensor]) -> int:
    """Sets frozen-BN statistics from ``images`` (list of Tensor[3, H, W] in
    [0, 1]); returns how many BN layers were initialised."""
    preprocess, backbone = getattr(model, "preprocess", None), getattr(model, "backbone", None)
    if not isinstance(preprocess, torch.nn.Module) or not isinstance(backbone, torch.nn.Module):
        return 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), frozen_bn_calibration(backbone) as norms:
            batch, _, _ = preprocess([image_to_float(im) for im in images], None, training=False)
            backbone(batch.tensors)
            n = sum(1 for m in norms if not m.calibrating)
    finally:
        model.train(was_training)
    log.info("initialised %d frozen BatchNorm layers from %d images", n, len(images))
    return n
