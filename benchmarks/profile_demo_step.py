"""Profile the training step of ``maskrcnn-native demo`` with torch.profiler.

    PYTHONPATH=python python benchmarks/profile_demo_step.py --steps 10 --warmup 3

Builds the demo's model (the ``cli.DEMO`` recipe) and data, runs ``--warmup``
untimed steps, then ``--steps`` profiled ones, and prints the mean wall time per
step and the top ops by self CPU time (a Markdown table for benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import time

import maskrcnn_native as mn  # first: sets the OpenMP wait policy before torch loads
import torch
from maskrcnn_native._machine import describe_machine
from maskrcnn_native.cli import demo_config
from maskrcnn_native.data.transforms import collate
from maskrcnn_native.engine.solver import build_optimizer
from maskrcnn_native.engine.trainer import _to_device, build_datasets, build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-profile", action="store_true", help="time the steps only")
    p.add_argument("--shapes", action="store_true", help="also list the top ops by input shape")
    p.add_argument("--set", nargs="*", default=[], help="config overrides as for `demo --set`")
    p.add_argument(
        "--weights",
        default=None,
        help="start from these weights (e.g. a finished demo's model.safetensors): a trained model "
        "has many more positive RoIs than a fresh one, so its steps cost more",
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
        mn.set_num_threads(a.threads)
    cfg = demo_config("/tmp/profile-demo", overrides=a.set)
    if a.weights:
        cfg = demo_config("/tmp/profile-demo", overrides=[*a.set, f"model.weights={a.weights}"])
    train_ds, _ = build_datasets(cfg, train=True, eval=False)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, train_ds).train()
    s = cfg.solver
    opt = build_optimizer(model, s.lr, s.momentum, s.weight_decay)
    bs = s.batch_size
    batches = [collate([train_ds[(i * bs + j) % len(train_ds)] for j in range(bs)]) for i in range(a.warmup + a.steps)]

    def step(i: int) -> None:
        images, targets = _to_device(*batches[i], torch.device("cpu"))
        losses = model(images, targets)
        total = sum(losses.values())
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(total)

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    if a.no_profile:
        for i in range(a.steps):
            step(a.warmup + i)
        prof = None
    else:
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=a.shapes
        ) as prof:
            for i in range(a.steps):
                step(a.warmup + i)
    wall = (time.perf_counter() - t0) / a.steps
    print(f"CPU: {describe_machine()}; torch {torch.__version__}")
    print(f"{'' if a.no_profile else 'profiled '}step: {wall:.3f} s (mean of {a.steps})")
    if prof is None:
        return
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: a.top]
    print(f"\n| op (self CPU) | share | calls per step |\n|---|---|---|")
    for e in rows:
        print(f"| {e.key} | {100.0 * e.self_cpu_time_total / total:.1f}% | {e.count / a.steps:.0f} |")
    if a.shapes:
        rows = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: e.self_cpu_time_total, reverse=True)
        print(f"\n| op (self CPU) | input shapes | share | calls per step |\n|---|---|---|---|")
        for e in rows[: a.top]:
            shapes = ", ".join(str(s) for s in e.input_shapes if s)
            print(f"| {e.key} | {shapes} | {100.0 * e.self_cpu_time_total / total:.1f}% | {e.count / a.steps:.1f} |")


if __name__ == "__main__":
    main()
