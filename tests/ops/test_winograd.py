"""Winograd F(m x m, 3 x 3) convolution (ops/winograd.py + cpp/ops/winograd):
against a float64 direct convolution, across tile edges, chunk boundaries,
channel blocks, epilogues and thread counts; and every error path."""

import pytest
import torch
import torch.nn.functional as F

import maskrcnn_native as mn
from maskrcnn_native.ops import winograd as W
from maskrcnn_native.ops.winograd import conv3x3_winograd, winograd_weight

_C = mn._C
# measured max |error| of F(4x4,3x3) on unit-scale outputs: ~6e-5 (C = 256);
# F(2x2,3x3) ~4e-6; a direct float32 convolution ~1e-5
TOL = {2: dict(rtol=1e-5, atol=2e-5), 4: dict(rtol=1e-4, atol=2e-4)}


def _case(n, c, o, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).relu().contiguous(memory_format=torch.channels_last)
    wt = torch.randn(o, c, 3, 3, generator=g) * (2.0 / (9 * c)) ** 0.5
    b = torch.randn(o, generator=g) * 0.1
    res = torch.randn(n, o, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    return x, wt, b, res


def _ref(x, wt, b, res, relu):
    y = F.conv2d(x.double(), wt.double(), None if b is None else b.double(), padding=1)
    if res is not None:
        y = y + res.double()
    return (y.relu() if relu else y).float()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize(
    "n,c,o,h,w",
    [
        (1, 256, 256, 20, 24),  # tiles fit exactly (F4), several channel blocks
        (2, 70, 33, 13, 11),  # ragged tiles, channels not a multiple of the 64-channel block
        (3, 8, 5, 1, 1),  # a single pixel: the whole patch is padding but the centre
        (1, 16, 16, 2, 7),
        (100, 32, 48, 14, 14),  # the mask head's shape class: many small images
    ],
)
@pytest.mark.parametrize("bias,residual,relu", [(True, False, False), (False, True, True), (True, True, True)])
def test_matches_direct_convolution(m, n, c, o, h, w, bias, residual, relu):
    x, wt, b, res = _case(n, c, o, h, w)
    b = b if bias else None
    res = res if residual else None
    got = conv3x3_winograd(x, winograd_weight(wt, m), b, residual=res, relu=relu, m=m)
    assert got.shape == (n, o, h, w) and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, _ref(x, wt, b, res, relu), **TOL[m])


@pytest.mark.parametrize("m", [2, 4])
def test_chunks_split_tiles_across_images_the_same(m, monkeypatch):
    x, wt, b, res = _case(3, 24, 40, 9, 10, seed=1)
    u = winograd_weight(wt, m)
    whole = conv3x3_winograd(x, u, b, residual=res, relu=True, m=m)
    # 16 tiles a chunk: chunks straddle images and the last one is ragged
    monkeypatch.setattr(W, "_CHUNK_ELEMENTS", 16 * (m + 2) ** 2 * 40)
    chunked = conv3x3_winograd(x, u, b, residual=res, relu=True, m=m)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)
    torch.testing.assert_close(whole, _ref(x, wt, b, res, True), **TOL[m])


def test_nchw_input_is_accepted_and_output_is_channels_last():
    x, wt, b, _ = _case(1, 16, 8, 9, 9)
    got = conv3x3_winograd(x.contiguous(), winograd_weight(wt), b)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, _ref(x, wt, b, None, False), **TOL[4])


def test_relu_keeps_nan_and_padding_is_zero():
    x, wt, b, _ = _case(1, 8, 4, 6, 6)
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")
    got = conv3x3_winograd(x, winograd_weight(wt, 2), b, relu=True, m=2)
    ref = _ref(x, wt, b, None, True)
    nan = torch.isnan(ref)
    assert nan.any()
    # a NaN spreads to the whole tile's outputs in Winograd form: at least the
    # direct convolution's NaNs are NaN, and finite outputs far away agree
    assert torch.isnan(got[nan]).all()
    torch.testing.assert_close(got[..., 3:, 3:], ref[..., 3:, 3:], **TOL[2])
    # zero input: the output is the bias exactly (padding contributes nothing)
    z = torch.zeros(1, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    out = conv3x3_winograd(z, winograd_weight(wt), b)
    assert torch.equal(out, b.view(1, -1, 1, 1).expand_as(out))


def test_empty_inputs():
    u = winograd_weight(torch.randn(5, 3, 3, 3))
    for shape in [(0, 3, 4, 4), (2, 3, 0, 4), (1, 3, 4, 0)]:
        out = conv3x3_winograd(torch.randn(shape), u)
        assert out.shape == (shape[0], 5, shape[2], shape[3])
    out = conv3x3_winograd(torch.randn(1, 3, 4, 4), winograd_weight(torch.randn(0, 3, 3, 3)))
    assert out.shape == (1, 0, 4, 4)


def test_native_transforms_do_not_depend_on_the_thread_count():
    x, wt, b, res = _case(2, 96, 80, 17, 23, seed=3)
    a2, tiles = 36, 2 * 5 * 6
    runs = []
    before = _C.get_num_threads()
    try:
        for threads in (1, 2, 3):
            _C.set_num_threads(threads)
            v = torch.empty(a2, tiles, 96)
            _C.winograd_input_transform(x, v, 0, 4)
            prod = torch.bmm(v, winograd_weight(wt))
            out = torch.empty(2, 80, 17, 23).contiguous(memory_format=torch.channels_last)
            _C.winograd_output_transform(prod, b, res, out, 0, 4, True)
            runs.append((v, out))
    finally:
        _C.set_num_threads(before)
    for v, out in runs[1:]:
        assert torch.equal(v, runs[0][0]) and torch.equal(out, runs[0][1])


def test_weight_transform_values():
    wt = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    g = torch.tensor(W._G[2], dtype=torch.float64)
    u = winograd_weight(wt, 2)
    assert u.shape == (16, 2, 3) and u.dtype == torch.float32 and u.is_contiguous()
    for o in range(3):
        for c in range(2):
            expect = (g @ wt[o, c] @ g.T).reshape(16).float()
            torch.testing.assert_close(u[:, c, o], expect, rtol=1e-6, atol=1e-7)


def test_errors():
    x = torch.randn(1, 4, 5, 5)
    u = winograd_weight(torch.randn(6, 4, 3, 3))
    with pytest.raises(ValueError, match="m must be 2 or 4"):
        conv3x3_winograd(x, u, m=3)
    with pytest.raises(ValueError, match="m must be 2 or 4"):
        winograd_weight(torch.randn(6, 4, 3, 3), m=6)
    with pytest.raises(ValueError, match=r"weight must have shape \[O, C, 3, 3\], got \[6, 4, 5, 5\]"):
        winograd_weight(torch.randn(6, 4, 5, 5))
    with pytest.raises(TypeError, match="weight must be a float tensor"):
        winograd_weight(torch.ones(6, 4, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"u must have shape \[36, 4, O\]"):
        conv3x3_winograd(x, winograd_weight(torch.randn(6, 5, 3, 3)))
    with pytest.raises(ValueError, match=r"u must have shape \[16, 4, O\]"):
        conv3x3_winograd(x, u, m=2)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C, H, W\]"):
        conv3x3_winograd(torch.randn(4, 5, 5), u)
    with pytest.raises(TypeError, match="x must be float32, got torch.float64"):
        conv3x3_winograd(x.double(), u)
    with pytest.raises(TypeError, match="bias must be float32"):
        conv3x3_winograd(x, u, torch.zeros(6, dtype=torch.float64))


def test_native_errors():
    x = torch.randn(1, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    v = torch.empty(36, 4, 4)  # 2 x 2 tiles of F4 on 5 x 5
    _C.winograd_input_transform(x, v, 0, 4)
    with pytest.raises(ValueError, match="winograd_input_transform: m must be 2 or 4"):
        _C.winograd_input_transform(x, v, 0, 3)
    with pytest.raises(ValueError, match="input must be channels_last"):
        _C.winograd_input_transform(torch.randn(1, 4, 5, 6), v, 0, 4)
    with pytest.raises(ValueError, match=r"v must have shape \[\(m\+2\)\^2, T, C\], got \[16, 4, 4\]"):
        _C.winograd_input_transform(x, torch.empty(16, 4, 4), 0, 4)
    with pytest.raises(ValueError, match="v must have a contiguous last dimension"):
        _C.winograd_input_transform(x, torch.empty(36, 4, 8)[:, :, ::2], 0, 4)
    with pytest.raises(ValueError, match=r"tiles 1 \.\. 5 are outside the 4 tiles of the map"):
        _C.winograd_input_transform(x, v, 1, 4)
    with pytest.raises(TypeError, match="input must be float32, got float64"):
        _C.winograd_input_transform(x.double(), v, 0, 4)
    prod = torch.empty(36, 4, 6)
    out = torch.empty(1, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    _C.winograd_output_transform(prod, None, None, out, 0, 4, False)
    with pytest.raises(ValueError, match=r"bias must have shape \[O\], got \[5\]"):
        _C.winograd_output_transform(prod, torch.zeros(5), None, out, 0, 4, False)
    with pytest.raises(ValueError, match="residual must have shape the shape of output"):
        _C.winograd_output_transform(
            prod, None, torch.zeros(1, 6, 5, 4).contiguous(memory_format=torch.channels_last), out, 0, 4, False
        )
    with pytest.raises(ValueError, match=r"tiles must have shape \[\(m\+2\)\^2, T, O\]"):
        _C.winograd_output_transform(torch.empty(36, 4, 5), None, None, out, 0, 4, False)
    with pytest.raises(ValueError, match="output must be channels_last"):
        _C.winograd_output_transform(prod, None, None, torch.empty(1, 6, 5, 4), 0, 4, False)
    import numpy as np

    ro = np.zeros((1, 5, 5, 6), dtype=np.float32).transpose(0, 3, 1, 2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="output is read-only"):
        _C.winograd_output_transform(prod, None, None, ro, 0, 4, False)


# ------------------------------------------------------------ weight gradient
def _ref_weight_grad(x, g):
    w = torch.zeros(g.shape[1], x.shape[1], 3, 3, dtype=torch.float64)
    return torch.ops.aten.convolution_backward(
        g.double(), x.double(), w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False]
    )[1]


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize(
    "n,c,o,h,w",
    [
        (1, 256, 256, 20, 24),  # tiles fit exactly (F4), several channel blocks
        (2, 70, 33, 13, 11),  # ragged tiles, channels not a multiple of the 64-channel block
        (3, 5, 7, 1, 2),  # maps smaller than a tile
    ],
)
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_weight_grad_matches_direct(m, n, c, o, h, w, layout):
    x, _, _, _ = _case(n, c, o, h, w, seed=5)
    g = torch.randn(n, o, h, w, generator=torch.Generator().manual_seed(6))
    if layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    else:
        x = x.contiguous()
    ref = _ref_weight_grad(x, g)
    got = W.conv3x3_winograd_weight_grad(x, g, m)
    assert got.shape == (o, c, 3, 3) and got.dtype == torch.float32 and got.is_contiguous()
    # relative to the largest entry: a float32 direct weight gradient is ~1e-6 here
    err = float((got.double() - ref).abs().max() / ref.abs().max())
    assert err < (2e-5 if m == 4 else 5e-6), err


@pytest.mark.parametrize("m", [2, 4])
def test_weight_grad_chunks_and_threads_do_not_change_it(m, monkeypatch):
    x, _, _, _ = _case(2, 40, 24, 19, 21, seed=7)
    g = torch.randn(2, 24, 19, 21, generator=torch.Generator().manual_seed(8))
    whole = W.conv3x3_winograd_weight_grad(x, g, m)
    monkeypatch.setattr(W, "_GRAD_CHUNK_ELEMENTS", 1)  # chunks of 16 tiles, crossing images
    chunked = W.conv3x3_winograd_weight_grad(x, g, m)
    # the chunks' partial sums round differently: equal to float32 accumulation error
    ref = _ref_weight_grad(x, g)
    scale = float(ref.abs().max())
    for got in (whole, chunked):
        assert float((got.double() - ref).abs().max()) < 2e-5 * scale
    assert not torch.equal(chunked, whole)  # the chunking did change the summation
    before = _C.get_num_threads()
    tiles = 2 * (-(-19 // m)) * (-(-21 // m))
    dms = []
    try:
        for threads in (1, 3):
            _C.set_num_threads(threads)
            dm = torch.empty((m + 2) ** 2, tiles, 24)
            _C.winograd_grad_transform(g.contiguous(memory_format=torch.channels_last), dm, 0, m)
            dms.append(dm)
    finally:
        _C.set_num_threads(before)
    assert torch.equal(dms[0], dms[1])


def test_grad_transform_values():
    # dM = A dY A^T for one 4x4 tile (F4) and one 2x2 tile (F2), against the matrices
    at = {
        4: torch.tensor(
            [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=torch.float64
        ),
        2: torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float64),
    }
    for m, a_t in at.items():
        gy = torch.randn(1, 3, m, m, dtype=torch.float64)
        dm = torch.empty((m + 2) ** 2, 1, 3)
        _C.winograd_grad_transform(gy.float().contiguous(memory_format=torch.channels_last), dm, 0, m)
        for ch in range(3):
            expect = (a_t.T @ gy[0, ch] @ a_t).reshape(-1).float()
            torch.testing.assert_close(dm[:, 0, ch], expect, rtol=1e-5, atol=1e-5)


def test_weight_grad_errors():
    x = torch.randn(1, 4, 5, 5)
    g = torch.randn(1, 6, 5, 5)
    with pytest.raises(ValueError, match="m must be 2 or 4"):
        W.conv3x3_winograd_weight_grad(x, g, 3)
    with pytest.raises(ValueError, match=r"grad_output \[1, 6, 5, 4\] does not match x \[1, 4, 5, 5\]"):
        W.conv3x3_winograd_weight_grad(x, torch.randn(1, 6, 5, 4))
    with pytest.raises(ValueError, match=r"x must have shape \[N, C, H, W\]"):
        W.conv3x3_winograd_weight_grad(torch.randn(4, 5, 5), g)
    with pytest.raises(TypeError, match="grad_output must be float32 on the CPU"):
        W.conv3x3_winograd_weight_grad(x, g.double())
    gy = g.contiguous(memory_format=torch.channels_last)
    dm = torch.empty(36, 4, 6)
    _C.winograd_grad_transform(gy, dm, 0, 4)
    with pytest.raises(ValueError, match="winograd_grad_transform: m must be 2 or 4"):
        _C.winograd_grad_transform(gy, dm, 0, 5)
    with pytest.raises(ValueError, match="grad_output must be channels_last"):
        _C.winograd_grad_transform(torch.randn(1, 6, 5, 4), dm, 0, 4)
    with pytest.raises(ValueError, match=r"dm must have shape \[\(m\+2\)\^2, T, O\], got \[36, 4, 5\]"):
        _C.winograd_grad_transform(gy, torch.empty(36, 4, 5), 0, 4)
    with pytest.raises(ValueError, match=r"tiles 2 \.\. 6 are outside the 4 tiles of the map"):
        _C.winograd_grad_transform(gy, dm, 2, 4)
    with pytest.raises(TypeError, match="grad_output must be float32, got float64"):
        _C.winograd_grad_transform(gy.double(), dm, 0, 4)
