"""Two-process training on the real model matches one process.

The demo model (R18-FPN with ``norm="bn"``: BatchNorm trained with batch
statistics) trains 4 iterations as 2 gloo processes x 2 images (BatchNorm
synchronised across them, engine/distributed.py) and as 1 process x 4
images: the losses agree within 1e-4 (measured: about 1e-6, the size of
float32 rounding; one process with 2 threads instead of 1 differs from
itself by as much). The control, 2 processes with plain per-process
BatchNorm, differs by about 5e-2, so the comparison does see the batch
statistics. run_real_model.py explains the dataset and sampling settings
that make the two runs' loss normalisers identical.

Cost: about 1.5 minutes on the 2-core project machine (three runs).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import maskrcnn_native as mn

HERE = Path(__file__).resolve().parent
SETS = ["model.rpn_batch_size_per_image=1000000", "model.rpn_positive_fraction=1.0",
        "model.rpn_post_nms_top_n_train=0", "model.box_batch_size_per_image=100000",
        "model.box_positive_fraction=1.0", "solver.lr=0.01", "solver.warmup_iters=4", "solver.steps=[]"]


def _cmd(out, batch, *extra):
    cmd = [str(HERE / "run_real_model.py"), "--out", str(out), "--set", f"solver.batch_size={batch}", *extra]
    for s in SETS:
        cmd += ["--set", s]
    return cmd


def _records(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


def test_two_processes_with_sync_bn_match_one_process(tmp_path, subprocess_env):
    one, two, ctrl = tmp_path / "one", tmp_path / "two", tmp_path / "nosync"
    subprocess.run([sys.executable, *_cmd(one, 4)], check=True, env=subprocess_env, timeout=600, capture_output=True)
    subprocess.run(_torchrun(*_cmd(two, 2)), check=True, env=subprocess_env, timeout=600, capture_output=True)
    subprocess.run(_torchrun(*_cmd(ctrl, 2, "--no-sync-bn")), check=True, env=subprocess_env, timeout=600,
                   capture_output=True)
    r1, r2, rc = _records(one), _records(two), _records(ctrl)
    assert [r["iteration"] for r in r2] == [r["iteration"] for r in r1] == [1, 2, 3, 4]
    keys = [k for k in r1[0] if k.startswith("loss")]
    assert {"loss_objectness", "loss_classifier", "loss_box_reg", "loss_mask"} <= set(keys)
    worst = max(abs(a[k] - b[k]) for a, b in zip(r1, r2) for k in keys)
    assert worst < 1e-4, [(a[k], b[k], k) for a, b in zip(r1, r2) for k in keys if abs(a[k] - b[k]) >= 1e-4]
    control = max(abs(a[k] - b[k]) for a, b in zip(r1, rc) for k in keys)
    assert control > 100 * max(worst, 1e-6), (worst, control)  # unsynchronised BN is visibly different
    assert r1[0]["loss"] != r1[-1]["loss"]  # it trained
    print(f"max |loss difference|: synced {worst:.2e}, unsynchronised control {control:.2e}")
