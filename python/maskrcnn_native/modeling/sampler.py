"""Balanced positive/negative sampling of labelled anchors or RoIs."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor


class BalancedSampler:
    """Pick up to ``batch_size_per_image`` elements per image with at most
    ``positive_fraction`` of them positive; negatives fill the rest.

    __call__(labels: list of Tensor[P_i] int64, 1+ positive, 0 negative, -1
    ignored) -> (pos_masks, neg_masks): lists of Tensor[P_i] bool.
    Random choice uses ``torch.randperm`` on the default generator: positives
    then negatives per image, in image order (the same draws as torchvision,
    so a seeded run samples the same elements).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, labels: List[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        pos_masks, neg_masks = [], []
        for lab in labels:
            pos = torch.where(lab >= 1)[0]
            neg = torch.where(lab == 0)[0]
            num_pos = min(pos.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(neg.numel(), self.batch_size_per_image - num_pos)
            pos = pos[torch.randperm(pos.numel(), device=pos.device)[:num_pos]]
            neg = neg[torch.randperm(neg.numel(), device=neg.device)[:num_neg]]
            pm = torch.zeros_like(lab, dtype=torch.bool)
            nm = torch.zeros_like(lab, dtype=torch.bool)
            pm[pos] = True
            nm[neg] = True
            pos_masks.append(pm)
            neg_masks.append(nm)
        return pos_masks, neg_masks
