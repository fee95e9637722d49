"""Assign each prediction (anchor or proposal) to a ground-truth box by IoU."""

from __future__ import annotations

import torch
from torch import Tensor


class Matcher:
    """torchvision/Detectron matching rule.

    __call__(iou: Tensor[G, P]) -> Tensor[P] int64: the index of the matched
    ground truth, or ``BELOW_LOW_THRESHOLD`` (-1, background: max IoU < low) or
    ``BETWEEN_THRESHOLDS`` (-2, ignored: low <= max IoU < high).

    With ``allow_low_quality_matches`` every ground truth also keeps the
    predictions that reach its own highest IoU (RPN rule "the anchor with the
    highest IoU with a GT box is positive"), even below ``high``; such a
    prediction gets its overall best ground truth (ties: the first).
    With G == 0 every prediction is background.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False):
        if low_threshold > high_threshold:
            raise ValueError("Matcher: low_threshold must be <= high_threshold")
        self.high = high_threshold
        self.low = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou: Tensor) -> Tensor:
        if iou.shape[0] == 0:
            return torch.full((iou.shape[1],), self.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)
        vals, matches = iou.max(dim=0)
        best = matches.clone() if self.allow_low_quality_matches else None
        out = matches.clone()
        out[vals < self.low] = self.BELOW_LOW_THRESHOLD
        out[(vals >= self.low) & (vals < self.high)] = self.BETWEEN_THRESHOLDS
        if best is not None:
            per_gt_best = iou.max(dim=1, keepdim=True).values
            preds = torch.where(iou == per_gt_best)[1]
            out[preds] = best[preds]
        return out
