"""maskrcnn_native: Mask R-CNN with fast native operators.

The operators (``maskrcnn_native.ops``) are C++ kernels that take tensors
through DLPack, so they work with any torch 2.x and with NumPy arrays.
"""

__version__ = "0.1.0"

from . import _C
from ._threads import get_num_threads, set_num_threads
from . import ops
from .modeling import Model, ModelConfig
from .structures import Detections


def build_info() -> dict:
    """How the native extension was built: compiler, flags, CUDA yes/no."""
    info = dict(_C.build_info())
    info["version"] = __version__
    return info


_LAZY = ("data", "evaluation", "visualize", "engine", "compat")


def __getattr__(name):
    # data/evaluation/visualize import pycocotools and Pillow: load them on first
    # use so `import maskrcnn_native` stays fast.
    import importlib

    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name == "evaluate":
        return importlib.import_module(".evaluation", __name__).evaluate
    if name in ("train", "TrainConfig", "load_config"):
        return getattr(importlib.import_module(".engine", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", "build_info", "get_num_threads", "set_num_threads", "ops",
           "Model", "ModelConfig", "Detections", "data", "evaluate", "evaluation", "visualize",
           "engine", "train", "TrainConfig", "load_config", "compat"]
