"""The Mask R-CNN model layer (DESIGN.md section 7) on the native ops."""

from .config import PRESETS, ModelConfig, build_config
from .export import export_model
from .layers import set_training_memory_format, training_memory_format
from .meta_arch import MaskRCNN, Model

__all__ = [
    "PRESETS",
    "ModelConfig",
    "build_config",
    "export_model",
    "MaskRCNN",
    "Model",
    "set_training_memory_format",
    "training_memory_format",
]
