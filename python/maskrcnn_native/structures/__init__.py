"""Data structures shared by the model and its users."""

from .detections import Detections, masks_to_rle
from .image_list import ImageList

__all__ = ["Detections", "ImageList", "masks_to_rle"]
