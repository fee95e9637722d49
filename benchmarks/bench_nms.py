"""NMS workloads W4, W5 (nms) and W6 (batched_nms) against torchvision.

Run:  python -m pytest benchmarks/bench_nms.py --benchmark-only \
          --benchmark-columns=median,iqr,rounds --benchmark-group-by=group
Each group holds our op and torchvision's on the same inputs; the ratio of
medians is the reported figure. Every benchmark checks that what it timed
equals torchvision's answer (keep lists are identical by construction).

Boxes: K boxes of side 16..400 px (aspect 0.5..1.5) anywhere on an 800x1216
image, uniform random scores (the shape of RPN proposals before NMS).
W6 compares with torchvision.ops.batched_nms, which for this size takes its
per-class path (_batched_nms_vanilla: one nms call per class from Python).
"""

import pytest
import torch

import maskrcnn_native as mn

tv = pytest.importorskip("torchvision")


def random_boxes(k, seed=0, H=800, W=1216, lo=16, hi=400):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(k, generator=g) * (hi - lo) + lo
    ar = torch.rand(k, generator=g) + 0.5
    w, h = s * ar.sqrt(), s / ar.sqrt()
    cx, cy = torch.rand(k, generator=g) * W, torch.rand(k, generator=g) * H
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    return boxes, torch.rand(k, generator=g)


NMS = {"native": mn.ops.nms, "torchvision": tv.ops.nms}
BATCHED = {"native": mn.ops.batched_nms, "torchvision": tv.ops.batched_nms}


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,k", [("W4", 4000), ("W5", 12000)])
def test_nms(benchmark, impl, wid, k):
    benchmark.group = f"{wid} nms {k} random boxes, IoU 0.7"
    boxes, scores = random_boxes(k, seed=k)
    keep = benchmark(NMS[impl], boxes, scores, 0.7)
    assert torch.equal(keep, tv.ops.nms(boxes, scores, 0.7))


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_w6_batched_nms(benchmark, impl):
    benchmark.group = "W6 batched_nms 8000 boxes, 80 classes, IoU 0.5"
    boxes, scores = random_boxes(8000, seed=6)
    idxs = torch.randint(0, 80, (8000,), generator=torch.Generator().manual_seed(60))
    keep = benchmark(BATCHED[impl], boxes, scores, idxs, 0.5)
    exp = tv.ops.batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(keep.sort().values, exp.sort().values)
    assert torch.equal(scores[keep], scores[exp])  # same order (scores are distinct)
