"""The one COCO results exporter: ``Instances`` -> COCO result dicts.

Keypoint visibility: the third value of each exported keypoint is 1, as
torchvision's Keypoint R-CNN writes it and as the COCO results format
recommends ("we recommend users simply set v=1"). COCOeval's OKS ignores the
predicted v, so the metric does not depend on it; writing the heatmap score
there instead (detectron2's habit) would give negative logits the meaning
"not labelled" in tools that read v. The per-keypoint scores stay available
in ``Instances.keypoint_scores``.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .instances import Instances

__all__ = ["instances_to_coco", "masks_to_rle", "resize_masks"]


def masks_to_rle(masks: Tensor) -> List[dict]:
    """Masks ``Tensor[D, H, W]`` (bool/uint8, or float thresholded at 0.5) ->
    list of D COCO RLE dicts ``{"size": [H, W], "counts": str}`` (compressed
    counts, as pycocotools writes to JSON)."""
    from pycocotools import mask as mask_utils

    if masks.shape[0] == 0:
        return []
    m = masks.detach().cpu()
    if m.dtype.is_floating_point:
        m = m > 0.5
    arr = np.asfortranarray(m.permute(1, 2, 0).to(torch.uint8).numpy())
    rles = mask_utils.encode(arr)
    return [_json_rle(r) for r in rles]


def resize_masks(masks: Tensor, size: Tuple[int, int]) -> Tensor:
    """``Tensor[D, h, w]`` bool/uint8/float -> ``Tensor[D, H, W]`` bool at
    ``size`` = (H, W): bilinear on probabilities, nearest on binary masks,
    then thresholded at 0.5."""
    size = (int(size[0]), int(size[1]))
    if masks.shape[0] == 0:
        return torch.zeros((0, *size), dtype=torch.bool)
    if tuple(masks.shape[-2:]) == size:
        return masks if masks.dtype == torch.bool else masks > 0.5
    if masks.dtype.is_floating_point:
        return F.interpolate(masks[None].float(), size=size, mode="bilinear", align_corners=False)[0] > 0.5
    return F.interpolate(masks[None].float(), size=size, mode="nearest")[0] > 0.5


def _json_rle(r: Mapping[str, Any]) -> dict:
    counts = r["counts"]
    return {
        "size": [int(s) for s in r["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def _rles(masks: Any, n: int, orig_size: Optional[Tuple[int, int]]) -> List[dict]:
    """Any mask field of ``n`` detections -> n JSON RLE dicts (at ``orig_size`` when given)."""
    from pycocotools import mask as mask_utils

    if isinstance(masks, (list, tuple)):
        if len(masks) != n:
            raise ValueError(f"instances_to_coco: {len(masks)} masks for {n} boxes")
        out = []
        for m in masks:
            if isinstance(m, Mapping):
                r = dict(m)
                if isinstance(r["counts"], list):
                    r = mask_utils.frPyObjects(r, *r["size"])
                if orig_size is not None and tuple(r["size"]) != tuple(orig_size):
                    if isinstance(r["counts"], str):
                        r["counts"] = r["counts"].encode("ascii")
                    full = torch.from_numpy(mask_utils.decode(r).astype(bool))[None]
                    r = masks_to_rle(resize_masks(full, orig_size))[0]
                out.append(_json_rle(r))
            else:
                t = torch.as_tensor(m)
                out.extend(_rles(t[None] if t.dim() == 2 else t, 1, orig_size))
        return out
    m = torch.as_tensor(masks)
    if m.dim() == 4:
        m = m[:, 0]
    if m.shape[0] != n:
        raise ValueError(f"instances_to_coco: {m.shape[0]} masks for {n} boxes")
    if orig_size is not None:
        m = resize_masks(m.detach().cpu(), orig_size)
    return masks_to_rle(m)


def instances_to_coco(
    det: Any,
    image_id: int,
    label_to_category_id: Optional[Mapping[int, int]] = None,
    *,
    image_size: Optional[Tuple[int, int]] = None,
    orig_size: Optional[Tuple[int, int]] = None,
) -> List[dict]:
    """One image's detections -> COCO result dicts ``{"image_id",
    "category_id", "bbox": [x, y, w, h], "score", "segmentation": RLE (counts
    str), "keypoints": [x1, y1, 1, ...]}``.

    det: ``Instances`` (or anything ``Instances.coerce`` reads): boxes
      [D, 4] XYXY pixels, scores [D], labels [D], optional masks (bool/uint8/
      float [D, H, W] or [D, 1, H, W], or RLE dicts) and keypoints [D, P, 3].
    label_to_category_id: contiguous label -> dataset category id (default:
      the label itself).
    image_size / orig_size: (h, w) of the image the model saw and (H, W) of
      the ground truth; when both are given and differ, boxes and keypoints
      are rescaled. Masks not at ``orig_size`` are resized to it.
    """
    inst = Instances.coerce(det)
    boxes = inst.boxes.detach().cpu().to(torch.float64).numpy().reshape(-1, 4)
    scores = inst.scores.detach().cpu().to(torch.float64).numpy().reshape(-1)
    labels = inst.labels.detach().cpu().to(torch.int64).numpy().reshape(-1)
    n = len(boxes)
    if len(scores) != n or len(labels) != n:
        raise ValueError(
            f"instances_to_coco: boxes ({n}), scores ({len(scores)}) and labels "
            f"({len(labels)}) must have the same length"
        )
    sx = sy = 1.0
    if image_size is not None and orig_size is not None and tuple(image_size) != tuple(orig_size):
        sx, sy = orig_size[1] / image_size[1], orig_size[0] / image_size[0]
        boxes = boxes * np.array([sx, sy, sx, sy])
    rles = _rles(inst.masks, n, orig_size) if inst.masks is not None else None
    kps = None
    if inst.keypoints is not None:
        kps = inst.keypoints.detach().cpu().to(torch.float64).numpy().copy()
        if kps.ndim != 3 or kps.shape[0] != n:
            raise ValueError(f"instances_to_coco: keypoints must be [D, P, 3], got {list(kps.shape)}")
        kps[..., 0] *= sx
        kps[..., 1] *= sy
        kps[..., 2] = 1.0  # see the module docstring
    return [_result(i, int(image_id), boxes, scores, labels, rles, kps, label_to_category_id) for i in range(n)]


def _result(
    i: int,
    image_id: int,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    rles: Optional[Sequence[dict]],
    kps: Optional[np.ndarray],
    l2c: Optional[Mapping[int, int]],
) -> dict:
    label = int(labels[i])
    if l2c is not None:
        if label not in l2c:
            raise ValueError(f"instances_to_coco: label {label} has no category id (known labels {sorted(l2c)})")
        cat = int(l2c[label])
    else:
        cat = label
    x1, y1, x2, y2 = (float(v) for v in boxes[i])
    r = {"image_id": image_id, "category_id": cat, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(scores[i])}
    if rles is not None:
        r["segmentation"] = rles[i]
    if kps is not None:
        r["keypoints"] = [float(v) for v in kps[i].reshape(-1)]
    return r
