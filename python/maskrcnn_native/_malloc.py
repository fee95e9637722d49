"""Reuse freed large blocks of the C heap while the model runs (glibc only).

A CPU forward pass allocates and frees the same large activations over and
over. glibc serves every block above its mmap threshold (at most 32 MiB, the
ceiling of its dynamic threshold) with a fresh ``mmap`` and returns it with
``munmap`` when freed, so each such tensor is faulted in again page by page:
an R50-FPN predict at 800x1216 took ~200,000 minor page faults and 0.4-0.5 s
of kernel time across the two threads (AMD EPYC Zen 4, 2 cores), 8-12% of its
wall time.

:func:`reuse_freed_memory` switches glibc to the heap for all sizes
(``M_MMAP_MAX`` 0) and stops it trimming (``M_TRIM_THRESHOLD``) for the
duration of a call, so freed activations are handed out again already mapped.
On leaving the outermost such call it restores mmap for large blocks with the
threshold glibc's own dynamic rule reaches after the first 32 MiB free
(``M_MMAP_THRESHOLD`` 32 MiB, ``M_TRIM_THRESHOLD`` 64 MiB): memory above that
is given back at the next free at the top of the heap, and the process is not
left in a different allocation regime.

Nothing changes (the context is a no-op) when the C library is not glibc,
when ``MN_MALLOC_REUSE=0``, or when the environment already chose a malloc
policy (``MALLOC_*_`` variables, ``glibc.malloc`` tunables, or a preloaded
allocator such as jemalloc or tcmalloc).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from typing import Any, Iterator, Optional

__all__ = ["reuse_freed_memory", "enabled"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# What the outermost exit restores: glibc's DEFAULT_MMAP_MAX, and the
# mmap/trim thresholds its dynamic rule settles at on a 64-bit build.
_RESTORE_MMAP_MAX = 65536
_RESTORE_MMAP_THRESHOLD = 32 << 20
_RESTORE_TRIM_THRESHOLD = 64 << 20
_NO_TRIM = 2**31 - 1

_lock = threading.Lock()
_depth = 0
_active = False  # whether the outermost enter changed glibc's settings
_libc: Any = None
_libc_checked = False


def _glibc() -> Optional[Any]:
    """glibc's handle with ``mallopt``, or None on any other C library."""
    global _libc, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        try:
            lib = ctypes.CDLL(None)
            lib.gnu_get_libc_version  # noqa: B018  (glibc only)
            lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.mallopt.restype = ctypes.c_int
            _libc = lib
        except (OSError, AttributeError):
            _libc = None
    return _libc


def _environment_chose() -> bool:
    env = os.environ
    if any(k.startswith("MALLOC_") and k.endswith("_") for k in env):
        return True
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return True
    preload = env.get("LD_PRELOAD", "").lower()
    return any(name in preload for name in ("malloc", "jemalloc", "tcmalloc", "mimalloc"))


def enabled() -> bool:
    """Whether :func:`reuse_freed_memory` changes anything in this process now."""
    if os.environ.get("MN_MALLOC_REUSE", "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    return _glibc() is not None and not _environment_chose()


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, freed heap memory of any size is reused without
    returning it to the kernel (see the module docstring). Re-entrant and
    thread-safe: settings change on the outermost enter and are restored on
    the outermost exit across all threads."""
    global _depth, _active
    with _lock:
        _depth += 1
        if _depth == 1 and enabled():
            lib: Any = _glibc()
            lib.mallopt(_M_MMAP_MAX, 0)
            lib.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM)
            _active = True
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _active:
                lib = _glibc()
                lib.mallopt(_M_MMAP_THRESHOLD, _RESTORE_MMAP_THRESHOLD)
                lib.mallopt(_M_TRIM_THRESHOLD, _RESTORE_TRIM_THRESHOLD)
                lib.mallopt(_M_MMAP_MAX, _RESTORE_MMAP_MAX)
                _active = False
