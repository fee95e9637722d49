"""Meta-architectures: Mask R-CNN / Keypoint R-CNN and the public Model."""

from .rcnn import MaskRCNN, Model

__all__ = ["MaskRCNN", "Model"]
