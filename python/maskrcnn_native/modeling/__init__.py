"""The Mask R-CNN model layer (DESIGN.md section 7) on the native ops."""

from .config import PRESETS, ModelConfig, build_config
from .meta_arch import MaskRCNN, Model

__all__ = ["PRESETS", "ModelConfig", "build_config", "MaskRCNN", "Model"]
