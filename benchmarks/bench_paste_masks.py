"""Paste workload W7: 100 masks of 28x28 float32 probabilities into an
800x1216 image, boxes random inside the image with sides of 20-400 px.

Run:  python -m pytest benchmarks/bench_paste_masks.py --benchmark-only -q \
          --benchmark-columns=median --benchmark-group-by=group

Every group holds the same torchvision baseline,
``paste_masks_in_image(masks[:, None], boxes, (800, 1216), padding=1) > 0.5``
(bool [100, 1, 800, 1216]), so ratios are read within one run:
* "W7 bitmap": ``paste_masks(..., output="bitmap")`` (bool [100, 800, 1216],
  zero fill included) in both modes;
* "W7 crops": ``output="crops"`` (box-local bool crops + offsets) in both modes;
* "W7 rle": ``output="rle"`` (COCO RLE of the full masks, via the crops).
Every benchmark checks what it times: torchvision mode against torchvision's
bitmap, aligned mode against ops/reference.py, crops and RLE against the bitmap.
"""

import numpy as np
import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.ops import reference as R

tvrh = pytest.importorskip("torchvision.models.detection.roi_heads")

N, M, H, W = 100, 28, 800, 1216


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand((N, M, M), generator=g)
    wh = 20 + torch.rand((N, 2), generator=g) * 380
    xy = torch.rand((N, 2), generator=g) * (torch.tensor([W, H]) - wh)
    boxes = torch.cat([xy, xy + wh], 1)
    tv_bitmap = tvrh.paste_masks_in_image(masks[:, None], boxes, (H, W), padding=1)[:, 0] > 0.5
    aligned = R.paste_masks(masks, boxes, (H, W), mode="aligned", threshold=None)
    return masks, boxes, tv_bitmap, aligned


def torchvision_baseline(masks, boxes):
    return tvrh.paste_masks_in_image(masks[:, None], boxes, (H, W), padding=1) > 0.5


def check_bitmap(out, mode, case):
    _, _, tv_bitmap, aligned = case
    assert out.shape == (N, H, W) and out.dtype == torch.bool
    if mode == "torchvision":
        assert torch.equal(out, tv_bitmap)
    else:  # equal to the reference except for values within rounding of the threshold
        assert not ((out != (aligned > 0.5)) & ((aligned - 0.5).abs() > 1e-6)).any()


@pytest.mark.parametrize("impl", ["torchvision", "native_torchvision", "native_aligned"])
def test_w7_bitmap(benchmark, case, impl):
    masks, boxes, tv_bitmap, _ = case
    benchmark.group = "W7 bitmap: paste 100 28x28 masks into 800x1216, bool"
    if impl == "torchvision":
        out = benchmark(torchvision_baseline, masks, boxes)
        assert torch.equal(out[:, 0], tv_bitmap)
        return
    mode = impl.split("_", 1)[1]
    out = benchmark(mn.ops.paste_masks, masks, boxes, (H, W), mode=mode)
    check_bitmap(out, mode, case)


@pytest.mark.parametrize("impl", ["torchvision", "native_torchvision", "native_aligned"])
def test_w7_crops(benchmark, case, impl):
    masks, boxes, tv_bitmap, _ = case
    benchmark.group = "W7 crops: paste 100 28x28 masks into 800x1216, box-local bool crops"
    if impl == "torchvision":
        out = benchmark(torchvision_baseline, masks, boxes)
        assert torch.equal(out[:, 0], tv_bitmap)
        return
    mode = impl.split("_", 1)[1]
    crops = benchmark(mn.ops.paste_masks, masks, boxes, (H, W), mode=mode, output="crops")
    check_bitmap(crops.to_bitmap(), mode, case)


@pytest.mark.parametrize("impl", ["torchvision", "native_torchvision"])
def test_w7_rle(benchmark, case, impl):
    from pycocotools import mask as mask_util

    masks, boxes, tv_bitmap, _ = case
    benchmark.group = "W7 rle: paste 100 28x28 masks into 800x1216, COCO RLE"
    if impl == "torchvision":
        out = benchmark(torchvision_baseline, masks, boxes)
        assert torch.equal(out[:, 0], tv_bitmap)
        return
    rle = benchmark(mn.ops.paste_masks, masks, boxes, (H, W), mode="torchvision", output="rle")
    expected = mask_util.encode(np.asfortranarray(tv_bitmap.numpy().transpose(1, 2, 0).astype(np.uint8)))
    assert rle == expected
