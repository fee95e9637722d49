"""Composable transforms on ``(image, target)`` pairs.

``image`` is Tensor[3, H, W] float32; ``target`` is the dict of
:mod:`maskrcnn_native.data.coco` (``boxes`` XYXY absolute pixels, ``masks``
uint8 [K, H, W], optional ``keypoints`` [K, P, 3], ``crowd_boxes``). A transform
returns new tensors and a shallow-copied target; it never modifies its inputs.

Randomness: every random transform takes an optional ``generator``
(``torch.Generator``). With ``generator=None`` it draws from torch's global
RNG, which ``torch.utils.data.DataLoader`` seeds differently in every worker
(base_seed + worker id), so runs are reproducible for a fixed ``torch.manual_seed``
and worker count. Pass a generator for reproducibility independent of the
loader (e.g. in tests).

Coordinates: pixel-boundary convention. A box (x1, y1, x2, y2) spans pixels
x1 <= x < x2; a horizontal flip maps x -> W - x for boxes and keypoints.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Compose",
    "ResizeShortestSide",
    "ScaleJitter",
    "RandomHorizontalFlip",
    "resize",
    "hflip",
    "resized_shape",
    "build_transforms",
    "collate",
]


def _randint(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """Uniform integer in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def _rand(generator: Optional[torch.Generator]) -> float:
    return float(torch.rand((), generator=generator).item())


def resized_shape(h: int, w: int, short: int, max_size: Optional[int]) -> Tuple[int, int]:
    """(new_h, new_w) with the shorter side ``short`` and the longer side <= max_size."""
    scale = short / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def resize(image: Tensor, target: Optional[dict], size: Tuple[int, int]) -> Tuple[Tensor, Optional[dict]]:
    """Resize to ``size`` = (H', W'): bilinear image (antialiased when shrinking),
    nearest masks, boxes and keypoints scaled per axis."""
    h, w = image.shape[-2:]
    nh, nw = int(size[0]), int(size[1])
    if (nh, nw) == (h, w):
        return image, (dict(target) if target is not None else None)
    out = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=(nh < h or nw < w))[
        0
    ].clamp_(0.0, 1.0)
    if target is None:
        return out, None
    t = dict(target)
    sx, sy = nw / w, nh / h
    scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
    if "boxes" in t:
        t["boxes"] = t["boxes"] * scale
    if "crowd_boxes" in t:
        t["crowd_boxes"] = t["crowd_boxes"] * scale
    if "masks" in t:
        m = t["masks"]
        if m.shape[0] > 0:
            m = F.interpolate(m[None].float(), size=(nh, nw), mode="nearest")[0].to(m.dtype)
        else:
            m = m.new_zeros((0, nh, nw))
        t["masks"] = m
        if "area" in t:
            t["area"] = m.flatten(1).sum(1).to(torch.float32)
    if "keypoints" in t:
        kp = t["keypoints"].clone()
        kp[..., 0] *= sx
        kp[..., 1] *= sy
        t["keypoints"] = kp
    t["size"] = (nh, nw)
    return out, t


def hflip(
    image: Tensor, target: Optional[dict], flip_map: Optional[Sequence[int]] = None
) -> Tuple[Tensor, Optional[dict]]:
    """Horizontal flip of the image, boxes, masks and keypoints.

    ``flip_map[i]`` is the keypoint index that keypoint ``i`` becomes (left and
    right swap). Required when the target has keypoints with P > 0 unless every
    keypoint is symmetric (pass ``range(P)`` explicitly then).
    """
    w = image.shape[-1]
    out = image.flip(-1)
    if target is None:
        return out, None
    t = dict(target)
    for key in ("boxes", "crowd_boxes"):
        if key in t:
            b = t[key]
            t[key] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1) if b.numel() else b.clone()
    if "masks" in t:
        t["masks"] = t["masks"].flip(-1)
    if "keypoints" in t:
        kp = t["keypoints"]
        P = kp.shape[1]
        if P:
            if flip_map is None:
                raise ValueError(
                    "hflip: the target has keypoints but no flip_map was given (pass the dataset's keypoint_flip_map)"
                )
            fm = torch.as_tensor(list(flip_map), dtype=torch.int64)
            if fm.numel() != P or sorted(fm.tolist()) != list(range(P)):
                raise ValueError(f"hflip: flip_map must be a permutation of range({P}), got {list(flip_map)}")
            kp = kp.clone()
            kp[..., 0] = w - kp[..., 0]
            # keypoint i moves to slot flip_map[i]
            new = torch.empty_like(kp)
            new[:, fm] = kp
            new[new[..., 2] == 0] = 0.0
            kp = new
        t["keypoints"] = kp
    return out, t


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image, target=None):
        for tr in self.transforms:
            image, target = tr(image, target)
        return image, target

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ResizeShortestSide:
    """Resize so the shorter side is ``short`` and the longer side <= ``max_size``.

    ``short``: an int (fixed), or a sequence of ints from which one is chosen
    uniformly per call (``sampling="choice"``), or a (low, high) pair sampled
    uniformly as an integer in [low, high] (``sampling="range"``).
    """

    def __init__(
        self,
        short: Union[int, Sequence[int]],
        max_size: Optional[int] = None,
        *,
        sampling: str = "choice",
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if sampling not in ("choice", "range"):
            raise ValueError(f"ResizeShortestSide: sampling must be 'choice' or 'range', got {sampling!r}")
        self.short = (int(short),) if isinstance(short, int) else tuple(int(s) for s in short)
        if not self.short or min(self.short) <= 0:
            raise ValueError(f"ResizeShortestSide: sizes must be positive, got {short!r}")
        if sampling == "range" and (len(self.short) != 2 or self.short[0] > self.short[1]):
            raise ValueError(f"ResizeShortestSide: sampling='range' needs (low, high), got {short!r}")
        if max_size is not None and max_size <= 0:
            raise ValueError(f"ResizeShortestSide: max_size must be positive, got {max_size}")
        self.max_size = max_size
        self.sampling = sampling
        self.generator = generator

    def sample_short(self) -> int:
        if len(self.short) == 1:
            return self.short[0]
        if self.sampling == "range":
            return _randint(self.short[0], self.short[1], self.generator)
        return self.short[_randint(0, len(self.short) - 1, self.generator)]

    def __call__(self, image, target=None):
        h, w = image.shape[-2:]
        return resize(image, target, resized_shape(h, w, self.sample_short(), self.max_size))

    def __repr__(self) -> str:
        return f"ResizeShortestSide({self.short}, max_size={self.max_size}, sampling={self.sampling!r})"


class ScaleJitter(ResizeShortestSide):
    """Shorter side sampled uniformly from [low, high] (paper: [640, 800])."""

    def __init__(
        self,
        low: int = 640,
        high: int = 800,
        max_size: Optional[int] = 1333,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__((low, high), max_size, sampling="range", generator=generator)


class RandomHorizontalFlip:
    """Flip with probability ``p``; ``flip_map`` swaps left/right keypoints."""

    def __init__(
        self, p: float = 0.5, flip_map: Optional[Sequence[int]] = None, *, generator: Optional[torch.Generator] = None
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.flip_map = list(flip_map) if flip_map is not None else None
        self.generator = generator

    def __call__(self, image, target=None):
        if self.p > 0 and _rand(self.generator) < self.p:
            return hflip(image, target, self.flip_map)
        return image, (dict(target) if target is not None else None)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p}, flip_map={self.flip_map})"


def build_transforms(
    train: bool,
    *,
    min_size: Union[int, Sequence[int]] = 800,
    max_size: Optional[int] = 1333,
    flip_prob: float = 0.5,
    flip_map: Optional[Sequence[int]] = None,
    sampling: str = "choice",
    generator: Optional[torch.Generator] = None,
) -> Compose:
    """Standard pipeline: resize (with jitter when ``min_size`` is a sequence and
    ``train``) then, when ``train``, a random horizontal flip."""
    if train:
        return Compose(
            [
                ResizeShortestSide(min_size, max_size, sampling=sampling, generator=generator),
                RandomHorizontalFlip(flip_prob, flip_map, generator=generator),
            ]
        )
    short = min_size if isinstance(min_size, int) else max(min_size)
    return Compose([ResizeShortestSide(short, max_size)])


def collate(batch: Sequence[Tuple[Tensor, dict]]) -> Tuple[List[Tensor], List[dict]]:
    """DataLoader ``collate_fn``: list of (image, target) -> (list of images, list of targets)."""
    images = [b[0] for b in batch]
    targets = [b[1] for b in batch]
    return images, targets
