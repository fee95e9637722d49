"""maskrcnn_native: Mask R-CNN with fast native operators.

The operators (``maskrcnn_native.ops``) are C++ kernels that take tensors
through DLPack, so they work with any torch >= 2.4 and with NumPy arrays.
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys


def _short_openmp_spin() -> None:
    """Make torch's idle OpenMP workers spin briefly, then sleep.

    libgomp (torch's OpenMP) spins an idle worker for 300,000 iterations before
    it sleeps. Alone on the machine that is the fastest choice, but beside
    another CPU-bound process the spinning workers take the cores the busy
    threads need (a demo run shared with a second one took 11.4 s per
    iteration). ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) fixes sharing but
    pays a wake-up at every parallel region: the demo's training step took
    0.21 s instead of 0.14 s alone (Intel Xeon model 167, 2 threads). 10,000
    spins keep nearly all of the idle speed (0.15 s) and cut the shared
    slowdown to 3.5x with a fixed thread count; training from the command
    line also drops to one thread per free CPU while another process is busy
    (``LoadAwareThreads``: 1.5x). libgomp reads the variable once, when torch
    loads, so this only acts when maskrcnn_native is imported before torch
    (the command line always is), and never overrides a choice already in the
    environment (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``).
    """
    if "torch" in _sys.modules:
        return
    if "OMP_WAIT_POLICY" in _os.environ or "GOMP_SPINCOUNT" in _os.environ:
        return
    _os.environ["GOMP_SPINCOUNT"] = "10000"


_short_openmp_spin()

from ._torch_floor import check_torch  # noqa: E402

check_torch()  # before the ops register themselves with torch.library

from . import _C, ops  # noqa: E402
from ._threads import get_num_threads, set_num_threads  # noqa: E402


def build_info() -> dict:
    """How the native extension was built: compiler, flags, and CUDA: ``cuda``
    (kernels built), ``cuda_version`` (nvcc's), ``cuda_runtime`` (the CUDART
    version linked statically) and ``cuda_archs`` (the GPU architectures:
    ``NN-real`` machine code, ``NN-virtual`` PTX)."""
    info = dict(_C.build_info())
    info["version"] = __version__
    return info


def cuda_available() -> bool:
    """True only when this build has CUDA kernels and a CUDA device is visible
    (asked through the CUDA runtime, so a machine without a driver says False)."""
    return bool(_C.build_info()["cuda"]) and _C.cuda_device_count() > 0


_LAZY = ("data", "evaluation", "visualize", "engine", "compat", "modeling", "structures", "weights")


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


__all__ = [
    "__version__",
    "build_info",
    "cuda_available",
    "get_num_threads",
    "set_num_threads",
    "ops",
    "Model",
    "ModelConfig",
    "Detections",
    "data",
    "evaluate",
    "evaluation",
    "visualize",
    "engine",
    "train",
    "TrainConfig",
    "load_config",
    "compat",
]
