"""Grid emulation: every CUDA kernel's per-thread functor, run over its whole
launch grid by a host loop (``maskrcnn_native._C._grid``, built with or
without CUDA), through the same orchestration code the CUDA launchers use,
against the CPU kernels. This covers the kernels' indexing, bounds, grid-stride
loops, tiling, shared-memory phases and scratch sizes on machines without a
GPU. Only CUB's radix sort (nms) is replaced on the host by a stable sort of the
same keys.

Exact equality where the CUDA kernel performs the CPU kernel's operations in
the same order (RoIPool, NMS, IoU, anchors, box coding, paste); RoIAlign sums
its taps in torchvision's order while the CPU kernel merges them into tables,
so it agrees to rounding (1e-5 float32, 1e-10 float64).
"""

from __future__ import annotations

import numpy as np
import zlib

import pytest
import torch

from maskrcnn_native import _C

G = _C._grid
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _rois(gen, k, n, h, w, scale, dtype, wild=False):
    """RoIs in image pixels for a feature map h x w at `scale`; some outside the
    map and degenerate when `wild`."""
    H, W = h / scale, w / scale
    x1 = torch.rand(k, generator=gen, dtype=torch.float64) * W * 1.2 - 0.1 * W
    y1 = torch.rand(k, generator=gen, dtype=torch.float64) * H * 1.2 - 0.1 * H
    bw = torch.rand(k, generator=gen, dtype=torch.float64) * W * 0.6
    bh = torch.rand(k, generator=gen, dtype=torch.float64) * H * 0.6
    b = torch.randint(0, n, (k,), generator=gen).double()
    r = torch.stack([b, x1, y1, x1 + bw, y1 + bh], 1)
    if wild and k >= 4:
        r[0, 1:] = torch.tensor([-50.0, -50.0, -10.0, -10.0])  # fully outside
        r[1, 3] = r[1, 1]  # zero width
        r[2, 1:] = torch.tensor([W * 2, H * 2, W * 3, H * 3])
        r[3, 3], r[3, 4] = r[3, 1] - 3, r[3, 2] - 2  # inverted
    return r.to(dtype)


def _layouts(t, cl):
    return t.contiguous(memory_format=torch.channels_last) if cl else t.contiguous()


ROI_CASES = [
    # (N, C, H, W, K, PH, PW, scale, sampling_ratio, aligned)
    (2, 3, 13, 17, 9, 7, 7, 0.25, 2, True),
    (1, 5, 20, 11, 12, 3, 5, 0.5, 0, False),
    (3, 1, 9, 9, 7, 2, 2, 1.0, -1, True),
    (2, 16, 40, 37, 30, 7, 7, 0.125, 0, True),  # several backward tiles
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ROI_CASES)
@pytest.mark.parametrize("cl", [False, True])
@pytest.mark.parametrize("quantize", [False, True])
def test_roi_align_forward_backward(dtype, case, cl, quantize):
    n, c, h, w, k, ph, pw, scale, sr, aligned = case
    gen = torch.Generator().manual_seed(hash((case, cl, quantize)) % 2**31)
    x = _layouts(torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(dtype), cl)
    rois = _rois(gen, k, n, h, w, scale, dtype, wild=True)
    fmt = torch.channels_last if cl else torch.contiguous_format
    ref = torch.empty((k, c, ph, pw), dtype=dtype, memory_format=fmt)
    got = torch.full_like(ref, float("nan"))
    args = (scale, ph, pw, sr, aligned, quantize)
    _C.roi_align_forward(x, rois, ref, *args)
    G.roi_align_forward(x, rois, got, *args)
    torch.testing.assert_close(got, ref, rtol=0, atol=TOL[dtype])

    go = _layouts(torch.randn(k, c, ph, pw, generator=gen, dtype=torch.float64).to(dtype), cl)
    gi_ref = torch.empty((n, c, h, w), dtype=dtype, memory_format=fmt)
    gi = torch.full_like(gi_ref, float("nan"))
    _C.roi_align_backward(go, rois, gi_ref, *args)
    G.roi_align_backward(go, rois, gi, *args)
    torch.testing.assert_close(gi, gi_ref, rtol=0, atol=TOL[dtype] * 10)
    gi2 = torch.full_like(gi_ref, float("nan"))
    G.roi_align_backward(go, rois, gi2, *args)
    assert torch.equal(gi, gi2)  # fixed summation order


def test_roi_align_mixed_layouts_and_large_grid():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 30, 30, generator=gen, dtype=torch.float64)
    # An adaptive grid above the window threshold (sampling ratio 0 on a big RoI).
    rois = torch.tensor([[0, -40.0, -30.0, 300.0, 250.0], [0, 3.0, 4.0, 29.0, 26.0]], dtype=torch.float64)
    ref = torch.empty(2, 4, 2, 3, dtype=torch.float64, memory_format=torch.channels_last)
    got = torch.empty(2, 4, 2, 3, dtype=torch.float64)
    _C.roi_align_forward(x, rois, ref, 1.0, 2, 3, 0, False, False)
    G.roi_align_forward(x, rois, got, 1.0, 2, 3, 0, False, False)
    torch.testing.assert_close(got, ref.contiguous(), rtol=0, atol=1e-10)
    go = torch.randn(2, 4, 2, 3, generator=gen, dtype=torch.float64)
    gi_ref = torch.empty(1, 4, 30, 30, dtype=torch.float64)
    gi = torch.empty(1, 4, 30, 30, dtype=torch.float64, memory_format=torch.channels_last)
    _C.roi_align_backward(go, rois, gi_ref, 1.0, 2, 3, 0, False, False)
    G.roi_align_backward(go, rois, gi, 1.0, 2, 3, 0, False, False)
    torch.testing.assert_close(gi.contiguous(), gi_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ROI_CASES)
@pytest.mark.parametrize("cl", [False, True])
def test_roi_pool_forward_backward_exact(dtype, case, cl):
    n, c, h, w, k, ph, pw, scale, _, _ = case
    gen = torch.Generator().manual_seed(zlib.crc32(repr((case, cl, "pool")).encode()))  # str hash() varies per process
    x = _layouts(torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(dtype), cl)
    rois = _rois(gen, k, n, h, w, scale, dtype, wild=True)
    fmt = torch.channels_last if cl else torch.contiguous_format
    out_ref = torch.empty((k, c, ph, pw), dtype=dtype, memory_format=fmt)
    am_ref = torch.empty((k, c, ph, pw), dtype=torch.int64, memory_format=fmt)
    out, am = torch.full_like(out_ref, float("nan")), torch.full_like(am_ref, -7)
    _C.roi_pool_forward(x, rois, out_ref, am_ref, scale, ph, pw)
    G.roi_pool_forward(x, rois, out, am, scale, ph, pw)
    assert torch.equal(out, out_ref) and torch.equal(am, am_ref)
    assert (am_ref >= 0).any() and (am_ref == -1).any()  # the case has both kinds of bins

    go = _layouts(torch.randn(k, c, ph, pw, generator=gen, dtype=torch.float64).to(dtype), cl)
    gi_ref = torch.empty((n, c, h, w), dtype=dtype, memory_format=fmt)
    gi = torch.full_like(gi_ref, float("nan"))
    _C.roi_pool_backward(go, rois, am_ref, gi_ref)
    G.roi_pool_backward(go, rois, am_ref, gi)
    assert torch.equal(gi, gi_ref)


def _boxes(gen, n, dtype, ties=False):
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 100
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 30 + 1
    b = torch.cat([xy, xy + wh], 1).to(dtype)
    s = torch.rand(n, generator=gen, dtype=torch.float64).to(dtype)
    if ties:
        s = (s * 8).floor() / 8  # many equal scores: stable order matters
        s[::17] = float("nan")
        b[5] = float("nan")
        b[7, 2:] = b[7, :2]  # zero area
    return b.contiguous(), s.contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 300, 1500])
@pytest.mark.parametrize("thr", [0.5, 0.0, -0.1, 0.9])
def test_nms_exact(dtype, n, thr):
    gen = torch.Generator().manual_seed(n * 7 + int(thr * 10))
    b, s = _boxes(gen, n, dtype, ties=n > 20)
    ref, got = torch.empty(n, dtype=torch.int64), torch.full((n,), -5, dtype=torch.int64)
    cr = _C.nms(b, s, thr, ref)
    cg = G.nms(b, s, thr, got)
    assert cg == cr
    assert torch.equal(got[:cg], ref[:cr])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("idx_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("n,classes", [(200, 3), (700, 40), (130, 1), (90, 90)])
def test_batched_nms_exact(dtype, idx_dtype, n, classes):
    gen = torch.Generator().manual_seed(n + classes)
    b, s = _boxes(gen, n, dtype, ties=True)
    idxs = (torch.randint(0, classes, (n,), generator=gen) * 3 - 5).to(idx_dtype)  # negative ids too
    ref, got = torch.empty(n, dtype=torch.int64), torch.full((n,), -5, dtype=torch.int64)
    cr = _C.batched_nms(b, s, idxs, 0.5, ref)
    cg = G.batched_nms(b, s, idxs, 0.5, got)
    assert cg == cr and cr > 0
    assert torch.equal(got[:cg], ref[:cr])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_iou_exact(dtype):
    gen = torch.Generator().manual_seed(11)
    a, _ = _boxes(gen, 37, dtype, ties=True)
    b, _ = _boxes(gen, 300, dtype)
    ref = torch.empty(37, 300, dtype=dtype)
    got = torch.full_like(ref, 7.0)
    _C.box_iou(a, b, ref)
    G.box_iou(a, b, got)
    torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grid", [(0, 5), (1, 1), (25, 38), (200, 3)])
def test_grid_anchors_exact(dtype, grid):
    cell = torch.empty(6, 4, dtype=dtype)
    _C.cell_anchors([32.0, 64.0], [0.5, 1.0, 2.0], "torchvision", cell)
    h, w = grid
    ref = torch.empty(h * w * 6, 4, dtype=dtype)
    got = torch.full_like(ref, float("nan"))
    _C.grid_anchors(cell, h, w, 8.0, 16.0, 0.5, ref)
    G.grid_anchors(cell, h, w, 8.0, 16.0, 0.5, got)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_coder_exact(dtype):
    gen = torch.Generator().manual_seed(5)
    ref_boxes, _ = _boxes(gen, 1000, dtype)
    props, _ = _boxes(gen, 1000, dtype)
    w = [10.0, 10.0, 5.0, 5.0]
    e_ref, e = torch.empty(1000, 4, dtype=dtype), torch.empty(1000, 4, dtype=dtype)
    _C.encode_boxes(ref_boxes, props, w, e_ref)
    G.encode_boxes(ref_boxes, props, w, e)
    assert torch.equal(e, e_ref)
    codes = torch.randn(1000, 4 * 7, generator=gen, dtype=torch.float64).to(dtype) * 3
    d_ref, d = torch.empty_like(codes), torch.empty_like(codes)
    _C.decode_boxes(codes, props, w, 4.135, d_ref)
    G.decode_boxes(codes, props, w, 4.135, d)
    assert torch.equal(d, d_ref)


def _paste_case(gen, n, m, h, w, dtype):
    masks = torch.rand(n, m, m, generator=gen, dtype=torch.float64).to(dtype)
    x1 = torch.rand(n, generator=gen, dtype=torch.float64) * w * 1.2 - 0.2 * w
    y1 = torch.rand(n, generator=gen, dtype=torch.float64) * h * 1.2 - 0.2 * h
    bw = torch.rand(n, generator=gen, dtype=torch.float64) * w * 0.7
    bh = torch.rand(n, generator=gen, dtype=torch.float64) * h * 0.7
    boxes = torch.stack([x1, y1, x1 + bw, y1 + bh], 1).to(dtype)
    boxes[0] = torch.tensor([-30.0, -30.0, -20.0, -20.0])  # pastes nothing
    boxes[1, 2] = boxes[1, 0]  # degenerate
    return masks.contiguous(), boxes.contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["aligned", "torchvision"])
@pytest.mark.parametrize("thr", [0.5, None])
@pytest.mark.parametrize("size", [(37, 53), (120, 90)])  # torch's small- and large-output resize kernels
def test_paste_masks_exact(dtype, mode, thr, size):
    h, w = size
    gen = torch.Generator().manual_seed(h + w)
    n, m = 9, 14
    masks, boxes = _paste_case(gen, n, m, h, w, dtype)
    r_ref, r = torch.empty(n, 4, dtype=torch.int64), torch.full((n, 4), -3, dtype=torch.int64)
    _C.paste_masks_plan(masks, boxes, r_ref, h, w, mode)
    G.paste_masks_plan(masks, boxes, r, h, w, mode)
    assert torch.equal(r, r_ref)
    odt = torch.bool if thr is not None else dtype
    ref = torch.empty(n, h, w, dtype=odt)
    got = torch.ones(n, h, w, dtype=odt)
    _C.paste_masks_forward(masks, boxes, ref, h, w, mode, thr)
    G.paste_masks_forward(masks, boxes, got, h, w, mode, thr)
    assert torch.equal(got, ref)
    total = int(((r_ref[:, 2] - r_ref[:, 0]) * (r_ref[:, 3] - r_ref[:, 1])).sum())
    assert total > 0
    c_ref, c = torch.empty(total, dtype=odt), torch.ones(total, dtype=odt)
    _C.paste_masks_crops(masks, boxes, r_ref, c_ref, h, w, mode, thr)
    G.paste_masks_crops(masks, boxes, r_ref, c, h, w, mode, thr)
    assert torch.equal(c, c_ref)


def test_grid_hook_rejects_device_tensors_without_touching_them():
    # The hook reads host memory only; anything else is refused with the op named.
    x = np.zeros((1, 1, 2, 2), np.float32)
    rois = np.zeros((1, 5), np.float32)
    out = np.zeros((1, 1, 1, 1), np.float32)
    G.roi_align_forward(x, rois, out, 1.0, 1, 1, 1, True, False)
    assert out[0, 0, 0, 0] == 0.0
    with pytest.raises(TypeError, match="_grid"):
        G.roi_align_forward([1], rois, out, 1.0, 1, 1, 1, True, False)
