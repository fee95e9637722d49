"""paste_masks: against ops/reference.py always, against torchvision when it
imports; crops and RLE against the full bitmap; edge cases and every error."""

import numpy as np
import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native import _C
from maskrcnn_native.ops import MaskCrops, paste_masks
from maskrcnn_native.ops import reference as R

DTYPES = [torch.float32, torch.float64]
MODES = ["aligned", "torchvision"]
ATOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def random_case(n, m, h, w, dtype, seed, spread=1.4, margin=40.0, max_size=150.0, min_size=-5.0):
    """Boxes inside, straddling and outside the image, tiny, inverted and larger than it."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand((n, m, m), generator=g, dtype=dtype)
    xy = torch.rand((n, 2), generator=g, dtype=dtype) * torch.tensor([w, h], dtype=dtype) * spread - margin
    wh = torch.rand((n, 2), generator=g, dtype=dtype) * (max_size - min_size) + min_size
    boxes = torch.cat([xy, xy + wh], 1)
    return masks, boxes


def special_boxes(h, w, dtype):
    nan, inf = float("nan"), float("inf")
    rows = [
        [0, 0, w, h],  # whole image
        [-3 * w, -2 * h, 4 * w, 3 * h],  # larger than the image
        [2.3, 3.7, 2.9, 4.1],  # tiny
        [5, 5, 5, 9],  # zero width
        [9, 9, 4, 12],  # inverted
        [-50, -40, -10, -5],  # entirely above-left
        [w + 10, h + 3, w + 90, h + 50],  # entirely below-right
        [-10.5, 3.25, 7.75, h + 20],  # straddling
        [nan, 1, 10, 10],
        [1, 1, inf, 10],
        [-inf, -inf, inf, inf],
        [1e30, 1e30, 2e30, 2e30],
        [w - 1.2, h - 0.9, w - 0.4, h - 0.1],  # last pixel only
    ]
    return torch.tensor(rows, dtype=dtype)


def assert_bitmap_matches_probs(bitmap, probs, thr, tol):
    """bitmap == probs > thr except where probs is within tol of the threshold."""
    expected = probs > thr
    differ = bitmap != expected
    assert bool((differ & ((probs - thr).abs() > tol)).any()) is False


# ------------------------------------------------------------ reference ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_matches_reference_random(dtype, mode):
    masks, boxes = random_case(80, 28, 90, 130, dtype, seed=1)
    probs = paste_masks(masks, boxes, (90, 130), mode=mode, threshold=None)
    ref = R.paste_masks(masks, boxes, (90, 130), mode=mode, threshold=None)
    assert probs.dtype == dtype and probs.shape == (80, 90, 130)
    torch.testing.assert_close(probs, ref, atol=ATOL[dtype], rtol=0)
    assert (ref != 0).any()  # the case pastes something
    bitmap = paste_masks(masks, boxes, (90, 130), mode=mode, threshold=0.5)
    assert bitmap.dtype == torch.bool
    assert_bitmap_matches_probs(bitmap, ref, 0.5, ATOL[dtype])
    assert torch.equal(bitmap, probs > 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_matches_reference_special_boxes(dtype, mode):
    h, w = 37, 53
    boxes = special_boxes(h, w, dtype)
    masks = torch.rand((boxes.shape[0], 14, 14), generator=torch.Generator().manual_seed(2), dtype=dtype)
    probs = paste_masks(masks, boxes, (h, w), mode=mode, threshold=None)
    ref = R.paste_masks(masks, boxes, (h, w), mode=mode, threshold=None)
    torch.testing.assert_close(probs, ref, atol=ATOL[dtype], rtol=0)
    assert probs[0].abs().sum() > 0 and probs[1].abs().sum() > 0
    for k in (5, 6, 8, 9, 10):  # outside, NaN, inf: nothing pasted
        assert not probs[k].any()
    if mode == "aligned":
        for k in (3, 4):  # zero-size and inverted boxes: nothing pasted
            assert not probs[k].any()
        assert probs[1].min() > 0  # the big box covers every pixel centre
        assert probs[12, h - 1, w - 1] > 0 and probs[12].count_nonzero() == 1


@pytest.mark.parametrize("mode", MODES)
def test_mask_size_one_and_one_pixel_image(mode):
    masks = torch.tensor([[[0.75]], [[0.25]], [[0.9]]])
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [-2.0, -2.0, 3.0, 3.0], [0.6, 0.6, 0.9, 0.9]])
    probs = paste_masks(masks, boxes, (1, 1), mode=mode, threshold=None)
    ref = R.paste_masks(masks, boxes, (1, 1), mode=mode, threshold=None)
    torch.testing.assert_close(probs, ref, atol=1e-6, rtol=0)
    if mode == "aligned":
        # M = 1: the single cell's value everywhere inside the box; (0.6, 0.9) misses the centre.
        assert probs.flatten().tolist() == [0.75, 0.25, 0.0]
    assert paste_masks(masks, boxes, (1, 1), mode=mode).flatten().tolist() == (probs > 0.5).flatten().tolist()


def test_aligned_definition_by_hand():
    # M = 2 mask over box [0, 4): pixel centres 0.5..3.5 map to u = -0.25, 0.25, 0.75, 1.25,
    # clamped to 0, 0.25, 0.75, 1 -> values a, a + (b-a)/4, a + 3(b-a)/4, b.
    mask = torch.tensor([[[1.0, 3.0], [1.0, 3.0]]], dtype=torch.float64)
    box = torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float64)
    row = paste_masks(mask, box, (4, 6), threshold=None)[0, 0].tolist()
    assert row == [1.0, 1.5, 2.5, 3.0, 0.0, 0.0]
    # Half-open box: x2 = 3.5 excludes the pixel whose centre is 3.5.
    box = torch.tensor([[0.0, 0.0, 3.5, 4.0]], dtype=torch.float64)
    assert paste_masks(mask, box, (4, 6), threshold=None)[0, 0, 3].item() == 0.0


def test_threshold_values():
    masks, boxes = random_case(20, 28, 60, 70, torch.float32, seed=3)
    ref = R.paste_masks(masks, boxes, (60, 70), threshold=None)
    for thr in (0.0, 0.3, 0.9, 2):
        out = paste_masks(masks, boxes, (60, 70), threshold=thr)
        assert_bitmap_matches_probs(out, ref, thr, 1e-6)
    assert not paste_masks(masks, boxes, (60, 70), threshold=2).any()


# ---------------------------------------------------------- torchvision ----

@pytest.mark.parametrize("dtype", DTYPES)
def test_torchvision_mode_equals_torchvision(dtype):
    tv = pytest.importorskip("torchvision.models.detection.roi_heads")
    h, w = 100, 140
    masks, boxes = random_case(160, 28, h, w, dtype, seed=4, max_size=220.0)
    masks2, boxes2 = random_case(40, 7, h, w, dtype, seed=5, max_size=6.0, min_size=0.0)  # tiny boxes
    sb = special_boxes(h, w, dtype)[:8]  # torchvision cannot take non-finite boxes
    ms = torch.rand((sb.shape[0], 28, 28), dtype=dtype)
    compared = 0
    for m, b in ((masks, boxes), (masks2, boxes2), (ms, sb)):
        probs = paste_masks(m, b, (h, w), mode="torchvision", threshold=None)
        bitmap = paste_masks(m, b, (h, w), mode="torchvision")
        for i in range(m.shape[0]):
            try:
                ref = tv.paste_masks_in_image(m[i:i + 1, None], b[i:i + 1], (h, w), padding=1)[0, 0]
            except RuntimeError:  # torchvision's negative slicing for some boxes outside the image
                assert not probs[i].any()
                continue
            torch.testing.assert_close(probs[i], ref, atol=ATOL[dtype], rtol=0)
            assert_bitmap_matches_probs(bitmap[i], ref, 0.5, ATOL[dtype])
            compared += 1
    assert compared > 150


def test_torchvision_mode_batch_call_equals_torchvision():
    tv = pytest.importorskip("torchvision.models.detection.roi_heads")
    g = torch.Generator().manual_seed(6)
    masks = torch.rand((30, 28, 28), generator=g)
    xy = torch.rand((30, 2), generator=g) * 300
    boxes = torch.cat([xy, xy + 20 + torch.rand((30, 2), generator=g) * 400], 1)  # inside / straddling
    ref = tv.paste_masks_in_image(masks[:, None], boxes, (320, 400), padding=1)[:, 0]
    out = paste_masks(masks[:, None], boxes, (320, 400), mode="torchvision", threshold=None)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


# ---------------------------------------------------------- crops / RLE ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("threshold", [0.5, None])
def test_crops_equal_bitmap(dtype, mode, threshold):
    h, w = 70, 90
    masks, boxes = random_case(50, 28, h, w, dtype, seed=7)
    boxes = torch.cat([boxes, special_boxes(h, w, dtype)])
    masks = torch.cat([masks, torch.rand((13, 28, 28), dtype=dtype)])
    full = paste_masks(masks, boxes, (h, w), mode=mode, threshold=threshold)
    crops = paste_masks(masks, boxes, (h, w), mode=mode, threshold=threshold, output="crops")
    assert isinstance(crops, MaskCrops) and crops.image_size == (h, w)
    assert crops.offsets.dtype == torch.int64 and crops.offsets.shape == (63, 2)
    assert len(crops.masks) == 63
    assert crops.masks[0].dtype == full.dtype
    assert torch.equal(crops.to_bitmap(), full)
    for i, (crop, (x0, y0)) in enumerate(zip(crops.masks, crops.offsets.tolist())):
        ch, cw = crop.shape
        assert torch.equal(full[i, y0:y0 + ch, x0:x0 + cw], crop)
        outside = full[i].clone()
        outside[y0:y0 + ch, x0:x0 + cw] = 0
        assert not outside.any()  # nothing outside the crop
    assert tuple(crops.masks[58].shape) == (0, 0)  # an outside box: empty crop


def _coco_encode(bitmap):
    from pycocotools import mask as mask_util

    return mask_util.encode(np.asfortranarray(bitmap.numpy().transpose(1, 2, 0).astype(np.uint8)))


@pytest.mark.parametrize("mode", MODES)
def test_rle_equals_pycocotools(mode):
    pytest.importorskip("pycocotools")
    h, w = 64, 80
    masks, boxes = random_case(60, 28, h, w, torch.float32, seed=8)
    boxes = torch.cat([boxes, special_boxes(h, w, torch.float32)])
    masks = torch.cat([masks, torch.rand((13, 28, 28)), ])
    masks[0] = 1.0  # a solid mask: runs merge across columns when the crop spans the height
    boxes[0] = torch.tensor([-5.0, -5.0, 30.0, h + 5.0])
    masks[1] = 0.0  # an empty mask inside its box
    bitmap = paste_masks(masks, boxes, (h, w), mode=mode)
    rle = paste_masks(masks, boxes, (h, w), mode=mode, output="rle")
    assert rle == _coco_encode(bitmap)
    assert all(isinstance(r["counts"], bytes) for r in rle)


def test_rle_tiny_images_and_checkerboard():
    pytest.importorskip("pycocotools")
    # 1x1 image, pixel on and off.
    masks = torch.tensor([[[0.9]], [[0.1]]])
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    for mode in MODES:
        bitmap = paste_masks(masks, boxes, (1, 1), mode=mode)
        assert paste_masks(masks, boxes, (1, 1), mode=mode, output="rle") == _coco_encode(bitmap)
    # Checkerboard: a run per pixel, the capacity bound's worst case.
    cb = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    masks = cb[None].float()
    boxes = torch.tensor([[1.0, 2.0, 9.0, 10.0]])
    bitmap = paste_masks(masks, boxes, (12, 11))
    assert bitmap.sum() == 32
    assert paste_masks(masks, boxes, (12, 11), output="rle") == _coco_encode(bitmap)


# ------------------------------------------------------------------ misc ----

@pytest.mark.parametrize("output", ["bitmap", "crops", "rle"])
def test_empty_batch(output):
    masks = torch.zeros((0, 28, 28))
    boxes = torch.zeros((0, 4))
    out = paste_masks(masks, boxes, (5, 7), output=output)
    if output == "bitmap":
        assert out.shape == (0, 5, 7) and out.dtype == torch.bool
    elif output == "crops":
        assert out.masks == [] and out.offsets.shape == (0, 2)
        assert out.to_bitmap().shape == (0, 5, 7)
    else:
        assert out == []


@pytest.mark.parametrize("output", ["bitmap", "crops", "rle"])
def test_numpy_in_numpy_out(output):
    if output == "rle":
        pytest.importorskip("pycocotools")  # RLE encoding is pycocotools'; the torch-floor CI venv lacks it
    masks, boxes = random_case(15, 28, 40, 50, torch.float32, seed=9)
    t = paste_masks(masks, boxes, (40, 50), output=output)
    a = paste_masks(masks.numpy(), boxes.numpy(), (40, 50), output=output)
    if output == "bitmap":
        assert isinstance(a, np.ndarray) and a.dtype == np.bool_
        assert np.array_equal(a, t.numpy())
    elif output == "crops":
        assert isinstance(a.offsets, np.ndarray) and all(isinstance(c, np.ndarray) for c in a.masks)
        assert np.array_equal(a.offsets, t.offsets.numpy())
        assert np.array_equal(a.to_bitmap(), t.to_bitmap().numpy())
    else:
        assert a == t
    probs = paste_masks(masks.numpy(), boxes.numpy(), (40, 50), threshold=None)
    assert probs.dtype == np.float32
    assert np.array_equal(probs, paste_masks(masks, boxes, (40, 50), threshold=None).numpy())


def test_accepts_n1mm_masks_other_box_dtypes_and_noncontiguous():
    masks, boxes = random_case(12, 28, 40, 50, torch.float32, seed=10)
    ref = paste_masks(masks, boxes, (40, 50), threshold=None)
    assert torch.equal(paste_masks(masks[:, None], boxes, (40, 50), threshold=None), ref)
    assert torch.equal(paste_masks(masks.transpose(1, 2).contiguous().transpose(1, 2), boxes,
                                   (40, 50), threshold=None), ref)
    ib = boxes.round().to(torch.int64)
    assert torch.equal(paste_masks(masks, ib, (40, 50), threshold=None),
                       paste_masks(masks, ib.float(), (40, 50), threshold=None))
    assert torch.equal(paste_masks(masks, boxes.double(), (40, 50), threshold=None), ref)


def test_deterministic_across_thread_counts():
    masks, boxes = random_case(40, 28, 80, 90, torch.float32, seed=11)
    before = mn.get_num_threads()
    try:
        mn.set_num_threads(1)
        one = paste_masks(masks, boxes, (80, 90), threshold=None)
        mn.set_num_threads(3)
        three = paste_masks(masks, boxes, (80, 90), threshold=None)
    finally:
        mn.set_num_threads(before)
    assert torch.equal(one, three)
    assert torch.equal(one, paste_masks(masks, boxes, (80, 90), threshold=None))


def test_opcheck_and_compile():
    from maskrcnn_native.ops.paste import _paste_masks_op

    masks, boxes = random_case(6, 14, 20, 30, torch.float32, seed=12)
    for thr in (0.5, None):
        torch.library.opcheck(_paste_masks_op, (masks, boxes, 20, 30, "aligned", thr))

    def f(m, b):
        return paste_masks(m, b, (20, 30), mode="torchvision")

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    assert torch.equal(compiled(masks, boxes), f(masks, boxes))


# ---------------------------------------------------------------- errors ----

def _mb(n=3, m=28, dtype=torch.float32):
    return torch.rand((n, m, m), dtype=dtype), torch.rand((n, 4), dtype=dtype) * 10


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(masks=torch.rand(3, 28)), ValueError,
         r"paste_masks: masks must have shape \[N, M, M\] with M >= 1, got \[3, 28\]"),
        (dict(masks=torch.rand(3, 28, 27)), ValueError, r"masks must have shape \[N, M, M\].*got \[3, 28, 27\]"),
        (dict(masks=torch.rand(3, 0, 0)), ValueError, r"masks must have shape \[N, M, M\] with M >= 1, got \[3, 0, 0\]"),
        (dict(masks=torch.rand(3, 28, 28).to(torch.complex64)), TypeError,
         r"paste_masks: masks must be float16, bfloat16, float32 or float64, got complex64"),
        (dict(masks=torch.ones(3, 28, 28, dtype=torch.int32)), TypeError,
         r"masks must be float16, bfloat16, float32 or float64, got int32"),
        (dict(boxes=torch.rand(2, 4)), ValueError, r"paste_masks: boxes must have shape \[3, 4\] \(one box per mask\), got \[2, 4\]"),
        (dict(boxes=torch.rand(3, 5)), ValueError, r"boxes must have shape \[3, 4\].*got \[3, 5\]"),
        (dict(boxes=np.zeros((3, 4), np.float32)), TypeError, r"masks and boxes must both be NumPy arrays or both be tensors"),
        (dict(boxes=[[0, 0, 1, 1]] * 3), TypeError, r"masks and boxes must be tensors or NumPy arrays, got list"),
        (dict(image_size=5), ValueError, r"paste_masks: image_size must be a pair \(H, W\), got 5"),
        (dict(image_size=(5, 6, 7)), ValueError, r"image_size must be a pair"),
        (dict(image_size=(5.5, 6)), TypeError, r"paste_masks: image_size must hold two ints, got \(5.5, 6\)"),
        (dict(image_size=(0, 6)), ValueError, r"paste_masks: image_size must be two positive ints below 2\^31, got \(0, 6\)"),
        (dict(image_size=(5, -1)), ValueError, r"image_size must be two positive ints below 2\^31, got \(5, -1\)"),
        (dict(image_size=(-10**20, 4)), ValueError,
         r"image_size must be two positive ints below 2\^31, got \(-100000000000000000000, 4\)"),
        (dict(image_size=(2 ** 31, 6)), ValueError, r"image_size\[0\] = 2147483648 is over the limit of 65536 pixels"),
        (dict(threshold=-0.1), ValueError, r"paste_masks: threshold must be a finite number >= 0 \(or None\), got -0.1"),
        (dict(threshold=float("nan")), ValueError, r"threshold must be a finite number >= 0"),
        (dict(threshold=float("inf")), ValueError, r"threshold must be a finite number >= 0"),
        (dict(threshold="0.5"), TypeError, r"paste_masks: threshold must be a float or None, got str"),
        (dict(threshold=True), TypeError, r"threshold must be a float or None, got bool"),
        (dict(mode="bilinear"), ValueError, r"paste_masks: mode must be 'aligned' or 'torchvision', got 'bilinear'"),
        (dict(mode=1), TypeError, r"paste_masks: mode must be a str, got int"),
        (dict(output="png"), ValueError, r"paste_masks: output must be 'bitmap', 'crops' or 'rle', got 'png'"),
        (dict(output="rle", threshold=None), ValueError, r"paste_masks: output='rle' needs a threshold"),
    ],
)
@pytest.mark.parametrize("output", ["bitmap", "crops"])
def test_errors(kwargs, exc, msg, output):
    masks, boxes = _mb()
    args = dict(masks=masks, boxes=boxes, image_size=(20, 30), output=output)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        paste_masks(**args)


def test_errors_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    masks, boxes = _mb()
    with pytest.raises(ValueError, match=r"paste_masks: masks must be a CPU tensor"):
        paste_masks(masks.cuda(), boxes.cuda(), (20, 30))


def test_native_entry_point_errors():
    """The _C functions validate everything themselves (they can be called directly)."""
    masks, boxes = _mb()
    out = torch.empty((3, 20, 30), dtype=torch.bool)
    with pytest.raises(TypeError, match=r"paste_masks: output must be bool, got float32"):
        _C.paste_masks_forward(masks, boxes, torch.empty((3, 20, 30)), 20, 30, "aligned", 0.5)
    with pytest.raises(TypeError, match=r"paste_masks: output must have the same dtype as masks \(float32\), got bool"):
        _C.paste_masks_forward(masks, boxes, out, 20, 30, "aligned", None)
    with pytest.raises(ValueError, match=r"paste_masks: output must have shape \[N, H, W\], got \[3, 20, 31\]"):
        _C.paste_masks_forward(masks, boxes, torch.empty((3, 20, 31), dtype=torch.bool), 20, 30, "aligned", 0.5)
    with pytest.raises(ValueError, match=r"paste_masks: output must be contiguous"):
        _C.paste_masks_forward(masks, boxes, torch.empty((3, 30, 20), dtype=torch.bool).transpose(1, 2),
                               20, 30, "aligned", 0.5)
    ro = np.empty((3, 20, 30), dtype=np.bool_)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"paste_masks: output is read-only"):
        _C.paste_masks_forward(masks.numpy(), boxes.numpy(), ro, 20, 30, "aligned", 0.5)
    with pytest.raises(TypeError, match=r"paste_masks: boxes must have the same dtype as masks \(float32\), got float64"):
        _C.paste_masks_forward(masks, boxes.double(), out, 20, 30, "aligned", 0.5)
    with pytest.raises(ValueError, match=r"paste_masks: masks must be contiguous"):
        _C.paste_masks_forward(masks.transpose(1, 2), boxes, out, 20, 30, "aligned", 0.5)
    with pytest.raises(TypeError, match=r"paste_masks: threshold must be a float or None, got bool"):
        _C.paste_masks_forward(masks, boxes, out, 20, 30, "aligned", True)
    with pytest.raises(TypeError, match=r"paste_masks: masks must be a tensor or array supporting DLPack"):
        _C.paste_masks_forward([1, 2], boxes, out, 20, 30, "aligned", 0.5)

    rects = torch.empty((3, 4), dtype=torch.int64)
    _C.paste_masks_plan(masks, boxes, rects, 20, 30, "aligned")
    area = int(((rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])).sum())
    flat = torch.empty(area, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"paste_masks: rects must be int64, got int32"):
        _C.paste_masks_plan(masks, boxes, rects.int(), 20, 30, "aligned")
    with pytest.raises(ValueError, match=r"paste_masks: rects must have shape \[3, 4\], got \[2, 4\]"):
        _C.paste_masks_crops(masks, boxes, rects[:2], flat, 20, 30, "aligned", 0.5)
    bad = rects.clone()
    bad[1, 2] += 1
    with pytest.raises(ValueError, match=r"paste_masks: rects\[1\] = \(.*\) does not match the plan of boxes\[1\]"):
        _C.paste_masks_crops(masks, boxes, bad, flat, 20, 30, "aligned", 0.5)
    with pytest.raises(ValueError, match=r"paste_masks: output must have shape \[%d\] \(the sum of the crop areas\)" % area):
        _C.paste_masks_crops(masks, boxes, rects, torch.empty(area + 1, dtype=torch.bool), 20, 30, "aligned", 0.5)
    _C.paste_masks_crops(masks, boxes, rects, flat, 20, 30, "aligned", 0.5)

    caps = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1] + 1) + 2
    counts = torch.empty(int(caps.sum()), dtype=torch.int64)
    lengths = torch.empty(3, dtype=torch.int64)
    _C.paste_masks_rle_counts(flat, rects, counts, lengths, 20, 30)
    assert (lengths >= 1).all()
    assert (counts[: int(lengths[0])].sum() == 600).item()
    outside = rects.clone()
    outside[0] = torch.tensor([25, 0, 31, 5])
    with pytest.raises(ValueError, match=r"paste_masks: rects\[0\] = \(25, 0, 31, 5\) is not a rectangle inside the 20x30 image"):
        _C.paste_masks_rle_counts(flat, outside, counts, lengths, 20, 30)
    with pytest.raises(ValueError, match=r"paste_masks: counts must have shape \[\d+\] \(the sum of the run capacities"):
        _C.paste_masks_rle_counts(flat, rects, counts[:-1], lengths, 20, 30)
    with pytest.raises(TypeError, match=r"paste_masks: crops must be bool, got float32"):
        _C.paste_masks_rle_counts(flat.float(), rects, counts, lengths, 20, 30)
    with pytest.raises(ValueError, match=r"paste_masks: lengths must have shape \[3\] \(one per mask\), got \[2\]"):
        _C.paste_masks_rle_counts(flat, rects, counts, lengths[:2], 20, 30)
    with pytest.raises(ValueError, match=r"paste_masks: COCO RLE needs H \* W < 2\^32"):
        _C.paste_masks_rle_counts(flat, rects, counts, lengths, 70000, 70000)


def test_native_crops_total_overflow_is_an_error():
    big = 2 ** 31 - 1
    masks = torch.ones((3, 1, 1), dtype=torch.float64)
    boxes = torch.tensor([[-1.0, -1.0, 3e9, 3e9]] * 3, dtype=torch.float64)
    rects = torch.empty((3, 4), dtype=torch.int64)
    _C.paste_masks_plan(masks, boxes, rects, big, big, "aligned")
    assert rects.tolist() == [[0, 0, big, big]] * 3
    with pytest.raises(ValueError, match=r"paste_masks: the sum of the crop areas exceeds 2\^63 elements"):
        _C.paste_masks_crops(masks, boxes, rects, torch.empty(1, dtype=torch.bool), big, big, "aligned", 0.5)
