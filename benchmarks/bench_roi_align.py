"""RoIAlign / RoIPool workloads W1, W1n, W2, W3 (issue 2) against torchvision.

Run:  python -m pytest benchmarks/bench_roi_align.py --benchmark-only \
          --benchmark-columns=median,iqr,rounds --benchmark-group-by=group
Each group holds our op and torchvision's on the same inputs; the ratio of
medians is the figure reported in benchmarks/README.md. Every benchmark first
checks that the two agree.
"""

import pytest
import torch

import maskrcnn_native as mn

tv = pytest.importorskip("torchvision")


def fpn_rois(k, n_img, seed=0, H=800, W=1216, lo=16, hi=400):
    """K boxes of side lo..hi px (aspect 0.5..1.5) anywhere on an HxW image."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(k, generator=g) * (hi - lo) + lo
    ar = torch.rand(k, generator=g) + 0.5
    w, h = s * ar.sqrt(), s / ar.sqrt()
    cx, cy = torch.rand(k, generator=g) * W, torch.rand(k, generator=g) * H
    b = torch.randint(0, n_img, (k,), generator=g).float()
    return torch.stack([b, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def feature(n, layout, seed=1):
    x = torch.randn(n, 256, 200, 304, generator=torch.Generator().manual_seed(seed))
    return x.to(memory_format=torch.channels_last) if layout == "cl" else x.contiguous()


IMPLS = {"native": mn.ops.roi_align, "torchvision": tv.ops.roi_align}


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,layout", [("W1", "cl"), ("W1n", "nchw")])
def test_w1_roi_align_fwd(benchmark, impl, wid, layout):
    benchmark.group = f"{wid} roi_align fwd 1x256x200x304 {layout}, 1000 RoIs, 7x7, sr=2"
    x, rois = feature(1, layout), fpn_rois(1000, 1)
    fn = IMPLS[impl]
    out = benchmark(fn, x, rois, (7, 7), 0.25, 2, False)
    torch.testing.assert_close(out[:50], tv.ops.roi_align(x, rois[:50], (7, 7), 0.25, 2, False), atol=1e-5, rtol=0)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_w2_roi_align_fwd_14(benchmark, impl):
    benchmark.group = "W2 roi_align fwd 1x256x200x304 cl, 100 RoIs, 14x14, sr=2"
    x, rois = feature(1, "cl"), fpn_rois(100, 1, seed=2)
    out = benchmark(IMPLS[impl], x, rois, (14, 14), 0.25, 2, False)
    torch.testing.assert_close(out, tv.ops.roi_align(x, rois, (14, 14), 0.25, 2, False), atol=1e-5, rtol=0)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
@pytest.mark.parametrize("wid,layout", [("W3", "cl"), ("W3n", "nchw")])
def test_w3_roi_align_fwd_bwd(benchmark, impl, wid, layout):
    benchmark.group = f"{wid} roi_align fwd+bwd 2x256x200x304 {layout}, 1024 RoIs, 7x7, sr=2"
    x, rois = feature(2, layout, seed=3), fpn_rois(1024, 2, seed=3)
    gy = torch.randn(1024, 256, 7, 7, generator=torch.Generator().manual_seed(4))
    fn = IMPLS[impl]

    def step():
        xi = x.detach().requires_grad_()
        out = fn(xi, rois, (7, 7), 0.25, 2, False)
        out.backward(gy)
        return xi.grad

    grad = benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    xr = x[:, :16].detach().requires_grad_()
    tv.ops.roi_align(xr, rois, (7, 7), 0.25, 2, False).backward(gy[:, :16])
    torch.testing.assert_close(grad[:, :16], xr.grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_roi_pool_fwd(benchmark, impl):
    benchmark.group = "RoIPool fwd 1x256x200x304 cl, 1000 RoIs, 7x7 (ablation, no target)"
    x, rois = feature(1, "cl"), fpn_rois(1000, 1, seed=5)
    fn = {"native": mn.ops.roi_pool, "torchvision": tv.ops.roi_pool}[impl]
    out = benchmark(fn, x, rois, (7, 7), 0.25)
    torch.testing.assert_close(out[:50], tv.ops.roi_pool(x, rois[:50], (7, 7), 0.25), atol=0, rtol=0)
