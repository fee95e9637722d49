"""Engine tests with a toy model (tests/engine/toy.py): config loading,
deterministic data order, checkpoints, the lr schedule, NaN detection,
SIGKILL + resume and 2-process training."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import maskrcnn_native as mn

from maskrcnn_native.engine import (
    ConfigError,
    NonFiniteLossError,
    TrainConfig,
    apply_overrides,
    load_config,
    train,
)
from maskrcnn_native.engine import checkpoint as ckpt
from maskrcnn_native.engine.sampler import GlobalOrder, TrainBatchSampler
from maskrcnn_native.engine.solver import WarmupMultiStepLR

from .toy import ToyDataset, ToyDetector

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _run_toy(out, *sets, sleep=0.0):
    cmd = [sys.executable, str(HERE / "run_toy.py"), "--out", str(out), "--sleep", str(sleep)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _records(out):
    return [json.loads(l) for l in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def _final_weights(out):
    from safetensors.torch import load_file

    return load_file(str(Path(out) / "model.safetensors"))


# ---------------------------------------------------------------------------- config


def test_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("solver:\n  lr: 0.5\n  steps: [10, 20]\ndata:\n  image_size: 96\noutput_dir: x\n")
    cfg = load_config(p, ["solver.lr=0.01", "solver.max_iter=7", "solver.amp=bf16", "model.overrides.max_size=200"])
    assert cfg.solver.lr == 0.01 and isinstance(cfg.solver.lr, float)
    assert cfg.solver.steps == (10, 20)
    assert cfg.solver.max_iter == 7 and cfg.solver.amp == "bf16"
    assert cfg.data.image_size == 96 and cfg.output_dir == "x"
    assert cfg.model.overrides["max_size"] == 200
    # the source config is frozen and untouched by overrides
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"solver": {"lr": 2}, "seed": 5}))
    cfg2 = load_config(j)
    assert cfg2.solver.lr == 2.0 and cfg2.seed == 5


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"solver\.lrr"):
        load_config(None, ["solver.lrr=0.1"])
    with pytest.raises(ConfigError, match=r"solver\.max_iter.*int"):
        load_config(None, ["solver.max_iter=abc"])
    with pytest.raises(ConfigError, match=r"solver\.amp"):
        load_config(None, ["solver.amp=fp8"])
    with pytest.raises(ConfigError, match=r"bogus"):
        load_config(None, ["bogus=1"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["solver.lr"])
    p = tmp_path / "bad.yaml"
    p.write_text("data:\n  nope: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*data\.nope"):
        load_config(p)


def test_config_model_overrides_checked_against_model_config():
    mc = pytest.importorskip("maskrcnn_native.modeling.config")
    cfg = load_config(None, ["model.min_size=160", "model.preset=R18-FPN"])
    assert cfg.model.overrides == {"min_size": 160} and cfg.model.preset == "R18-FPN"
    assert "min_size" in {f for f in mc.ModelConfig.__dataclass_fields__}
    with pytest.raises(ConfigError, match=r"model\.not_a_field"):
        load_config(None, ["model.not_a_field=1"])


# ---------------------------------------------------------------------------- data order


def test_sampler_ranks_partition_the_global_order():
    order = GlobalOrder(10, seed=3)
    single = [b for b in TrainBatchSampler(order, 2, 1, 0, accum_steps=2, max_iter=6)]
    per_rank = [list(TrainBatchSampler(GlobalOrder(10, 3), 2, 2, r, accum_steps=1, max_iter=6)) for r in range(2)]
    # iteration i: 1-process micro-steps (m=0, m=1) == (rank 0, rank 1)
    for i in range(6):
        assert single[2 * i] == per_rank[0][i]
        assert single[2 * i + 1] == per_rank[1][i]
    # every epoch is a permutation, and epochs differ
    flat = [idx for b in single for idx, _ in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert flat[:10] != flat[10:20]
    # a sampler resumed at iteration 4 continues the same stream
    resumed = list(TrainBatchSampler(GlobalOrder(10, 3), 2, 1, 0, accum_steps=2, start_iter=4, max_iter=6))
    assert resumed == single[8:]
    # another seed, another order
    other = [idx for b in TrainBatchSampler(GlobalOrder(10, 4), 2, 1, 0, 2, max_iter=6) for idx, _ in b]
    assert other != flat


# ---------------------------------------------------------------------------- checkpoints


def test_checkpoint_atomic_weights_only_and_pruned(tmp_path):
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = ckpt.capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    for it in (2, 4, 6, 8):
        ckpt.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng,
                              "iteration": it}, ckpt.checkpoint_path(tmp_path, it))
        ckpt.prune_checkpoints(tmp_path, 2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint_0000006.pt", "checkpoint_0000008.pt"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))  # weights_only=True inside
    assert state["iteration"] == 8
    opt2 = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"],
                       opt.state_dict()["state"][0]["momentum_buffer"])
    ckpt.restore_rng_state(state["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_warmup_multistep_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = WarmupMultiStepLR(opt, 0.1, warmup_iters=10, warmup_factor=0.01, steps=(20, 30), gamma=0.1)
    assert s.lr_at(0) == pytest.approx(0.001)
    assert s.lr_at(5) == pytest.approx(0.1 * (0.01 * 0.5 + 0.5))
    assert s.lr_at(10) == pytest.approx(0.1)
    assert s.lr_at(19) == pytest.approx(0.1)
    assert s.lr_at(20) == pytest.approx(0.01)
    assert s.lr_at(30) == pytest.approx(0.001)
    s.apply(25)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="increasing"):
        WarmupMultiStepLR(opt, 0.1, steps=(5, 3))


# ---------------------------------------------------------------------------- the loop


def _toy_cfg(out, **kw):
    cfg = TrainConfig(output_dir=str(out), progress=False, eval_at_end=False, device="cpu")
    base = {"solver.max_iter": 6, "solver.warmup_iters": 2, "solver.lr": 0.05, "checkpoint_period": 2,
            "keep_last": 2, "log_period": 1}
    base.update(kw)
    return apply_overrides(cfg, base)


def test_train_writes_logs_checkpoints_and_model(tmp_path):
    res = train(_toy_cfg(tmp_path, **{"solver.clip_grad_norm": 1.0}), model=ToyDetector(), train_dataset=ToyDataset())
    assert res.iteration == 6
    recs = _records(tmp_path)
    assert [r["iteration"] for r in recs] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) and "loss_classifier" in r for r in recs)
    assert recs[0]["lr"] < recs[-1]["lr"]  # warmup
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint_0000004.pt", "checkpoint_0000006.pt"]
    assert (tmp_path / "config.yaml").exists()
    w = _final_weights(tmp_path)
    assert torch.equal(w["conv.weight"], res.model.conv.weight.detach())
    assert not torch.equal(w["conv.weight"], ToyDetector().conv.weight.detach())  # it trained
    # running again resumes from the final checkpoint and has nothing left to do
    res2 = train(_toy_cfg(tmp_path), model=ToyDetector(), train_dataset=ToyDataset())
    assert res2.model.calls == 0 and res2.iteration == 6
    assert torch.equal(res2.model.conv.weight.detach(), w["conv.weight"])


def test_nan_loss_names_iteration_and_term(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"iteration 3: loss_mask=nan"):
        train(_toy_cfg(tmp_path), model=ToyDetector(nan_at_call=3), train_dataset=ToyDataset())


def test_grad_accumulation_equals_larger_batch_for_per_image_mean(tmp_path):
    """With accumulation each micro-batch loss is divided by the number of
    steps, so the update uses the mean over the global batch: batch 1 x 2
    accumulation steps follows the same trajectory as a 2-process batch-1
    run (checked in test_two_processes_match_one_process); here we check the
    bookkeeping: it consumes twice the images per iteration."""
    a = train(_toy_cfg(tmp_path / "a", **{"solver.batch_size": 1, "solver.grad_accum_steps": 2}),
              model=ToyDetector(), train_dataset=ToyDataset())
    assert a.model.calls == 12
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "a"))
    assert state["data"]["position"] == 12 and state["data"]["global_batch"] == 2


# ---------------------------------------------------------------------------- kill + resume


def test_sigkill_then_resume_is_bit_identical(tmp_path, subprocess_env):
    """A run killed with SIGKILL right after its first checkpoint and then
    restarted ends with exactly the same weights as an uninterrupted run.

    Why it is bitwise: data order and augmentation are functions of
    (seed, position), the model's RNG is re-seeded from (seed, iteration,
    slot) before every micro-batch, and the checkpoint restores weights,
    momentum buffers, schedule and RNG states. Both runs use one torch thread
    and ``torch.use_deterministic_algorithms(True)`` (run_toy.py) so that the
    floating-point reduction order cannot differ between processes."""
    sets = ["solver.max_iter=12", "checkpoint_period=4", "keep_last=5", "solver.lr=0.05",
            "solver.warmup_iters=3", "solver.steps=[8]", "log_period=1"]
    ref = tmp_path / "ref"
    subprocess.run(_run_toy(ref, *sets), check=True, env=subprocess_env, timeout=120)

    run = tmp_path / "run"
    proc = subprocess.Popen(_run_toy(run, *sets, sleep=0.25), env=subprocess_env)
    first = ckpt.checkpoint_path(run, 4)
    deadline = time.time() + 90
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.exists(), "the first checkpoint was never written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.safetensors").exists()  # it really was interrupted
    killed_at = int(ckpt.latest_checkpoint(run).stem.split("_")[1])
    assert 4 <= killed_at < 12

    out = subprocess.run(_run_toy(run, *sets), check=True, env=subprocess_env, timeout=120, capture_output=True, text=True)
    ref_w, run_w = _final_weights(ref), _final_weights(run)
    assert ref_w.keys() == run_w.keys()
    for k in ref_w:
        assert torch.equal(ref_w[k], run_w[k]), k
    # the log has each iteration once, with the same losses as the reference
    recs, ref_recs = _records(run), _records(ref)
    assert [r["iteration"] for r in recs] == list(range(1, 13))
    assert [r["loss"] for r in recs] == [r["loss"] for r in ref_recs]
    # optimizer momentum is part of the identity too
    a = ckpt.load_checkpoint(ckpt.checkpoint_path(ref, 12))["optimizer"]["state"]
    b = ckpt.load_checkpoint(ckpt.checkpoint_path(run, 12))["optimizer"]["state"]
    assert all(torch.equal(a[i]["momentum_buffer"], b[i]["momentum_buffer"]) for i in a)


# ---------------------------------------------------------------------------- 2 processes


def test_two_processes_match_one_process(tmp_path, subprocess_env):
    """torchrun with 2 gloo processes (batch 1 each) against 1 process with
    batch 1 and 2 accumulation steps: the same global batch of 2, the same
    images in the same slots, the same model RNG per slot. DDP averages the
    two ranks' gradients; accumulation divides each micro-batch loss by 2, so
    losses and weights agree up to float summation order."""
    sets = ["solver.max_iter=4", "solver.lr=0.05", "solver.warmup_iters=1", "log_period=1",
            "checkpoint_period=100", "solver.batch_size=1"]
    one = tmp_path / "one"
    subprocess.run(_run_toy(one, *sets, "solver.grad_accum_steps=2"), check=True, env=subprocess_env, timeout=120)
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *_run_toy(two, *sets)[1:]]
    subprocess.run(cmd, check=True, env=subprocess_env, timeout=180)
    r1, r2 = _records(one), _records(two)
    assert [r["iteration"] for r in r2] == [1, 2, 3, 4]
    for a, b in zip(r1, r2):
        for k in ("loss", "loss_box_reg", "loss_classifier"):
            assert abs(a[k] - b[k]) < 1e-4, (a["iteration"], k, a[k], b[k])
    assert r1[0]["loss"] != r1[-1]["loss"]  # it trained
    w1, w2 = _final_weights(one), _final_weights(two)
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-5, atol=1e-6)
    # only rank 0 wrote checkpoints and the log
    assert len(ckpt.list_checkpoints(two)) == 1


def test_example_configs_load():
    files = sorted((REPO / "configs").glob("*.yaml"))
    assert files, "configs/ has example configs"
    for f in files:
        cfg = load_config(f)
        assert cfg.solver.max_iter > 0 and cfg.model.preset


def test_loader_workers_do_not_change_the_run(tmp_path):
    """Augmentation is seeded per sample, so worker processes load exactly
    what the main process would."""
    a = train(_toy_cfg(tmp_path / "a", **{"solver.max_iter": 3, "checkpoint_period": 10}),
              model=ToyDetector(), train_dataset=ToyDataset())
    b = train(_toy_cfg(tmp_path / "b", **{"solver.max_iter": 3, "checkpoint_period": 10, "data.num_workers": 2}),
              model=ToyDetector(), train_dataset=ToyDataset())
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert torch.equal(a.model.conv.weight, b.model.conv.weight)


def test_amp_bf16_on_cpu_and_fp16_needs_cuda(tmp_path):
    res = train(_toy_cfg(tmp_path / "bf16", **{"solver.max_iter": 2, "solver.amp": "bf16"}),
                model=ToyDetector(), train_dataset=ToyDataset())
    assert all(np.isfinite(r["loss"]) for r in res.history)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16.*CUDA"):
            train(_toy_cfg(tmp_path / "fp16", **{"solver.max_iter": 2, "solver.amp": "fp16"}),
                  model=ToyDetector(), train_dataset=ToyDataset())


def test_adaptive_threads_follow_the_load(tmp_path, monkeypatch, caplog):
    """adaptive_threads: the loop asks LoadAwareThreads between iterations and
    logs the thread count; here a fake neighbour keeps 1.5 CPUs busy."""
    import logging

    from maskrcnn_native import _threads

    clock = [0.0]

    class Busy(_threads.LoadAwareThreads):
        def __init__(self):
            state = {"busy": 0.0}

            def sample():
                clock[0] += 1.0
                state["busy"] += 1.5
                return clock[0], state["busy"], 0.0

            super().__init__(max_threads=2, period=0.5, sample=sample, clock=lambda: clock[0] + 1.0)

    t0, n0 = torch.get_num_threads(), mn.get_num_threads()
    monkeypatch.setattr(_threads, "LoadAwareThreads", Busy)
    try:
        torch.set_num_threads(2)
        with caplog.at_level(logging.INFO, logger="maskrcnn_native.train"):
            train(_toy_cfg(tmp_path / "on", adaptive_threads=True), model=ToyDetector(), train_dataset=ToyDataset())
        recs = _records(tmp_path / "on")
        assert [r["threads"] for r in recs] == [1] * 6
        assert torch.get_num_threads() == 2 and mn.get_num_threads() == 2  # restored when train returns
        assert "threads 2 -> 1: other processes keep 1.5 of this process's CPUs busy" in caplog.text
        torch.set_num_threads(2)
        train(_toy_cfg(tmp_path / "off"), model=ToyDetector(), train_dataset=ToyDataset())
        assert all("threads" not in r for r in _records(tmp_path / "off"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(t0)
        mn.set_num_threads(n0)


class _RandomItems(torch.utils.data.Dataset):
    """Items drawn from torch's, numpy's and python's global generators."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.rand(3), np.random.rand(2), random.random()


def test_seeded_dataset_items_match_manual_seed_and_leave_rngs_alone():
    from maskrcnn_native.engine.sampler import SeededDataset

    ds = _RandomItems()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    got = SeededDataset(ds)[(2, 77)]
    assert torch.equal(torch.get_rng_state(), before)  # main process: training RNG untouched
    torch.manual_seed(77)
    np.random.seed(77)
    random.seed(77)
    want = ds[2]
    assert torch.equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2]


def test_model_rng_seeding_on_cpu_equals_torch_manual_seed():
    from maskrcnn_native.engine.trainer import _seed_model_rng

    _seed_model_rng(2024, torch.device("cpu"))
    a = torch.rand(5)
    torch.manual_seed(2024)
    assert torch.equal(a, torch.rand(5))
