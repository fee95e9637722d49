"""RoI head inference post-processing: box decoding and per-class NMS, the
predicted class's mask probabilities, keypoint heatmap decoding.

Coordinate frame: XYXY absolute pixels of the resized image the network saw.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...structures import Instances
from .. import _ops
from ..box_coder import BoxCoder

__all__ = ["fast_rcnn_inference", "heatmaps_to_keypoints", "mask_probs_of_labels"]


def fast_rcnn_inference(
    logits: Tensor,
    deltas: Tensor,
    proposals: Sequence[Tensor],
    image_sizes: Sequence[Tuple[int, int]],
    box_coder: BoxCoder,
    score_threshold: float,
    nms_threshold: float,
    detections_per_image: int,
) -> List[Instances]:
    """Detections from the box head's outputs (torchvision's postprocess).

    logits: Tensor[R, K] class scores; deltas: Tensor[R, 4K]; proposals: per
    image Tensor[R_i, 4] (sum R_i = R); image_sizes: per image (h, w) to clip to.
    Per class: decode, clip, drop background, keep score > score_threshold,
    drop boxes under 0.01 px, NMS per class at nms_threshold, keep the top
    detections_per_image.
    -> per image ``Instances`` (boxes [D, 4], scores [D] descending, labels
    [D] int64 in 1..K-1, ``image_size`` the resized (h, w))."""
    nc = logits.shape[1]
    counts = [p.shape[0] for p in proposals]
    boxes_all = box_coder.decode(deltas, torch.cat(list(proposals)))  # [R, K, 4]
    scores_all = F.softmax(logits, -1)
    results = []
    for boxes, scores, (h, w) in zip(boxes_all.split(counts), scores_all.split(counts), image_sizes):
        boxes = torch.stack(
            (
                boxes[..., 0].clamp(0, w),
                boxes[..., 1].clamp(0, h),
                boxes[..., 2].clamp(0, w),
                boxes[..., 3].clamp(0, h),
            ),
            dim=-1,
        )
        nprop = boxes.shape[0]
        boxes = boxes[:, 1:].reshape(-1, 4)
        scores = scores[:, 1:].reshape(-1)
        labels = torch.arange(1, nc, device=boxes.device).repeat(nprop)
        keep = scores > score_threshold
        keep &= ((boxes[:, 2] - boxes[:, 0]) >= 1e-2) & ((boxes[:, 3] - boxes[:, 1]) >= 1e-2)
        idx = torch.where(keep)[0]
        boxes, scores, labels = boxes[idx], scores[idx], labels[idx]
        keep = _ops.batched_nms(boxes, scores, labels, nms_threshold)[:detections_per_image]
        results.append(
            Instances(boxes=boxes[keep], scores=scores[keep], labels=labels[keep], image_size=(int(h), int(w)))
        )
    return results


def mask_probs_of_labels(logits: Tensor, labels: Tensor, mask_loss: str = "sigmoid") -> Tensor:
    """Mask logits ``Tensor[D, K or 1, M, M]`` -> probabilities ``Tensor[D, M, M]``
    of each detection's class ``labels`` [D] int64: sigmoid of that class's
    logits (or of the single class-agnostic channel); with the "softmax" mask
    loss, the softmax over classes taken at that class."""
    rows = torch.arange(labels.numel(), device=labels.device)
    if mask_loss == "softmax":
        return logits.softmax(dim=1)[rows, labels]
    if logits.shape[1] == 1:
        return logits[:, 0].sigmoid()
    return logits[rows, labels].sigmoid()


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """Decode keypoint logits to image coordinates.

    maps: Tensor[R, P, S, S] logits; rois: Tensor[R, 4] the detections' boxes
    -> (xy: Tensor[R, P, 3] (x, y, score) pixels in ``rois``' dtype, scores:
    Tensor[R, P] the logit at the peak in ``maps``' dtype; the same dtype
    unless the head ran under autocast, where the pixels stay float32).

    Each map is resized bicubically to the box size rounded up (ceil(w) x
    ceil(h)), the arg-max pixel centre (i + 0.5) is rescaled by w / ceil(w) and
    offset by the box corner (torchvision's / Detectron's decoding). The
    per-RoI resize has a data-dependent output size, so this loops over RoIs
    (at most detections_per_image of them, each one small interpolate).
    """
    r, p = maps.shape[:2]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    wc, hc = widths.ceil(), heights.ceil()
    xy = rois.new_zeros((r, p, 3))
    scores = maps.new_zeros((r, p))
    wl, hl = wc.to(torch.int64).tolist(), hc.to(torch.int64).tolist()
    ar = torch.arange(p, device=maps.device)
    for i in range(r):
        up = F.interpolate(maps[i][:, None], size=(hl[i], wl[i]), mode="bicubic", align_corners=False)[:, 0]
        pos = up.reshape(p, -1).argmax(dim=1)
        xi = pos % wl[i]
        yi = torch.div(pos - xi, wl[i], rounding_mode="floor")
        xy[i, :, 0] = (xi.to(rois.dtype) + 0.5) * (widths[i] / wl[i]) + rois[i, 0]
        xy[i, :, 1] = (yi.to(rois.dtype) + 0.5) * (heights[i] / hl[i]) + rois[i, 1]
        scores[i] = up[ar, yi, xi]
    xy[..., 2] = scores
    return xy, scores
