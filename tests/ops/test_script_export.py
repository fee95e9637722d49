"""TorchScript, torch.jit.trace and torch.export of modules calling the public ops:
the scripted / traced / exported module gives the eager answers, gradients included."""

import warnings

import pytest
import torch
from torch import Tensor

import maskrcnn_native as mn

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _feats(seed=0, n=2, c=3, h=16, w=20, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


def _rois(dtype=torch.float64):
    return torch.tensor([[0, 1.0, 2.0, 30.0, 40.0], [1, 5.5, 5.0, 50.0, 60.0], [0, 10, 12, 11, 13]],
                        dtype=dtype)


def _boxes(n=40, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 50 + 1], 1).to(dtype), \
        torch.rand(n, generator=g).to(dtype)


class RoiAlignM(torch.nn.Module):
    def forward(self, x: Tensor, rois: Tensor) -> Tensor:
        return mn.ops.roi_align(x, rois, (5, 4), 0.25, 2, True)


class RoiAlignListM(torch.nn.Module):
    def forward(self, x: Tensor, b0: Tensor, b1: Tensor) -> Tensor:
        return mn.ops.roi_align(x, [b0, b1], 3, 0.5, -1, False)


class RoiPoolM(torch.nn.Module):
    def forward(self, x: Tensor, rois: Tensor) -> Tensor:
        return mn.ops.roi_pool(x, rois, 3, 0.5)


class RoiWarpM(torch.nn.Module):
    def forward(self, x: Tensor, rois: Tensor) -> Tensor:
        return mn.ops.roi_warp(x, rois, [2, 3], 0.5, 2)


class NmsM(torch.nn.Module):
    def forward(self, b: Tensor, s: Tensor) -> Tensor:
        return mn.ops.nms(b, s, 0.5)


class BatchedNmsM(torch.nn.Module):
    def forward(self, b: Tensor, s: Tensor, i: Tensor) -> Tensor:
        return mn.ops.batched_nms(b, s, i, 0.4)


class BoxIouM(torch.nn.Module):
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return mn.ops.box_iou(a, b)


class AnchorsM(torch.nn.Module):
    def forward(self, c0: Tensor, c1: Tensor) -> Tensor:
        return mn.ops.multilevel_grid_anchors([c0, c1], [[4, 5], [2, 3]], [[8.0, 8.0], [16.0, 16.0]])


class GridM(torch.nn.Module):
    def forward(self, c0: Tensor) -> Tensor:
        return mn.ops.grid_anchors(c0, [4, 5], [8.0, 8.0], 0.5)


class DecodeM(torch.nn.Module):
    def forward(self, codes: Tensor, boxes: Tensor) -> Tensor:
        return mn.ops.decode_boxes(codes, boxes, (10.0, 10.0, 5.0, 5.0))


class PasteM(torch.nn.Module):
    def forward(self, masks: Tensor, boxes: Tensor) -> Tensor:
        return mn.ops.paste_masks(masks, boxes, [40, 50], "torchvision", 0.5)


def _cases():
    b, s = _boxes()
    idx = torch.arange(40) % 3
    cells = [mn.ops.cell_anchors((32,), (0.5, 1.0, 2.0)), mn.ops.cell_anchors((64, 80), (1.0,))]
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(40, 8, generator=g)
    masks = torch.rand(40, 14, 14, generator=g)
    return {
        "roi_align": (RoiAlignM(), (_feats(), _rois())),
        "roi_align_list": (RoiAlignListM(), (_feats(), _rois()[:2, 1:], _rois()[2:, 1:])),
        "roi_pool": (RoiPoolM(), (_feats(), _rois())),
        "roi_warp": (RoiWarpM(), (_feats(), _rois())),
        "nms": (NmsM(), (b, s)),
        "batched_nms": (BatchedNmsM(), (b, s, idx)),
        "box_iou": (BoxIouM(), (b, b[:7])),
        "multilevel_grid_anchors": (AnchorsM(), tuple(cells)),
        "grid_anchors": (GridM(), (cells[0],)),
        "decode_boxes": (DecodeM(), (codes, b)),
        "paste_masks": (PasteM(), (masks, b * 0.4)),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_script_equals_eager(name):
    m, args = CASES[name]
    sm = torch.jit.script(m)
    torch.testing.assert_close(sm(*args), m(*args), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["roi_align", "roi_align_list", "roi_pool", "roi_warp"])
def test_script_gradients_equal_eager(name):
    m, args = CASES[name]
    sm = torch.jit.script(m)
    x = args[0].clone().requires_grad_(True)
    rest = [a.clone().requires_grad_(True) for a in args[1:]]  # boxes requiring grad: no grad, no error
    g_eager = torch.autograd.grad((m(x, *rest) ** 2).sum(), x)[0]
    g_script = torch.autograd.grad((sm(x, *rest) ** 2).sum(), x)[0]
    torch.testing.assert_close(g_script, g_eager, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["roi_align", "roi_pool", "roi_warp"])
def test_scripted_gradcheck(name):
    m, (x, rois) = CASES[name]
    sm = torch.jit.script(m)
    x = x[:, :2, :10, :12].clone().requires_grad_(True)
    rois = rois.clone()
    rois[:, 1:] *= 0.5
    if name == "roi_pool":  # max: keep inputs away from ties
        x = (torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0)).double()
             .reshape(x.shape) / 7).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: sm(t, rois), (x,))


def test_scripted_module_saves_and_loads(tmp_path):
    m, args = CASES["roi_align"]
    sm = torch.jit.script(m)
    p = tmp_path / "m.pt"
    sm.save(str(p))
    loaded = torch.jit.load(str(p))
    torch.testing.assert_close(loaded(*args), m(*args), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["roi_align", "roi_pool", "nms", "box_iou", "decode_boxes", "paste_masks"])
def test_trace_equals_eager(name):
    m, args = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.jit.trace(m, args, check_trace=False)
    torch.testing.assert_close(tm(*args), m(*args), rtol=0, atol=0)


class Detect(torch.nn.Module):
    def forward(self, feats: Tensor, boxes: Tensor, scores: Tensor):
        keep = mn.ops.nms(boxes, scores, 0.5)
        kept = boxes[keep]
        rois = torch.cat([torch.zeros_like(kept[:, :1]), kept], dim=1)
        return mn.ops.roi_align(feats, rois, (7, 7), 0.25, 2, True), keep


def test_export_roi_align_and_nms_runs():
    feats = _feats(dtype=torch.float32, n=1, c=4, h=32, w=40)
    b, s = _boxes()
    ep = torch.export.export(Detect(), (feats, b, s))
    got, keep = ep.module()(feats, b, s)
    exp, exp_keep = Detect()(feats, b, s)
    assert torch.equal(keep, exp_keep)
    torch.testing.assert_close(got, exp, rtol=0, atol=0)
    # other inputs of the same shapes: the exported program is not specialised on the data
    b2, s2 = _boxes(seed=7)
    got2, keep2 = ep.module()(feats, b2, s2)
    exp2, exp_keep2 = Detect()(feats, b2, s2)
    assert torch.equal(keep2, exp_keep2)
    torch.testing.assert_close(got2, exp2, rtol=0, atol=0)
