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


def roi_align(
    input: Tensor,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    _quantize: bool = False,
) -> Tensor:
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


def roi_warp(input: Tensor, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1) -> Tensor:
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
        xs, ys, xe, ye = [
            int(v) for v in _round_half_away(r[1:] * torch.tensor(spatial_scale, dtype=input.dtype)).tolist()
        ]
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


# ------------------------------------------------ NMS, box IoU, anchors, box coder ----
# (owned by the nms / anchors / box_coder ops; semantics documented in ops/nms.py,
# ops/anchors.py and ops/box_coder.py)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Tensor[N, 4], Tensor[M, 4] (XYXY) -> Tensor[N, M] IoU, NaN-propagating."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: visit by stable descending score (NaN first), keep a box unless
    a kept box has IoU > iou_threshold (IoU in the boxes' dtype, compared in double)."""
    n = boxes.shape[0]
    order = torch.sort(scores, descending=True, stable=True).indices
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep: List[int] = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        ovr = inter / (areas[i] + areas - inter)
        suppressed |= ovr.double() > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """nms per category, merged by a stable descending sort of the kept scores
    (ties by index, NaN first)."""
    kept = torch.zeros(boxes.shape[0], dtype=torch.bool)
    for c in torch.unique(idxs).tolist():
        members = torch.nonzero(idxs == c).flatten()
        kept[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    idx = torch.nonzero(kept).flatten()
    return idx[torch.sort(scores[idx], descending=True, stable=True).indices]


def cell_anchors(sizes, aspect_ratios, dtype=torch.float32, style: str = "torchvision") -> Tensor:
    """torchvision: round((-ws, -hs, ws, hs) / 2) in dtype, ratio-major.
    detectron2: w = sqrt(size^2 / r), h = r * w in double, size-major, no rounding."""
    if style == "torchvision":
        s = torch.as_tensor(list(sizes), dtype=dtype)
        r = torch.as_tensor(list(aspect_ratios), dtype=dtype)
        hr = torch.sqrt(r)
        wr = 1 / hr
        ws = (wr[:, None] * s[None, :]).reshape(-1)
        hs = (hr[:, None] * s[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()
    rows = []
    for size in sizes:
        for ratio in aspect_ratios:
            w = math.sqrt(float(size) ** 2 / float(ratio))
            h = float(ratio) * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(rows, dtype=torch.float64).to(dtype)


def grid_anchors(cell_anchors: Tensor, grid_size, stride, offset: float = 0.0) -> Tensor:
    """Tensor[H * W * A, 4]: row (y * W + x) * A + a = cell[a] + (sx, sy, sx, sy),
    sx = float(offset * stride_w + x * stride_w) (torch.arange semantics)."""
    gh, gw = grid_size
    sh, sw = (stride, stride) if isinstance(stride, (int, float)) else stride
    xs = torch.arange(gw, dtype=torch.float64) * float(sw) + float(offset) * float(sw)
    ys = torch.arange(gh, dtype=torch.float64) * float(sh) + float(offset) * float(sh)
    xs = xs.to(cell_anchors.dtype)
    ys = ys.to(cell_anchors.dtype)
    sy, sx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([sx.reshape(-1), sy.reshape(-1), sx.reshape(-1), sy.reshape(-1)], dim=1)
    return (shifts[:, None, :] + cell_anchors[None, :, :]).reshape(-1, 4)


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """(dx, dy, dw, dh) of reference_boxes relative to proposals (no +1 widths)."""
    wx, wy, ww, wh = (torch.tensor(w, dtype=reference_boxes.dtype) for w in weights)
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    pcx = proposals[:, 0] + 0.5 * pw
    pcy = proposals[:, 1] + 0.5 * ph
    gw = reference_boxes[:, 2] - reference_boxes[:, 0]
    gh = reference_boxes[:, 3] - reference_boxes[:, 1]
    gcx = reference_boxes[:, 0] + 0.5 * gw
    gcy = reference_boxes[:, 1] + 0.5 * gh
    return torch.stack(
        [wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)], dim=1
    )


def decode_boxes(
    codes: Tensor, boxes: Tensor, weights=(1.0, 1.0, 1.0, 1.0), clamp: float = math.log(1000.0 / 16)
) -> Tensor:
    """Tensor[N, 4 * C] codes + Tensor[N, 4] boxes -> Tensor[N, 4 * C] XYXY boxes."""
    boxes = boxes.to(codes.dtype)
    w = boxes[:, 2:3] - boxes[:, 0:1]
    h = boxes[:, 3:4] - boxes[:, 1:2]
    cx = boxes[:, 0:1] + 0.5 * w
    cy = boxes[:, 1:2] + 0.5 * h
    dx = codes[:, 0::4] / weights[0]
    dy = codes[:, 1::4] / weights[1]
    dw = (codes[:, 2::4] / weights[2]).clamp(max=clamp)
    dh = (codes[:, 3::4] / weights[3]).clamp(max=clamp)
    pcx = dx * w + cx
    pcy = dy * h + cy
    pw = torch.exp(dw) * w
    ph = torch.exp(dh) * h
    out = torch.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], dim=2)
    return out.flatten(1)


# ------------------------------------------------------------ paste masks ----
#
# Full-image masks, one box at a time. "torchvision": pad, expand the box,
# truncate, F.interpolate to the box size, copy the part inside the image (the
# clean clipping torchvision intends; it raises for some boxes outside the
# image where this gives an empty mask). "aligned": every pixel centre inside
# the box is sampled from the mask at continuous coordinates (see
# maskrcnn_native.ops.paste). Equal to the native op up to rounding: the native
# kernels fuse each a*wa + b*wb into one multiply-add.

_PASTE_MAX_COORD = 2.0**62


def _paste_torchvision_one(mask: Tensor, box: Tensor, h_img: int, w_img: int) -> Tensor:
    import torch.nn.functional as F

    out = mask.new_zeros((h_img, w_img))
    m = mask.shape[-1]
    scale = float(m + 2) / m
    w_half = (box[2] - box[0]) * 0.5 * scale
    h_half = (box[3] - box[1]) * 0.5 * scale
    x_c = (box[2] + box[0]) * 0.5
    y_c = (box[3] + box[1]) * 0.5
    e = torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half])
    if not (torch.isfinite(e).all() and (e.abs() < _PASTE_MAX_COORD).all()):
        return out
    x1, y1, x2, y2 = e.to(torch.int64).tolist()
    bw, bh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    xa, xb = max(x1, 0), min(x2 + 1, w_img)
    ya, yb = max(y1, 0), min(y2 + 1, h_img)
    if xb <= xa or yb <= ya:
        return out
    padded = F.pad(mask, (1, 1, 1, 1))
    resized = F.interpolate(padded[None, None], size=(bh, bw), mode="bilinear", align_corners=False)[0, 0]
    out[ya:yb, xa:xb] = resized[ya - y1 : yb - y1, xa - x1 : xb - x1]
    return out


def _paste_aligned_axis(lo: Tensor, hi: Tensor, size: int, m: int):
    """Pixels whose centre is in [lo, hi) and their two mask taps and weights."""
    dtype = lo.dtype
    c = torch.arange(size, dtype=dtype) + 0.5
    inside = (c >= lo) & (c < hi)
    s = torch.tensor(m, dtype=dtype) / (hi - lo)
    u = (c - lo) * s - 0.5
    u = torch.where(u > 0, u, torch.zeros_like(u))  # also NaN -> 0
    last = torch.full_like(u, m - 1)
    u = torch.where(u < last, u, last)
    i0 = u.floor().to(torch.int64).clamp(max=m - 1)
    i1 = (i0 + 1).clamp(max=m - 1)
    l1 = u - i0.to(dtype)
    idx = inside.nonzero()[:, 0]
    return idx, i0[idx], i1[idx], 1 - l1[idx], l1[idx]


def _paste_aligned_one(mask: Tensor, box: Tensor, h_img: int, w_img: int) -> Tensor:
    out = mask.new_zeros((h_img, w_img))
    x1, y1, x2, y2 = box.unbind(0)
    if not (torch.isfinite(box).all() and x2 > x1 and y2 > y1):
        return out
    m = mask.shape[-1]
    xs, ix0, ix1, lx0, lx1 = _paste_aligned_axis(x1, x2, w_img, m)
    ys, iy0, iy1, ly0, ly1 = _paste_aligned_axis(y1, y2, h_img, m)
    rows = mask[:, ix0] * lx0 + mask[:, ix1] * lx1  # [M, len(xs)]
    val = rows[iy0] * ly0[:, None] + rows[iy1] * ly1[:, None]
    out[ys[:, None], xs[None, :]] = val
    return out


def paste_masks(masks: Tensor, boxes: Tensor, image_size, mode: str = "aligned", threshold=0.5) -> Tensor:
    """Reference paste_masks, full-image output only: Tensor[N, H, W] bool
    (value > threshold) or, with threshold=None, the masks' dtype."""
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    h_img, w_img = image_size
    boxes = boxes.to(masks.dtype)
    one = {"torchvision": _paste_torchvision_one, "aligned": _paste_aligned_one}[mode]
    out = masks.new_zeros((masks.shape[0], h_img, w_img))
    for k in range(masks.shape[0]):
        out[k] = one(masks[k], boxes[k], h_img, w_img)
    return out if threshold is None else out > threshold
