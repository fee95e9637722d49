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
