"""RoIAlign / RoIWarp / RoIPool against ops/reference.py and torchvision."""

import itertools
import math

import numpy as np
import zlib

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.ops import reference as ref

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def random_rois(g, n_img, h, w, k, scale, dtype):
    """Mixed RoIs: inside, straddling, outside, degenerate, inverted, tiny."""
    H, W = h / scale, w / scale
    x1 = torch.rand(k, generator=g) * W * 1.4 - 0.2 * W
    y1 = torch.rand(k, generator=g) * H * 1.4 - 0.2 * H
    bw = torch.rand(k, generator=g) * W * 0.8
    bh = torch.rand(k, generator=g) * H * 0.8
    x2, y2 = x1 + bw, y1 + bh
    kinds = torch.randint(0, 6, (k,), generator=g)
    x2 = torch.where(kinds == 1, x1, x2)                  # zero width
    x2 = torch.where(kinds == 2, x1 - bw * 0.5, x2)       # inverted
    far = kinds == 3                                      # completely outside
    x1 = torch.where(far, x1 + 3 * W, x1)
    x2 = torch.where(far, x2 + 3 * W, x2)
    b = torch.randint(0, n_img, (k,), generator=g).to(torch.float64)
    return torch.stack([b, x1, y1, x2, y2], 1).to(dtype)


def tv():
    return pytest.importorskip("torchvision")


CASES = list(itertools.product(
    [torch.float32, torch.float64], ["nchw", "cl"], [False, True], [-1, 0, 1, 2], [(7, 7), (3, 2), (1, 1)]))


def layout(x, name):
    return x.to(memory_format=torch.channels_last) if name == "cl" else x.contiguous()


@pytest.mark.parametrize("dtype,lay,aligned,sr,size", CASES)
def test_roi_align_matches_reference(dtype, lay, aligned, sr, size):
    g = torch.Generator().manual_seed(zlib.crc32(repr((str(dtype), lay, aligned, sr, size)).encode()))  # str hash() varies per process
    x = layout(torch.randn(2, 6, 11, 14, generator=g, dtype=dtype), lay)
    rois = random_rois(g, 2, 11, 14, 24, 0.5, dtype)
    out = mn.ops.roi_align(x, rois, size, 0.5, sr, aligned)
    exp = ref.roi_align(x, rois, size, 0.5, sr, aligned)
    assert out.shape == (24, 6, *size) and out.dtype == dtype
    torch.testing.assert_close(out, exp, atol=TOL[dtype], rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last if lay == "cl" else torch.contiguous_format)


@pytest.mark.parametrize("dtype,lay,aligned,sr,size", CASES[::3])
def test_roi_align_matches_torchvision_fwd_and_grad(dtype, lay, aligned, sr, size):
    tvo = tv().ops
    g = torch.Generator().manual_seed(7)
    x = layout(torch.randn(2, 5, 12, 9, generator=g, dtype=dtype), lay)
    rois = random_rois(g, 2, 12, 9, 30, 0.25, dtype)
    if aligned:
        # torchvision crashes ("cannot create std::vector larger than max_size()") on
        # inverted RoIs with aligned=True and adaptive sampling; ours gives zeros there.
        rois[:, 3] = torch.maximum(rois[:, 3], rois[:, 1])
        rois[:, 4] = torch.maximum(rois[:, 4], rois[:, 2])
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    a = mn.ops.roi_align(xa, rois, size, 0.25, sr, aligned)
    b = tvo.roi_align(xb, rois, size, 0.25, sr, aligned)
    torch.testing.assert_close(a, b, atol=TOL[dtype], rtol=0)
    gy = torch.randn(a.shape, generator=g, dtype=dtype)
    a.backward(gy)
    b.backward(gy)
    torch.testing.assert_close(xa.grad, xb.grad, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype,lay", list(itertools.product([torch.float32, torch.float64], ["nchw", "cl"])))
def test_roi_pool_matches_reference_and_torchvision(dtype, lay):
    g = torch.Generator().manual_seed(3)
    x = layout(torch.randn(3, 4, 10, 13, generator=g, dtype=dtype), lay)
    rois = random_rois(g, 3, 10, 13, 40, 0.5, dtype)
    for size in [(7, 7), (2, 3), (1, 1)]:
        out = mn.ops.roi_pool(x, rois, size, 0.5)
        torch.testing.assert_close(out, ref.roi_pool(x, rois, size, 0.5), atol=0, rtol=0)
    try:
        tvo = __import__("torchvision").ops
    except ImportError:
        return
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = mn.ops.roi_pool(xa, rois, (3, 4), 0.5)
    b = tvo.roi_pool(xb, rois, (3, 4), 0.5)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    gy = torch.randn(a.shape, generator=g, dtype=dtype)
    a.backward(gy)
    b.backward(gy)
    torch.testing.assert_close(xa.grad, xb.grad, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("lay", ["nchw", "cl"])
def test_roi_warp_matches_reference_and_quantises(lay):
    g = torch.Generator().manual_seed(5)
    x = layout(torch.randn(2, 3, 9, 9, generator=g, dtype=torch.float64), lay)
    rois = random_rois(g, 2, 9, 9, 20, 1.0, torch.float64)
    out = mn.ops.roi_warp(x, rois, (4, 4), 1.0, 2)
    torch.testing.assert_close(out, ref.roi_warp(x, rois, (4, 4), 1.0, 2), atol=1e-10, rtol=0)
    # RoIWarp on a RoI is RoIAlign on the same RoI with corners rounded (half away from zero).
    r = torch.tensor([[0, 1.5, 2.4, 6.5, 7.6]], dtype=torch.float64)
    rq = torch.tensor([[0, 2.0, 2.0, 7.0, 8.0]], dtype=torch.float64)
    torch.testing.assert_close(mn.ops.roi_warp(x, r, 3, 1.0, 2), mn.ops.roi_align(x, rq, 3, 1.0, 2, False))
    assert not torch.allclose(mn.ops.roi_warp(x, r, 3, 1.0, 2), mn.ops.roi_align(x, r, 3, 1.0, 2, False))


def test_list_of_boxes_equals_tensor_rois():
    x = torch.randn(2, 3, 8, 8)
    b0 = torch.tensor([[0.0, 0, 4, 4], [1, 1, 7, 6]])
    b1 = torch.tensor([[2.0, 2, 5, 7]])
    rois = torch.tensor([[0, 0.0, 0, 4, 4], [0, 1, 1, 7, 6], [1, 2, 2, 5, 7]])
    for f in (mn.ops.roi_align, mn.ops.roi_pool, mn.ops.roi_warp):
        torch.testing.assert_close(f(x, [b0, b1], 2), f(x, rois, 2), atol=0, rtol=0)


def test_edge_cases_empty_single_pixel_and_nonfinite():
    x = torch.randn(1, 4, 1, 1)
    # single-pixel map: every valid sample reads that pixel
    out = mn.ops.roi_align(x, torch.tensor([[0, 0.0, 0, 1, 1]]), 2, 1.0, 2, False)
    torch.testing.assert_close(out, x.expand(1, 4, 2, 2))
    # no RoIs
    assert mn.ops.roi_align(x, torch.zeros(0, 5), 3).shape == (0, 4, 3, 3)
    assert mn.ops.roi_pool(x, torch.zeros(0, 5), 3).shape == (0, 4, 3, 3)
    # zero channels
    assert mn.ops.roi_align(torch.zeros(1, 0, 5, 5), torch.tensor([[0, 0.0, 0, 3, 3]]), 2).shape == (1, 0, 2, 2)
    # empty feature map: zeros, no out-of-bounds read
    z = mn.ops.roi_align(torch.zeros(1, 2, 0, 5), torch.tensor([[0, 0.0, 0, 3, 3]]), 2)
    assert z.shape == (1, 2, 2, 2) and (z == 0).all()
    # non-finite coordinates give zeros, never garbage
    y = torch.randn(1, 3, 6, 6)
    bad = torch.tensor([[0, float("nan"), 0, 3, 3], [0, 0, float("inf"), 3, 3], [0, -float("inf"), 0, 1e30, 1e30]])
    for f in (mn.ops.roi_align, mn.ops.roi_pool, mn.ops.roi_warp):
        assert (f(y, bad, 3) == 0).all()


def test_huge_rois_are_exact_and_bounded():
    """Adaptive sampling on a RoI far larger than the map (grid > 4096 per bin)."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    rois = torch.tensor([[0, -40000.0, -30000, 50000, 60000], [0, 1.0, 1, 90000, 3]], dtype=torch.float64)
    out = mn.ops.roi_align(x, rois, (2, 3), 1.0, -1, False)
    torch.testing.assert_close(out, ref.roi_align(x, rois, (2, 3), 1.0, -1, False), atol=1e-12, rtol=1e-9)
    assert out.abs().sum() > 0


@pytest.mark.parametrize("f", ["roi_align", "roi_warp", "roi_pool"])
def test_gradcheck_float64(f):
    fn = getattr(mn.ops, f)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 3, 7, 8, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 1.1, 5.2, 6.7], [1, 2.5, 0.2, 7.9, 4.4], [1, -2, -3, 3, 2.5]], dtype=torch.float64)
    if f == "roi_pool":
        assert torch.autograd.gradcheck(lambda t: fn(t, rois, (2, 3), 1.0), (x,))
    else:
        assert torch.autograd.gradcheck(lambda t: fn(t, rois, (2, 3), 1.0, 2), (x,))
    xc = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fn(t, rois, (2, 2), 1.0), (xc,))


def test_opcheck():
    x = torch.randn(2, 3, 7, 8)
    rois = torch.tensor([[0, 0.3, 1.1, 5.2, 6.7], [1, 2.5, 0.2, 7.9, 4.4]])
    for inp in (x, x.to(memory_format=torch.channels_last)):
        inp = inp.clone().requires_grad_()
        torch.library.opcheck(torch.ops.maskrcnn_native.roi_align, (inp, rois, 0.5, 3, 3, 2, True, False))
        torch.library.opcheck(torch.ops.maskrcnn_native.roi_align, (inp, rois, 0.5, 3, 3, -1, False, True))
        torch.library.opcheck(torch.ops.maskrcnn_native.roi_pool, (inp, rois, 0.5, 3, 3))


def test_numpy_inputs_match_torch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 9, 9, generator=g)
    rois = random_rois(g, 2, 9, 9, 10, 1.0, torch.float32)
    for f in (mn.ops.roi_align, mn.ops.roi_pool, mn.ops.roi_warp):
        a = f(x.numpy(), rois.numpy(), 3)
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        np.testing.assert_array_equal(a, f(x, rois, 3).numpy())
    # NHWC NumPy memory viewed as NCHW is used without a copy
    nhwc = np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(mn.ops.roi_align(nhwc, rois.numpy(), 3), mn.ops.roi_align(x, rois, 3).numpy())


def test_non_contiguous_input_is_handled():
    x = torch.randn(2, 5, 12, 10).transpose(2, 3)  # neither NCHW nor channels_last
    rois = torch.tensor([[0, 1.0, 1, 6, 8], [1, 0, 0, 9, 9]])
    torch.testing.assert_close(mn.ops.roi_align(x, rois, 3, 1.0, 2), mn.ops.roi_align(x.contiguous(), rois, 3, 1.0, 2))


# ------------------------------------------------------------ error paths ----

def _x():
    return torch.randn(1, 2, 5, 5)


@pytest.mark.parametrize("f", ["roi_align", "roi_warp", "roi_pool"])
def test_errors(f):
    fn = getattr(mn.ops, f)
    ok = torch.tensor([[0, 0.0, 0, 3, 3]])
    with pytest.raises(ValueError, match=rf"{f}: rois must have shape \[K, 5\], got \[3, 4\]"):
        fn(_x(), torch.zeros(3, 4), 2)
    with pytest.raises(TypeError, match=rf"{f}: input must be float16, bfloat16, float32 or float64, got int64"):
        fn(torch.zeros(1, 2, 5, 5, dtype=torch.int64), ok, 2)
    with pytest.raises(TypeError, match=rf"{f}: rois must have the same dtype as input \(float32\), got float64"):
        fn(_x(), ok.double(), 2)
    with pytest.raises(ValueError, match=rf"{f}: input must have shape \[N, C, H, W\], got \[2, 5, 5\]"):
        fn(torch.randn(2, 5, 5), ok, 2)
    with pytest.raises(IndexError, match=rf"{f}: rois\[1, 0\] \(batch index\) = 1.0+ is out of range for input with 1 images"):
        fn(_x(), torch.tensor([[0, 0.0, 0, 3, 3], [1, 0, 0, 3, 3]]), 2)
    with pytest.raises(IndexError, match=rf"{f}: rois\[0, 0\] \(batch index\) = -1.0+ is out of range"):
        fn(_x(), torch.tensor([[-1, 0.0, 0, 3, 3]]), 2)
    with pytest.raises(IndexError, match=rf"{f}: rois\[0, 0\] \(batch index\) = nan is out of range"):
        fn(_x(), torch.tensor([[float("nan"), 0.0, 0, 3, 3]]), 2)
    with pytest.raises(ValueError, match=rf"{f}: output_size must be positive, got \(0, 2\)"):
        fn(_x(), ok, (0, 2))
    with pytest.raises(ValueError, match=rf"{f}: spatial_scale must be a positive finite number"):
        fn(_x(), ok, 2, float("nan"))
    with pytest.raises(ValueError, match=rf"{f}: output_size must be an int or a pair of ints"):
        fn(_x(), ok, "big")
    with pytest.raises(TypeError, match=rf"{f}: boxes must be a Tensor\[K, 5\] or a list of Tensor\[L, 4\]"):
        fn(_x(), 3.0, 2)
    with pytest.raises(ValueError, match=r"boxes\[0\] must be a Tensor\[L, 4\], got \[2, 5\]"):
        fn(_x(), [torch.zeros(2, 5)], 2)
    with pytest.raises(TypeError, match=rf"{f}: input and boxes must both be NumPy arrays or both be tensors"):
        fn(_x().numpy(), ok, 2)


def test_native_entry_points_validate_outputs():
    """Direct _C calls (no Python allocation helpers) are validated too."""
    C = mn._C
    x, rois = _x(), torch.tensor([[0, 0.0, 0, 3, 3]])
    with pytest.raises(ValueError, match=r"roi_align: output must have shape \[K, C, PH, PW\], got \[1, 2, 3, 3\]"):
        C.roi_align_forward(x, rois, torch.empty(1, 2, 3, 3), 1.0, 2, 2, -1, False, False)
    with pytest.raises(TypeError, match=r"roi_align: output must have the same dtype as input \(float32\), got float64"):
        C.roi_align_forward(x, rois, torch.empty(1, 2, 2, 2, dtype=torch.float64), 1.0, 2, 2, -1, False, False)
    with pytest.raises(ValueError, match=r"roi_align: input must be NCHW-contiguous or channels_last"):
        C.roi_align_forward(torch.randn(1, 2, 5, 6).transpose(2, 3), rois, torch.empty(1, 2, 2, 2), 1.0, 2, 2, -1, False, False)
    ro = np.zeros((1, 2, 2, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"roi_align: output is read-only; outputs must be writable"):
        C.roi_align_forward(x.numpy(), rois.numpy(), ro, 1.0, 2, 2, -1, False, False)
    with pytest.raises(TypeError, match=r"roi_align: input must be a tensor or array supporting DLPack .* got list"):
        C.roi_align_forward([1, 2], rois, torch.empty(1, 2, 2, 2), 1.0, 2, 2, -1, False, False)
    with pytest.raises(TypeError, match=r"roi_pool: argmax must be int64, got float32"):
        C.roi_pool_forward(x, rois, torch.empty(1, 2, 2, 2), torch.empty(1, 2, 2, 2), 1.0, 2, 2)
    with pytest.raises(ValueError, match=r"roi_align_backward: grad_output must have shape \[K, C, PH, PW\], got \[1, 3, 2, 2\]"):
        C.roi_align_backward(torch.zeros(1, 3, 2, 2), rois, torch.empty(1, 2, 5, 5), 1.0, 2, 2, -1, False, False)
    with pytest.raises(IndexError, match=r"roi_pool_backward: rois\[0, 0\] \(batch index\)"):
        C.roi_pool_backward(torch.zeros(1, 2, 2, 2), torch.tensor([[3, 0.0, 0, 1, 1]]),
                            torch.zeros(1, 2, 2, 2, dtype=torch.int64), torch.empty(1, 2, 5, 5))


def test_deterministic_and_thread_count_independent():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 32, 30, 30, generator=g).to(memory_format=torch.channels_last).requires_grad_()
    rois = random_rois(g, 2, 30, 30, 64, 1.0, torch.float32)
    n0 = mn.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            mn.set_num_threads(n)
            x.grad = None
            out = mn.ops.roi_align(x, rois, 7, 1.0, 2)
            out.sum().backward()
            results.append((out.detach().clone(), x.grad.clone()))
    finally:
        mn.set_num_threads(n0)
    for out, grad in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(grad, results[0][1])


def test_layouts_give_identical_bits():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 16, 20, 20, generator=g)
    rois = random_rois(g, 2, 20, 20, 300, 1.0, torch.float32)  # enough RoIs to take the transpose path
    outs, grads = [], []
    for inp in (x.clone(), x.to(memory_format=torch.channels_last)):
        inp.requires_grad_()
        out = mn.ops.roi_align(inp, rois, 5, 1.0, 2)
        out.backward(torch.ones_like(out))
        outs.append(out.contiguous())
        grads.append(inp.grad.contiguous())
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])
    few = mn.ops.roi_align(x, rois[:3], 5, 1.0, 2)  # direct NCHW path
    assert torch.equal(few, outs[0][:3])
