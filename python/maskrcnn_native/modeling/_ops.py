"""The native ops the model calls, in one place.

Every function dispatches to ``maskrcnn_native.ops`` when the op exists there.
The pure-torch bodies below are stop-gaps used only while an op has not landed
in ``ops`` yet (the model layer was written in parallel with the box ops);
they follow the same torchvision semantics.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .. import ops as _native

DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)

roi_align = _native.roi_align
roi_pool = _native.roi_pool
roi_warp = _native.roi_warp


def _has(name: str) -> bool:
    return hasattr(_native, name)


def box_iou(b1: Tensor, b2: Tensor) -> Tensor:
    """IoU matrix [N, M] of XYXY boxes b1 [N, 4] and b2 [M, 4] (no +1)."""
    if _has("box_iou"):
        return _native.box_iou(b1, b2)
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (a1[:, None] + a2[None, :] - inter)


def _nms_fallback(boxes: Tensor, scores: Tensor, thr: float) -> Tensor:
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True)[1]
    b = boxes[order].double()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = torch.ones(b.shape[0], dtype=torch.bool)
    keep = []
    i = 0
    n = b.shape[0]
    while i < n:
        keep.append(i)
        lt = torch.max(b[i, :2], b[:, :2])
        rb = torch.min(b[i, 2:], b[:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, 0] * wh[:, 1]
        iou = inter / (area[i] + area - inter)
        alive &= ~(iou > thr)
        alive[: i + 1] = False
        nxt = torch.nonzero(alive)
        if nxt.numel() == 0:
            break
        i = int(nxt[0])
    return order[torch.tensor(keep, dtype=torch.int64)]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS; int64 indices of kept boxes sorted by decreasing score."""
    if _has("nms"):
        return _native.nms(boxes, scores, iou_threshold)
    return _nms_fallback(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS independently per value of ``idxs``; kept indices by decreasing score."""
    if _has("batched_nms"):
        return _native.batched_nms(boxes, scores, idxs, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    keep_all = []
    for c in torch.unique(idxs).tolist():
        sel = torch.where(idxs == c)[0]
        keep_all.append(sel[_nms_fallback(boxes[sel], scores[sel], iou_threshold)])
    keep = torch.cat(keep_all)
    return keep[torch.sort(scores[keep], descending=True, stable=True)[1]]


def cell_anchors(sizes: Sequence[int], aspect_ratios: Sequence[float]) -> Tensor:
    """torchvision's base anchors [A, 4] float32 centred at 0 (rounded)."""
    if _has("cell_anchors"):
        return _native.cell_anchors(sizes, aspect_ratios)
    scales = torch.as_tensor(sizes, dtype=torch.float32)
    ar = torch.as_tensor(aspect_ratios, dtype=torch.float32)
    h_ratios = torch.sqrt(ar)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (h_ratios[:, None] * scales[None, :]).view(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def grid_anchors(base: Tensor, grid_size: Tuple[int, int], stride: Tuple[int, int]) -> Tensor:
    """Anchors [H*W*A, 4] for a feature map of ``grid_size`` (H, W) with
    ``stride`` (sy, sx): location-major, then anchor."""
    if _has("grid_anchors"):
        return _native.grid_anchors(base, grid_size, stride)
    gh, gw = grid_size
    sy, sx = stride
    xs = torch.arange(gw, dtype=torch.int32).float() * sx
    ys = torch.arange(gh, dtype=torch.int32).float() * sy
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    xx, yy = xx.reshape(-1), yy.reshape(-1)
    shifts = torch.stack((xx, yy, xx, yy), dim=1)
    return (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4)


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights: Sequence[float]) -> Tensor:
    """Regression targets [N, 4] (dx, dy, dw, dh) of ``reference_boxes`` w.r.t. ``proposals``."""
    if _has("encode_boxes"):
        return _native.encode_boxes(reference_boxes, proposals, weights)
    wx, wy, ww, wh = weights
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    px = proposals[:, 0] + 0.5 * pw
    py = proposals[:, 1] + 0.5 * ph
    gw = reference_boxes[:, 2] - reference_boxes[:, 0]
    gh = reference_boxes[:, 3] - reference_boxes[:, 1]
    gx = reference_boxes[:, 0] + 0.5 * gw
    gy = reference_boxes[:, 1] + 0.5 * gh
    return torch.stack((wx * (gx - px) / pw, wy * (gy - py) / ph,
                        ww * torch.log(gw / pw), wh * torch.log(gh / ph)), dim=1)


def decode_boxes(codes: Tensor, boxes: Tensor, weights: Sequence[float],
                 clamp: float = DEFAULT_SCALE_CLAMP) -> Tensor:
    """Apply codes [N, 4*C] to boxes [N, 4] -> [N, 4*C] XYXY (torchvision BoxCoder)."""
    if _has("decode_boxes"):
        return _native.decode_boxes(codes, boxes, weights, clamp=clamp)
    boxes = boxes.to(codes.dtype)
    wx, wy, ww, wh = weights
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + 0.5 * widths
    cy = boxes[:, 1] + 0.5 * heights
    dx = codes[:, 0::4] / wx
    dy = codes[:, 1::4] / wy
    dw = (codes[:, 2::4] / ww).clamp(max=clamp)
    dh = (codes[:, 3::4] / wh).clamp(max=clamp)
    pcx = dx * widths[:, None] + cx[:, None]
    pcy = dy * heights[:, None] + cy[:, None]
    pw = torch.exp(dw) * widths[:, None]
    ph = torch.exp(dh) * heights[:, None]
    c2c_h = torch.tensor(0.5, dtype=pcy.dtype) * ph
    c2c_w = torch.tensor(0.5, dtype=pcx.dtype) * pw
    out = torch.stack((pcx - c2c_w, pcy - c2c_h, pcx + c2c_w, pcy + c2c_h), dim=2)
    return out.flatten(1)


def paste_masks(masks: Tensor, boxes: Tensor, image_size: Tuple[int, int], mode: str = "aligned",
                threshold=0.5, output: str = "bitmap"):
    """Paste M x M mask probabilities [N, M, M] into [N, H, W] images (bool when
    thresholded, float when threshold is None)."""
    if _has("paste_masks"):
        return _native.paste_masks(masks, boxes, image_size, mode=mode, threshold=threshold, output=output)
    if output != "bitmap":
        raise NotImplementedError("paste_masks fallback only produces bitmaps")
    h, w = image_size
    n, m = masks.shape[0], masks.shape[-1]
    out = torch.zeros((n, h, w), dtype=masks.dtype)
    if mode == "torchvision":
        scale = (m + 2) / m
        padded = torch.nn.functional.pad(masks, (1, 1, 1, 1))
        wh_ = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
        hh_ = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
        xc = (boxes[:, 2] + boxes[:, 0]) * 0.5
        yc = (boxes[:, 3] + boxes[:, 1]) * 0.5
        eb = torch.stack((xc - wh_, yc - hh_, xc + wh_, yc + hh_), 1).to(torch.int64).tolist()
        for i in range(n):
            x0, y0, x1, y1 = eb[i]
            bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
            r = torch.nn.functional.interpolate(padded[i][None, None], size=(bh, bw), mode="bilinear",
                                                align_corners=False)[0, 0]
            ax0, ax1, ay0, ay1 = max(x0, 0), min(x1 + 1, w), max(y0, 0), min(y1 + 1, h)
            if ax1 > ax0 and ay1 > ay0:
                out[i, ay0:ay1, ax0:ax1] = r[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
    else:
        # aligned: pixel centre (x+0.5) maps to mask coordinate (x+0.5-x1)*M/bw - 0.5
        for i in range(n):
            x1, y1, x2, y2 = boxes[i].tolist()
            bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
            gx = ((torch.arange(w) + 0.5 - x1) / bw) * 2 - 1
            gy = ((torch.arange(h) + 0.5 - y1) / bh) * 2 - 1
            yy, xx = torch.meshgrid(gy, gx, indexing="ij")
            grid = torch.stack((xx, yy), -1)[None].to(masks.dtype)
            out[i] = torch.nn.functional.grid_sample(masks[i][None, None], grid, align_corners=False,
                                                     padding_mode="zeros")[0, 0]
            inside = ((torch.arange(w) + 0.5 >= x1) & (torch.arange(w) + 0.5 < x2))[None, :] & \
                     ((torch.arange(h) + 0.5 >= y1) & (torch.arange(h) + 0.5 < y2))[:, None]
            out[i] *= inside
    if threshold is None:
        return out
    return out > threshold
