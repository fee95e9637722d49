"""_malloc.reuse_freed_memory: freed large blocks are reused without page
faults inside the context, glibc's mmap regime is back after it, and the
model's entry points use it."""

import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native import _malloc

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc, Linux only")

# Runs in a fresh process (mallopt settings are process-wide): per scenario,
# the minor page faults of touching a freshly allocated 64 MiB tensor after
# one of the same size was freed, fewest of 8 tries. (The first few tries in
# the heap fault too: the small tensor headers allocated after a big block
# keep it from merging with the free space around it until a few freed
# neighbours have coalesced; from then on a forward pass's recurring sizes
# are served from freed blocks.)
_PROBE = r"""
import json, resource, sys
import maskrcnn_native  # noqa: F401
import torch
from maskrcnn_native._malloc import reuse_freed_memory, enabled

N = 16 << 20  # float32 elements: 64 MiB, above glibc's largest mmap threshold

def faults(n=N):
    torch.empty(n).fill_(1.0)  # allocate, touch, free
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(n).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def fewest(n=N, tries=8):
    return min(faults(n) for _ in range(tries))

out = {"enabled": enabled(), "outside": fewest()}
with reuse_freed_memory():
    out["inside"] = fewest()
    with reuse_freed_memory():
        out["nested"] = fewest()
    out["after_inner_exit"] = fewest()
# Freed heap blocks are still reused after the exit (glibc searches its free
# lists before it maps); a block larger than all the heap ever held shows the
# regime: it is mmapped, and faulted in again after each munmap.
out["after_exit_512MiB"] = fewest(8 * N, 3)
print(json.dumps(out))
"""


def _probe(**env):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k not in ("MN_MALLOC_REUSE", "GLIBC_TUNABLES", "LD_PRELOAD")}
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env={**base, **env})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _skip_if_huge_pages(out):
    # 64 MiB is 16384 pages of 4 KiB; with transparent huge pages on for every
    # mapping (enabled=always) a fresh mapping faults only ~32 times.
    if out["outside"] < 4096:
        pytest.skip(f"a fresh 64 MiB block faulted only {out['outside']} times here (huge pages?)")


@pytest.mark.skipif(_malloc._glibc() is None, reason="not glibc")
def test_reuse_inside_and_mmap_regime_after():
    out = _probe()
    _skip_if_huge_pages(out)
    assert out["enabled"] is True
    # inside: the freed block is handed out again, already mapped
    assert out["inside"] < out["outside"] / 20, out
    assert out["nested"] < out["outside"] / 20, out
    assert out["after_inner_exit"] < out["outside"] / 20, out  # the outer context still holds
    # after the outermost exit, a new large block is mmapped (and unmapped on free) again
    assert out["after_exit_512MiB"] > 8 * out["outside"] / 2, out


@pytest.mark.skipif(_malloc._glibc() is None, reason="not glibc")
@pytest.mark.parametrize("env", [
    {"MN_MALLOC_REUSE": "0"},
    {"MALLOC_MMAP_THRESHOLD_": "1048576"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"},
])
def test_environment_choice_is_left_alone(env):
    out = _probe(**env)
    _skip_if_huge_pages(out)
    assert out["enabled"] is False
    assert out["inside"] > out["outside"] / 2, out


def test_threads_share_one_outermost_scope():
    import threading

    entered = threading.Barrier(3)
    leave = threading.Event()

    def worker():
        with _malloc.reuse_freed_memory():
            entered.wait()
            leave.wait()

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    entered.wait()
    assert _malloc._depth == 2
    assert _malloc._active == _malloc.enabled()
    leave.set()
    for t in ts:
        t.join()
    assert _malloc._depth == 0 and _malloc._active is False


def test_exception_restores():
    with pytest.raises(RuntimeError):
        with _malloc.reuse_freed_memory():
            raise RuntimeError("boom")
    assert _malloc._depth == 0 and _malloc._active is False


def test_model_entry_points_use_it(monkeypatch, small_config):
    from maskrcnn_native.modeling.meta_arch import rcnn

    calls = []

    @contextlib.contextmanager
    def spy():
        calls.append(torch.is_inference_mode_enabled())
        yield

    monkeypatch.setattr(rcnn, "reuse_freed_memory", spy)
    m = mn.Model("R18-FPN", **small_config, backbone_channels=16, fpn_channels=16).eval()
    img = torch.rand(3, 64, 80)
    m.predict(img)
    m([img])
    assert calls == [True, True]
