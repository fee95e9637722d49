"""Input preprocessing: normalise, resize (shorter side to min_size, longer side
capped at max_size), pad into a batch; and mapping results back.

Semantics follow torchvision's GeneralizedRCNNTransform so that imported
weights give the same answers: normalisation happens before the bilinear
resize (align_corners=False, scale factor recomputed from the output size),
padding is zero in the normalised space, and in training one size of a
multi-scale ``min_size`` tuple is drawn per image with one
``torch.empty(1).uniform_`` from the default generator.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..structures import ImageList


def _scale_factor(h: int, w: int, min_size: int, max_size: int) -> float:
    return min(min_size / min(h, w), max_size / max(h, w))


def resize_image(image: Tensor, min_size: int, max_size: int) -> Tensor:
    """image [C, H, W] float -> [C, H', W'] with H', W' = floor(H*s), floor(W*s),
    s = min(min_size / min(H, W), max_size / max(H, W))."""
    h, w = image.shape[-2:]
    s = _scale_factor(h, w, min_size, max_size)
    return F.interpolate(image[None], scale_factor=s, mode="bilinear", recompute_scale_factor=True,
                         align_corners=False)[0]


def scale_boxes(boxes: Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> Tensor:
    """Rescale XYXY boxes [N, 4] from an (h, w) frame to another (float32 ratios)."""
    rh = torch.tensor(to_size[0], dtype=torch.float32) / torch.tensor(from_size[0], dtype=torch.float32)
    rw = torch.tensor(to_size[1], dtype=torch.float32) / torch.tensor(from_size[1], dtype=torch.float32)
    return boxes * torch.stack((rw, rh, rw, rh)).to(boxes.dtype)


def scale_keypoints(kps: Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> Tensor:
    """Rescale keypoints [N, P, 3] (x, y, v) between (h, w) frames; v untouched."""
    rh = torch.tensor(to_size[0], dtype=torch.float32) / torch.tensor(from_size[0], dtype=torch.float32)
    rw = torch.tensor(to_size[1], dtype=torch.float32) / torch.tensor(from_size[1], dtype=torch.float32)
    out = kps.clone()
    out[..., 0] *= rw
    out[..., 1] *= rh
    return out


class Preprocessor:
    """__call__(images: list of [3, H_i, W_i] float in [0, 1], targets or None,
    training: bool) -> (ImageList, targets in the resized frame, original sizes)."""

    def __init__(self, cfg):
        self.min_size = cfg.min_size if isinstance(cfg.min_size, tuple) else (int(cfg.min_size),)
        self.max_size = cfg.max_size
        self.mean = torch.tensor(cfg.image_mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(cfg.image_std, dtype=torch.float32).view(3, 1, 1)
        self.size_divisible = cfg.size_divisible

    def __call__(self, images: List[Tensor], targets: Optional[List[Dict[str, Tensor]]] = None,
                 training: bool = False):
        out_imgs, out_tgts, orig = [], [], []
        for i, im in enumerate(images):
            if im.dim() != 3 or im.shape[0] != 3:
                raise ValueError(f"images[{i}]: expected a Tensor[3, H, W], got shape {list(im.shape)}")
            if not im.is_floating_point():
                raise TypeError(f"images[{i}]: expected a float tensor in [0, 1], got {im.dtype}")
            h, w = int(im.shape[-2]), int(im.shape[-1])
            orig.append((h, w))
            if training:
                k = int(torch.empty(1).uniform_(0.0, float(len(self.min_size))).item())
                size = self.min_size[k]
            else:
                size = self.min_size[-1]
            x = (im.float() - self.mean) / self.std
            x = resize_image(x, size, self.max_size)
            out_imgs.append(x)
            if targets is not None:
                t = dict(targets[i])
                nh, nw = int(x.shape[-2]), int(x.shape[-1])
                if "boxes" in t:
                    t["boxes"] = scale_boxes(t["boxes"].float(), (h, w), (nh, nw))
                if "masks" in t and t["masks"].shape[0] > 0:
                    s = _scale_factor(h, w, size, self.max_size)
                    t["masks"] = F.interpolate(t["masks"][:, None].float(), scale_factor=s,
                                               recompute_scale_factor=True)[:, 0].byte()
                elif "masks" in t:
                    t["masks"] = t["masks"].new_zeros((0, nh, nw), dtype=torch.uint8)
                if "keypoints" in t:
                    t["keypoints"] = scale_keypoints(t["keypoints"].float(), (h, w), (nh, nw))
                out_tgts.append(t)
        batch = ImageList.from_tensors(out_imgs, self.size_divisible)
        return batch, (out_tgts if targets is not None else None), orig
