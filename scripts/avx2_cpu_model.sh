#!/usr/bin/env bash
# Run Python on a QEMU model of the project's AVX2 machine (AMD EPYC Zen 3:
# QEMU's "EPYC-Milan", family 25 model 1, AVX2 + FMA, no AVX-512), e.g.
#
#   PYTHONPATH=python bash scripts/avx2_cpu_model.sh -m pytest -q tests/ops/test_winograd.py
#
# What the ONEDNN_MAX_CPU_ISA=AVX2 / ATEN_CPU_CAPABILITY=avx2 emulation cannot
# reach: the native core's target_clones (Winograd transforms, NMS) pick their
# clone from CPUID, so on an AVX-512 host only this runs their AVX2 versions;
# torch, oneDNN and inductor also see a CPU without AVX-512. Functional only:
# QEMU's TCG is one to two orders of magnitude slower, so no timing means
# anything, and subprocesses the tests start run natively on the host.
# Needs qemu-x86_64 (Debian: apt-get install qemu-user; 7.2 emulates AVX2).
set -euo pipefail
command -v qemu-x86_64 >/dev/null || { echo "avx2_cpu_model.sh: needs qemu-x86_64 (Debian: apt-get install qemu-user)" >&2; exit 2; }
py=$(command -v python3 || command -v python)
# inductor's cache may hold kernels built for the host's AVX-512: a fresh one
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
set +e
# QEMU warns once per CPU feature its TCG lacks (pcid, rdseed, ...): not ours to see
QEMU_CPU=${QEMU_CPU:-EPYC-Milan} TORCHINDUCTOR_CACHE_DIR=$cache qemu-x86_64 "$py" "$@" \
  2> >(grep -v "TCG doesn't support requested feature" >&2)
rc=$?
wait  # for the stderr filter
exit $rc
