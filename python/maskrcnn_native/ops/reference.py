"""Slow, obviously-correct pure-PyTorch versions of every native op.

They are the test oracle when torchvision is absent and a documented fallback
(e.g. on devices the native library was not built for). Each function mirrors
the signature of its counterpart in ``maskrcnn_native.ops`` and works on torch
tensors only. Nothing here is tuned for speed.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor


# ------------------------------------------------------ RoIAlign / RoIWarp ----
#
# A bin is the mean over its grid of samples of the bilinearly interpolated
# feature. Bilinear interpolation is separable, so for one RoI the whole output
# is  A_y @ F @ A_x^T  where A_y[ph, h] sums (1 / count) * weight of row h over
# the samples of output row ph (and A_x likewise without the 1 / count). We
# build A_y and A_x by scatter-adding every sample's two neighbour weights.


def _rois_tensor(boxes):
    if isinstance(boxes, (list, tuple)):
        parts = [torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)]
        return torch.cat(parts) if parts else torch.zeros((0, 5))
    return boxes


def _round_half_away(v: Tensor) -> Tensor:
    """C's round(): halves go away from zero (torch.round goes to even)."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def _axis_matrix(start, bin_size, pooled: int, grid: int, size: int, dtype) -> Tensor:
    """[pooled, size] interpolation weights along one axis (torchvision's rules)."""
    a = torch.zeros((pooled, max(size, 0)), dtype=dtype)
    if grid <= 0 or size <= 0:
        return a
    p = torch.arange(pooled, dtype=dtype)[:, None]
    i = torch.arange(grid, dtype=torch.float32)[None, :]
    v = start + p * bin_size + (i + 0.5).to(dtype) * bin_size / grid  # [pooled, grid]
    valid = (v >= -1.0) & (v <= size)
    v = v.clamp(min=0)
    lo = v.floor().long()
    at_end = lo >= size - 1
    lo = torch.where(at_end, torch.full_like(lo, size - 1), lo)
    hi = torch.where(at_end, lo, lo + 1)
    v = torch.where(at_end, lo.to(dtype), v)
    frac = v - lo.to(dtype)
    w_lo = torch.where(valid, 1.0 - frac, torch.zeros_like(frac))
    w_hi = torch.where(valid, frac, torch.zeros_like(frac))
    rows = p.long().expand_as(lo)
    a.index_put_((rows.reshape(-1), lo.clamp(0, size - 1).reshape(-1)), w_lo.reshape(-1), accumulate=True)
    a.index_put_((rows.reshape(-1), hi.clamp(0, size - 1).reshape(-1)), w_hi.reshape(-1), accumulate=True)
    return a


def roi_align(input: Tensor, boxes, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False, _quantize: bool = False) -> Tensor:
    """Reference RoIAlign. Non-finite RoI coordinates give zeros."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = _rois_tensor(boxes).to(input.dtype)
    n_img, c, h, w = input.shape
    out = input.new_zeros((rois.shape[0], c, ph, pw))
    dt = input.dtype
    for k in range(rois.shape[0]):
        r = rois[k]
        if not torch.isfinite(r[1:]).all():
            continue
        b = int(r[0].item())
        x1, y1, x2, y2 = (r[1:] * torch.tensor(spatial_scale, dtype=dt)).unbind()
        al = aligned
        if _quantize:
            x1, y1, x2, y2 = (_round_half_away(v) for v in (x1, y1, x2, y2))
            al = False
        off = 0.5 if al else 0.0
        sw, sh = x1 - off, y1 - off
        rw, rh = (x2 - off) - sw, (y2 - off) - sh
        if not al:
            rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
        bh, bw = rh / ph, rw / pw
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rh / ph)))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rw / pw)))
        count = max(gh * gw, 1)
        ay = _axis_matrix(sh, bh, ph, gh, h, dt)
        ax = _axis_matrix(sw, bw, pw, gw, w, dt)
        if gh <= 0 or gw <= 0 or h == 0 or w == 0:
            continue
        out[k] = torch.einsum("ph,chw,qw->cpq", ay, input[b], ax) / count
    return out


def roi_warp(input: Tensor, boxes, output_size, spatial_scale: float = 1.0,
             sampling_ratio: int = -1) -> Tensor:
    """Reference RoIWarp: corners rounded to integer feature coordinates, then RoIAlign."""
    return roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, False, _quantize=True)


def roi_pool(input: Tensor, boxes, output_size, spatial_scale: float = 1.0) -> Tensor:
    """Reference RoIPool (torchvision semantics). Non-finite RoIs give zeros."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = _rois_tensor(boxes).to(input.dtype)
    _, c, h, w = input.shape
    out = input.new_zeros((rois.shape[0], c, ph, pw))
    for k in range(rois.shape[0]):
        r = rois[k]
        if not torch.isfinite(r[1:]).all():
            continue
        b = int(r[0].item())
        xs, ys, xe, ye = [int(v) for v in _round_half_away(r[1:] * torch.tensor(spatial_scale, dtype=input.dtype)).tolist()]
        rw, rh = max(xe - xs + 1, 1), max(ye - ys + 1, 1)
        bh = torch.tensor(rh, dtype=input.dtype) / ph
        bw = torch.tensor(rw, dtype=input.dtype) / pw
        for i in range(ph):
            h0 = min(max(int(math.floor(i * bh)) + ys, 0), h)
            h1 = min(max(int(math.ceil((i + 1) * bh)) + ys, 0), h)
            for j in range(pw):
                w0 = min(max(int(math.floor(j * bw)) + xs, 0), w)
                w1 = min(max(int(math.ceil((j + 1) * bw)) + xs, 0), w)
                if h1 <= h0 or w1 <= w0:
                    continue
                out[k, :, i, j] = input[b, :, h0:h1, w0:w1].reshape(c, -1).max(dim=1).values
    return out
