"""Whole-model benchmarks: R50-FPN Mask R-CNN inference and one training step,
ours vs torchvision's ``maskrcnn_resnet50_fpn`` with the same weights.

Run:  python -m pytest benchmarks/bench_model.py --benchmark-only \
          --benchmark-columns=median,min,rounds --benchmark-group-by=group
Peak memory (one subprocess per model, Linux VmHWM reset after loading):
      python benchmarks/bench_model.py --memory

Workloads (issue 3):
  M1 inference, one 800x1216 image, score threshold 0 -> 100 detections with
     masks pasted into the image (ours: paste="torchvision" so the outputs are
     comparable and checked; torchvision: its own paste).
  M2 one SGD step (forward, backward, update) on 2 images 800x1216 with 5
     objects each, frozen BN and trainable_layers=3 on both sides.
  M4 torchvision's own maskrcnn_resnet50_fpn (unmodified, M1's weights), one
     800x1216 image, with and without ``mn.compat.use_in_torchvision()``;
     the detections are checked equal one for one outside the timing.
  M5 torchvision's Mask R-CNN train step (M2's model and data), with and
     without the switch; the losses are checked equal outside the timing.
Both sides use torch's default thread count (set MN_BENCH_THREADS to pin it).

M4/M5 only:  python -m pytest benchmarks/bench_model.py --benchmark-only -k "m4 or m5" \
          --benchmark-columns=median,min,rounds --benchmark-group-by=group
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "modeling"))

import maskrcnn_native as mn  # noqa: E402

tvd = pytest.importorskip("torchvision.models.detection")

from tv_helpers import make_images, mask_iou, match_detections, randomize_  # noqa: E402

if os.environ.get("MN_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["MN_BENCH_THREADS"]))

H, W = 800, 1216


def _tv_train_model():
    from torchvision.models import resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    tv = MaskRCNN(_resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3), num_classes=91)
    return randomize_(tv, seed=11)


def _targets(n_obj=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        x1 = torch.rand(n_obj, generator=g) * W * 0.6
        y1 = torch.rand(n_obj, generator=g) * H * 0.6
        bw = torch.rand(n_obj, generator=g) * 300 + 40
        bh = torch.rand(n_obj, generator=g) * 300 + 40
        boxes = torch.stack([x1, y1, x1 + bw, y1 + bh], 1)
        masks = torch.zeros((n_obj, H, W), dtype=torch.uint8)
        for i, (a, b, c, d) in enumerate(boxes.long().tolist()):
            masks[i, b + 5:d - 5, a + 5:c - 5] = 1
        out.append({"boxes": boxes, "labels": torch.randint(1, 91, (n_obj,), generator=g), "masks": masks})
    return out


def m1_call(impl, ours, tv, img):
    """M1's timed call: our predict (paste="torchvision", so the outputs compare) or torchvision's."""
    if impl == "native":
        return lambda: ours.predict([img], paste="torchvision")[0]

    def fn():
        with torch.inference_mode():
            return tv([img])[0]

    return fn


def m2_call(model, imgs, tg):
    """M2's timed call: one SGD step (forward, backward, update) of model; returns the loss."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        total = sum(model(imgs, [dict(t) for t in tg]).values())
        total.backward()
        opt.step()
        return total.detach()

    return step


@pytest.fixture(scope="module")
def infer_models():
    torch.manual_seed(0)
    tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
    randomize_(tv, seed=10).eval()
    ours = mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0)
    img = make_images([(H, W)], seed=12)[0]
    with torch.inference_mode():
        ref = tv([img])[0]
    dets = ours.predict([img], paste="torchvision")[0]
    pairs = match_detections(ref["boxes"], ref["labels"], dets.boxes, dets.labels)
    assert len(ref["boxes"]) == 100 and len(pairs) >= 99
    assert min(mask_iou(ref["masks"][i, 0] > 0.5, dets.masks[j]) for i, j in pairs) >= 0.99
    return tv, ours, img


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_m1_inference(benchmark, infer_models, impl):
    benchmark.group = "M1 R50-FPN inference 1x800x1216, 100 detections + masks"
    tv, ours, img = infer_models
    out = benchmark.pedantic(m1_call(impl, ours, tv, img), rounds=3, iterations=1, warmup_rounds=1)
    n = len(out) if impl == "native" else out["boxes"].shape[0]
    assert n == 100


@pytest.fixture(scope="module")
def train_models():
    tv = _tv_train_model()
    ours = mn.Model.from_torchvision(tv.state_dict())
    imgs = make_images([(H, W), (H, W)], seed=13)
    tg = _targets()
    # same weights + same seed -> same losses (checked once, outside the timing)
    tv.train()
    ours.train()
    torch.manual_seed(5)
    ref = tv(imgs, [dict(t) for t in tg])
    torch.manual_seed(5)
    got = ours(imgs, [dict(t) for t in tg])
    for k in ref:
        torch.testing.assert_close(got[k].detach(), ref[k].detach(), rtol=5e-3, atol=1e-4)
    return tv, ours, imgs, tg


@pytest.mark.parametrize("impl", ["native", "torchvision"])
def test_m2_train_step(benchmark, train_models, impl):
    benchmark.group = "M2 R50-FPN train step 2x800x1216, 5 objects each"
    tv, ours, imgs, tg = train_models
    model = ours if impl == "native" else tv
    total = benchmark.pedantic(m2_call(model, imgs, tg), rounds=2, iterations=1, warmup_rounds=1)
    assert torch.isfinite(total)


# ------------------------------------------------- torchvision + the switch
def _same_dets(ref, got):
    assert len(got["boxes"]) == len(ref["boxes"]) == 100
    pairs = match_detections(ref["boxes"], ref["labels"], got["boxes"], got["labels"])
    assert len(pairs) == 100
    assert min(mask_iou(ref["masks"][i, 0] > 0.5, got["masks"][j, 0] > 0.5) for i, j in pairs) >= 0.99


@pytest.mark.parametrize("impl", ["torchvision+switch", "torchvision"])
def test_m4_torchvision_inference_switch(benchmark, infer_models, impl):
    benchmark.group = "M4 torchvision maskrcnn_resnet50_fpn inference 1x800x1216, with/without mn.compat"
    tv, _, img = infer_models

    def fn():
        with torch.inference_mode():
            return tv([img])[0]

    with torch.inference_mode():
        ref = tv([img])[0]
    with mn.compat.use_in_torchvision():
        with torch.inference_mode():
            _same_dets(ref, tv([img])[0])
    if impl == "torchvision+switch":
        with mn.compat.use_in_torchvision():
            out = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    else:
        out = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    assert out["boxes"].shape[0] == 100


@pytest.mark.parametrize("impl", ["torchvision+switch", "torchvision"])
def test_m5_torchvision_train_step_switch(benchmark, train_models, impl):
    benchmark.group = "M5 torchvision Mask R-CNN train step 2x800x1216, with/without mn.compat"
    tv, _, imgs, tg = train_models
    opt = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=0.0, momentum=0.0)

    def losses():
        torch.manual_seed(5)
        return tv(imgs, [dict(t) for t in tg])

    if impl == "torchvision+switch":  # checked once (the timing of both sides follows)
        ref = {k: v.detach() for k, v in losses().items()}
        with mn.compat.use_in_torchvision():
            got = {k: v.detach() for k, v in losses().items()}
        # loss_classifier moves by ~7e-4 relative: randomly initialised heads have
        # large logits that amplify the last-bit differences of RoIAlign's
        # summation order; the other losses agree to ~1e-7 (same proposals, samples).
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], rtol=2e-3, atol=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        total = sum(tv(imgs, [dict(t) for t in tg]).values())
        total.backward()
        opt.step()  # lr 0: the weights stay those checked above
        return total.detach()

    if impl == "torchvision+switch":
        with mn.compat.use_in_torchvision():
            total = benchmark.pedantic(step, rounds=2, iterations=1, warmup_rounds=1)
    else:
        total = benchmark.pedantic(step, rounds=2, iterations=1, warmup_rounds=1)
    assert torch.isfinite(total)


# --------------------------------------------------------------------- memory
_MEM_CHILD = r"""
import sys, torch
sys.path.insert(0, {helpers!r})
from tv_helpers import make_images
impl, path = sys.argv[1], sys.argv[2]
sd = torch.load(path, weights_only=True)
if impl == "native":
    import maskrcnn_native as mn
    model = mn.Model.from_torchvision(sd, score_threshold=0.0)
    run = lambda img: model.predict([img], paste="torchvision")
else:
    import torchvision.models.detection as tvd
    model = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
    model.load_state_dict(sd)
    model.eval()
    def run(img):
        with torch.inference_mode():
            return model([img])
del sd
img = make_images([({H}, {W})], seed=12)[0]
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) // 1024
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
run(img)
print(base, status("VmHWM"))
"""


def measure_memory():
    """Peak RSS (MiB) of one inference per model, each in a fresh process."""
    torch.manual_seed(0)
    tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    randomize_(tv, seed=10)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.pth")
        torch.save(tv.state_dict(), path)
        child = _MEM_CHILD.format(helpers=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                       "modeling"), H=H, W=W)
        res = {}
        for impl in ("native", "torchvision"):
            out = subprocess.run([sys.executable, "-c", child, impl, path], capture_output=True, text=True,
                                 check=True, env=dict(os.environ))
            base, peak = map(int, out.stdout.split()[-2:])
            res[impl] = (base, peak)
    return res


def test_m3_peak_memory():
    res = measure_memory()
    for impl, (base, peak) in res.items():
        print(f"{impl}: RSS after load {base} MiB, peak during inference {peak} MiB (+{peak - base})")
    assert res["native"][1] > res["native"][0]


if __name__ == "__main__":
    if "--memory" in sys.argv:
        for impl, (base, peak) in measure_memory().items():
            print(f"{impl:12s} RSS after load {base:6d} MiB   peak during inference {peak:6d} MiB   "
                  f"(+{peak - base} MiB)")
