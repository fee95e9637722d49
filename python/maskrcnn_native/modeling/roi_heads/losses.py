"""RoI head training targets and losses (paper section 3, Eq. 1: L = L_cls + L_box + L_mask).

Coordinate frame everywhere: XYXY absolute pixels of the resized image the
network saw. Shapes: R = sampled RoIs of the batch, R+ = the positive ones,
K = num_classes (background is class 0), P = keypoints per instance.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _ops
from ..box_coder import BoxCoder

__all__ = ["fast_rcnn_losses", "keypoint_rcnn_loss", "keypoint_targets", "mask_rcnn_loss", "mask_targets"]


def mask_targets(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, m: int) -> Tensor:
    """Crop each matched GT mask to its RoI and resample it to m x m with
    RoIAlign (aligned=False, adaptive sampling, as torchvision), not a
    box-quantised crop.

    gt_masks: Tensor[G, H, W] uint8/bool of one image; boxes: Tensor[R, 4]
    float; matched_idxs: Tensor[R] int64 in 0..G-1
    -> Tensor[R, m, m] in ``boxes``' dtype, values in [0, 1]."""
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, m, m))
    rois = torch.cat([matched_idxs.to(boxes.dtype)[:, None], boxes], 1)
    return _ops.roi_align(gt_masks[:, None].to(boxes.dtype), rois, (m, m), 1.0, -1, False)[:, 0]


def keypoint_targets(keypoints: Tensor, rois: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """Heatmap targets of keypoints matched to RoIs.

    keypoints: Tensor[R, P, 3] float (x, y, visibility); rois: Tensor[R, 4]
    -> (flat heatmap index y * size + x: Tensor[R, P] int64, valid:
    Tensor[R, P] bool). Discretisation floor((x - x1) * size / w), with the
    right/bottom box edge mapped to size - 1 (torchvision's)."""
    x1, y1 = rois[:, 0:1], rois[:, 1:2]
    sx = size / (rois[:, 2:3] - x1)
    sy = size / (rois[:, 3:4] - y1)
    x, y = keypoints[..., 0], keypoints[..., 1]
    xi = ((x - x1) * sx).floor().long()
    yi = ((y - y1) * sy).floor().long()
    xi[x == rois[:, 2:3]] = size - 1
    yi[y == rois[:, 3:4]] = size - 1
    valid = (xi >= 0) & (yi >= 0) & (xi < size) & (yi < size) & (keypoints[..., 2] > 0)
    return (yi * size + xi) * valid, valid


def fast_rcnn_losses(
    logits: Tensor, deltas: Tensor, labels: Tensor, proposals: Tensor, gt_boxes: Tensor, box_coder: BoxCoder
) -> Tuple[Tensor, Tensor]:
    """Classification and box regression losses of the box head.

    logits: Tensor[R, K] class scores; deltas: Tensor[R, 4K] class-specific
    box codes; labels: Tensor[R] int64 (0 = background); proposals: Tensor[R, 4]
    the sampled RoIs; gt_boxes: Tensor[R, 4] the matched ground truth box of
    each RoI (any value for negatives).
    -> (loss_classifier: cross entropy averaged over R, loss_box_reg: smooth
    L1 (beta 1/9) over the positives' true-class codes, summed and divided by
    R), both scalar."""
    loss_cls = F.cross_entropy(logits, labels)
    pos = torch.where(labels > 0)[0]
    if pos.numel():
        d = deltas.reshape(deltas.shape[0], -1, 4)[pos, labels[pos]]
        tgt = box_coder.encode(gt_boxes[pos], proposals[pos])
        loss_box = F.smooth_l1_loss(d, tgt, beta=1.0 / 9, reduction="sum") / labels.numel()
    else:
        loss_box = deltas.sum() * 0
    return loss_cls, loss_box


def mask_rcnn_loss(
    logits: Tensor,
    gt_masks: Sequence[Tensor],
    boxes: Sequence[Tensor],
    matched: Sequence[Tensor],
    labels: Tensor,
    mask_loss: str = "sigmoid",
) -> Tensor:
    """L_mask of the positive RoIs.

    logits: Tensor[R+, K or 1, M, M] mask logits; per image: gt_masks
    Tensor[G_i, H, W] uint8/bool, boxes Tensor[R+_i, 4] the positive RoIs,
    matched Tensor[R+_i] int64 ground-truth index; labels: Tensor[R+] int64
    ground-truth classes (concatenated in image order).
    mask_loss: "sigmoid" (the paper's per-class binary cross entropy on the
    true class's mask, averaged over pixels) or "softmax" (Table 2b's
    multinomial ablation: cross entropy over classes per pixel).
    -> scalar loss (0 connected to ``logits`` when there are no targets)."""
    m = logits.shape[-1]
    tg = [mask_targets(g, b, mi, m) for g, b, mi in zip(gt_masks, boxes, matched)]
    tgt = torch.cat(tg, 0) if tg else logits.new_zeros((0, m, m))
    if tgt.numel() == 0:
        return logits.sum() * 0
    if mask_loss == "softmax":
        cls_t = torch.where(tgt >= 0.5, labels[:, None, None], torch.zeros_like(labels)[:, None, None])
        return F.cross_entropy(logits, cls_t)
    if logits.shape[1] == 1:
        sel = logits[:, 0]
    else:
        sel = logits[torch.arange(labels.numel(), device=labels.device), labels]
    return F.binary_cross_entropy_with_logits(sel, tgt)


def keypoint_rcnn_loss(
    logits: Tensor, gt_keypoints: Sequence[Tensor], boxes: Sequence[Tensor], matched: Sequence[Tensor]
) -> Tensor:
    """Keypoint loss: cross entropy over the S*S heatmap pixels of each
    visible keypoint whose target falls inside its RoI, averaged over them.

    logits: Tensor[R+, P, S, S]; per image: gt_keypoints Tensor[G_i, P, 3]
    (x, y, visibility), boxes Tensor[R+_i, 4], matched Tensor[R+_i] int64.
    -> scalar loss (0 connected to ``logits`` without valid keypoints)."""
    r, p, s, _ = logits.shape
    hm: List[Tensor] = []
    va: List[Tensor] = []
    for kps, b, mi in zip(gt_keypoints, boxes, matched):
        h, v = keypoint_targets(kps[mi], b, s)
        hm.append(h.reshape(-1))
        va.append(v.reshape(-1))
    if not hm:
        return logits.sum() * 0
    heat, vis = torch.cat(hm), torch.cat(va)
    valid = torch.where(vis)[0]
    if valid.numel() == 0:
        return logits.sum() * 0
    return F.cross_entropy(logits.reshape(r * p, s * s)[valid], heat[valid])
