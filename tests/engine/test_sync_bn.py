"""SyncBatchNorm2d / SyncBatchNorm1d (engine/distributed.py): 2 gloo
processes, each holding half of a batch, compute exactly what nn.BatchNorm2d /
nn.BatchNorm1d computes on the whole batch (float64: outputs, input and
parameter gradients, running statistics). About 10 s each."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import maskrcnn_native as mn
from maskrcnn_native.engine.distributed import SyncBatchNorm1d, SyncBatchNorm2d, convert_sync_batchnorm

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("kind", ["2d", "1d"])
def test_sync_bn_two_processes_equal_one_batch(kind):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(mn.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(HERE / "sync_bn_worker.py"), kind], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))
    res = json.loads(line[len("RESULT "):])
    for step in ("0", "1"):
        for k in ("y", "dx", "dweight", "dbias", "running_mean", "running_var"):
            assert res[step][k] < 1e-12, (step, k, res[step][k])
        assert res[step]["batches"][0] == res[step]["batches"][1] == int(step) + 1
    assert res["eval"] < 1e-12


def test_single_process_is_plain_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    ref = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    ref.load_state_dict(model.state_dict())
    keys = list(model.state_dict())
    assert convert_sync_batchnorm(model) == 2
    assert list(model.state_dict()) == keys
    assert all(isinstance(m, nn.BatchNorm2d) for m in (model[1], model[3]))
    assert type(model[1]) is SyncBatchNorm2d
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model(x), ref(x))


def test_convert_covers_the_box_heads_batchnorm1d():
    from maskrcnn_native.modeling.roi_heads.heads import TwoMLPHead

    head = TwoMLPHead(8 * 7 * 7, 16, norm="bn")
    keys = list(head.state_dict())
    assert convert_sync_batchnorm(head) == 2
    assert type(head.bn6) is SyncBatchNorm1d and type(head.bn7) is SyncBatchNorm1d
    assert list(head.state_dict()) == keys
    x = torch.randn(5, 8, 7, 7)
    ref = TwoMLPHead(8 * 7 * 7, 16, norm="bn")
    ref.load_state_dict(head.state_dict())
    assert torch.equal(head(x), ref(x))  # one process: plain BatchNorm1d
