"""The one per-image result structure: from the RoI heads to the user.

``Instances`` carries the detections of one image. The RoI heads emit them in
the resized frame the network saw (``mask_probs`` box-local); ``MaskRCNN``
maps them to the input image's frame and pastes the masks, which gives a
``Detections`` (the same fields, the input image's frame). Visualisation, TTA
and evaluation read the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import torch
from torch import Tensor

__all__ = ["Instances", "Detections", "MaskField"]

# bool/uint8/float Tensor[D, H, W] full-image masks, or D COCO RLE dicts
MaskField = Union[Tensor, List[dict]]

_T = TypeVar("_T", bound="Instances")


@dataclass
class Instances:
    """Detections of one image.

    boxes: Tensor[D, 4] float, XYXY, absolute pixels of ``image_size``.
    scores: Tensor[D] float in [0, 1], descending after post-processing.
    labels: Tensor[D] int64 in 1..num_classes-1 (0 is background, never returned).
    masks: Tensor[D, H, W] bool full-image masks, or a list of D COCO RLE dicts
      (``{"size": [H, W], "counts": str}``), or None.
    keypoints: Tensor[D, P, 3] float (x, y, score) in pixels, or None.
    image_size: (H, W) of the frame the coordinates are in.
    keypoint_scores: Tensor[D, P] float heatmap logits at the peak, or None.
    mask_probs: Tensor[D, M, M] float box-local probabilities of the predicted
      class (what the mask head emits), or None.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    masks: Optional[MaskField] = None
    keypoints: Optional[Tensor] = None
    image_size: Tuple[int, int] = (0, 0)
    keypoint_scores: Optional[Tensor] = None
    mask_probs: Optional[Tensor] = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self: _T, index: Union[int, slice, Tensor, Sequence[int]]) -> _T:
        """The detections selected by ``index`` (an int keeps a length-1 result)."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(index, None)
        idx_list: Optional[List[int]] = None
        out: dict = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                out[f.name] = v[index]
            elif isinstance(v, list):
                if idx_list is None:
                    idx_list = _index_list(index, len(v))
                out[f.name] = [v[i] for i in idx_list]
            else:
                out[f.name] = v
        return replace(self, **out)

    def to(self: _T, device: Union[str, torch.device]) -> _T:
        """The same detections with every tensor on ``device`` (RLE masks stay as they are)."""
        out: dict = {
            f.name: getattr(self, f.name).to(device) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)
        }
        return replace(self, **out)

    @classmethod
    def cat(cls: type, items: Sequence["Instances"], image_size: Optional[Tuple[int, int]] = None) -> Any:
        """Concatenate detections of one image (e.g. from several augmentations
        mapped to one frame). A field is kept only when every item has it."""
        if not items:
            raise ValueError("Instances.cat: got no items")
        out = {}
        for f in fields(items[0]):
            vals = [getattr(i, f.name) for i in items]
            if f.name == "image_size":
                out[f.name] = tuple(image_size) if image_size is not None else vals[0]
            elif any(v is None for v in vals):
                out[f.name] = None
            elif all(isinstance(v, Tensor) for v in vals):
                out[f.name] = torch.cat(vals)
            else:
                out[f.name] = [x for v in vals for x in v]
        return cls(**out)

    @classmethod
    def coerce(cls: type, det: Any, *, default_scores: bool = False) -> Any:
        """``det`` as this type: an ``Instances`` is returned as is (or
        rewrapped), a mapping or any object with ``boxes``/``scores``/``labels``
        attributes is read field by field (the one place foreign result
        formats are accepted). ``default_scores``: missing scores become 1
        (ground truth drawn like detections)."""
        if isinstance(det, cls):
            return det
        names = [f.name for f in fields(cls)]
        if isinstance(det, Instances):
            return cls(**{n: getattr(det, n) for n in names})
        if isinstance(det, Mapping):
            vals = {n: det[n] for n in names if n in det and det[n] is not None}
        else:
            vals = {n: getattr(det, n) for n in names if getattr(det, n, None) is not None}
        if default_scores and "scores" not in vals and "boxes" in vals:
            vals["scores"] = torch.ones(torch.as_tensor(vals["boxes"]).reshape(-1, 4).shape[0])
        for n in ("boxes", "scores", "labels"):
            if n not in vals:
                raise ValueError(f"{cls.__name__}.coerce: detections need {n!r}")
        vals["boxes"] = torch.as_tensor(vals["boxes"]).reshape(-1, 4)
        vals["scores"] = torch.as_tensor(vals["scores"]).reshape(-1)
        vals["labels"] = torch.as_tensor(vals["labels"]).reshape(-1)
        for n in ("keypoints", "keypoint_scores", "mask_probs"):
            if n in vals:
                vals[n] = torch.as_tensor(vals[n])
        if "masks" in vals and not isinstance(vals["masks"], (Tensor, list)):
            vals["masks"] = (
                torch.as_tensor(vals["masks"]) if not isinstance(vals["masks"], tuple) else list(vals["masks"])
            )
        if "image_size" in vals:
            vals["image_size"] = tuple(int(s) for s in vals["image_size"])
        return cls(**vals)

    def to_coco(
        self,
        image_id: int,
        category_ids: Optional[Union[Sequence[int], Mapping[int, int]]] = None,
    ) -> List[dict]:
        """COCO result dicts (see ``structures.coco.instances_to_coco``).

        category_ids maps a contiguous label to a dataset category id
        (``category_ids[label]``); by default the label itself is the id.
        """
        from .coco import instances_to_coco

        l2c = None
        if category_ids is not None:
            l2c = dict(category_ids) if isinstance(category_ids, Mapping) else dict(enumerate(category_ids))
        return instances_to_coco(self, image_id, l2c)


@dataclass
class Detections(Instances):
    """``Instances`` in the input image's pixel frame, as ``Model.predict``
    returns them: ``masks`` pasted (bool Tensor[D, H, W] or RLE dicts),
    ``mask_probs`` None, ``image_size`` the input image's (H, W)."""


def _index_list(index: Any, n: int) -> List[int]:
    if isinstance(index, slice):
        return list(range(n))[index]
    t = torch.as_tensor(index)
    if t.dtype == torch.bool:
        return torch.nonzero(t).flatten().tolist()
    return [int(i) for i in t.reshape(-1).tolist()]
