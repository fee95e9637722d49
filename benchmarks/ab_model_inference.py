"""Interleaved A/B of R50-FPN inference 1x800x1216: torchvision, torchvision with
mn.compat.use_in_torchvision() (default layout and layout="keep"), ours as it ships (fused oneDNN
inference convolutions, Winograd F(4x4,3x3) for the wide 3x3 ones), ours with the fused direct
convolutions only (MN_WINOGRAD=0) and ours unfused. Detections are matched against torchvision first.

    PYTHONPATH=python ROUNDS=3 python benchmarks/ab_model_inference.py
"""
import sys, time, os
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "modeling"))
import maskrcnn_native as mn
import torch
from maskrcnn_native.modeling import layers
import torchvision.models.detection as tvd
from tv_helpers import make_images, randomize_, match_detections
torch.manual_seed(0)
tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
randomize_(tv, seed=10).eval()
ours = mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0)
img = make_images([(800, 1216)], seed=12)[0]
def tvf():
    with torch.inference_mode():
        return tv([img])[0]
def tvs():
    with mn.compat.use_in_torchvision():
        return tvf()
def tvk():  # the routed ops only, torchvision's NCHW batch
    with mn.compat.use_in_torchvision(layout="keep"):
        return tvf()
WINO = layers._WINOGRAD_M
def ourf(f, w=WINO):
    layers._FUSED, layers._WINOGRAD_M = f, w
    return ours.predict([img], paste="torchvision")[0]
ref = tvf(); a = ourf(False); b = ourf(True, 0); c = ourf(True); s = tvs()
print("dets", len(ref["boxes"]), len(a), len(b), len(c), len(s["boxes"]))
pairs = lambda d: len(match_detections(ref["boxes"], ref["labels"], d.boxes, d.labels))
print("pairs vs tv: unfused", pairs(a), "fused direct", pairs(b), f"fused + Winograd F({WINO})", pairs(c), "tv+switch", len(match_detections(ref["boxes"], ref["labels"], s["boxes"], s["labels"])))
T = {"tv": [], "tv+switch": [], "tv+switch(keep)": [], "ours_unfused": [], "ours_direct": [], "ours": []}
for r in range(int(os.environ.get("ROUNDS", 3))):
    for k, fn in (("tv", tvf), ("tv+switch", tvs), ("tv+switch(keep)", tvk), ("ours_unfused", lambda: ourf(False)), ("ours_direct", lambda: ourf(True, 0)), ("ours", lambda: ourf(True))):
        t = time.perf_counter(); fn(); T[k].append(time.perf_counter() - t)
for k, v in T.items():
    print(f"{k:16s} min {min(v):.2f} s  median {sorted(v)[len(v)//2]:.2f} s  all {[round(x,2) for x in v]}  tv/this (min) {min(T['tv'])/min(v):.2f}  (median) {sorted(T['tv'])[len(v)//2]/sorted(v)[len(v)//2]:.2f}")
