"""torch.compile(fullgraph=True) traces the native ops (register_fake) and
gives the eager result."""

import pytest
import torch

import maskrcnn_native as mn


def detect_step(features, boxes, scores):
    keep = mn.ops.nms(boxes, scores, 0.5)
    kept = boxes[keep]
    rois = torch.cat([torch.zeros_like(kept[:, :1]), kept], dim=1)
    pooled = mn.ops.roi_align(features, rois, (7, 7), 0.25, 2, True)
    return pooled.mean(dim=(2, 3)), keep


@pytest.mark.parametrize("channels_last", [False, True])
def test_compile_fullgraph_matches_eager(channels_last):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 8, 32, 40, generator=g)
    if channels_last:
        feats = feats.to(memory_format=torch.channels_last)
    xy = torch.rand(50, 2, generator=g) * 120
    boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=g) * 60 + 4], 1)
    scores = torch.rand(50, generator=g)
    compiled = torch.compile(detect_step, fullgraph=True, dynamic=False)
    try:
        got, keep = compiled(feats, boxes, scores)
    except Exception as e:  # inductor needs a C++ toolchain; fall back to aot_eager tracing only then
        if "CppCompileError" not in type(e).__name__ and "compiler" not in str(e).lower():
            raise
        torch._dynamo.reset()
        got, keep = torch.compile(detect_step, fullgraph=True, backend="aot_eager")(feats, boxes, scores)
    exp, exp_keep = detect_step(feats, boxes, scores)
    assert torch.equal(keep, exp_keep)
    torch.testing.assert_close(got, exp)


def test_compile_backward_through_roi_align():
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=g, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 2, 30, 40], [1, 5, 5, 50, 60]])

    def f(t):
        return (mn.ops.roi_align(t, rois, 5, 0.25, 2) ** 2).sum()

    gc = torch.autograd.grad(torch.compile(f, fullgraph=True, backend="aot_eager")(x), x)[0]
    ge = torch.autograd.grad(f(x), x)[0]
    torch.testing.assert_close(gc, ge)
