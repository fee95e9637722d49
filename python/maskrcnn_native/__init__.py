"""maskrcnn_native: Mask R-CNN with fast native operators.

The operators (``maskrcnn_native.ops``) are C++ kernels that take tensors
through DLPack, so they work with any torch >= 2.4 and with NumPy arrays.
"""

__version__ = "0.1.0"

from ._torch_floor import check_torch

check_torch()  # before the ops register themselves with torch.library

from . import _C, ops  # noqa: E402
from ._threads import get_num_threads, set_num_threads  # noqa: E402


def build_info() -> dict:
    """How the native extension was built: compiler, flags, CUDA yes/no."""
    info = dict(_C.build_info())
    info["version"] = __version__
    return info


_LAZY = ("data", "evaluation", "visualize", "engine", "modeling", "structures", "weights")


def __getattr__(name):
    # Everything above the ops loads on first use: `import maskrcnn_native.ops`
    # must not pull in the model or the engine (one-way layers), and
    # data/evaluation/visualize import pycocotools and Pillow.
    import importlib

    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name in ("Model", "ModelConfig"):
        return getattr(importlib.import_module(".modeling", __name__), name)
    if name == "Detections":
        return importlib.import_module(".structures", __name__).Detections
    if name == "evaluate":
        return importlib.import_module(".evaluation", __name__).evaluate
    if name in ("train", "TrainConfig", "load_config"):
        return getattr(importlib.import_module(".engine", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", "build_info", "get_num_threads", "set_num_threads", "ops",
           "Model", "ModelConfig", "Detections", "data", "evaluate", "evaluation", "visualize",
           "engine", "train", "TrainConfig", "load_config"]
