"""R50-FPN inference 1x800x1216, one implementation per process (as a user runs it):
WHO=ours (mn.Model.predict, paste="torchvision") or WHO=tv (torchvision's model, the same
random weights as ab_model_inference.py). Prints median and min of N timed calls after one
warm-up. In one process the second model inherits the C heap the first one left (see
README "Memory"), so this is the comparison without that carry-over.

    for w in tv ours tv ours; do WHO=$w PYTHONPATH=python python benchmarks/solo_inference.py; done
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "modeling"))
import maskrcnn_native as mn  # noqa: E402  (before torch: its OpenMP settings)
import torch  # noqa: E402
import torchvision.models.detection as tvd  # noqa: E402
from tv_helpers import make_images, randomize_  # noqa: E402

torch.manual_seed(0)
tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
randomize_(tv, seed=10).eval()
img = make_images([(800, 1216)], seed=12)[0]
who = os.environ.get("WHO", "ours")
if who == "ours":
    ours = mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0)
    del tv

    def fn():
        return ours.predict([img], paste="torchvision")
elif who == "tv":
    def fn():
        with torch.inference_mode():
            return tv([img])
else:
    raise SystemExit(f"WHO must be ours or tv, got {who!r}")
fn()
ts = []
for _ in range(int(os.environ.get("N", 5))):
    t = time.perf_counter()
    fn()
    ts.append(time.perf_counter() - t)
ts.sort()
print(f"{who}: median {ts[len(ts) // 2]:.3f} s  min {ts[0]:.3f} s  all {[round(x, 2) for x in ts]}")
