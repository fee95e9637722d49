"""The native thread pool: set/get, defaults, and concurrent callers."""

import threading

import pytest
import torch

import maskrcnn_native as mn


def test_default_follows_torch():
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1); import maskrcnn_native as mn; "
            "print(mn.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


_SHOW = "import maskrcnn_native, os; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


@pytest.mark.parametrize("code,env,expected", [
    # imported first: idle OpenMP workers spin briefly, then sleep
    (_SHOW, {}, "None 10000"),
    # a choice in the environment is kept
    (_SHOW, {"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE None"),
    (_SHOW, {"GOMP_SPINCOUNT": "1000"}, "None 1000"),
    # torch already loaded libgomp: too late to change, so nothing is set
    ("import torch; " + _SHOW, {}, "None None"),
])
def test_idle_openmp_policy(code, env, expected):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**base, **env})
    assert out.stdout.strip() == expected


def test_set_and_get():
    n0 = mn.get_num_threads()
    try:
        mn.set_num_threads(3)
        assert mn.get_num_threads() == 3
        mn.set_num_threads(1)
        assert mn.get_num_threads() == 1
    finally:
        mn.set_num_threads(n0)
    with pytest.raises(ValueError, match=r"set_num_threads: n must be >= 1, got 0"):
        mn.set_num_threads(0)
    with pytest.raises(TypeError, match=r"set_num_threads: n must be an int, got float"):
        mn.set_num_threads(2.0)


def test_two_python_threads_at_once_get_correct_results():
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, 32, 40, 40, generator=g).to(memory_format=torch.channels_last) for _ in range(2)]
    rois = torch.cat([torch.randint(0, 2, (300, 1), generator=g).float(),
                      torch.rand(300, 2, generator=g) * 100, torch.rand(300, 2, generator=g) * 100 + 100], 1)
    expected = [mn.ops.roi_align(x, rois, 7, 0.25, 2) for x in xs]
    errors, mismatches = [], []

    def worker(i):
        try:
            for _ in range(20):
                if not torch.equal(mn.ops.roi_align(xs[i], rois, 7, 0.25, 2), expected[i]):
                    mismatches.append(i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mismatches


# ---------------------------------------------------------------- host OpenMP
# On Linux with torch loaded, parallel_for runs on torch's OpenMP team
# (GOMP_parallel found in the global symbol scope) instead of the pool's own
# threads; MN_HOST_OPENMP=0 or _C._set_host_openmp(False) keeps the pool.
linux = pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="Linux only")


def _ops_outputs():
    from maskrcnn_native.ops import winograd as W

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 128, 30, 41, generator=g).to(memory_format=torch.channels_last)
    rois = torch.cat([torch.randint(0, 2, (200, 1), generator=g).float(),
                      torch.rand(200, 2, generator=g) * 60, torch.rand(200, 2, generator=g) * 60 + 60], 1)
    xg = x.clone().requires_grad_(True)
    y = mn.ops.roi_align(xg, rois, 7, 0.25, 2, aligned=True)
    (grad,) = torch.autograd.grad((y * torch.randn(y.shape, generator=g)).sum(), xg)
    boxes = torch.cat([rois[:, 1:3], rois[:, 1:3] + torch.rand(200, 2, generator=g) * 30], 1)
    scores = torch.rand(200, generator=g)
    keep = mn.ops.batched_nms(boxes, scores, rois[:, 0].long(), 0.5)
    pasted = mn.ops.paste_masks(torch.rand(50, 28, 28, generator=g), boxes[:50], (120, 130))
    u = W.winograd_weight(torch.randn(96, 128, 3, 3, generator=g) * 0.05)
    conv = W.conv3x3_winograd(x, u, torch.randn(96, generator=g), relu=True)
    return [y.detach(), grad, keep, pasted, conv]


@linux
def test_host_openmp_gives_the_pools_results_bit_for_bit():
    from maskrcnn_native import _C

    n0 = mn.get_num_threads()
    try:
        _C._set_host_openmp(True)
        assert _C._host_openmp_active()  # torch is loaded: its libgomp is found
        outs = {}
        for host in (True, False):
            _C._set_host_openmp(host)
            for n in (1, 2, 3):
                mn.set_num_threads(n)
                outs[host, n] = _ops_outputs()
        _C._set_host_openmp(False)
        assert not _C._host_openmp_active()
    finally:
        _C._set_host_openmp(True)
        mn.set_num_threads(n0)
    ref = outs[False, 1]
    for key, got in outs.items():
        for a, b in zip(ref, got):
            assert torch.equal(a, b), key


_COUNT_THREADS = r"""
import os, torch
torch.set_num_threads(2)
torch.randn(1 << 22).exp().sum()  # torch's OpenMP team exists from here on
before = len(os.listdir("/proc/self/task"))
import maskrcnn_native as mn
mn.set_num_threads(2)
x = torch.randn(1, 64, 64, 64).to(memory_format=torch.channels_last)
rois = torch.tensor([[0, 1.0, 1.0, 200.0, 200.0]] * 64)
for _ in range(5):
    mn.ops.roi_align(x, rois, 7, 0.25, 2)
print(before, len(os.listdir("/proc/self/task")))
"""


@linux
@pytest.mark.parametrize("env,extra", [({}, 0), ({"MN_HOST_OPENMP": "0"}, 1)])
def test_host_openmp_starts_no_threads_of_its_own(env, extra):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k != "MN_HOST_OPENMP"}
    out = subprocess.run([sys.executable, "-c", _COUNT_THREADS], capture_output=True, text=True,
                         env={**base, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    # the pool's worker starts only when the pool runs a job (2 threads: 1 worker)
    assert after - before == extra, out.stdout


_FORK = r"""
import os, sys, torch
import maskrcnn_native as mn
from maskrcnn_native import _C
mn.set_num_threads(2)
x = torch.randn(1, 32, 40, 40).to(memory_format=torch.channels_last)
rois = torch.tensor([[0, 1.0, 1.0, 150.0, 120.0]] * 300)
ref = mn.ops.roi_align(x, rois, 7, 0.25, 2)  # the OpenMP team is up in the parent
pid = os.fork()
if pid == 0:  # libgomp's team does not survive fork: the child must not use it
    # (compared in NumPy: torch's own parallel ops hang in a child of a parent
    # that ran an OpenMP team, with or without this package; torch's
    # DataLoader sets 1 thread in its workers for that reason)
    y = mn.ops.roi_align(x, rois, 7, 0.25, 2)
    ok = (not _C._host_openmp_active()) and (y.numpy() == ref.numpy()).all()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), _C._host_openmp_active())
"""


@linux
def test_forked_child_falls_back_to_the_pool():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]
