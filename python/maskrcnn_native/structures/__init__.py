"""Data structures shared by the model and its users: image batches, the
per-image ``Instances`` / ``Detections`` and their one COCO exporter."""

from .coco import instances_to_coco, masks_to_rle, resize_masks
from .image_list import ImageList, image_to_float
from .instances import Detections, Instances, MaskField

__all__ = [
    "Detections",
    "ImageList",
    "Instances",
    "MaskField",
    "image_to_float",
    "instances_to_coco",
    "masks_to_rle",
    "resize_masks",
]
