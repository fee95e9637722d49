"""float16 / bfloat16 (and integer boxes) across the ops, autocast, and the
reproducers of issue 8: half results equal the float32 computation rounded once."""

import numpy as np
import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native import ops

HALF = [torch.float16, torch.bfloat16]


def _feats(dtype, seed=0, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, 17, 23, generator=g) * 3
    x = x.to(dtype)
    return x.to(memory_format=torch.channels_last) if channels_last else x


def _rois(dtype, k=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g) * 80 - 5
    wh = torch.rand(k, 2, generator=g) * 60 + 0.5
    b = torch.randint(0, 2, (k, 1), generator=g).float()
    return torch.cat([b, xy, xy + wh], 1).to(dtype)


RoI_OPS = {
    "roi_align": lambda x, r: ops.roi_align(x, r, (5, 4), 0.25, 2, True),
    "roi_align_adaptive": lambda x, r: ops.roi_align(x, r, 3, 0.25, -1, False),
    "roi_warp": lambda x, r: ops.roi_warp(x, r, 4, 0.25, 2),
    "roi_pool": lambda x, r: ops.roi_pool(x, r, (3, 4), 0.25),
}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(RoI_OPS))
def test_roi_ops_half_equal_float32_rounded(name, dtype, channels_last):
    f = RoI_OPS[name]
    x = _feats(dtype, channels_last=channels_last)
    r = _rois(dtype)
    got = f(x, r)
    assert got.dtype == dtype
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    exp = f(x.float(), r.float()).to(dtype)
    assert torch.equal(got, exp)
    # The computation is not half-precision arithmetic: it is better than that.
    ref64 = f(x.double(), r.double())
    assert (got.double() - ref64).abs().max() <= (exp.double() - ref64).abs().max()


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(RoI_OPS))
def test_roi_ops_half_backward_equal_float32_rounded(name, dtype):
    f = RoI_OPS[name]
    x = _feats(dtype).requires_grad_(True)
    r = _rois(dtype).requires_grad_(True)  # boxes requiring grad are fine, and get none
    out = f(x, r)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    (gx,) = torch.autograd.grad(out, x, g)
    assert gx.dtype == dtype
    x32 = x.detach().float().requires_grad_(True)
    (gx32,) = torch.autograd.grad(f(x32, r.detach().float()), x32, g.float())
    assert torch.equal(gx, gx32.to(dtype))


@pytest.mark.parametrize("name", sorted(RoI_OPS))
def test_boxes_requiring_grad_get_no_grad(name):
    # issue 8 reproducer: BufferError "Can't export tensors that require gradient"
    x = torch.rand(1, 2, 8, 8, requires_grad=True)
    r = torch.tensor([[0, 1.0, 1.0, 6.0, 6.0]], requires_grad=True)
    RoI_OPS[name](x, r).sum().backward()
    assert r.grad is None
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", HALF)
def test_roi_ops_list_boxes_half(dtype):
    x = _feats(dtype)
    r = _rois(torch.float32)
    boxes = [r[r[:, 0] == 0, 1:].to(dtype), r[r[:, 0] == 1, 1:].to(dtype)]
    got = ops.roi_align(x, boxes, 3, 0.25, 2)
    exp = ops.roi_align(x.float(), [b.float() for b in boxes], 3, 0.25, 2).to(dtype)
    assert torch.equal(got, exp)


def test_roi_half_matches_torchvision_float16_closely():
    tv = pytest.importorskip("torchvision")
    x = _feats(torch.float16)
    r = _rois(torch.float16)
    got = ops.roi_align(x, r, 5, 0.25, 2, True)
    exp = tv.ops.roi_align(x.float(), r.float(), 5, 0.25, 2, True)  # torchvision's float32 as the oracle
    torch.testing.assert_close(got.float(), exp, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(ops.roi_pool(x, r, 3, 0.25), tv.ops.roi_pool(x, r, 3, 0.25), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", HALF)
def test_roi_mixed_dtypes_raise_without_autocast(dtype):
    with pytest.raises(TypeError, match=rf"roi_align: rois must have the same dtype as input \(float32\), "
                                        rf"got {str(dtype)[6:]}"):
        ops.roi_align(_feats(torch.float32), _rois(dtype), 2)
    with pytest.raises(TypeError, match=rf"roi_pool: rois must have the same dtype as input \({str(dtype)[6:]}\), "
                                        r"got float32"):
        ops.roi_pool(_feats(dtype), _rois(torch.float32), 2)


# ------------------------------------------------------------- NMS family ----

def _boxes(n=300, seed=2):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    b = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 80 + 1], 1)
    return b, torch.rand(n, generator=g)


@pytest.mark.parametrize("dtype", HALF)
def test_nms_half_equals_float32_of_the_same_values(dtype):
    b, s = _boxes()
    b, s = b.to(dtype), s.to(dtype)
    keep = ops.nms(b, s, 0.5)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, ops.nms(b.float(), s.float(), 0.5))
    idx = torch.arange(b.shape[0]) % 4
    bk = ops.batched_nms(b, s, idx, 0.5)
    assert torch.equal(bk, ops.batched_nms(b.float(), s.float(), idx, 0.5))
    tv = pytest.importorskip("torchvision")
    assert torch.equal(keep, tv.ops.nms(b.float(), s.float(), 0.5))


@pytest.mark.parametrize("dtype", HALF + [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_box_iou_half_and_integer_as_torchvision(dtype):
    tv = pytest.importorskip("torchvision")
    b, _ = _boxes(80)
    b = (b * 3).to(dtype) if dtype.is_floating_point else (b.clamp(max=250)).to(dtype)
    a = b[:37]
    got = ops.box_iou(a, b)
    exp = tv.ops.box_iou(a, b)
    assert got.dtype == exp.dtype == torch.float32
    torch.testing.assert_close(got, exp, rtol=0, atol=0, equal_nan=True)


def test_box_iou_integer_reproducer():
    got = ops.box_iou(torch.tensor([[0, 0, 10, 10]]), torch.tensor([[1, 1, 11, 11]]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor([[81 / 119]]))


def test_batched_nms_empty_with_none():
    keep = ops.batched_nms(torch.empty(0, 4), None, None, 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)
    keep = ops.batched_nms(torch.empty(0, 4, dtype=torch.float16), torch.empty(0, dtype=torch.float16),
                           torch.empty(0, dtype=torch.int64), 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)


# ------------------------------------------------------------ paste_masks ----

@pytest.mark.parametrize("mode", ["aligned", "torchvision"])
@pytest.mark.parametrize("dtype", HALF)
def test_paste_masks_half(dtype, mode):
    g = torch.Generator().manual_seed(4)
    masks = torch.rand(12, 14, 14, generator=g).to(dtype)
    b, _ = _boxes(12)
    boxes = (b * 0.3).to(dtype)
    probs = ops.paste_masks(masks, boxes, (60, 70), mode=mode, threshold=None)
    assert probs.dtype == dtype
    exp = ops.paste_masks(masks.float(), boxes.float(), (60, 70), mode=mode, threshold=None)
    assert torch.equal(probs, exp.to(dtype))
    bits = ops.paste_masks(masks, boxes, (60, 70), mode=mode, threshold=0.5)
    assert torch.equal(bits, ops.paste_masks(masks.float(), boxes.float(), (60, 70), mode=mode, threshold=0.5))
    crops = ops.paste_masks(masks, boxes, (60, 70), mode=mode, threshold=None, output="crops")
    assert torch.equal(crops.to_bitmap(), probs)
    # float32 masks with half boxes: the boxes are converted to float32
    got = ops.paste_masks(masks.float(), boxes, (60, 70), mode=mode, threshold=0.5)
    assert torch.equal(got, ops.paste_masks(masks.float(), boxes.float(), (60, 70), mode=mode, threshold=0.5))


# ---------------------------------------------------------- dtype errors ----

def _quint8(shape):
    return torch.quantize_per_tensor(torch.rand(shape), 0.1, 0, torch.quint8)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unsupported_dtypes_raise_typeerror_naming_op_and_argument():
    x, r = _feats(torch.float32), _rois(torch.float32)
    q = _quint8((2, 5, 17, 23))
    with pytest.raises(TypeError, match=r"roi_align: input must be float16, bfloat16, float32 or float64, "
                                        r"got quantized quint8"):
        ops.roi_align(q, r, 2)
    with pytest.raises(TypeError, match=r"roi_pool: rois must be .* got quantized quint8"):
        ops.roi_pool(x, _quint8((3, 5)), 2)
    with pytest.raises(TypeError, match=r"roi_align: input must be .* got complex64"):
        ops.roi_align(x.to(torch.complex64), r, 2)
    with pytest.raises(TypeError, match=r"roi_warp: input must be .* got bool"):
        ops.roi_warp(x > 0, r, 2)
    with pytest.raises(TypeError, match=r"roi_align: input is a meta tensor"):
        ops.roi_align(x.to("meta"), r.to("meta"), 2)
    b, s = _boxes(5)
    with pytest.raises(TypeError, match=r"nms: boxes must be .* got quantized quint8"):
        ops.nms(_quint8((5, 4)), s, 0.5)
    with pytest.raises(TypeError, match=r"nms: scores must be .* got complex64"):
        ops.nms(b, s.to(torch.complex64), 0.5)
    with pytest.raises(TypeError, match=r"batched_nms: idxs must be uint8, int8, int16, int32 or int64, got bool"):
        ops.batched_nms(b, s, torch.zeros(5, dtype=torch.bool), 0.5)
    with pytest.raises(TypeError, match=r"box_iou: boxes1 must be .* got quantized quint8"):
        ops.box_iou(_quint8((5, 4)), b)
    with pytest.raises(TypeError, match=r"paste_masks: masks must be .* got quantized quint8"):
        ops.paste_masks(_quint8((5, 14, 14)), b, (10, 10))
    with pytest.raises(TypeError, match=r"decode_boxes: codes must be float16, bfloat16, float32 or float64, got quantized quint8"):
        ops.decode_boxes(_quint8((5, 4)), b)
    # DTypeError is a TypeError and a RuntimeError (what torchvision code catches)
    with pytest.raises(RuntimeError):
        ops.roi_align(q, r, 2)
    assert issubclass(mn.ops.DTypeError, TypeError)


def test_error_classes():
    assert issubclass(ops.ShapeError, ValueError) and issubclass(ops.ShapeError, RuntimeError)
    assert issubclass(ops.DTypeError, TypeError) and issubclass(ops.DTypeError, RuntimeError)
    assert issubclass(ops.BatchIndexError, IndexError) and issubclass(ops.BatchIndexError, RuntimeError)
    x = _feats(torch.float32)
    with pytest.raises(ops.ShapeError, match=r"roi_align: rois must have shape \[K, 5\], got \[3, 4\]"):
        ops.roi_align(x, torch.zeros(3, 4), 2)
    with pytest.raises(RuntimeError, match=r"nms: boxes must have shape \[N, 4\], got \[3, 5\]"):
        ops.nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ops.BatchIndexError, match=r"roi_pool: rois\[0, 0\] \(batch index\) = 7"):
        ops.roi_pool(x, torch.tensor([[7.0, 0, 0, 1, 1]]), 2)
    with pytest.raises(RuntimeError, match=r"output_size must be an int or a pair"):
        ops.roi_align(x, torch.zeros(0, 5), "a")
    with pytest.raises(ops.ShapeError):  # NumPy path: same classes
        ops.roi_align(np.zeros((2, 3), np.float32), np.zeros((0, 5), np.float32), 2)


# -------------------------------------------------------------- autocast ----

@pytest.mark.parametrize("name", ["roi_align", "roi_warp", "roi_pool"])
@pytest.mark.parametrize("ac_dtype", HALF)
def test_autocast_roi_ops_run_in_float32_and_return_input_dtype(name, ac_dtype):
    f = RoI_OPS[name]
    x32, r32 = _feats(torch.float32), _rois(torch.float32)
    with torch.autocast("cpu", dtype=ac_dtype):
        a = f(x32, r32.to(ac_dtype))  # issue 8 reproducer: used to raise
        b = f(x32.to(ac_dtype), r32)
    assert a.dtype == torch.float32 and b.dtype == ac_dtype
    assert torch.equal(a, f(x32, r32.to(ac_dtype).float()))
    assert torch.equal(b, f(x32.to(ac_dtype).float(), r32).to(ac_dtype))
    # float64 is not autocast-eligible: left alone (mixed float64/float32 still raises)
    with torch.autocast("cpu", dtype=ac_dtype):
        c = f(x32.double(), r32.double())
    assert c.dtype == torch.float64


def test_autocast_matches_torchvision():
    tv = pytest.importorskip("torchvision")
    x32, r32 = _feats(torch.float32), _rois(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for xx, rr in ((x32, r32.bfloat16()), (x32.bfloat16(), r32), (x32.bfloat16(), r32.bfloat16())):
            got = ops.roi_align(xx, rr, 5, 0.25, 2, True)
            exp = tv.ops.roi_align(xx, rr, 5, 0.25, 2, True)
            assert got.dtype == exp.dtype
            torch.testing.assert_close(got.float(), exp.float(), rtol=1e-6, atol=1e-6)
        b, s = _boxes()
        assert torch.equal(ops.nms(b, s.bfloat16(), 0.5), tv.ops.nms(b, s.bfloat16(), 0.5))
        assert torch.equal(ops.nms(b.bfloat16(), s, 0.5), tv.ops.nms(b.bfloat16(), s, 0.5))
        idx = torch.arange(b.shape[0]) % 5
        # (torchvision's batched_nms adds class offsets to bfloat16 boxes in bfloat16,
        # which moves them; the native op runs per class on the float32-cast boxes)
        got = ops.batched_nms(b.bfloat16(), s, idx, 0.5)
    assert torch.equal(got, tv.ops.batched_nms(b.bfloat16().float(), s, idx, 0.5))


def test_autocast_gradients_flow_through_casts():
    x = _feats(torch.float32).requires_grad_(True)
    r = _rois(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = ops.roi_align(x.bfloat16(), r, 3, 0.25, 2)
    assert y.dtype == torch.bfloat16
    (g,) = torch.autograd.grad(y.float().sum(), x)
    xb = x.detach().bfloat16().float().requires_grad_(True)
    (g32,) = torch.autograd.grad(ops.roi_align(xb, r, 3, 0.25, 2).bfloat16().float().sum(), xb)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, g32.bfloat16().float(), rtol=0, atol=0)


def test_autocast_nms_box_iou_mixed():
    b, s = _boxes()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        keep = ops.nms(b, s.bfloat16(), 0.5)
        iou = ops.box_iou(b, b.bfloat16())
    assert torch.equal(keep, ops.nms(b, s.bfloat16().float(), 0.5))
    assert iou.dtype == torch.float32
    assert torch.equal(iou, ops.box_iou(b, b.bfloat16().float()))


# --------------------------------------------------------------- opcheck ----

@pytest.mark.parametrize("dtype", HALF)
def test_opcheck_half(dtype):
    x = _feats(dtype).requires_grad_(True)
    r = _rois(dtype)
    torch.library.opcheck(torch.ops.maskrcnn_native.roi_align.default, (x, r, 0.25, 3, 3, 2, True, False))
    torch.library.opcheck(torch.ops.maskrcnn_native.roi_pool.default, (x, r, 0.25, 3, 3))
    b, s = _boxes(50)
    torch.library.opcheck(torch.ops.maskrcnn_native.box_iou.default, (b.to(dtype), b[:9].to(dtype)))
