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
from torch import Tensor, nn

from ..structures import ImageList


def _scale_factor(h: int, w: int, min_size: int, max_size: int) -> float:
    return min(min_size / min(h, w), max_size / max(h, w))


def resize_image(image: Tensor, min_size: int, max_size: int) -> Tensor:
    """image [C, H, W] float -> [C, H', W'] with H', W' = floor(H*s), floor(W*s),
    s = min(min_size / min(H, W), max_size / max(H, W))."""
    h, w = image.shape[-2:]
    s = _scale_factor(h, w, min_size, max_size)
    return F.interpolate(
        image[None], scale_factor=s, mode="bilinear", recompute_scale_factor=True, align_corners=False
    )[0]


def _ratios(from_size: Tuple[int, int], to_size: Tuple[int, int], like: Tensor) -> Tuple[Tensor, Tensor]:
    """(h, w) frame ratios computed as torchvision does (float32 divisions,
    so imported weights give its answers), on ``like``'s device."""
    dev = like.device
    rh = torch.tensor(to_size[0], dtype=torch.float32, device=dev) / torch.tensor(
        from_size[0], dtype=torch.float32, device=dev
    )
    rw = torch.tensor(to_size[1], dtype=torch.float32, device=dev) / torch.tensor(
        from_size[1], dtype=torch.float32, device=dev
    )
    return rh, rw


def scale_boxes(boxes: Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> Tensor:
    """Rescale XYXY boxes ``Tensor[N, 4]`` from an (h, w) frame to another;
    result in ``boxes``' dtype and device."""
    rh, rw = _ratios(from_size, to_size, boxes)
    return boxes * torch.stack((rw, rh, rw, rh)).to(boxes.dtype)


def scale_keypoints(kps: Tensor, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> Tensor:
    """Rescale keypoints ``Tensor[N, P, 3]`` (x, y, v) between (h, w) frames; v untouched."""
    rh, rw = _ratios(from_size, to_size, kps)
    out = kps.clone()
    out[..., 0] *= rw
    out[..., 1] *= rh
    return out


class Preprocessor(nn.Module):
    """Normalise, resize and batch images (and their targets) for the model.

    ``image_mean``/``image_std`` are non-persistent buffers (not in the state
    dict, so checkpoints are unchanged): ``model.to(device, dtype)`` moves and
    casts them, and images are converted to their dtype and device.

    forward(images: list of Tensor[3, H_i, W_i] float in [0, 1], targets or
    None, training: bool, size: shorter side to use instead of the configured
    one, max_size: cap on the longer side instead of the configured one)
    -> (ImageList [N, 3, Hp, Wp] in the buffers' dtype, targets in the resized
    frame (boxes/keypoints in that dtype, masks uint8), original (H_i, W_i)).
    """

    mean: Tensor
    std: Tensor

    def __init__(self, cfg):
        super().__init__()
        self.min_size: Tuple[int, ...] = cfg.min_size if isinstance(cfg.min_size, tuple) else (int(cfg.min_size),)
        self.max_size: int = cfg.max_size
        self.size_divisible: int = cfg.size_divisible
        self.register_buffer("mean", torch.tensor(cfg.image_mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.image_std, dtype=torch.float32).view(3, 1, 1), persistent=False)

    def _pick_size(self, training: bool) -> int:
        if training:
            # one uniform draw from the CPU default generator per image, as
            # torchvision's transform, so seeded runs pick the same sizes
            k = int(torch.empty(1).uniform_(0.0, float(len(self.min_size))).item())
            return self.min_size[k]
        return self.min_size[-1]

    def _resize_target(
        self, t: Dict[str, Tensor], hw: Tuple[int, int], new_hw: Tuple[int, int], size: int, max_size: int
    ) -> Dict[str, Tensor]:
        t = dict(t)
        dtype, dev = self.mean.dtype, self.mean.device
        if "boxes" in t:
            t["boxes"] = scale_boxes(t["boxes"].to(device=dev, dtype=dtype), hw, new_hw)
        if "masks" in t and t["masks"].shape[0] > 0:
            s = _scale_factor(hw[0], hw[1], size, max_size)
            t["masks"] = F.interpolate(t["masks"][:, None].float(), scale_factor=s, recompute_scale_factor=True)[
                :, 0
            ].byte()
        elif "masks" in t:
            t["masks"] = t["masks"].new_zeros((0,) + tuple(new_hw), dtype=torch.uint8)
        if "keypoints" in t:
            t["keypoints"] = scale_keypoints(t["keypoints"].to(device=dev, dtype=dtype), hw, new_hw)
        return t

    def forward(
        self,
        images: List[Tensor],
        targets: Optional[List[Dict[str, Tensor]]] = None,
        training: bool = False,
        size: Optional[int] = None,
        max_size: Optional[int] = None,
    ):
        """See the class docstring: (ImageList, resized targets, original sizes)."""
        out_imgs, out_tgts, orig = [], [], []
        cap = self.max_size if max_size is None else int(max_size)
        for i, im in enumerate(images):
            if im.dim() != 3 or im.shape[0] != 3:
                raise ValueError(f"images[{i}]: expected a Tensor[3, H, W], got shape {list(im.shape)}")
            if not im.is_floating_point():
                raise TypeError(f"images[{i}]: expected a float tensor in [0, 1], got {im.dtype}")
            h, w = int(im.shape[-2]), int(im.shape[-1])
            orig.append((h, w))
            s = self._pick_size(training) if size is None else int(size)
            x = (im.to(device=self.mean.device, dtype=self.mean.dtype) - self.mean) / self.std
            x = resize_image(x, s, cap)
            out_imgs.append(x)
            if targets is not None:
                out_tgts.append(self._resize_target(targets[i], (h, w), (int(x.shape[-2]), int(x.shape[-1])), s, cap))
        batch = ImageList.from_tensors(out_imgs, self.size_divisible)
        return batch, (out_tgts if targets is not None else None), orig
