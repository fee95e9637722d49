"""Shared fixtures and the ``slow`` marker.

The package is imported from the working tree (``PYTHONPATH=python`` after
``scripts/dev_build.sh``) or from the installed wheel (CI); no test edits
``sys.path`` for it.

``slow`` marks tests that take more than a few seconds on the 2-core project
machine (torchvision parity, training runs, subprocesses). Tests in this
file's directories mark themselves with ``@pytest.mark.slow``; the node ids in
``SLOW`` are marked here (test files of other work streams, measured with
``pytest --durations``), so ``pytest -m "not slow"`` is the fast suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest
import torch

# measured with `pytest --durations=60` on the 2-core machine (each > ~3 s there)
SLOW = (
    "tests/compat/",
    "tests/fuzz/",
    "tests/reliability/",
    "tests/engine/test_engine.py",
    "tests/engine/test_sync_bn.py",
    "tests/engine/test_untrusted_files.py",
    "tests/data/test_faulty_data.py",
    "tests/modeling/test_parity_torchvision.py",
    "tests/modeling/test_losses_torchvision.py",
    "tests/modeling/test_model_api.py",
    "tests/modeling/test_device_dtype.py",
    "tests/modeling/test_backbone_options.py::test_trainable_norm_trains_and_predicts",
    "tests/test_cli.py",
    "tests/test_threads.py::test_default_follows_torch",
    "tests/test_threads.py::test_idle_openmp_policy",
    "tests/test_load_aware_threads.py::test_proc_readers",
    "tests/test_load_aware_threads.py::test_real_neighbour_lowers_threads",
    "tests/ops/test_torch_compile.py",
)

# A model small enough for a CPU test: 64-96 px inputs, few proposals and RoIs.
SMALL_MODEL: Dict[str, object] = dict(
    min_size=64, max_size=96, num_classes=3, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=20,
    rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, box_batch_size_per_image=16,
    score_threshold=0.0, detections_per_image=10,
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.nodeid.startswith(s) for s in SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def small_config() -> Dict[str, object]:
    """Keyword overrides of ``mn.Model`` for a fast CPU model (a fresh copy)."""
    return dict(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_model():
    """A seeded R18-FPN of ``SMALL_MODEL`` in eval mode (shared: do not modify)."""
    import maskrcnn_native as mn

    torch.manual_seed(0)
    return mn.Model("R18-FPN", **SMALL_MODEL).eval()


@pytest.fixture(scope="session")
def shapes():
    """Six 64 px synthetic images with masks and keypoints (seed 11)."""
    from maskrcnn_native.data import ShapesDataset

    return ShapesDataset(6, image_size=64, seed=11, keypoints=True)


def _two_box_sample(h=60, w=80, keypoints=False, seed=None):
    g = None if seed is None else torch.Generator().manual_seed(seed)
    img = torch.rand(3, h, w, generator=g)
    boxes = torch.tensor([[5.0, 6.0, 40.0, 50.0], [30.0, 10.0, 75.0, 40.0]])
    masks = torch.zeros((2, h, w), dtype=torch.uint8)
    for i, (a, b, c, d) in enumerate(boxes.long().tolist()):
        masks[i, b + 2 : d - 2, a + 2 : c - 2] = 1
    t = {"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks}
    if keypoints:
        span_x, span_y = boxes[:, None, 2] - boxes[:, None, 0], boxes[:, None, 3] - boxes[:, None, 1]
        kx = boxes[:, None, 0] + torch.rand(2, 17, generator=g) * span_x
        ky = boxes[:, None, 1] + torch.rand(2, 17, generator=g) * span_y
        t["keypoints"] = torch.stack([kx, ky, torch.full((2, 17), 2.0)], 2)
    return img, t


@pytest.fixture
def two_box_sample():
    """``f(h=60, w=80, keypoints=False, seed=None) -> (image Tensor[3, h, w] in
    [0, 1), target)``: two boxes (XYXY pixels) with labels 1, 2, their masks
    shrunk by 2 px, and 17 visible keypoints each when asked; drawn from a
    generator seeded with ``seed`` (the global RNG when None)."""
    return _two_box_sample


@pytest.fixture
def subprocess_env() -> Dict[str, str]:
    """Environment for a test's Python subprocess: it imports the same
    maskrcnn_native as this process (the installed package in CI, the working
    tree with PYTHONPATH=python in development) and runs one OpenMP/MKL thread."""
    import maskrcnn_native as mn

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(mn.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def training_layout():
    """Restores the training memory format a test changes."""
    import maskrcnn_native as mn

    yield mn.modeling.set_training_memory_format
    mn.modeling.set_training_memory_format(None)


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="run the op fuzz suite (tests/fuzz) for hours instead of the bounded default "
                          "(also MN_FUZZ_LONG=1)")
