"""Winograd F(m x m, 3 x 3) convolution for CPU float32 inference.

A 3x3 convolution with stride 1, padding 1, dilation 1 and one group computes
``Y = A^T [(G g G^T) * (B^T d B)] A`` per ``m x m`` output tile (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016): F(4x4, 3x3) needs
36 multiplies per tile and channel pair instead of 144, F(2x2, 3x3) 16 instead
of 36. The weight is transformed once (:func:`winograd_weight`, in float64,
rounded once); per chunk of tiles the native core transforms the input, torch's
BLAS runs the ``(m+2)^2`` batched GEMMs, and the core transforms the result back
into the channels_last output with the bias, a residual and ReLU applied.

Results match ``F.conv2d`` to float32 rounding of the transforms: on unit-scale
activations the largest difference measured was 3x that of a direct float32
convolution against float64 for F(2x2, 3x3) and 15-60x for F(4x4, 3x3) (a few
1e-5 on outputs of magnitude 5). Eager CPU inference only: no autograd, no
tracing (the model layer falls back to ``F.conv2d`` there).
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from ._lib import _C

__all__ = ["conv3x3_winograd", "conv3x3_winograd_weight_grad", "winograd_weight"]

# G of F(m x m, 3 x 3), the (m+2) x 3 weight transform; B^T and A^T live in the
# core (cpp/ops/winograd/winograd_cpu.cpp) with the same interpolation points.
_G: Dict[int, list] = {
    2: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    4: [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
}

# Tiles per chunk: the chunk's transformed input and GEMM output stay in cache
# (measured on a 2-core Xeon: GEMMs of 128 tiles ran at the BLAS's full speed).
_CHUNK_ELEMENTS = 36 * 128 * 256
# The weight gradient's GEMMs accumulate over the tiles (K = tiles per chunk):
# larger chunks, fewer passes over the [(m+2)^2, C, O] accumulator (2x256x100x152,
# 256 -> 256, Xeon: 78 / 67 / 76 / 73 ms at 128 / 256 / 512 / 1024 tiles a chunk).
_GRAD_CHUNK_ELEMENTS = 36 * 256 * 256


def _check_m(m: int) -> int:
    if m not in _G:
        raise ValueError(f"winograd: m must be 2 or 4 (F(2x2,3x3) or F(4x4,3x3)), got {m!r}")
    return m


def winograd_weight(weight: Tensor, m: int = 4) -> Tensor:
    """Transformed 3x3 weight ``U = G g G^T``.

    weight: Tensor[O, C, 3, 3] float (any float dtype; computed in float64).
    Returns Tensor[(m+2)^2, C, O] float32, contiguous (the GEMM's right operand).
    """
    _check_m(m)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        shape = list(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"winograd_weight: weight must have shape [O, C, 3, 3], got {shape}")
    if not weight.is_floating_point():
        raise TypeError(f"winograd_weight: weight must be a float tensor, got {weight.dtype}")
    g = torch.tensor(_G[m], dtype=torch.float64, device=weight.device)
    u = torch.einsum("ak,ockl,bl->abco", g, weight.detach().to(torch.float64), g)
    a = m + 2
    return u.reshape(a * a, weight.shape[1], weight.shape[0]).to(torch.float32).contiguous()


def conv3x3_winograd(
    x: Tensor,
    u: Tensor,
    bias: Optional[Tensor] = None,
    *,
    residual: Optional[Tensor] = None,
    relu: bool = False,
    m: int = 4,
) -> Tensor:
    """``relu?(conv2d(x, w, bias, padding=1) + residual?)`` with ``u = winograd_weight(w, m)``.

    x: Tensor[N, C, H, W] float32 on the CPU (made channels_last if it is not).
    u: Tensor[(m+2)^2, C, O] float32. bias: Tensor[O] float32 or None.
    residual: Tensor[N, O, H, W] float32 (channels_last) or None, added after the bias.
    Returns Tensor[N, O, H, W] float32, channels_last. No autograd.
    """
    _check_m(m)
    a2 = (m + 2) ** 2
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"conv3x3_winograd: x must have shape [N, C, H, W], got {_shape(x)}")
    if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[0] != a2 or u.shape[1] != x.shape[1]:
        raise ValueError(
            f"conv3x3_winograd: u must have shape [{a2}, {x.shape[1]}, O] (winograd_weight(w, m={m})), got {_shape(u)}"
        )
    for name, t in (("x", x), ("u", u), ("bias", bias), ("residual", residual)):
        if t is not None and t.dtype != torch.float32:
            raise TypeError(f"conv3x3_winograd: {name} must be float32, got {t.dtype}")
        if t is not None and t.device.type != "cpu":
            raise ValueError(f"conv3x3_winograd: {name} must be a CPU tensor, got {t.device}")
    n, c, h, w = x.shape
    o = u.shape[2]
    # DLPack exports no autograd state (this op has no backward): plain views
    x = x.detach().contiguous(memory_format=torch.channels_last)
    if residual is not None:
        residual = residual.detach().contiguous(memory_format=torch.channels_last)
    if bias is not None:
        bias = bias.detach().contiguous()
    u = u.detach().contiguous()
    out = torch.empty((n, o, h, w), dtype=torch.float32, memory_format=torch.channels_last)
    total = n * (-(-h // m)) * (-(-w // m))
    if total == 0 or o == 0:
        return out
    chunk = max(16, min(total, _CHUNK_ELEMENTS // (a2 * max(c, o, 1))))
    v = torch.empty((a2, chunk, c), dtype=torch.float32)
    prod = torch.empty((a2, chunk, o), dtype=torch.float32)
    for t0 in range(0, total, chunk):
        k = min(chunk, total - t0)
        if k < chunk:
            v = torch.empty((a2, k, c), dtype=torch.float32)
            prod = torch.empty((a2, k, o), dtype=torch.float32)
        _C.winograd_input_transform(x, v, t0, m)
        torch.bmm(v, u, out=prod)
        _C.winograd_output_transform(prod, bias, residual, out, t0, m, relu)
    return out


def conv3x3_winograd_weight_grad(x: Tensor, grad_output: Tensor, m: int = 4) -> Tensor:
    """The weight gradient of ``conv2d(x, w, padding=1)`` (3x3, stride 1) for ``grad_output``.

    The forward's tiles run backwards: per chunk of tiles the input transform
    ``V`` and the output-gradient transform ``dM = A dY A^T`` (native core), the
    ``(m+2)^2`` GEMMs ``dU[a] += V[a]^T @ dM[a]`` (torch's BLAS, float32
    accumulation), then ``dW = G^T dU G`` in float64, rounded once.

    x: Tensor[N, C, H, W] float32 CPU; grad_output: Tensor[N, O, H, W] float32 CPU
    (both made channels_last if they are not). Returns Tensor[O, C, 3, 3] float32.
    """
    _check_m(m)
    a2 = (m + 2) ** 2
    for name, t in (("x", x), ("grad_output", grad_output)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"conv3x3_winograd_weight_grad: {name} must have shape [N, C, H, W], got {_shape(t)}")
        if t.dtype != torch.float32 or t.device.type != "cpu":
            raise TypeError(
                f"conv3x3_winograd_weight_grad: {name} must be float32 on the CPU, got {t.dtype} {t.device}"
            )
    n, c, h, w = x.shape
    o = grad_output.shape[1]
    if grad_output.shape[0] != n or tuple(grad_output.shape[2:]) != (h, w):
        raise ValueError(
            f"conv3x3_winograd_weight_grad: grad_output {list(grad_output.shape)} does not match x {list(x.shape)}"
        )
    x = x.detach().contiguous(memory_format=torch.channels_last)
    grad_output = grad_output.detach().contiguous(memory_format=torch.channels_last)
    du = torch.zeros((a2, c, o), dtype=torch.float32)
    total = n * (-(-h // m)) * (-(-w // m))
    chunk = max(16, min(total, _GRAD_CHUNK_ELEMENTS // (a2 * max(c, o, 1))))
    for t0 in range(0, total, chunk):
        k = min(chunk, total - t0)
        v = torch.empty((a2, k, c), dtype=torch.float32)
        dm = torch.empty((a2, k, o), dtype=torch.float32)
        _C.winograd_input_transform(x, v, t0, m)
        _C.winograd_grad_transform(grad_output, dm, t0, m)
        du.baddbmm_(v.transpose(1, 2), dm)
    g = torch.tensor(_G[m], dtype=torch.float64)
    dw = torch.einsum("ak,abco,bl->ockl", g, du.to(torch.float64).view(m + 2, m + 2, c, o), g)
    return dw.to(torch.float32).contiguous()


def _shape(t: object) -> object:
    return list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
