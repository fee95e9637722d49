"""encode_boxes / decode_boxes against ops.reference and torchvision's BoxCoder."""

import math

import numpy as np
import pytest
import torch

from maskrcnn_native import ops
from maskrcnn_native.ops import reference as ref

WEIGHTS = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.5, 3.0, 1.5, 0.7)]


def boxes(n, gen, dtype):
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 500
    wh = 1 + torch.rand(n, 2, generator=gen, dtype=torch.float64) * 200
    return torch.cat([xy, xy + wh], 1).to(dtype)


def tol(dtype):
    # float: exp/log may differ by an ulp of values up to ~1e3 (cancellation in x1 = cx - w/2)
    return dict(rtol=2e-6, atol=2e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weights", WEIGHTS)
def test_encode(dtype, weights):
    g = torch.Generator().manual_seed(0)
    gt, prop = boxes(500, g, dtype), boxes(500, g, dtype)
    got = ops.encode_boxes(gt, prop, weights)
    assert got.shape == (500, 4) and got.dtype == dtype
    torch.testing.assert_close(got, ref.encode_boxes(gt, prop, weights), **tol(dtype))
    # dx, dy involve no transcendental functions: bitwise equal
    assert torch.equal(got[:, :2], ref.encode_boxes(gt, prop, weights)[:, :2])
    utils = pytest.importorskip("torchvision.models.detection._utils")
    exp = utils.BoxCoder(weights).encode_single(gt, prop)
    torch.testing.assert_close(got, exp, **tol(dtype))
    np.testing.assert_allclose(ops.encode_boxes(gt.numpy(), prop.numpy(), weights), got.numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("classes", [1, 3])
def test_decode(dtype, weights, classes):
    g = torch.Generator().manual_seed(1)
    ref_boxes = boxes(300, g, dtype)
    codes = torch.randn(300, 4 * classes, generator=g, dtype=torch.float64).to(dtype) * 2
    codes[0, 2] = 50.0  # exercises the clamp
    codes[1, 3] = float("nan")
    got = ops.decode_boxes(codes, ref_boxes, weights)
    assert got.shape == codes.shape and got.dtype == dtype
    torch.testing.assert_close(got, ref.decode_boxes(codes, ref_boxes, weights), equal_nan=True, **tol(dtype))
    utils = pytest.importorskip("torchvision.models.detection._utils")
    exp = utils.BoxCoder(weights).decode_single(codes, ref_boxes)
    torch.testing.assert_close(got, exp, equal_nan=True, **tol(dtype))
    assert torch.isnan(got[1, 1]) and torch.isnan(got[1, 3]) and not torch.isnan(got[1, 0])


def test_decode_clamp_and_roundtrip():
    g = torch.Generator().manual_seed(2)
    anchors = boxes(200, g, torch.float64)
    gt = boxes(200, g, torch.float64)
    w = (10.0, 10.0, 5.0, 5.0)
    codes = ops.encode_boxes(gt, anchors, w)
    torch.testing.assert_close(ops.decode_boxes(codes, anchors, w, clamp=math.inf), gt, rtol=1e-12, atol=1e-9)
    big = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    d = ops.decode_boxes(torch.tensor([[0.0, 0.0, 100.0, -100.0]]), big, clamp=1.0)
    assert d[0, 2] - d[0, 0] == pytest.approx(100 * math.e, rel=1e-6)
    assert d[0, 3] - d[0, 1] == pytest.approx(100 * math.exp(-100), rel=1e-4)
    # boxes are converted to the codes' dtype like torchvision
    mixed = ops.decode_boxes(codes.float(), anchors, w)
    assert mixed.dtype == torch.float32
    np_out = ops.decode_boxes(codes.numpy(), anchors.numpy(), w)
    np.testing.assert_array_equal(np_out, ops.decode_boxes(codes, anchors, w).numpy())
    assert ops.decode_boxes(torch.zeros(0, 8), torch.zeros(0, 4)).shape == (0, 8)
    assert ops.encode_boxes(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)


def test_box_coder_errors():
    b = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"encode_boxes: reference_boxes must have shape \[N, 4\], got \[3, 5\]"):
        ops.encode_boxes(torch.zeros(3, 5), b)
    with pytest.raises(ValueError, match=r"encode_boxes: proposals must have shape \[N, 4\] like reference_boxes, got \[2, 4\]"):
        ops.encode_boxes(b, torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"encode_boxes: proposals must have the same dtype as reference_boxes \(float32\), got float64"):
        ops.encode_boxes(b, b.double())
    with pytest.raises(TypeError, match=r"encode_boxes: reference_boxes must be float32 or float64, got int64"):
        ops.encode_boxes(b.long(), b.long())
    with pytest.raises(ValueError, match=r"encode_boxes: weights\[2\] must be finite and non-zero, got 0"):
        ops.encode_boxes(b, b, (1.0, 1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"encode_boxes: weights must have 4 entries \(wx, wy, ww, wh\), got 3"):
        ops.encode_boxes(b, b, (1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match=r"encode_boxes: weights must be a sequence of 4 numbers"):
        ops.encode_boxes(b, b, "abcd")
    with pytest.raises(ValueError, match=r"decode_boxes: codes must have shape \[N, 4 \* C\] with C >= 1, got \[3, 6\]"):
        ops.decode_boxes(torch.zeros(3, 6), b)
    with pytest.raises(ValueError, match=r"decode_boxes: boxes must have shape \[N, 4\] with N = codes.shape\[0\], got \[2, 4\]"):
        ops.decode_boxes(torch.zeros(3, 8), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"decode_boxes: clamp must not be NaN"):
        ops.decode_boxes(b, b, clamp=float("nan"))
    with pytest.raises(TypeError, match=r"decode_boxes: codes must be float16, bfloat16, float32 or float64, got int32"):
        ops.decode_boxes(b.int(), b.int())
    with pytest.raises(TypeError, match=r"decode_boxes: inputs must all be NumPy arrays or all be tensors"):
        ops.decode_boxes(b, b.numpy())


def test_box_coder_opcheck():
    g = torch.Generator().manual_seed(3)
    a, b = boxes(20, g, torch.float32), boxes(20, g, torch.float32)
    torch.library.opcheck(torch.ops.maskrcnn_native.encode_boxes.default, (a, b, [1.0, 2.0, 3.0, 4.0]))
    torch.library.opcheck(torch.ops.maskrcnn_native.decode_boxes.default,
                          (torch.randn(20, 8, generator=g), b, [10.0, 10.0, 5.0, 5.0], math.log(1000 / 16)))
