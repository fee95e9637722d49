"""The native thread pool (one pool, shared by every op)."""

from . import _C

_initialised = False


def set_num_threads(n: int) -> None:
    """Sets how many threads the native ops use (n >= 1)."""
    global _initialised
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)
    _initialised = True


def get_num_threads() -> int:
    """Threads the native ops use; defaults to torch.get_num_threads()."""
    _ensure_default()
    return _C.get_num_threads()


def _ensure_default() -> None:
    global _initialised
    if not _initialised:
        import torch

        _C.set_num_threads(max(1, torch.get_num_threads()))
        _initialised = True


def _busy_ticks(cpus, with_nice: bool = True, path: str = "/proc/stat") -> int:
    """Clock ticks the given CPUs spent busy since boot (user, nice, system,
    irq, softirq, steal: everything but idle and iowait; ``nice`` only when
    ``with_nice``)."""
    total = 0
    with open(path) as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *fields = line.split()
            if int(name[3:]) not in cpus:
                continue
            v = [int(x) for x in fields[:8]]
            total += v[0] + (v[1] if with_nice else 0) + v[2] + v[5] + v[6] + v[7]
    return total


def _tree_cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its live descendants
    (DataLoader workers are part of this job, not competitors)."""
    import os
    import time

    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    seen = set()
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for k in kids:
                if k in seen:
                    continue
                seen.add(k)
                todo.append(k)
                try:
                    with open(f"/proc/{k}/stat") as f:
                        st = f.read().rsplit(")", 1)[1].split()
                    total += (int(st[11]) + int(st[12])) / tick  # utime, stime
                except (OSError, IndexError, ValueError):
                    pass
    return total


class LoadAwareThreads:
    """Picks the thread count of torch and of the native ops between training
    iterations from how busy *other* processes keep this process's CPUs.

    Two threads that share two cores with another CPU-bound process spend most
    of their time waiting for each other at the end of every parallel region
    (each region needs both of them on a core at once), so a busy neighbour
    slows a step several times over; one thread per free CPU does not wait.
    Every ``period`` seconds (checked at :meth:`update`, i.e. between
    iterations) it reads the busy time of the CPUs this process may run on
    (``/proc/stat``), subtracts its own CPU time and its children's, and uses
    ``round(max_threads - others)`` threads (at least 1, at most
    ``max_threads``). It lowers the count after one such window and raises it
    after two in a row, so one quiet second does not make it flap. Niced
    processes (a background ``nice`` job yields its CPU to us anyway) are not
    counted, unless this process is niced itself.

    Results are bit-for-bit reproducible only at a fixed thread count, so the
    trainer uses this only when asked (``TrainConfig.adaptive_threads``; the
    command line asks unless ``--threads`` or ``OMP_NUM_THREADS`` is given).
    Where ``/proc/stat`` cannot be read it does nothing.
    """

    def __init__(self, max_threads: int = 0, period: float = 1.0, sample=None, clock=None) -> None:
        import os
        import time

        import torch

        self.max_threads = max_threads if max_threads > 0 else torch.get_num_threads()
        self.period = float(period)
        self.threads = torch.get_num_threads()
        self.changes = 0
        self.others = 0.0  # CPUs other processes kept busy in the last window
        self._pending_up = 0
        self._clock = clock or time.perf_counter
        if sample is None:
            try:
                cpus = set(os.sched_getaffinity(0))
                tick = float(os.sysconf("SC_CLK_TCK"))
                niced = os.nice(0) > 0
            except (OSError, AttributeError, ValueError):
                cpus, tick, niced = set(), 0.0, True

            def sample():
                return self._clock(), _busy_ticks(cpus, niced) / tick, _tree_cpu_seconds()

        self._sample = sample  # () -> (wall s, busy s of our CPUs, CPU s of this process tree)
        try:
            self._last = self._sample()
            self.enabled = self.max_threads > 1
        except (OSError, ValueError, ZeroDivisionError):
            self.enabled = False

    def target(self, others: float) -> int:
        """Threads to use while other processes keep ``others`` CPUs busy."""
        return max(1, min(self.max_threads, int(self.max_threads - others + 0.5)))

    def update(self) -> int:
        """Call between iterations; returns the thread count now in use."""
        if not self.enabled or self._clock() - self._last[0] < self.period:
            return self.threads
        try:
            now = self._sample()
        except (OSError, ValueError):
            self.enabled = False
            return self.threads
        wall = max(now[0] - self._last[0], 1e-9)
        self.others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
        self._last = now
        want = self.target(self.others)
        if want < self.threads:
            self._pending_up = 0
            self._apply(want)
        elif want > self.threads:
            self._pending_up += 1
            if self._pending_up >= 2:
                self._pending_up = 0
                self._apply(want)
        else:
            self._pending_up = 0
        return self.threads

    def _apply(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)
        set_num_threads(n)
        self.threads = n
        self.changes += 1
