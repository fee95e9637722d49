"""Shared plumbing for the op layer: NumPy/torch detection, output layouts."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import _C  # noqa: F401  (re-exported for op modules)


def stream(t: Any) -> int:
    """The stream the native kernels run on for tensor ``t``: torch's current
    CUDA stream of ``t``'s device, 0 (unused) for CPU tensors and NumPy arrays.
    Every op wrapper passes ``stream=stream(first_tensor)`` to ``_C``."""
    if isinstance(t, torch.Tensor) and t.is_cuda:
        return torch.cuda.current_stream(t.device).cuda_stream
    return 0


def is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def feature_layout_ok(t: torch.Tensor) -> bool:
    return t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)


def wants_channels_last(t: torch.Tensor) -> bool:
    """Outputs follow the input: channels_last when the input is stored that way."""
    return t.dim() == 4 and (not t.is_contiguous()) and t.is_contiguous(memory_format=torch.channels_last)


def as_feature_map(t: torch.Tensor) -> torch.Tensor:
    """NCHW-contiguous or channels_last as is; anything else made contiguous."""
    return t if feature_layout_ok(t) else t.contiguous()


def empty_like_layout(shape, like: torch.Tensor, channels_last: bool) -> torch.Tensor:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)


def np_feature_map(a: np.ndarray) -> np.ndarray:
    """NumPy arrays: NCHW-contiguous, or NHWC memory viewed as NCHW, else copied."""
    if a.flags.c_contiguous:
        return a
    if a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous:
        return a
    return np.ascontiguousarray(a)


# ------------------------------------------------------------ errors, dtypes ----

ShapeError = _C.ShapeError  # ValueError + RuntimeError: bad shape or value
DTypeError = _C.DTypeError  # TypeError + RuntimeError: unsupported dtype / type
BatchIndexError = _C.BatchIndexError  # IndexError + RuntimeError: batch index out of range

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def dtype_str(d: torch.dtype) -> str:
    return str(d).replace("torch.", "")


def _allowed_str(allowed) -> str:
    names = [dtype_str(d) for d in allowed]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_tensor(op: str, arg: str, t: Any, allowed=FLOATS) -> None:
    """TypeError (DTypeError) naming op and argument for what the kernels cannot
    take: non-tensors, quantized, complex, bool, meta tensors, other dtypes.
    Runs before ``__dlpack__`` (which raises BufferError for quantized tensors)."""
    if not isinstance(t, torch.Tensor):
        raise DTypeError(f"{op}: {arg} must be a Tensor, got {type(t).__name__}")
    if t.is_quantized:
        raise DTypeError(f"{op}: {arg} must be {_allowed_str(allowed)}, got quantized {dtype_str(t.dtype)}")
    if t.device.type == "meta":
        raise DTypeError(
            f"{op}: {arg} is a meta tensor (no data); use torch.compile / FakeTensor tracing for shape-only runs"
        )
    if t.dtype not in allowed:
        raise DTypeError(f"{op}: {arg} must be {_allowed_str(allowed)}, got {dtype_str(t.dtype)}")


def check_same_dtype(op: str, arg: str, t: torch.Tensor, ref_arg: str, ref: torch.Tensor) -> None:
    if t.dtype != ref.dtype:
        raise DTypeError(
            f"{op}: {arg} must have the same dtype as {ref_arg} ({dtype_str(ref.dtype)}), got {dtype_str(t.dtype)}"
        )


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """float16/bfloat16 run the float32 kernels (accumulate in float32, round once on store)."""
    return torch.float32 if t.dtype in HALF else t.dtype
