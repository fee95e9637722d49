#!/usr/bin/env bash
# Shared-machine slowdown of the demo's training step (issue 11, item 3):
# one demo alone, then two at once; prints the median time_per_iter of
# iterations 40-180 from each run's metrics.jsonl and the ratios.
#
#   PYTHONPATH=python bash benchmarks/share_demo.sh [extra demo args, e.g. --threads 2]
#
# Environment variables (e.g. GOMP_SPINCOUNT=30000) apply to every run.
set -euo pipefail
out=${SHARE_OUT:-/tmp/share_demo}
rm -rf "$out" && mkdir -p "$out"
run() { python -m maskrcnn_native demo --out "$out/$1" --iters 200 --eval-images 4 "${@:2}" > "$out/$1.log" 2>&1; }
run idle "$@"
run a "$@" & run b "$@" & wait
python - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def median_step(name):
    recs = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl")]
    steps = [r["time_per_iter"] for r in recs if 40 < r["iteration"] <= 180]
    return statistics.median(steps), sorted({r.get("threads") for r in recs}, key=str)
idle, t0 = median_step("idle")
print(f"idle: {idle:.3f} s/iter (threads {t0})")
for name in ("a", "b"):
    s, t = median_step(name)
    print(f"shared {name}: {s:.3f} s/iter = {s / idle:.2f}x idle (threads {t})")
PY
