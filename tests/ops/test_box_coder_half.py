"""decode_boxes with float16/bfloat16 codes and under autocast
(the model's bfloat16 predict and training paths decode bfloat16 regression
outputs against float32 anchors and proposals)."""

import pytest
import torch

from maskrcnn_native import ops

W = (10.0, 10.0, 5.0, 5.0)


def _inputs(n=300, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 800
    boxes = torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 300], 1)
    codes = torch.randn(n, 4 * c, generator=g) * 0.5
    return codes, boxes


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_decode_half_codes_is_float32_of_the_same_values_rounded_once(dtype):
    codes, boxes = _inputs()
    half = codes.to(dtype)
    got = ops.decode_boxes(half, boxes, W)
    assert got.dtype == dtype
    # boxes stay float32 (not rounded to the half dtype), the result is rounded once on store
    want = ops.decode_boxes(half.float(), boxes, W).to(dtype)
    assert torch.equal(got, want)
    # half boxes are upcast exactly
    assert torch.equal(ops.decode_boxes(half, boxes.to(dtype), W), ops.decode_boxes(half.float(), boxes.to(dtype).float(), W).to(dtype))


@pytest.mark.parametrize("ac_dtype", [torch.bfloat16, torch.float16])
def test_decode_under_autocast_runs_and_returns_float32(ac_dtype):
    codes, boxes = _inputs(c=1)
    half = codes.to(ac_dtype)
    with torch.autocast("cpu", dtype=ac_dtype):
        dec = ops.decode_boxes(half, boxes, W)
    assert dec.dtype == torch.float32
    # exactly the float32 computation on the upcast values: the anchors are never rounded to the half dtype
    assert torch.equal(dec, ops.decode_boxes(half.float(), boxes, W))
    if ac_dtype == torch.bfloat16:  # bfloat16 anchors would be off by up to 2 px at 800 px; these are not
        rounded = ops.decode_boxes(half.float(), boxes.to(ac_dtype).float(), W)
        assert (rounded - dec).abs().max() > 0.5


def test_decode_half_codes_with_float64_boxes_uses_float32():
    codes, boxes = _inputs(c=1)
    got = ops.decode_boxes(codes.bfloat16(), boxes.double(), W)
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, ops.decode_boxes(codes.bfloat16().float(), boxes, W).bfloat16())
