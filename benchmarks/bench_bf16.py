"""float32 vs bfloat16 (``predict(dtype=torch.bfloat16)``, autocast) inference:
time and the change in detections.

  python benchmarks/bench_bf16.py                      # R50-FPN 800x1216, seeded random weights
  python benchmarks/bench_bf16.py --weights DIR/model.safetensors --images 8
                                                       # a trained model on held-out shapes

R50-FPN: torchvision's maskrcnn_resnet50_fpn with the parity tests' seeded
random weights (score threshold 0, 100 detections), one smooth random image.
A trained model: the first N images of the demo's held-out split (seed 1000).
Reported: median wall time per image of each dtype, and for the top-K float32
detections of each image how many have a bfloat16 detection of the same label
with box IoU >= 0.9, the largest box-coordinate and score differences of those
matches, and the fraction of pasted mask pixels that differ. bfloat16 is only
fast on CPUs with avx512_bf16 or AMX (``lscpu`` flags); elsewhere oneDNN
emulates it and it is slower than float32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "modeling"))

from tv_helpers import box_iou, make_images, randomize_  # noqa: E402

import maskrcnn_native as mn  # noqa: E402


def _r50(h: int, w: int):
    import torchvision.models.detection as tvd

    torch.manual_seed(0)
    tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
    randomize_(tv, seed=10).eval()
    return mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0), make_images([(h, w)], seed=12)


def _trained(path: str, n: int):
    model = mn.Model.load(path)
    ds = mn.data.ShapesDataset(n, image_size=96, seed=1000)
    return model, [ds[i][0] for i in range(n)]


def _time(model, images, dtype, rounds: int):
    model.predict(images[:1], dtype=dtype)  # warm-up (oneDNN primitive creation)
    per_image = []
    out = None
    for _ in range(rounds):
        t = time.perf_counter()
        out = model.predict(images, dtype=dtype)
        per_image.append((time.perf_counter() - t) / len(images))
    return statistics.median(per_image), out


def _compare(d32, d16, top: int):
    """(matched, compared, max |box diff| px, max |score diff|, mask pixel disagreement) over images."""
    matched = compared = 0
    box_d = score_d = 0.0
    mask_diff, mask_px = 0, 0
    for a, b in zip(d32, d16):
        k = min(top, len(a))
        compared += k
        if k == 0 or len(b) == 0:
            continue
        iou = box_iou(a.boxes[:k].double(), b.boxes.double())
        iou[a.labels[:k, None] != b.labels[None, :]] = -1
        best, j = iou.max(1)
        ok = best >= 0.9
        matched += int(ok.sum())
        if ok.any():
            box_d = max(box_d, float((a.boxes[:k][ok] - b.boxes[j[ok]]).abs().max()))
            score_d = max(score_d, float((a.scores[:k][ok] - b.scores[j[ok]]).abs().max()))
            if a.masks is not None:
                mask_diff += int((a.masks[:k][ok] != b.masks[j[ok]]).sum())
                mask_px += int(a.masks[:k][ok].numel())
    return matched, compared, box_d, score_d, mask_diff / max(1, mask_px)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="a trained model.safetensors (default: random R50-FPN)")
    p.add_argument("--images", type=int, default=8, help="held-out images for --weights")
    p.add_argument("--size", default="800x1216", help="HxW of the R50-FPN image")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--top", type=int, default=10, help="top-K float32 detections compared per image")
    a = p.parse_args()
    if a.weights:
        model, images = _trained(a.weights, a.images)
        what = f"{a.weights} on {len(images)} held-out 96 px shapes"
    else:
        h, w = (int(v) for v in a.size.split("x"))
        model, images = _r50(h, w)
        what = f"R50-FPN (seeded random weights) on one {h}x{w} image"
    print(f"{what}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    t32, d32 = _time(model, images, None, a.rounds)
    t16, d16 = _time(model, images, torch.bfloat16, a.rounds)
    print(f"float32 {t32 * 1e3:.0f} ms/image, bfloat16 {t16 * 1e3:.0f} ms/image: bf16/fp32 = {t16 / t32:.2f}x")
    m, n, bd, sd, md = _compare(d32, d16, a.top)
    print(
        f"detections: {sum(len(d) for d in d32)} float32, {sum(len(d) for d in d16)} bfloat16; "
        f"top-{a.top} float32 detections with a bfloat16 match (same label, IoU >= 0.9): {m}/{n}; "
        f"matched: max |box diff| {bd:.2f} px, max |score diff| {sd:.4f}, mask pixels differing {md:.2%}"
    )


if __name__ == "__main__":
    main()
