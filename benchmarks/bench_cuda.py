"""CUDA workloads W1-W8 (benchmarks/README.md) and the R50-FPN model, ours vs
torchvision's CUDA kernels in the same group, on one GPU. Skipped without a
GPU (or without torchvision CUDA kernels).

Run:  python -m pytest benchmarks/bench_cuda.py --benchmark-only \
          --benchmark-columns=median,iqr,rounds --benchmark-group-by=group
Every timed call ends with torch.cuda.synchronize(), so the medians are the
GPU work, not the launch; every benchmark first checks the two sides agree.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

import maskrcnn_native as mn

tv = pytest.importorskip("torchvision")
if not (mn.cuda_available() and torch.cuda.is_available()):
    pytest.skip("needs CUDA kernels in the build and a visible GPU", allow_module_level=True)

sys.path.insert(0, os.path.dirname(__file__))
from bench_nms import NMS, random_boxes  # noqa: E402
from bench_roi_align import feature, fpn_rois  # noqa: E402

DEV = "cuda"
tvrh = pytest.importorskip("torchvision.models.detection.roi_heads")


def synced(fn):
    def run(*a, **k):
        out = fn(*a, **k)
        torch.cuda.synchronize()
        return out
    return run


def _tv_has_cuda():
    try:
        tv.ops.nms(torch.zeros(1, 4, device=DEV), torch.zeros(1, device=DEV), 0.5)
        return True
    except (RuntimeError, NotImplementedError):
        return False


if not _tv_has_cuda():
    pytest.skip("torchvision has no CUDA kernels here", allow_module_level=True)

ROI = {"native": mn.ops.roi_align, "torchvision": tv.ops.roi_align}


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,layout", [("W1", "cl"), ("W1n", "nchw")])
def test_w1_cuda(benchmark, impl, wid, layout):
    benchmark.group = f"CUDA {wid} roi_align fwd 1x256x200x304 {layout}, 1000 RoIs, 7x7, sr=2"
    x, rois = feature(1, layout).to(DEV), fpn_rois(1000, 1).to(DEV)
    out = benchmark(synced(ROI[impl]), x, rois, (7, 7), 0.25, 2, False)
    torch.testing.assert_close(out, tv.ops.roi_align(x, rois, (7, 7), 0.25, 2, False), atol=1e-5, rtol=0)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_w2_cuda(benchmark, impl):
    benchmark.group = "CUDA W2 roi_align fwd 1x256x200x304 cl, 100 RoIs, 14x14, sr=2"
    x, rois = feature(1, "cl").to(DEV), fpn_rois(100, 1, seed=2).to(DEV)
    out = benchmark(synced(ROI[impl]), x, rois, (14, 14), 0.25, 2, False)
    torch.testing.assert_close(out, tv.ops.roi_align(x, rois, (14, 14), 0.25, 2, False), atol=1e-5, rtol=0)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,layout", [("W3", "cl"), ("W3n", "nchw")])
def test_w3_cuda(benchmark, impl, wid, layout):
    benchmark.group = f"CUDA {wid} roi_align fwd+bwd 2x256x200x304 {layout}, 1024 RoIs, 7x7 (ours deterministic)"
    x = feature(2, layout, seed=3).to(DEV)
    rois = fpn_rois(1024, 2, seed=3).to(DEV)
    gy = torch.randn(1024, 256, 7, 7, generator=torch.Generator().manual_seed(4)).to(DEV)
    fn = ROI[impl]

    def step():
        xi = x.detach().requires_grad_()
        fn(xi, rois, (7, 7), 0.25, 2, False).backward(gy)
        return xi.grad

    g = benchmark(synced(step))
    xr = x.detach().requires_grad_()
    tv.ops.roi_align(xr, rois, (7, 7), 0.25, 2, False).backward(gy)
    torch.testing.assert_close(g, xr.grad, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,k", [("W4", 4000), ("W5", 12000)])
def test_w4_w5_cuda(benchmark, impl, wid, k):
    benchmark.group = f"CUDA {wid} nms {k} random boxes, IoU 0.7"
    b, s = random_boxes(k)
    b, s = b.to(DEV), s.to(DEV)
    keep = benchmark(synced(NMS[impl]), b, s, 0.7)
    assert torch.equal(keep, tv.ops.nms(b, s, 0.7))


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_w6_cuda(benchmark, impl):
    benchmark.group = "CUDA W6 batched_nms 8000 boxes, 80 classes, IoU 0.5"
    b, s = random_boxes(8000, seed=5)
    idx = torch.randint(0, 80, (8000,), generator=torch.Generator().manual_seed(6))
    b, s, idx = b.to(DEV), s.to(DEV), idx.to(DEV)
    fn = mn.ops.batched_nms if impl == "native" else tv.ops.batched_nms
    keep = benchmark(synced(fn), b, s, idx, 0.5)
    assert torch.equal(keep, tv.ops.batched_nms(b, s, idx, 0.5))


def _paste_case():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand((100, 28, 28), generator=g)
    wh = 20 + torch.rand((100, 2), generator=g) * 380
    xy = torch.rand((100, 2), generator=g) * (torch.tensor([1216, 800]) - wh)
    return masks.to(DEV), torch.cat([xy, xy + wh], 1).to(DEV)


@pytest.mark.parametrize("impl", ["torchvision", "native_torchvision", "native_aligned", "native_crops"])
def test_w7_cuda(benchmark, impl):
    benchmark.group = "CUDA W7 paste 100 28x28 masks into 800x1216, bool"
    masks, boxes = _paste_case()
    ref = tvrh.paste_masks_in_image(masks[:, None], boxes, (800, 1216), padding=1)[:, 0] > 0.5
    if impl == "torchvision":
        out = benchmark(synced(lambda: tvrh.paste_masks_in_image(masks[:, None], boxes, (800, 1216), padding=1) > 0.5))
        assert torch.equal(out[:, 0], ref)
    elif impl == "native_crops":
        c = benchmark(synced(lambda: mn.ops.paste_masks(masks, boxes, (800, 1216), output="crops")))
        assert len(c.masks) == 100
    else:
        mode = impl.split("_")[1]
        out = benchmark(synced(lambda: mn.ops.paste_masks(masks, boxes, (800, 1216), mode=mode)))
        if mode == "torchvision":  # within float rounding of torch's CUDA resize at the threshold
            assert (out != ref).float().mean() < 1e-4


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_w8_cuda(benchmark, impl):
    benchmark.group = "CUDA W8 anchors, 5 FPN levels of 800x1216, 3 ratios"
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes, ratios = ((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5
    grids = [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]
    strides = [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    if impl == "native":
        cells = [mn.ops.cell_anchors(s, r).to(DEV) for s, r in zip(sizes, ratios)]
        out = benchmark(synced(lambda: mn.ops.multilevel_grid_anchors(cells, grids, strides)))
    else:
        gen = AnchorGenerator(sizes, ratios)
        gen.set_cell_anchors(torch.float32, torch.device(DEV))
        st = [[torch.tensor(a, device=DEV), torch.tensor(b, device=DEV)] for a, b in strides]
        out = torch.cat(benchmark(synced(lambda: gen.grid_anchors(grids, st))))
    assert out.shape == (sum(h * w * 3 for h, w in grids), 4)


# ----------------------------------------------------------- R50-FPN model ----
# bench_model.py's M1 / M2 on the GPU: same weights on both sides.

@pytest.fixture(scope="module")
def cuda_models():
    import bench_model as bm

    torch.manual_seed(0)
    tvm = bm.tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
    bm.randomize_(tvm, seed=10).eval()
    ours = mn.Model.from_torchvision(tvm.state_dict(), score_threshold=0.0).to(DEV)
    tvm = tvm.to(DEV)
    img = bm.make_images([(bm.H, bm.W)], seed=12)[0].to(DEV)
    with torch.inference_mode():
        ref = tvm([img])[0]
    dets = ours.predict([img], paste="torchvision")[0]
    assert len(ref["boxes"]) == 100 and len(dets) == 100
    return bm, tvm, ours, img


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_m1_cuda_inference(benchmark, cuda_models, impl):
    benchmark.group = "CUDA M1 R50-FPN inference 1x800x1216, 100 detections + masks"
    bm, tvm, ours, img = cuda_models
    benchmark.pedantic(synced(bm.m1_call(impl, ours, tvm, img)), rounds=10, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_m2_cuda_train_step(benchmark, cuda_models, impl):
    benchmark.group = "CUDA M2 R50-FPN train step 2x800x1216, 5 objects each"
    bm = cuda_models[0]
    tvm = bm._tv_train_model()
    model = mn.Model.from_torchvision(tvm.state_dict()) if impl == "native" else tvm
    model = model.to(DEV).train()
    imgs = [im.to(DEV) for im in bm.make_images([(bm.H, bm.W), (bm.H, bm.W)], seed=13)]
    tg = [{k: v.to(DEV) for k, v in t.items()} for t in bm._targets()]
    total = benchmark.pedantic(synced(bm.m2_call(model, imgs, tg)), rounds=5, iterations=1, warmup_rounds=1)
    assert torch.isfinite(total)
