"""The bfloat16 paths: ``predict(dtype=torch.bfloat16)`` and a training step
under autocast (what ``solver.amp=bf16`` runs). The network computes in
bfloat16 under ``torch.autocast``; the RoI ops, nms and the box coder run in
float32 through their registered autocast kernels, with no cast in the model.

Tolerance: bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2 %
per stored value). Through the ~20 convolution/linear layers of an R18-FPN
the rounding errors add up like a random walk to roughly 1 % of the box
regression outputs and logits. A 1 % error in the codes moves a box edge by
about 1 % of the box size, so a matched box keeps IoU > 0.95 and a score
moves by well under 0.05; we assert IoU > 0.9 and |score diff| < 0.05 for the
top detections, which a cast in the wrong place (bfloat16 anchors: 2-4 px at
the image's far edge) or a real bug (swapped or missing detections) fails.
"""

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.engine.trainer import _autocast

from .test_device_dtype import NARROW
from .tv_helpers import box_iou, make_images

TOP = 5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = dict(min_size=256, max_size=320, num_classes=4, score_threshold=0.0, detections_per_image=50)
    return mn.Model("R18-FPN", **cfg, **NARROW).eval()


def test_bf16_predict_returns_float32_close_to_float32(model):
    img = make_images([(240, 320)], seed=4)[0]
    d32 = model.predict(img)[0]
    d16 = model.predict(img, dtype=torch.bfloat16)[0]
    assert d16.boxes.dtype == torch.float32 and d16.scores.dtype == torch.float32
    assert d16.labels.dtype == torch.int64 and d16.masks.dtype == torch.bool
    assert d16.masks.shape[1:] == (240, 320) and len(d32) >= TOP and len(d16) >= TOP
    iou = box_iou(d32.boxes[:TOP].double(), d16.boxes.double())
    iou[d32.labels[:TOP, None] != d16.labels[None, :]] = -1
    best, j = iou.max(1)
    assert best.min() > 0.9, best
    assert (d32.scores[:TOP] - d16.scores[j]).abs().max() < 0.05
    # the weights were not touched: float32 predict afterwards is what it was
    again = model.predict(img)[0]
    assert torch.equal(again.boxes, d32.boxes) and torch.equal(again.scores, d32.scores)


def test_bf16_predict_changes_the_computation(model):
    """The flag really runs bfloat16 (not a silent float32 run)."""
    img = make_images([(240, 320)], seed=4)[0]
    d32 = model.predict(img)[0]
    d16 = model.predict(img, dtype=torch.bfloat16)[0]
    assert not torch.equal(d32.scores, d16.scores[: len(d32)]) or not torch.equal(d32.boxes, d16.boxes[: len(d32)])
    # float32 by name is the plain path
    assert torch.equal(model.predict(img, dtype=torch.float32)[0].scores, d32.scores)


def test_predict_dtype_errors(model, small_config):
    img = make_images([(64, 80)], seed=1)[0]
    with pytest.raises(ValueError, match=r"predict: dtype must be None, the weights' dtype or torch.bfloat16"):
        model.predict(img, dtype=torch.float16)  # CPU autocast to float16 is not offered
    with pytest.raises(ValueError, match=r"predict: dtype must be"):
        model.predict(img, dtype=torch.int8)
    m64 = mn.Model("R18-FPN", **small_config, **NARROW).to(torch.float64)
    with pytest.raises(ValueError, match=r"runs float32 weights under autocast; the model is torch.float64"):
        m64.predict(img, dtype=torch.bfloat16)


def test_bf16_train_step_close_to_float32(small_config, two_box_sample):
    torch.manual_seed(0)
    m = mn.Model("R18-FPN", **small_config, **NARROW).train()
    img, t = two_box_sample(seed=3)
    torch.manual_seed(5)
    l32 = m([img], [t])
    torch.manual_seed(5)
    with _autocast("bf16", torch.device("cpu")):
        l16 = m([img], [t])
    assert set(l16) == set(l32)
    for k in l32:
        assert l16[k].dtype == torch.float32 and torch.isfinite(l16[k]), k
        torch.testing.assert_close(l16[k].detach(), l32[k].detach(), rtol=0.05, atol=2e-3, msg=k)
    sum(l16.values()).backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_bf16_predict_keypoints_float32(small_config, two_box_sample):
    torch.manual_seed(0)
    m = mn.Model("R18-FPN-KP", **small_config, **NARROW, keypoint_head_dim=32).eval()
    img, _ = two_box_sample(seed=3, keypoints=True)
    d32 = m.predict(img)[0]
    d16 = m.predict(img, dtype=torch.bfloat16)[0]
    assert d16.keypoints.dtype == torch.float32 and d16.keypoints.shape[1:] == (17, 3)
    # the top detection's keypoints: the same arg-max cell of the upsampled heatmap, or a neighbour
    iou = box_iou(d32.boxes[:1].double(), d16.boxes.double())
    j = int(iou.argmax())
    if iou[0, j] > 0.9:
        assert (d32.keypoints[0, :, :2] - d16.keypoints[j, :, :2]).abs().max() < 0.2 * 80
