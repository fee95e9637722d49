"""Argument validation shared by the public ops, run before anything is
allocated or exported through DLPack.

Sizes are refused up front when they could not be allocated or would take
unbounded time, with a ValueError (``ShapeError``) that states the limit; a
Python value of the wrong kind is a TypeError (``DTypeError``); every message
names the op and the argument. The limits are far above any detector's
needs:

============================  =========================================
``MAX_OUTPUT_SIDE``           4096: RoI op output height/width
``MAX_SAMPLING_RATIO``        256: explicit samples per bin per axis
``MAX_IMAGE_SIDE``            65536: paste_masks image height/width,
                              grid_anchors grid height/width
``MAX_OUTPUT_ELEMENTS``       2**31 - 1: elements of any one output
============================  =========================================
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ._lib import DTypeError, ShapeError

MAX_OUTPUT_SIDE = 4096
MAX_SAMPLING_RATIO = 256
MAX_IMAGE_SIDE = 65536
MAX_OUTPUT_ELEMENTS = 2**31 - 1


def _kind(v: Any) -> str:
    return type(v).__name__


def integer(op: str, arg: str, v: Any, lo: Optional[int] = None, hi: Optional[int] = None, what: str = "") -> int:
    """A Python/NumPy integer (or an integral float) within [lo, hi]."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, numbers.Real)):
        try:  # 0-d integer tensors and arrays
            import torch

            if (
                isinstance(v, torch.Tensor)
                and v.dim() == 0
                and not v.is_floating_point()
                and v.dtype is not torch.bool
                and not v.is_complex()
            ):
                v = int(v.item())
            elif isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
                v = int(v)
            else:
                raise DTypeError(f"{op}: {arg} must be an int, got {_kind(v)}")
        except DTypeError:
            raise
        except Exception:
            raise DTypeError(f"{op}: {arg} must be an int, got {_kind(v)}") from None
    if not isinstance(v, numbers.Integral):
        f = float(v)
        if not (math.isfinite(f) and f.is_integer()):
            raise ShapeError(f"{op}: {arg} must be an integer, got {v!r}")
        v = int(f)
    v = int(v)
    if lo is not None and v < lo:
        raise ShapeError(f"{op}: {arg} must be >= {lo}{what}, got {v}")
    if hi is not None and v > hi:
        raise ShapeError(f"{op}: {arg} = {v} is over the limit of {hi}{what}")
    return v


def real(op: str, arg: str, v: Any, *, finite: bool = True) -> float:
    """A Python/NumPy real number as a float (huge ints are a ValueError, not OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        try:
            import torch

            if (
                isinstance(v, (torch.Tensor, np.ndarray))
                and getattr(v, "ndim", 1) == 0
                and not getattr(v, "is_complex", lambda: np.iscomplexobj(v))()
            ):
                v = float(v.item())
            else:
                raise DTypeError(f"{op}: {arg} must be a number, got {_kind(v)}")
        except DTypeError:
            raise
        except Exception:
            raise DTypeError(f"{op}: {arg} must be a number, got {_kind(v)}") from None
    try:
        f = float(v)
    except OverflowError:
        raise ShapeError(f"{op}: {arg} = {v!r:.40} is too large for a float") from None
    if finite and not math.isfinite(f):
        raise ShapeError(f"{op}: {arg} must be finite, got {f}")
    return f


def pair(op: str, arg: str, v: Any, lo: int, hi: int, what: str = "") -> Tuple[int, int]:
    """An int or a pair of ints, each within [lo, hi]."""
    if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool):
        x = integer(op, arg, v, lo, hi, what)
        return x, x
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) and not hasattr(v, "__len__"):
        raise ShapeError(f"{op}: {arg} must be an int or a pair of ints, got {_kind(v)}")
    try:
        items = list(v)
    except TypeError:
        raise ShapeError(f"{op}: {arg} must be an int or a pair of ints, got {_kind(v)}") from None
    if len(items) != 2:
        raise ShapeError(f"{op}: {arg} must be an int or a pair of ints, got {len(items)} values")
    return (integer(op, f"{arg}[0]", items[0], lo, hi, what), integer(op, f"{arg}[1]", items[1], lo, hi, what))


def elements(op: str, what: str, shape: Sequence[int]) -> None:
    """Refuses an output of more than MAX_OUTPUT_ELEMENTS elements before it is allocated."""
    import torch

    if torch.compiler.is_compiling() or not all(isinstance(s, int) for s in shape):
        return  # symbolic sizes under torch.compile / export: checked when the kernel runs
    n = 1
    for s in shape:
        n *= max(int(s), 0)
    if n > MAX_OUTPUT_ELEMENTS:
        raise ShapeError(
            f"{op}: {what} would have shape {list(int(s) for s in shape)} = {n} elements, "
            f"over the limit of {MAX_OUTPUT_ELEMENTS}"
        )


_NP_FLOATS = (np.float16, np.float32, np.float64)
_NP_INTS = (np.uint8, np.int8, np.int16, np.int32, np.int64)


def array(op: str, arg: str, a: Any, ints: bool = False) -> None:
    """NumPy inputs the kernels cannot read (byte-swapped, longdouble, complex,
    object...) are a TypeError here, not a BufferError from DLPack."""
    if not isinstance(a, np.ndarray):
        return
    kinds = _NP_FLOATS + (_NP_INTS if ints else ())
    if a.dtype.type not in kinds:
        raise DTypeError(
            f"{op}: {arg} must be a NumPy array of "
            f"{'float16/32/64 or int' if ints else 'float16, float32 or float64'}, got {a.dtype}"
        )
    if not a.dtype.isnative:
        raise DTypeError(
            f"{op}: {arg} has non-native byte order ({a.dtype.str}); "
            f"convert it with a.astype(a.dtype.newbyteorder('='))"
        )
