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
