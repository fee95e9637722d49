"""nms / batched_nms / box_iou against ops.reference and torchvision."""

import math

import numpy as np
import pytest
import torch

from maskrcnn_native import ops
from maskrcnn_native.ops import reference as ref

DTYPES = [torch.float32, torch.float64]


def random_boxes(n, gen, dtype=torch.float32, kind="float"):
    """Boxes in an 800 x 1216 image. kind="int": integer corners on a coarse
    lattice, so exact IoU ties with common thresholds (1/2, 1/3, ...) happen."""
    if kind == "int":
        xy = torch.randint(0, 40, (n, 2), generator=gen).to(dtype) * 4
        wh = torch.randint(1, 12, (n, 2), generator=gen).to(dtype) * 4
    else:
        xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * torch.tensor([1216.0, 800.0], dtype=torch.float64)
        wh = 8 + torch.rand(n, 2, generator=gen, dtype=torch.float64) * 200
    return torch.cat([xy, xy + wh], 1).to(dtype)


def random_case(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(0, 400, (1,), generator=g))
    kind = "int" if seed % 2 else "float"
    boxes = random_boxes(n, g, dtype, kind)
    if seed % 3 == 0:
        scores = (torch.rand(n, generator=g) * 4).round().to(dtype) / 4  # many ties
    else:
        scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype)
    if n > 4 and seed % 4 == 0:  # exact duplicates (same box, same score)
        boxes[n // 2] = boxes[0]
        scores[n // 2] = scores[0]
        boxes[n // 3] = boxes[1]
    if n > 6 and seed % 5 == 0:  # zero-area and inverted boxes
        boxes[2, 2] = boxes[2, 0]
        boxes[3, 3] = boxes[3, 1] - 5
        boxes[4] = boxes[4, [2, 3, 0, 1]]
    thr = [0.5, 0.7, 1.0 / 3.0, 0.0, 0.3, 0.9, 0.25][seed % 7]
    return boxes, scores, thr


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_matches_reference_random(dtype):
    for seed in range(40):
        boxes, scores, thr = random_case(seed, dtype)
        if boxes.shape[0] > 150:
            boxes, scores = boxes[:150], scores[:150]
        got = ops.nms(boxes, scores, thr)
        assert got.dtype == torch.int64
        assert torch.equal(got, ref.nms(boxes, scores, thr)), (seed, thr)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_matches_torchvision_random(dtype):
    tv = pytest.importorskip("torchvision")
    for seed in range(300):
        boxes, scores, thr = random_case(seed, dtype)
        assert torch.equal(ops.nms(boxes, scores, thr), tv.ops.nms(boxes, scores, thr)), (seed, thr)


def test_nms_large_matches_torchvision():
    tv = pytest.importorskip("torchvision")
    g = torch.Generator().manual_seed(7)
    for n, thr in [(3000, 0.7), (2000, 0.5), (1500, 0.3)]:
        boxes = random_boxes(n, g)
        scores = torch.rand(n, generator=g)
        keep = ops.nms(boxes, scores, thr)
        assert 0 < keep.numel() < n
        assert torch.equal(keep, tv.ops.nms(boxes, scores, thr))


def test_nms_threshold_rounding_is_compared_in_double():
    # IoU of these boxes is exactly representable as the float 0.5 + 2^-24 etc.;
    # a threshold between two floats must be compared in double like torchvision.
    tv = pytest.importorskip("torchvision")
    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(300, g, kind="int")
    scores = torch.rand(300, generator=g)
    ious = ref.box_iou(boxes, boxes).flatten()
    ious = ious[(ious > 0) & (ious < 1)]
    vals = torch.unique(ious)[:40]
    assert vals.numel() > 5
    for v in vals.tolist():
        for t in (v, math.nextafter(v, 0.0), math.nextafter(v, 1.0), float(np.float32(v)) - 1e-12):
            assert torch.equal(ops.nms(boxes, scores, t), tv.ops.nms(boxes, scores, t)), t
            assert torch.equal(ops.nms(boxes, scores, t), ref.nms(boxes, scores, t)), t


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_nan_scores_rank_first_like_torch_sort(dtype):
    g = torch.Generator().manual_seed(0)
    boxes = random_boxes(60, g, dtype, kind="int")
    scores = torch.rand(60, generator=g, dtype=torch.float64).to(dtype)
    scores[[5, 17, 40]] = float("nan")
    scores[[6, 7]] = float("inf")
    scores[8] = -float("inf")
    scores[9], scores[10] = -0.0, 0.0
    keep = ops.nms(boxes, scores, 0.5)
    assert keep[:3].tolist() == [5, 17, 40]  # NaN first, in input order (never suppressed)
    assert torch.equal(keep, ref.nms(boxes, scores, 0.5))
    tv = pytest.importorskip("torchvision")
    assert torch.equal(keep, tv.ops.nms(boxes, scores, 0.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_non_finite_coordinates_and_thresholds(dtype):
    tv = pytest.importorskip("torchvision")
    g = torch.Generator().manual_seed(1)
    boxes = random_boxes(80, g, dtype, kind="int")
    scores = torch.rand(80, generator=g, dtype=torch.float64).to(dtype)
    boxes[3, 0] = float("nan")
    boxes[4, 2] = float("inf")
    boxes[5, 1] = -float("inf")
    boxes[6] = float("nan")
    boxes[7] = boxes[8]
    boxes[7, 2] = float("inf")
    for thr in [0.5, 0.0, -0.0, -0.1, 1.0, 1.5, float("nan"), float("inf"), -float("inf"), 1e300, -1e300]:
        got = ops.nms(boxes, scores, thr)
        assert torch.equal(got, tv.ops.nms(boxes, scores, thr)), thr
        assert torch.equal(got, ref.nms(boxes, scores, thr)), thr


def test_nms_edge_cases():
    empty = ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.int64
    one = ops.nms(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.3]), 0.5)
    assert one.tolist() == [0]
    # identical boxes with equal scores: the first in input order survives
    b = torch.tensor([[0.0, 0, 10, 10]] * 5)
    assert ops.nms(b, torch.ones(5), 0.5).tolist() == [0]
    # IoU exactly 0.5 is not > 0.5: both kept
    b = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 5]])
    assert ops.nms(b, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert ops.nms(b, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]
    # zero-area boxes never suppress each other
    z = torch.tensor([[5.0, 5, 5, 5]] * 3)
    assert ops.nms(z, torch.tensor([0.1, 0.3, 0.2]), 0.0).tolist() == [1, 2, 0]


def test_nms_non_contiguous_and_numpy():
    g = torch.Generator().manual_seed(2)
    boxes = random_boxes(200, g)
    scores = torch.rand(200, generator=g)
    expected = ref.nms(boxes, scores, 0.5)
    wide = torch.zeros(200, 8)
    wide[:, ::2] = boxes
    assert torch.equal(ops.nms(wide[:, ::2], torch.stack([scores, scores], 1)[:, 0], 0.5), expected)
    got = ops.nms(boxes.numpy(), scores.numpy(), 0.5)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    np.testing.assert_array_equal(got, expected.numpy())


def test_nms_errors():
    b = torch.zeros(3, 4)
    s = torch.zeros(3)
    with pytest.raises(ValueError, match=r"nms: boxes must have shape \[N, 4\], got \[3, 5\]"):
        ops.nms(torch.zeros(3, 5), s, 0.5)
    with pytest.raises(ValueError, match=r"nms: boxes must have shape \[N, 4\], got \[12\]"):
        ops.nms(torch.zeros(12), s, 0.5)
    with pytest.raises(ValueError, match=r"nms: scores must have shape \[N\] with N = 3 \(boxes.shape\[0\]\), got \[4\]"):
        ops.nms(b, torch.zeros(4), 0.5)
    with pytest.raises(ValueError, match=r"nms: scores must have shape \[N\] with N = 3 \(boxes.shape\[0\]\), got \[3, 1\]"):
        ops.nms(b, torch.zeros(3, 1), 0.5)
    with pytest.raises(TypeError, match=r"nms: boxes must be float16, bfloat16, float32 or float64, got int64"):
        ops.nms(torch.zeros(3, 4, dtype=torch.int64), s, 0.5)
    with pytest.raises(TypeError, match=r"nms: scores must have the same dtype as boxes \(float16\), got float32"):
        ops.nms(b.half(), s, 0.5)
    with pytest.raises(TypeError, match=r"nms: scores must have the same dtype as boxes \(float32\), got float64"):
        ops.nms(b, s.double(), 0.5)
    with pytest.raises(TypeError, match=r"nms: inputs must all be NumPy arrays or all be tensors"):
        ops.nms(b.numpy(), s, 0.5)
    with pytest.raises(TypeError, match=r"nms: expected a Tensor or a NumPy array, got list"):
        ops.nms([[0, 0, 1, 1]], s, 0.5)
    with pytest.raises(ValueError, match=r"nms: boxes must have shape \[N, 4\], got \[3, 5\]"):
        ops.nms(np.zeros((3, 5), np.float32), np.zeros(3, np.float32), 0.5)


def test_native_keep_buffer_errors():
    from maskrcnn_native import _C

    b, s = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(TypeError, match=r"nms: keep must be int64, got int32"):
        _C.nms(b, s, 0.5, torch.empty(3, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"nms: keep must have shape \[N\] with N = 3 \(boxes.shape\[0\]\), got \[2\]"):
        _C.nms(b, s, 0.5, torch.empty(2, dtype=torch.int64))
    ro = np.empty(3, dtype=np.int64)
    ro.flags.writeable = False
    with pytest.raises((ValueError, BufferError), match=r"read-only|readonly|writable"):
        _C.nms(b.numpy(), s.numpy(), 0.5, ro)
    with pytest.raises(ValueError, match=r"nms: scores must be contiguous"):
        _C.nms(b, torch.zeros(3, 2)[:, 0], 0.5, torch.empty(3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"batched_nms: keep must be int64, got float32"):
        _C.batched_nms(b, s, torch.zeros(3, dtype=torch.int64), 0.5, torch.empty(3))


# ------------------------------------------------------------- batched_nms ----

def batched_case(seed, dtype, n_classes):
    g = torch.Generator().manual_seed(1000 + seed)
    n = int(torch.randint(0, 500, (1,), generator=g))
    boxes = random_boxes(n, g, dtype, "int" if seed % 2 else "float")
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype)
    if seed % 3 == 0:
        scores = (scores * 8).round() / 8
    idxs = torch.randint(0, n_classes, (n,), generator=g)
    return boxes, scores, idxs


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_nms_matches_reference(dtype):
    for seed in range(20):
        boxes, scores, idxs = batched_case(seed, dtype, [1, 3, 20][seed % 3])
        boxes, scores, idxs = boxes[:200], scores[:200], idxs[:200]
        thr = [0.5, 0.3, 0.7][seed % 3]
        got = ops.batched_nms(boxes, scores, idxs, thr)
        assert torch.equal(got, ref.batched_nms(boxes, scores, idxs, thr)), seed


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_nms_matches_torchvision(dtype):
    tv = pytest.importorskip("torchvision")
    for seed in range(60):
        boxes, scores, idxs = batched_case(seed, dtype, [2, 10, 80][seed % 3])
        thr = [0.5, 0.3, 0.7][seed % 3]
        got = ops.batched_nms(boxes, scores, idxs, thr)
        exp = tv.ops.batched_nms(boxes, scores, idxs, thr)
        # Same kept set; torchvision's final sort is not stable, so compare
        # the order through the scores and the set through sorting.
        assert torch.equal(torch.sort(got).values, torch.sort(exp).values), seed
        assert torch.equal(scores[got], scores[exp]), seed
        # Same as torchvision's nms run per class and merged stably.
        merged = torch.zeros(boxes.shape[0], dtype=torch.bool)
        for c in torch.unique(idxs).tolist():
            m = torch.nonzero(idxs == c).flatten()
            merged[m[tv.ops.nms(boxes[m], scores[m], thr)]] = True
        k = torch.nonzero(merged).flatten()
        assert torch.equal(got, k[torch.sort(scores[k], descending=True, stable=True).indices]), seed


def test_batched_nms_category_values_and_dtypes():
    g = torch.Generator().manual_seed(5)
    boxes = random_boxes(300, g, kind="int")
    scores = torch.rand(300, generator=g)
    idxs = torch.randint(0, 4, (300,), generator=g)
    expected = ref.batched_nms(boxes, scores, idxs, 0.4)
    # sparse / huge / negative category values take the sort-based grouping
    for mapped in (idxs * 10**15 - 7, -idxs, idxs.to(torch.int32), idxs.to(torch.uint8), idxs * 3 + 2**40):
        assert torch.equal(ops.batched_nms(boxes, scores, mapped, 0.4), expected)
    # a single category is plain nms
    assert torch.equal(ops.batched_nms(boxes, scores, torch.zeros(300, dtype=torch.int64), 0.4),
                       ops.nms(boxes, scores, 0.4))
    got = ops.batched_nms(boxes.numpy(), scores.numpy(), idxs.numpy(), 0.4)
    np.testing.assert_array_equal(got, expected.numpy())
    e = ops.batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert e.shape == (0,) and e.dtype == torch.int64


def test_batched_nms_nan_scores():
    g = torch.Generator().manual_seed(9)
    boxes = random_boxes(100, g, kind="int")
    scores = torch.rand(100, generator=g)
    scores[[3, 50]] = float("nan")
    idxs = torch.randint(0, 3, (100,), generator=g)
    got = ops.batched_nms(boxes, scores, idxs, 0.5)
    assert got[:2].tolist() == [3, 50]
    assert torch.equal(got, ref.batched_nms(boxes, scores, idxs, 0.5))


def test_batched_nms_errors():
    b, s = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(TypeError, match=r"batched_nms: idxs must be uint8, int8, int16, int32 or int64, got float32"):
        ops.batched_nms(b, s, torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"batched_nms: idxs must have shape \[N\] with N = 3 \(boxes.shape\[0\]\), got \[2\]"):
        ops.batched_nms(b, s, torch.zeros(2, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match=r"batched_nms: boxes must have shape \[N, 4\], got \[3, 3\]"):
        ops.batched_nms(torch.zeros(3, 3), s, torch.zeros(3, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match=r"batched_nms: scores must have the same dtype as boxes \(float64\), got float32"):
        ops.batched_nms(b.double(), s, torch.zeros(3, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match=r"batched_nms: inputs must all be NumPy arrays or all be tensors"):
        ops.batched_nms(b, s, np.zeros(3, np.int64), 0.5)


# ----------------------------------------------------------------- box_iou ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_box_iou(dtype):
    g = torch.Generator().manual_seed(4)
    a = random_boxes(37, g, dtype, kind="int")
    b = random_boxes(50, g, dtype)
    a[0, 0] = float("nan")
    a[1] = a[1, [2, 3, 0, 1]]
    b[2, 2] = b[2, 0]
    got = ops.box_iou(a, b)
    assert got.shape == (37, 50) and got.dtype == dtype
    torch.testing.assert_close(got, ref.box_iou(a, b), rtol=0, atol=0, equal_nan=True)
    tv = pytest.importorskip("torchvision")
    torch.testing.assert_close(got, tv.ops.box_iou(a, b), rtol=0, atol=0, equal_nan=True)
    np.testing.assert_array_equal(ops.box_iou(a.numpy(), b.numpy()), got.numpy())
    assert ops.box_iou(a[:0], b).shape == (0, 50)
    assert ops.box_iou(a, b[:0]).shape == (37, 0)


def test_box_iou_errors():
    with pytest.raises(ValueError, match=r"box_iou: boxes2 must have shape \[M, 4\], got \[2, 5\]"):
        ops.box_iou(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"box_iou: boxes1 must have shape \[N, 4\], got \[4\]"):
        ops.box_iou(torch.zeros(4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"box_iou: boxes2 must have shape \[M, 4\], got \[2, 5\]"):
        ops.box_iou(torch.zeros(3, 4, dtype=torch.int32), torch.zeros(2, 5, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"box_iou: boxes1 must be float16, bfloat16, float32, float64, uint8, "
                                        r"int8, int16, int32 or int64, got bool"):
        ops.box_iou(torch.zeros(3, 4, dtype=torch.bool), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"box_iou: boxes2 must be .* got complex64"):
        ops.box_iou(torch.zeros(3, 4), torch.zeros(2, 4, dtype=torch.complex64))


# ------------------------------------------------ torch.library integration ----

def test_opcheck():
    g = torch.Generator().manual_seed(11)
    boxes = random_boxes(64, g, kind="int")
    scores = torch.rand(64, generator=g)
    idxs = torch.randint(0, 3, (64,), generator=g)
    torch.library.opcheck(torch.ops.maskrcnn_native.nms.default, (boxes, scores, 0.5))
    torch.library.opcheck(torch.ops.maskrcnn_native.batched_nms.default, (boxes, scores, idxs, 0.5))
    torch.library.opcheck(torch.ops.maskrcnn_native.box_iou.default, (boxes, boxes[:10]))


def test_torch_compile_fullgraph():
    g = torch.Generator().manual_seed(12)
    boxes = random_boxes(120, g, kind="int")
    scores = torch.rand(120, generator=g)

    def f(b, s):
        keep = ops.nms(b, s, 0.5)
        return b[keep] * 2, s[keep].sum()

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got_b, got_s = compiled(boxes, scores)
    exp_b, exp_s = f(boxes, scores)
    assert torch.equal(got_b, exp_b) and torch.equal(got_s, exp_s)
    assert got_b.shape[0] < 120
