"""Datasets and transforms: COCO-format data, synthetic shapes, augmentations.

Every dataset yields ``(image, target)`` with ``image`` Tensor[3, H, W] float32
in [0, 1] and ``target`` a dict in torchvision's format (see
:mod:`maskrcnn_native.data.coco`); use :func:`collate` as the DataLoader's
``collate_fn``.
"""

from .coco import (
    CocoDataset,
    DatasetError,
    InvalidAnnotationError,
    UnreadableImageError,
    flip_map_from_names,
    load_image,
)
from .shapes import ShapesDataset, write_coco
from .transforms import (
    Compose,
    RandomHorizontalFlip,
    ResizeShortestSide,
    ScaleJitter,
    build_transforms,
    collate,
    hflip,
    resize,
)
from . import transforms

__all__ = [
    "CocoDataset",
    "DatasetError",
    "InvalidAnnotationError",
    "UnreadableImageError",
    "flip_map_from_names",
    "load_image",
    "ShapesDataset",
    "write_coco",
    "Compose",
    "RandomHorizontalFlip",
    "ResizeShortestSide",
    "ScaleJitter",
    "build_transforms",
    "collate",
    "hflip",
    "resize",
    "transforms",
]
