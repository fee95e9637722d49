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
