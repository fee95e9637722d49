"""LoadAwareThreads: fewer threads while other processes keep the CPUs busy."""

import os
import subprocess
import sys
import time

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native._threads import LoadAwareThreads, _busy_ticks, _tree_cpu_seconds


@pytest.fixture
def restore_threads():
    t0, n0 = torch.get_num_threads(), mn.get_num_threads()
    yield
    torch.set_num_threads(t0)
    mn.set_num_threads(n0)


class FakeMachine:
    """Feeds LoadAwareThreads a clock, the busy seconds of the CPUs and our own CPU seconds."""

    def __init__(self):
        self.t = self.busy = self.ours = 0.0

    def run(self, seconds, ours, others):
        self.t += seconds
        self.ours += ours * seconds
        self.busy += (ours + others) * seconds

    def sample(self):
        return self.t, self.busy, self.ours

    def clock(self):
        return self.t


def test_target():
    g = LoadAwareThreads(max_threads=4, sample=FakeMachine().sample, clock=lambda: 0.0)
    assert [g.target(o) for o in (0.0, 0.4, 0.6, 1.0, 2.2, 3.9, 8.0)] == [4, 4, 3, 3, 2, 1, 1]


def test_lowers_after_one_window_and_raises_after_two(restore_threads):
    torch.set_num_threads(2)
    m = FakeMachine()
    g = LoadAwareThreads(max_threads=2, period=0.9, sample=m.sample, clock=m.clock)
    assert g.enabled and g.threads == 2
    m.run(0.5, ours=2.0, others=0.0)
    assert g.update() == 2  # within the first window: nothing sampled yet
    m.run(0.5, ours=0.5, others=2.0)  # two CPU-bound neighbours appear
    assert g.update() == 1 and torch.get_num_threads() == 1 and mn.get_num_threads() == 1
    assert g.others == pytest.approx(1.0)  # averaged over the whole window
    m.run(1.0, ours=1.0, others=1.0)
    assert g.update() == 1
    m.run(1.0, ours=1.0, others=0.05)  # the neighbour stopped: one quiet window is not enough
    assert g.update() == 1
    m.run(1.0, ours=1.0, others=0.0)
    assert g.update() == 2 and torch.get_num_threads() == 2 and mn.get_num_threads() == 2
    m.run(1.0, ours=2.0, others=0.1)  # background noise does not count
    assert g.update() == 2
    assert g.changes == 2


def test_quiet_window_between_busy_ones_does_not_raise(restore_threads):
    torch.set_num_threads(2)
    m = FakeMachine()
    g = LoadAwareThreads(max_threads=2, period=0.9, sample=m.sample, clock=m.clock)
    m.run(1.0, ours=1.0, others=1.0)
    assert g.update() == 1
    for others in (0.0, 1.0, 0.0, 1.0):
        m.run(1.0, ours=1.0, others=others)
        assert g.update() == 1


def test_one_thread_or_unreadable_stats_disable_it(restore_threads):
    torch.set_num_threads(1)
    g = LoadAwareThreads()
    assert not g.enabled and g.update() == 1

    def broken():
        raise OSError("no /proc")

    torch.set_num_threads(2)
    g = LoadAwareThreads(sample=broken)
    assert not g.enabled and g.update() == 2 and torch.get_num_threads() == 2


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_proc_readers():
    cpus = set(os.sched_getaffinity(0))
    b0, c0 = _busy_ticks(cpus), _tree_cpu_seconds()
    t = time.perf_counter()
    while time.perf_counter() - t < 0.3:
        pass
    b1, c1 = _busy_ticks(cpus), _tree_cpu_seconds()
    assert c1 - c0 >= 0.25  # our own busy loop
    assert (b1 - b0) / os.sysconf("SC_CLK_TCK") >= 0.15  # ... shows in the CPUs' busy time (10 ms ticks)
    # a child's CPU time is ours, not a neighbour's
    p = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<0.6: pass\ntime.sleep(5)"])
    try:
        time.sleep(1.0)
        assert _tree_cpu_seconds() - c1 >= 0.4
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not os.path.exists("/proc/stat") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux /proc and at least 2 CPUs")
def test_real_neighbour_lowers_threads(restore_threads, tmp_path):
    """A CPU-bound process that is not ours (a detached grandchild) takes a CPU:
    the thread count goes down; once it is gone it comes back."""
    torch.set_num_threads(2)
    g = LoadAwareThreads(max_threads=2, period=0.5)
    time.sleep(0.6)
    g.update()
    if g.others > 0.3:
        pytest.skip(f"the machine is not idle ({g.others:.2f} CPUs busy)")
    pidfile = tmp_path / "pid"
    hog = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\nt = time.time()\nwhile time.time() - t < 20: pass"
    subprocess.run(["sh", "-c", f'"{sys.executable}" -c "$0" >/dev/null 2>&1 &', hog], check=True)
    deadline = time.time() + 5
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        for _ in range(6):
            time.sleep(0.55)
            if g.update() == 1:
                break
        assert g.threads == 1 and torch.get_num_threads() == 1, f"others measured {g.others:.2f}"
    finally:
        os.kill(pid, 9)
    for _ in range(8):
        time.sleep(0.55)
        if g.update() == 2:
            break
    assert g.threads == 2, f"others measured {g.others:.2f}"
