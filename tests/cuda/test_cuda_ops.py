"""CUDA kernels against the CPU kernels (and torchvision's CUDA ops), on a GPU.

Exact for nms, batched_nms, anchors, RoIPool and bitmaps; 1e-5 (float32) and
1e-10 (float64) for RoIAlign / RoIWarp and their gradients; float64 gradcheck;
deterministic backward (two runs bitwise equal); ops on a non-default stream;
a second device when present; mixed devices raise ValueError naming the
argument. Skipped without a GPU.
"""

from __future__ import annotations

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native import ops

pytestmark = pytest.mark.skipif(
    not (mn.cuda_available() and torch.cuda.is_available()),
    reason="needs CUDA kernels in the build, a CUDA torch and a visible GPU "
           f"(build cuda={mn.build_info()['cuda']}, devices={mn._C.cuda_device_count()}, "
           f"torch.cuda={torch.cuda.is_available()})")
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
DEV = "cuda"


def _feat(gen, n, c, h, w, dtype, cl):
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if cl else x


def _rois(gen, k, n, h, w, scale, dtype):
    H, W = h / scale, w / scale
    xy = torch.rand(k, 2, generator=gen, dtype=torch.float64) * torch.tensor([W, H]) * 1.1 - 2
    wh = torch.rand(k, 2, generator=gen, dtype=torch.float64) * torch.tensor([W, H]) * 0.5
    b = torch.randint(0, n, (k, 1), generator=gen).double()
    return torch.cat([b, xy, xy + wh], 1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cl", [False, True])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sr", [0, 2])
def test_roi_align_matches_cpu(dtype, cl, aligned, sr):
    gen = torch.Generator().manual_seed(1)
    x = _feat(gen, 2, 32, 50, 61, dtype, cl).requires_grad_()
    rois = _rois(gen, 120, 2, 50, 61, 0.25, dtype)
    out = ops.roi_align(x, rois, (7, 7), 0.25, sr, aligned)
    xg = x.detach().to(DEV).requires_grad_()
    outg = ops.roi_align(xg, rois.to(DEV), (7, 7), 0.25, sr, aligned)
    assert outg.is_cuda and outg.is_contiguous(memory_format=torch.channels_last) == cl
    torch.testing.assert_close(outg.cpu(), out.detach(), rtol=0, atol=TOL[dtype])
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(dtype)
    out.backward(g)
    outg.backward(g.to(DEV))
    torch.testing.assert_close(xg.grad.cpu(), x.grad, rtol=0, atol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cl", [False, True])
def test_roi_warp_and_roi_pool_match_cpu(dtype, cl):
    gen = torch.Generator().manual_seed(2)
    x = _feat(gen, 2, 16, 40, 33, dtype, cl).requires_grad_()
    rois = _rois(gen, 80, 2, 40, 33, 0.5, dtype)
    xg = x.detach().to(DEV).requires_grad_()
    for fn, exact in ((ops.roi_warp, False), (ops.roi_pool, True)):
        x.grad = xg.grad = None
        out = fn(x, rois, (5, 4), 0.5)
        outg = fn(xg, rois.to(DEV), (5, 4), 0.5)
        g = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(dtype)
        out.backward(g)
        outg.backward(g.to(DEV))
        tol = 0 if exact else TOL[dtype]
        torch.testing.assert_close(outg.detach().cpu(), out.detach(), rtol=0, atol=tol)
        torch.testing.assert_close(xg.grad.cpu(), x.grad, rtol=0, atol=tol * 10)


def test_backward_is_deterministic_bitwise():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 64, 80, 80, generator=gen).to(DEV, memory_format=torch.channels_last)
    rois = _rois(gen, 512, 2, 80, 80, 0.25, torch.float32).to(DEV)
    grads = []
    for fn in (ops.roi_align, ops.roi_pool):
        for _ in range(2):
            xi = x.detach().clone().requires_grad_()
            out = fn(xi, rois, (7, 7), 0.25)
            out.backward(torch.ones_like(out))
            grads.append(xi.grad)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[2], grads[3])
    torch.use_deterministic_algorithms(True)
    try:
        xi = x.detach().clone().requires_grad_()
        ops.roi_align(xi, rois, (7, 7), 0.25).sum().backward()  # no "not deterministic" error
        assert torch.equal(xi.grad, grads[0])
    finally:
        torch.use_deterministic_algorithms(False)


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 9, 8, generator=gen, dtype=torch.float64).to(DEV).requires_grad_()
    rois = torch.tensor([[0, 0.5, 1.2, 6.3, 7.1], [0, 2.0, 0.3, 5.5, 4.4]], dtype=torch.float64, device=DEV)
    assert torch.autograd.gradcheck(lambda t: ops.roi_align(t, rois, (3, 2), 1.0, 2, True), (x,))
    assert torch.autograd.gradcheck(lambda t: ops.roi_warp(t, rois, (3, 2), 1.0, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: ops.roi_pool(t, rois, (3, 2), 1.0), (x,))


def _boxes(gen, n, dtype):
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 300
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 60 + 1
    s = (torch.rand(n, generator=gen, dtype=torch.float64) * 50).floor() / 50  # ties
    return torch.cat([xy, xy + wh], 1).to(dtype), s.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [0, 1, 100, 4000])
def test_nms_and_batched_nms_exact(dtype, n):
    gen = torch.Generator().manual_seed(n)
    b, s = _boxes(gen, n, dtype)
    assert torch.equal(ops.nms(b.to(DEV), s.to(DEV), 0.5).cpu(), ops.nms(b, s, 0.5))
    idx = torch.randint(0, 30, (n,), generator=gen)
    got = ops.batched_nms(b.to(DEV), s.to(DEV), idx.to(DEV), 0.6)
    assert got.is_cuda and torch.equal(got.cpu(), ops.batched_nms(b, s, idx, 0.6))
    a = ops.box_iou(b.to(DEV), b[:50].to(DEV)).cpu()
    torch.testing.assert_close(a, ops.box_iou(b, b[:50]), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_anchors_exact_and_box_coder_close(dtype):
    cell = ops.cell_anchors([32, 64, 128], [0.5, 1.0, 2.0], dtype=dtype)
    got = ops.grid_anchors(cell.to(DEV), (50, 76), (16, 16))
    assert got.is_cuda and torch.equal(got.cpu(), ops.grid_anchors(cell, (50, 76), (16, 16)))
    gen = torch.Generator().manual_seed(6)
    r, _ = _boxes(gen, 2000, dtype)
    p, _ = _boxes(gen, 2000, dtype)
    w = (10.0, 10.0, 5.0, 5.0)
    enc = ops.encode_boxes(r, p, w)
    torch.testing.assert_close(ops.encode_boxes(r.to(DEV), p.to(DEV), w).cpu(), enc)
    codes = torch.randn(2000, 8, generator=gen, dtype=torch.float64).to(dtype)
    torch.testing.assert_close(ops.decode_boxes(codes.to(DEV), p.to(DEV), w).cpu(), ops.decode_boxes(codes, p, w))


@pytest.mark.parametrize("mode", ["aligned", "torchvision"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paste_masks_exact(mode, dtype):
    gen = torch.Generator().manual_seed(7)
    masks = torch.rand(40, 28, 28, generator=gen, dtype=torch.float64).to(dtype)
    b, _ = _boxes(gen, 40, dtype)
    ref = ops.paste_masks(masks, b, (320, 360), mode=mode)
    got = ops.paste_masks(masks.to(DEV), b.to(DEV), (320, 360), mode=mode)
    assert got.is_cuda and torch.equal(got.cpu(), ref)
    probs = ops.paste_masks(masks.to(DEV), b.to(DEV), (320, 360), mode=mode, threshold=None)
    assert torch.equal(probs.cpu(), ops.paste_masks(masks, b, (320, 360), mode=mode, threshold=None))
    crops = ops.paste_masks(masks.to(DEV), b.to(DEV), (320, 360), mode=mode, output="crops")
    assert torch.equal(crops.to_bitmap().cpu(), ref)
    assert ops.paste_masks(masks.to(DEV), b.to(DEV), (320, 360), mode=mode, output="rle") == \
        ops.paste_masks(masks, b, (320, 360), mode=mode, output="rle")


def test_non_default_stream():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(2, 16, 40, 40, generator=gen).to(DEV)
    rois = _rois(gen, 64, 2, 40, 40, 0.25, torch.float32).to(DEV)
    ref = ops.roi_align(x, rois, (7, 7), 0.25, 2, True)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        out = ops.roi_align(x, rois, (7, 7), 0.25, 2, True)
        keep = ops.nms(rois[:, 1:], torch.rand(64, device=DEV), 0.5)
    torch.cuda.current_stream().wait_stream(s)
    assert torch.equal(out, ref)
    assert keep.numel() > 0


def test_mixed_devices_raise_naming_the_argument():
    x = torch.randn(1, 2, 8, 8, device=DEV)
    with pytest.raises(ValueError, match="rois must be on the same device as input"):
        mn._C.roi_align_forward(x, torch.zeros(1, 5), torch.empty(1, 2, 2, 2, device=DEV), 1.0, 2, 2, 2, True, False)
    with pytest.raises(ValueError, match="scores must be on the same device as boxes"):
        mn._C.nms(torch.zeros(3, 4, device=DEV), torch.zeros(3), 0.5, torch.empty(3, dtype=torch.int64, device=DEV))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second GPU")
def test_second_device():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(1, 8, 30, 30, generator=gen)
    rois = _rois(gen, 20, 1, 30, 30, 1.0, torch.float32)
    ref = ops.roi_align(x, rois, (5, 5), 1.0, 2, True)
    got = ops.roi_align(x.to("cuda:1"), rois.to("cuda:1"), (5, 5), 1.0, 2, True)
    assert got.device == torch.device("cuda:1")
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-5)


def test_against_torchvision_cuda():
    tv = pytest.importorskip("torchvision")
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(2, 32, 50, 50, generator=gen).to(DEV)
    rois = _rois(gen, 200, 2, 50, 50, 0.25, torch.float32).to(DEV)
    try:
        ref = tv.ops.roi_align(x, rois, (7, 7), 0.25, 2, True)
    except (RuntimeError, NotImplementedError) as e:  # a CPU-only torchvision
        pytest.skip(f"torchvision has no CUDA kernels here: {e}")
    torch.testing.assert_close(ops.roi_align(x, rois, (7, 7), 0.25, 2, True), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ops.roi_pool(x, rois, (7, 7), 0.25), tv.ops.roi_pool(x, rois, (7, 7), 0.25))
    b, s = _boxes(gen, 3000, torch.float32)
    b, s = b.to(DEV), s.to(DEV)
    assert torch.equal(ops.nms(b, s, 0.5), tv.ops.nms(b, s, 0.5))
