"""Synthetic shapes: a small instance segmentation (and keypoint) dataset
generated on the fly, so the library trains and evaluates with no download.

Each image has a textured background (smooth noise, a linear gradient or
stripes, plus pixel noise) and 1..``max_shapes`` filled shapes in random
colours, sizes, rotations and positions. Shapes overlap: later shapes cover
earlier ones, the masks are exactly the pixels each instance shows, and a
placement that would hide more than ``1 - min_visible`` of an earlier shape is
rejected (retried), so no annotated object is mostly hidden and no visible
object is unannotated.

Keypoints (``keypoints=True``): 4 per instance for every class, the extreme
points of the (unoccluded) shape: ``top, right, bottom, left`` (ties between
vertices are averaged). Visibility is 2 when the instance's visible mask
touches the point, 1 when another shape covers it. A horizontal flip swaps
right and left: ``keypoint_flip_map = [0, 3, 2, 1]``.

Determinism: image ``i`` depends only on ``(seed, i)``
(``numpy.random.default_rng([seed, i])``), never on the order of access or the
number of DataLoader workers.

Coordinates use the pixel-boundary convention of the rest of the library:
pixel (r, c) covers [c, c+1) x [r, r+1); boxes are XYXY with x2 = last column + 1.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["ShapesDataset", "coco_dict", "write_coco", "SHAPE_CLASSES", "SHAPE_KEYPOINT_NAMES"]

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "hexagon")
SHAPE_KEYPOINT_NAMES = ("top", "right", "bottom", "left")
SHAPE_FLIP_MAP = (0, 3, 2, 1)
SHAPE_SKELETON = ((0, 1), (1, 2), (2, 3), (3, 0))


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> Optional[np.ndarray]:
    """Vertices [N, 2] (x, y) of a shape of circumradius r, or None for a circle."""
    if kind == "circle":
        return None
    if kind == "square":
        n, radii = 4, [r]
    elif kind == "triangle":
        n, radii = 3, [r]
    elif kind == "hexagon":
        n, radii = 6, [r]
    elif kind == "star":
        n, radii = 10, [r, 0.45 * r]
    else:
        raise ValueError(f"ShapesDataset: unknown shape class {kind!r}; choose from {SHAPE_CLASSES}")
    t = angle + 2 * math.pi * np.arange(n) / n
    rad = np.asarray([radii[i % len(radii)] for i in range(n)])
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], axis=1)


def _extreme_points(verts: Optional[np.ndarray], cx: float, cy: float, r: float) -> np.ndarray:
    """[4, 2] top, right, bottom, left extreme points."""
    if verts is None:
        return np.asarray([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]], dtype=np.float64)
    out = []
    for axis, sign in ((1, -1), (0, 1), (1, 1), (0, -1)):
        v = sign * verts[:, axis]
        sel = verts[v >= v.max() - 0.5]
        out.append(sel.mean(axis=0))
    return np.asarray(out)


def _render(kind: str, cx: float, cy: float, r: float, angle: float, h: int, w: int):
    """Binary mask [H, W] (bool) and extreme points [4, 2] of one shape."""
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    verts = _polygon(kind, cx, cy, r, angle)
    if verts is None:
        # PIL coordinates address pixel centres; ours are pixel boundaries: shift by 0.5.
        draw.ellipse([cx - r - 0.5, cy - r - 0.5, cx + r - 0.5, cy + r - 0.5], fill=1)
    else:
        draw.polygon([(float(x) - 0.5, float(y) - 0.5) for x, y in verts], fill=1)
    return np.asarray(canvas, dtype=bool), _extreme_points(verts, cx, cy, r)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(3)
    c1, c2 = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:  # smooth noise: coarse random grid upsampled bilinearly
        g = int(rng.integers(3, 7))
        coarse = rng.uniform(0.0, 1.0, (g, g, 3))
        t = torch.from_numpy(coarse.transpose(2, 0, 1))[None]
        up = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=True)[0]
        img = up.numpy().transpose(1, 2, 0) * 0.7 + 0.15
    else:
        a = rng.uniform(0, 2 * math.pi)
        proj = (xx * math.cos(a) + yy * math.sin(a)) / max(h, w)
        if kind == 1:  # linear gradient
            s = (proj - proj.min()) / max(proj.max() - proj.min(), 1e-6)
        else:  # stripes
            freq = rng.uniform(3.0, 9.0)
            s = 0.5 + 0.5 * np.sin(2 * math.pi * freq * proj)
        img = c1[None, None] * (1 - s[..., None]) + c2[None, None] * s[..., None]
    return img + rng.normal(0.0, 0.03, (h, w, 3))


class ShapesDataset(torch.utils.data.Dataset):
    """Random overlapping shapes with exact instance masks (see module docstring).

    Args:
        num_images: dataset length.
        image_size: int (square) or (H, W).
        seed: image ``i`` is a pure function of ``(seed, i)``.
        keypoints: include ``target["keypoints"]`` [K, 4, 3].
        classes: shape classes, a subset of :data:`SHAPE_CLASSES`.
        min_shapes, max_shapes: instances per image (before rejected placements).
        size_range: circumradius range as fractions of the shorter image side.
        min_visible: every instance keeps at least this fraction of its pixels.
        transforms: callable ``(image, target) -> (image, target)``.

    Items have the same format as :class:`~maskrcnn_native.data.coco.CocoDataset`.
    """

    def __init__(
        self,
        num_images: int,
        image_size=128,
        seed: int = 0,
        keypoints: bool = False,
        *,
        classes: Sequence[str] = ("circle", "square", "triangle"),
        min_shapes: int = 1,
        max_shapes: int = 4,
        size_range: Tuple[float, float] = (0.12, 0.25),
        min_visible: float = 0.6,
        transforms: Optional[Callable] = None,
    ) -> None:
        if num_images < 0:
            raise ValueError(f"ShapesDataset: num_images must be >= 0, got {num_images}")
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) < 16:
            raise ValueError(f"ShapesDataset: image_size must be >= 16 (int or (H, W)), got {image_size!r}")
        for c in classes:
            if c not in SHAPE_CLASSES:
                raise ValueError(f"ShapesDataset: unknown shape class {c!r}; choose from {SHAPE_CLASSES}")
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"ShapesDataset: classes must be non-empty and unique, got {classes!r}")
        if not 1 <= min_shapes <= max_shapes:
            raise ValueError(f"ShapesDataset: need 1 <= min_shapes <= max_shapes, got {min_shapes}, {max_shapes}")
        if not 0 < size_range[0] <= size_range[1] < 0.5:
            raise ValueError(f"ShapesDataset: size_range must satisfy 0 < lo <= hi < 0.5, got {size_range}")
        self.num_images = int(num_images)
        self.image_size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.with_keypoints = bool(keypoints)
        self.classes = tuple(classes)
        self.min_shapes, self.max_shapes = int(min_shapes), int(max_shapes)
        self.size_range = (float(size_range[0]), float(size_range[1]))
        self.min_visible = float(min_visible)
        self.transforms = transforms

        self.class_names: List[str] = ["__background__"] + list(self.classes)
        self.category_id_to_label: Dict[int, int] = {i: i for i in range(1, len(self.classes) + 1)}
        self.label_to_category_id: Dict[int, int] = dict(self.category_id_to_label)
        self.keypoint_names: List[str] = list(SHAPE_KEYPOINT_NAMES) if keypoints else []
        self.keypoint_flip_map: List[int] = list(SHAPE_FLIP_MAP) if keypoints else []
        self.skeleton: List[Tuple[int, int]] = list(SHAPE_SKELETON) if keypoints else []
        # OKS sigmas for COCO keypoint evaluation (COCO's 17 human sigmas do not apply).
        self.keypoint_sigmas: Optional[List[float]] = [0.05] * 4 if keypoints else None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        image, target = self.raw(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def raw(self, index: int):
        """The untransformed item ``index`` (what evaluation ground truth uses)."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        img, masks, labels, kps = self._generate(index)
        h, w = self.image_size
        K = len(masks)
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        target: Dict[str, Any] = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(K, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": (
                torch.from_numpy(np.stack(masks).astype(np.uint8)) if K else torch.zeros((0, h, w), dtype=torch.uint8)
            ),
            "iscrowd": torch.zeros((K,), dtype=torch.int64),
            "crowd_boxes": torch.zeros((0, 4), dtype=torch.float32),
            "image_id": index + 1,
            "orig_size": (h, w),
            "size": (h, w),
        }
        target["area"] = target["masks"].flatten(1).sum(1).to(torch.float32)
        if self.with_keypoints:
            target["keypoints"] = (
                torch.from_numpy(np.stack(kps)).to(torch.float32) if K else torch.zeros((0, 4, 3), dtype=torch.float32)
            )
        image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(torch.float32)
        return image, target

    def _generate(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        h, w = self.image_size
        img = _background(rng, h, w)
        n = int(rng.integers(self.min_shapes, self.max_shapes + 1))
        owner = np.full((h, w), -1, dtype=np.int32)
        full_area: List[int] = []
        placed: List[tuple] = []  # (label, full mask, points)
        short = min(h, w)
        for _ in range(n):
            for _attempt in range(10):
                cls = int(rng.integers(len(self.classes)))
                r = float(rng.uniform(*self.size_range)) * short
                cx = float(rng.uniform(r + 1, w - r - 1))
                cy = float(rng.uniform(r + 1, h - r - 1))
                angle = float(rng.uniform(0, 2 * math.pi))
                mask, pts = _render(self.classes[cls], cx, cy, r, angle, h, w)
                if mask.sum() < 20:
                    continue
                # would this placement hide too much of an earlier instance?
                new_owner = np.where(mask, len(placed), owner)
                ok = all((new_owner == j).sum() >= self.min_visible * full_area[j] for j in range(len(placed)))
                if ok:
                    break
            else:
                continue
            region = img[mask].mean(axis=0)
            color = rng.uniform(0.0, 1.0, 3)
            for _c in range(20):
                if np.linalg.norm(color - region) > 0.45:
                    break
                color = rng.uniform(0.0, 1.0, 3)
            shade = 1.0 + rng.normal(0.0, 0.03, (int(mask.sum()), 1))
            img[mask] = color[None] * shade
            owner = new_owner
            full_area.append(int(mask.sum()))
            placed.append((cls + 1, pts))
        # quantise to 8 bits so the in-memory image equals its PNG (write_coco round trip)
        img = (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)
        masks, labels, kps = [], [], []
        for j, (label, pts) in enumerate(placed):
            m = owner == j
            if m.sum() == 0:
                continue
            masks.append(m)
            labels.append(label)
            if self.with_keypoints:
                kp = np.zeros((4, 3), dtype=np.float64)
                for p, (x, y) in enumerate(pts):
                    c0, r0 = int(math.floor(x)), int(math.floor(y))
                    near = m[max(r0 - 1, 0) : r0 + 2, max(c0 - 1, 0) : c0 + 2]
                    kp[p] = (x, y, 2.0 if near.any() else 1.0)
                kps.append(kp)
        return img, masks, labels, kps

    def coco_dict(self, *, file_name_format: str = "{:06d}.png", progress: bool = False) -> dict:
        """The ground truth as a COCO dict (compressed RLE masks)."""
        return coco_dict(self, file_name_format=file_name_format, progress=progress)

    def to_coco_api(self):
        """A pycocotools ``COCO`` object holding this dataset's ground truth."""
        import contextlib
        import io

        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = self.coco_dict()
            coco.createIndex()
        return coco

    def __repr__(self) -> str:
        return (
            f"ShapesDataset({self.num_images} images, size={self.image_size}, seed={self.seed}, "
            f"classes={self.classes}, keypoints={self.with_keypoints})"
        )


def _item(dataset, i):
    return dataset.raw(i) if hasattr(dataset, "raw") else dataset[i]


def coco_dict(
    dataset, *, file_name_format: str = "{:06d}.png", progress: bool = False, images_out: Optional[str] = None
) -> dict:
    """COCO dict of any dataset with our item format (+ PNGs when ``images_out``)."""
    from pycocotools import mask as mask_utils

    kp_names = list(getattr(dataset, "keypoint_names", []) or [])
    with_kp = bool(getattr(dataset, "with_keypoints", False)) and bool(kp_names)
    names = list(dataset.class_names)
    l2c = dict(dataset.label_to_category_id)
    categories = []
    for label in sorted(l2c):
        c = {"id": int(l2c[label]), "name": names[label], "supercategory": "shape"}
        if with_kp:
            c["keypoints"] = kp_names
            c["skeleton"] = [[a + 1, b + 1] for a, b in getattr(dataset, "skeleton", [])]
        categories.append(c)
    images: List[dict] = []
    annotations: List[dict] = []
    rng = range(len(dataset))
    if progress:
        from tqdm import tqdm

        rng = tqdm(rng, desc="writing" if images_out else "ground truth")
    for i in rng:
        image, t = _item(dataset, i)
        h, w = int(image.shape[-2]), int(image.shape[-1])
        image_id = int(t.get("image_id", i + 1))
        fname = file_name_format.format(i)
        images.append({"id": image_id, "file_name": fname, "height": h, "width": w})
        if images_out is not None:
            arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(arr, "RGB").save(os.path.join(images_out, fname))
        masks = t["masks"].numpy().astype(np.uint8)
        for k in range(len(t["labels"])):
            rle = mask_utils.encode(np.asfortranarray(masks[k]))
            x1, y1, x2, y2 = (float(v) for v in t["boxes"][k])
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(l2c[int(t["labels"][k])]),
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                "area": float(mask_utils.area(rle)),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "iscrowd": 0,
            }
            if with_kp:
                kp = t["keypoints"][k].numpy().astype(np.float64)
                ann["keypoints"] = [round(float(v), 4) for v in kp.reshape(-1)]
                ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
            annotations.append(ann)
    return {
        "info": {"description": repr(dataset)},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(
    dataset, out_dir: str, *, image_subdir: str = "images", json_name: str = "annotations.json", progress: bool = False
) -> Tuple[str, str]:
    """Write ``dataset`` as PNG images plus a COCO json (compressed RLE masks,
    keypoints when enabled) readable by :class:`CocoDataset`.

    Returns ``(image_dir, json_path)``. Works for any dataset with the library's
    item format and ``class_names``/``label_to_category_id`` attributes; for
    :class:`ShapesDataset` the untransformed images are written.
    """
    import json

    out_dir = os.fspath(out_dir)
    image_dir = os.path.join(out_dir, image_subdir)
    os.makedirs(image_dir, exist_ok=True)
    data = coco_dict(dataset, progress=progress, images_out=image_dir)
    json_path = os.path.join(out_dir, json_name)
    tmp = json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, json_path)
    return image_dir, json_path
