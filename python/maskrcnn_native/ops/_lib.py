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
    return t.dim() == 4 and (not t.is_contiguous()) and t.is_contiguous(
        memory_format=torch.channels_last
    )


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
