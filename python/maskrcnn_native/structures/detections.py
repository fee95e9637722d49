"""Per-image detection results and their COCO export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor


def masks_to_rle(masks: Tensor) -> List[dict]:
    """Bool masks [D, H, W] -> list of COCO RLE dicts ``{"size": [H, W],
    "counts": str}`` (compressed counts, as pycocotools writes to JSON)."""
    from pycocotools import mask as mask_utils

    if masks.shape[0] == 0:
        return []
    arr = np.asfortranarray(masks.permute(1, 2, 0).to(torch.uint8).cpu().numpy())
    rles = mask_utils.encode(arr)
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return list(rles)


@dataclass
class Detections:
    """Detections of one image, in the original image's pixel frame.

    boxes: Tensor[D, 4] float32, XYXY, absolute pixels of the input image.
    scores: Tensor[D] float32 in [0, 1], descending.
    labels: Tensor[D] int64 in 1..num_classes-1 (0 is background, never returned).
    masks: Tensor[D, H, W] bool, or a list of D COCO RLE dicts
      (``{"size": [H, W], "counts": str}``), or None for box-only models.
    keypoints: Tensor[D, P, 3] float32 (x, y, score) in pixels, or None.
    keypoint_scores: Tensor[D, P] float32 heatmap logits at the peak, or None.
    image_size: (H, W) of the input image.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    masks: Optional[Union[Tensor, List[dict]]] = None
    keypoints: Optional[Tensor] = None
    image_size: Tuple[int, int] = (0, 0)
    keypoint_scores: Optional[Tensor] = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to_coco(self, image_id: int, category_ids: Optional[Sequence[int]] = None) -> List[dict]:
        """COCO result dicts: ``{"image_id", "category_id", "bbox": [x, y, w, h],
        "score", "segmentation": RLE (counts str), "keypoints": [x1, y1, v1, ...]}``.

        category_ids maps a contiguous label to a dataset category id
        (``category_ids[label]``); by default the label itself is the id.
        """
        boxes = self.boxes.detach().cpu().float()
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
        scores = self.scores.detach().cpu().tolist()
        labels = self.labels.detach().cpu().tolist()
        rles = None
        if self.masks is not None:
            rles = self.masks if isinstance(self.masks, list) else masks_to_rle(self.masks)
        kps = None
        if self.keypoints is not None:
            k = self.keypoints.detach().cpu().float().clone()
            # COCO results carry a visibility flag; we report 1 for every keypoint
            k[..., 2] = 1.0
            kps = k.reshape(k.shape[0], -1).tolist()
        out = []
        for i in range(len(scores)):
            cat = int(category_ids[labels[i]]) if category_ids is not None else int(labels[i])
            r = {"image_id": int(image_id), "category_id": cat,
                 "bbox": [float(v) for v in xywh[i]], "score": float(scores[i])}
            if rles is not None:
                r["segmentation"] = rles[i]
            if kps is not None:
                r["keypoints"] = kps[i]
            out.append(r)
        return out
