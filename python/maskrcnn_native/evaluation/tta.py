"""Test-time augmentation (paper, Appendix B): several scales plus a
horizontal flip, merged into one set of detections per image.

What is merged, exactly:

1. Every augmentation (each scale in ``scales``, each with and without a flip
   when ``flip``) runs ``model.predict`` once. Its detections are mapped back
   to the original image frame: boxes and keypoints are unscaled and
   unflipped (keypoint ids permuted with ``flip_map``), masks are resized to
   the original size and unflipped.
2. Boxes: all candidates are concatenated and reduced by per-class NMS
   (``nms_threshold``), keeping at most ``detections_per_image``. A kept
   detection keeps its own box, score and label (no box voting).
3. Masks: the mask of a kept detection is the pixelwise average of the binary
   masks of every candidate of the same class whose box overlaps the kept box
   with IoU >= ``match_iou`` (the kept one included), thresholded at
   ``mask_threshold`` (``>=``). With binary masks this is a vote among the
   augmentations. (detectron2 instead re-runs the mask head on the merged boxes;
   that needs the model's internals, this does not.)
4. Keypoints: the average (x, y) over the same matched candidates, with the
   maximum of their third value (visibility/score).

How a scale is applied: if ``model.predict`` accepts ``min_size`` (``mn.Model``
does), the scale and ``max_size`` are passed to it; the model is never
modified. Otherwise the image itself is resized so its shorter side is the
scale (right for models that do not resize their input).

Memory: the candidate masks of one image are kept as uint8 at the original
size: O(scales x 2 x detections x H x W) bytes.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from ..data.transforms import resized_shape
from ..structures import Detections, Instances
from .coco_eval import accepts_kwarg

__all__ = ["predict_tta", "merge_detections"]


def _iou(a: Tensor, b: Tensor) -> Tensor:
    """[N, 4] x [M, 4] XYXY -> [N, M]."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def _masks_tensor(masks: Any, n: int, size: Tuple[int, int]) -> Optional[Tensor]:
    """Any mask format -> uint8 [n, H, W] at ``size`` (or None)."""
    if masks is None:
        return None
    if isinstance(masks, (list, tuple)):
        if not masks:
            return torch.zeros((0, *size), dtype=torch.uint8)
        if isinstance(masks[0], Mapping):
            from pycocotools import mask as mask_utils

            dec = []
            for r in masks:
                r = dict(r)
                if isinstance(r["counts"], str):
                    r["counts"] = r["counts"].encode("ascii")
                dec.append(torch.from_numpy(mask_utils.decode(r).astype(np.uint8)))
            m = torch.stack(dec)
        else:
            m = torch.stack([torch.as_tensor(x) for x in masks])
    else:
        m = torch.as_tensor(masks)
    if m.dim() == 4:
        m = m[:, 0]
    if m.shape[0] != n:
        raise ValueError(f"predict_tta: {m.shape[0]} masks for {n} boxes")
    if tuple(m.shape[-2:]) != tuple(size):
        mode = "bilinear" if m.dtype.is_floating_point else "nearest"
        kw = {"align_corners": False} if mode == "bilinear" else {}
        m = F.interpolate(m[None].float(), size=size, mode=mode, **kw)[0]
    return (m > 0.5).to(torch.uint8) if m.dtype != torch.bool else m.to(torch.uint8)


def merge_detections(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    masks: Optional[Tensor] = None,
    keypoints: Optional[Tensor] = None,
    *,
    nms_threshold: float = 0.5,
    match_iou: float = 0.5,
    mask_threshold: float = 0.5,
    detections_per_image: int = 100,
    image_size: Tuple[int, int] = (0, 0),
) -> Instances:
    """Merge candidates from several augmentations (see the module docstring).

    boxes [N, 4] XYXY, scores [N], labels [N], masks [N, H, W] (binary or
    probabilities), keypoints [N, P, 3]; all in the same image frame
    (``image_size``). Returns the merged ``Instances`` (boxes float32, masks
    bool [D, H, W], keypoints [D, P, 3]) sorted by score.
    """
    boxes = boxes.float()
    keep = ops.batched_nms(boxes.contiguous(), scores.float().contiguous(), labels.long().contiguous(), nms_threshold)[
        :detections_per_image
    ]
    kb = boxes[keep]
    out = Instances(boxes=kb, scores=scores[keep].float(), labels=labels[keep].long(), image_size=image_size)
    if len(keep) == 0:
        if masks is not None:
            out.masks = torch.zeros((0, *masks.shape[-2:]), dtype=torch.bool)
        if keypoints is not None:
            out.keypoints = keypoints.new_zeros((0, *keypoints.shape[1:]))
        return out
    match = (_iou(kb, boxes) >= match_iou) & (labels[keep][:, None] == labels[None, :])
    match[torch.arange(len(keep)), keep] = True
    w = match.float()
    w = w / w.sum(1, keepdim=True)
    if masks is not None:
        merged = []
        for i in range(len(keep)):  # one at a time: never N x H x W floats at once
            idx = torch.nonzero(match[i]).flatten()
            merged.append(masks[idx].float().mean(0) >= mask_threshold)
        out.masks = torch.stack(merged)
    if keypoints is not None:
        kp = keypoints.float()
        xy = torch.einsum("kn,npc->kpc", w, kp[..., :2])
        v = torch.stack([kp[torch.nonzero(match[i]).flatten(), :, 2].max(0).values for i in range(len(keep))])
        out.keypoints = torch.cat([xy, v[..., None]], dim=-1)
    return out


def predict_tta(
    model: Any,
    images: Sequence[Tensor],
    scales: Sequence[int] = (400, 500, 600, 700, 800),
    flip: bool = True,
    *,
    max_size: Optional[int] = 1333,
    flip_map: Optional[Sequence[int]] = None,
    nms_threshold: float = 0.5,
    match_iou: float = 0.5,
    mask_threshold: float = 0.5,
    score_threshold: float = 0.0,
    detections_per_image: int = 100,
    predict_kwargs: Optional[Mapping[str, Any]] = None,
) -> List[Detections]:
    """Multi-scale (+ horizontal flip) inference merged per image.

    Args:
        model: anything with ``predict(list of Tensor[3, H, W]) -> detections``.
        images: list of Tensor[3, H, W] float in [0, 1] (or a single tensor).
        scales: shorter-side sizes to run at.
        flip: also run every scale on the horizontally flipped image.
        max_size: cap on the longer side at each scale.
        flip_map: keypoint left/right permutation (required when the model
            predicts keypoints and ``flip``).
        score_threshold: candidates below it are dropped before merging.
    Returns:
        one ``maskrcnn_native.Detections`` per image, in the original frame
        (masks bool [D, H, W], keypoints [D, P, 3] or None).
    """
    if isinstance(images, Tensor) and images.dim() == 3:
        images = [images]
    if not scales:
        raise ValueError("predict_tta: scales must not be empty")
    kwargs = dict(predict_kwargs or {})
    if accepts_kwarg(model.predict, "mask_format"):
        kwargs.setdefault("mask_format", "bitmap")
    by_kwarg = accepts_kwarg(model.predict, "min_size")
    results = []
    for image in images:
        H, W = int(image.shape[-2]), int(image.shape[-1])
        cands = [
            _run_one(model, image, int(s), flipped, max_size, by_kwarg, kwargs, flip_map, score_threshold)
            for s in scales
            for flipped in ((False, True) if flip else (False,))
        ]
        c = Instances.cat(cands, image_size=(H, W))
        merged = merge_detections(
            c.boxes,
            c.scores,
            c.labels,
            c.masks,
            c.keypoints,
            nms_threshold=nms_threshold,
            match_iou=match_iou,
            mask_threshold=mask_threshold,
            detections_per_image=detections_per_image,
            image_size=(H, W),
        )
        results.append(Detections.coerce(merged))
    return results


def _run_one(
    model: Any,
    image: Tensor,
    size: int,
    flipped: bool,
    max_size: Optional[int],
    by_kwarg: bool,
    kwargs: Mapping[str, Any],
    flip_map: Optional[Sequence[int]],
    score_threshold: float,
) -> Instances:
    """One augmentation of one image -> its candidates in the original frame."""
    H, W = int(image.shape[-2]), int(image.shape[-1])
    x = image.flip(-1) if flipped else image
    frame = (H, W)
    if by_kwarg:
        det = model.predict([x], min_size=size, max_size=max_size, **kwargs)[0]
    else:
        frame = resized_shape(H, W, size, max_size)
        x = F.interpolate(x[None], size=frame, mode="bilinear", align_corners=False, antialias=frame[0] < H)[0].clamp(
            0, 1
        )
        det = model.predict([x], **kwargs)[0]
    return _to_original_frame(Instances.coerce(det), frame, (H, W), flipped, flip_map, score_threshold)


def _to_original_frame(
    det: Instances,
    frame: Tuple[int, int],
    orig: Tuple[int, int],
    flipped: bool,
    flip_map: Optional[Sequence[int]],
    score_threshold: float,
) -> Instances:
    H, W = orig
    boxes = det.boxes.float().reshape(-1, 4).cpu()
    scores = det.scores.float().reshape(-1).cpu()
    labels = det.labels.long().reshape(-1).cpu()
    keep = scores >= score_threshold
    n = len(boxes)
    # the frame the model's outputs are in: the image it was given
    sx, sy = W / frame[1], H / frame[0]
    boxes = boxes * torch.tensor([sx, sy, sx, sy])
    if flipped:
        boxes = torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], dim=1)
    masks = _masks_tensor(det.masks, n, (H, W))
    if masks is not None and flipped:
        masks = masks.flip(-1)
    kps = det.keypoints
    if kps is not None:
        kps = _unflip_keypoints(kps.float().cpu().clone(), sx, sy, W, flipped, flip_map)
    return Instances(
        boxes=boxes[keep],
        scores=scores[keep],
        labels=labels[keep],
        masks=masks[keep] if masks is not None else None,
        keypoints=kps[keep] if kps is not None else None,
        image_size=(H, W),
    )


def _unflip_keypoints(
    kps: Tensor, sx: float, sy: float, W: int, flipped: bool, flip_map: Optional[Sequence[int]]
) -> Tensor:
    """Keypoints [D, P, 3] scaled by (sx, sy) and, when ``flipped``, mirrored
    in an image of width W with left/right ids swapped by ``flip_map``."""
    kps[..., 0] *= sx
    kps[..., 1] *= sy
    if not flipped:
        return kps
    P = kps.shape[1]
    if flip_map is None:
        raise ValueError("predict_tta: the model predicts keypoints; pass flip_map to flip them back")
    fm = torch.as_tensor(list(flip_map), dtype=torch.int64)
    if sorted(fm.tolist()) != list(range(P)):
        raise ValueError(f"predict_tta: flip_map must be a permutation of range({P}), got {list(flip_map)}")
    kps[..., 0] = W - kps[..., 0]
    new = torch.empty_like(kps)
    new[:, fm] = kps
    return new
