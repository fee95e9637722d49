"""Issue 11's acceptance figures on this CPU, in one command, as a Markdown section
for benchmarks/README.md (one table per CPU kind).

    PYTHONPATH=python python benchmarks/cpu_report.py [--out DIR] [--skip demo share ...]

Runs one after another, each in fresh processes, nothing else in parallel (so run it
on an idle machine; the report records how busy the CPUs were just before and after):

- ``demo``: ``maskrcnn-native demo`` with all defaults: its own timer, the
  median training step and the held-out segm / bbox AP (target: <= 360 s, AP >= 0.60).
- ``share``: ``benchmarks/share_demo.sh``: the demo's step alone, then two demos
  at once (target: <= 2.5x the idle step).
- ``model``: ``benchmarks/bench_model.py`` M1 (R50-FPN inference 1x800x1216) and
  M2 (train step 2x800x1216), ours then torchvision in one process; its fixtures
  check the outputs first (>= 99 of 100 detections matched, mask IoU >= 0.99;
  losses to 5e-3) (targets: >= 2.0x and >= 1.6x).
- ``solo``: M1 with each library in its own process (``solo_inference.py``),
  ``--pairs`` alternating pairs: how a user runs one or the other.

About 10 minutes (570 s) on the 2-core AMD EPYC Zen 4, longer on the Zen 3. Set
``ONEDNN_MAX_CPU_ISA`` etc. in the environment to measure held kernels; the
header names the CPU and the kernels torch chose.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("demo", "share", "model", "solo")


def _run(cmd: List[str], log: Path, env: Dict[str, str]) -> str:
    """Run ``cmd`` (cwd = repo root), keep its output in ``log``, fail loudly on a non-zero exit."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write_text(p.stdout)
    print(f"  {' '.join(cmd[:6])}{' ...' if len(cmd) > 6 else ''}: rc {p.returncode}, {time.perf_counter() - t0:.0f} s")
    if p.returncode != 0:
        raise SystemExit(f"failed (rc {p.returncode}); see {log}:\n{p.stdout[-3000:]}")
    return p.stdout


def _busy(seconds: float = 3.0) -> str:
    """Share of all CPUs' time that was busy over the next ``seconds`` (/proc/stat):
    the idle check, which a load average, lagging by minutes, is not."""

    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
        return f"{100.0 * (1 - (i1 - i0) / max(t1 - t0, 1)):.0f}% busy over {seconds:.0f} s"
    except OSError:
        return "unknown"


def _demo(out: Path, env: Dict[str, str]) -> List[str]:
    d = out / "demo"
    _run([sys.executable, "-m", "maskrcnn_native", "demo", "--out", str(d), "--no-resume"], out / "demo.log", env)
    m = json.loads((d / "metrics.json").read_text())
    steps = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
    step = statistics.median(r["time_per_iter"] for r in steps if "time_per_iter" in r)
    return [
        "| demo (`maskrcnn-native demo --out DIR`, all defaults) | target | measured |",
        "|---|---|---|",
        f"| demo's own timer | <= 360 s | **{m['wall_seconds']:.0f} s** (median step {step:.3f} s) |",
        f"| held-out segm AP (500 images) | >= 0.60 | **{m['segm_AP']:.3f}** (bbox {m['bbox_AP']:.3f}) |",
    ]


def _share(out: Path, env: Dict[str, str]) -> List[str]:
    e = dict(env, SHARE_OUT=str(out / "share"))
    text = _run(["bash", str(HERE / "share_demo.sh")], out / "share.log", e)
    lines = [line for line in text.splitlines() if line.startswith(("idle:", "shared"))]
    head = "Sharing (`bash benchmarks/share_demo.sh`: 200-iteration demos, alone then two at once; target <= 2.5x):"
    return [head, ""] + [f"    {line}" for line in lines]


def _model(out: Path, env: Dict[str, str]) -> List[str]:
    js = out / "bench_model.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "bench_model.py")]
    cmd += ["--benchmark-only", "-k", "m1 or m2", f"--benchmark-json={js}"]
    _run(cmd, out / "bench_model.log", env)
    rows: Dict[str, Dict[str, Dict[str, float]]] = {}
    for b in json.loads(js.read_text())["benchmarks"]:
        rows.setdefault(b["group"], {})[b["params"]["impl"]] = b["stats"]
    lines = [
        "| bench_model.py (one process, ours first; outputs checked) | target | ours median | torchvision median "
        "| ratio median (min/min) |",
        "|---|---|---|---|---|",
    ]
    for group, st in sorted(rows.items()):
        n, t = st["native"], st["torchvision"]
        target = ">= 2.0x" if group.startswith("M1") else ">= 1.6x"
        ratio = t["median"] / n["median"]
        times = f"{n['median']:.2f} s | {t['median']:.2f} s"
        lines.append(f"| {group} | {target} | {times} | **{ratio:.2f}x** ({t['min'] / n['min']:.2f}x) |")
    return lines


def _solo(out: Path, env: Dict[str, str], pairs: int) -> List[str]:
    res: Dict[str, List[float]] = {"tv": [], "ours": []}
    for i in range(pairs):
        for who in ("tv", "ours"):
            text = _run(
                [sys.executable, str(HERE / "solo_inference.py")], out / f"solo_{who}_{i}.log", dict(env, WHO=who)
            )
            line = [x for x in text.splitlines() if x.startswith(f"{who}: median")][-1]
            res[who].append(float(line.split()[2]))
    ratios = [t / o for t, o in zip(res["tv"], res["ours"])]
    return [
        "| M1 one process per library (`WHO=tv` / `WHO=ours python benchmarks/solo_inference.py`, alternating) "
        "| target | ours | torchvision | ratio per pair |",
        "|---|---|---|---|---|",
        "| R50-FPN inference 1x800x1216, median of 5 calls | >= 2.0x | "
        + " / ".join(f"{x:.2f} s" for x in res["ours"])
        + " | "
        + " / ".join(f"{x:.2f} s" for x in res["tv"])
        + " | **"
        + " / ".join(f"{r:.2f}x" for r in ratios)
        + "** |",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/cpu_report", help="logs, demo output and report.md go here")
    p.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts to leave out")
    p.add_argument("--pairs", type=int, default=2, help="alternating tv/ours process pairs for 'solo'")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)  # the installed package, or PYTHONPATH=python for an in-tree build
    from maskrcnn_native._machine import describe_machine

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        rev = "?"
    busy0 = _busy()
    t0 = time.perf_counter()
    lines = [
        f"### {describe_machine()}",
        "",
        f"`python benchmarks/cpu_report.py` at {rev}, {time.strftime('%Y-%m-%d %H:%M %Z')}; CPUs {busy0} before.",
        "",
    ]
    for part in PARTS:
        if part in a.skip:
            continue
        print(f"{part} ...", flush=True)
        if part == "demo":
            lines += _demo(out, env)
        elif part == "share":
            lines += _share(out, env)
        elif part == "model":
            lines += _model(out, env)
        else:
            lines += _solo(out, env, a.pairs)
        lines.append("")
    lines.append(f"CPUs {_busy()} after; {time.perf_counter() - t0:.0f} s in all.")
    report = "\n".join(lines) + "\n"
    (out / "report.md").write_text(report)
    print("\n" + report)


if __name__ == "__main__":
    main()
