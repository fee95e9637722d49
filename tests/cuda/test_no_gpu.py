"""The same wheel without a GPU: imports, reports its CUDA build, says
cuda_available() is False when no device is visible, and runs the CPU ops."""

import numpy as np
import pytest
import torch

import maskrcnn_native as mn


def test_build_info_reports_cuda():
    info = mn.build_info()
    assert isinstance(info["cuda"], bool)
    if info["cuda"]:
        assert info["cuda_version"].split(".")[0].isdigit()
        assert info["cuda_runtime"] > 0
        archs = info["cuda_archs"].split(",")
        assert archs and all(a.split("-")[0].isdigit() for a in archs)
    else:
        assert info["cuda_version"] == "" and info["cuda_runtime"] == 0


def test_cuda_available_needs_kernels_and_a_device():
    expected = mn.build_info()["cuda"] and mn._C.cuda_device_count() > 0
    assert mn.cuda_available() is bool(expected)


@pytest.mark.skipif(mn._C.cuda_device_count() > 0, reason="a CUDA device is visible")
def test_no_device_still_runs_cpu_ops():
    assert mn.cuda_available() is False
    x = torch.randn(1, 2, 8, 8)
    out = mn.ops.roi_align(x, torch.tensor([[0, 1.0, 1.0, 6.0, 6.0]]), (2, 2), 1.0, 2, True)
    assert out.shape == (1, 2, 2, 2) and torch.isfinite(out).all()
    keep = mn.ops.nms(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.0]]), torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]
    masks = mn.ops.paste_masks(np.ones((1, 4, 4), np.float32), np.array([[1, 1, 5, 5]], np.float32), (8, 8))
    assert masks.sum() == 16


def test_auto_device_is_cpu_without_cuda_kernels_or_device():
    from maskrcnn_native.engine.distributed import _resolve_device

    if not (mn.cuda_available() and torch.cuda.is_available()):
        assert _resolve_device("auto", 0).type == "cpu"
    else:
        assert _resolve_device("auto", 0).type == "cuda"
