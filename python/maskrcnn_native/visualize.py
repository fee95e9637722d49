"""Pictures with Pillow only: detections drawn on images, grids, loss curves.

``draw(image, detections)`` accepts

* ``image``: Tensor[3, H, W] (float in [0, 1] or uint8), a NumPy array
  [H, W, 3] / [H, W] (uint8 or float in [0, 1]), a PIL image or a file path;
* ``detections``: a ``maskrcnn_native.Detections``, a target dict or any
  object/dict with ``boxes`` [D, 4] XYXY pixels and optionally ``scores``,
  ``labels``, ``masks`` (bool/uint8/float [D, H, W] or [D, 1, H, W], or a list of
  COCO RLE dicts) and ``keypoints`` [D, P, 3]. Without ``scores`` every
  instance is drawn (ground truth) and no score is printed.

``save_comparison(images, targets, detections)`` is the demo's picture:
ground truth beside prediction per image, upscaled, with captions.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .structures import Instances

__all__ = [
    "draw",
    "save_grid",
    "save_comparison",
    "ground_truth_caption",
    "prediction_caption",
    "plot_losses",
    "to_pil",
    "color_for",
]


def color_for(i: int) -> Tuple[int, int, int]:
    """A distinct, saturated RGB colour for index ``i`` (golden-ratio hue steps)."""
    h = (0.13 + i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def to_pil(image: Any) -> Image.Image:
    """Tensor / NumPy array / PIL image / path -> RGB PIL image."""
    if isinstance(image, (str, os.PathLike)):
        from .data.coco import load_image

        return load_image(os.fspath(image))
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"to_pil: expected an image [3, H, W] or [H, W, 3], got shape {list(arr.shape)}")
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _field(det: Any, name: str) -> Any:
    """``det[name]`` of a mapping or ``det.name`` of an object (None if absent)."""
    if isinstance(det, Mapping):
        return det.get(name)
    return getattr(det, name, None)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def _masks_array(masks: Any, n: int, h: int, w: int) -> Optional[np.ndarray]:
    if masks is None:
        return None
    if isinstance(masks, (list, tuple)) and masks and isinstance(masks[0], Mapping):
        from pycocotools import mask as mask_utils

        out = []
        for r in masks:
            r = dict(r)
            if isinstance(r["counts"], list):
                r = mask_utils.frPyObjects(r, *r["size"])
            elif isinstance(r["counts"], str):
                r["counts"] = r["counts"].encode("ascii")
            out.append(mask_utils.decode(r).astype(bool))
        m = np.stack(out) if out else np.zeros((0, h, w), bool)
    else:
        if not isinstance(masks, (list, tuple)):
            m = _np(masks)
        else:
            m = np.stack([_np(x) for x in masks]) if masks else np.zeros((0, h, w))
        if m.ndim == 4:
            m = m[:, 0]
        m = m > 0.5 if m.dtype != bool else m
    if m.shape[0] != n:
        raise ValueError(f"draw: {m.shape[0]} masks for {n} boxes")
    if m.shape[1:] != (h, w):
        t = torch.from_numpy(m.astype(np.float32))[None]
        m = (torch.nn.functional.interpolate(t, size=(h, w), mode="nearest")[0] > 0.5).numpy()
    return m


def _blend_masks(
    pil: Image.Image, masks: np.ndarray, keep: np.ndarray, colors: Sequence[Tuple[int, int, int]], alpha: float
) -> Image.Image:
    """Masks [D, H, W] bool of the kept detections blended into the image with their outline."""
    arr = np.asarray(pil, dtype=np.float32).copy()
    for i in np.nonzero(keep)[0].tolist():
        m = masks[i]
        if not m.any():
            continue
        c = np.asarray(colors[i], np.float32)
        arr[m] = arr[m] * (1 - alpha) + c * alpha
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        arr[edge] = c
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def _draw_label(
    d: ImageDraw.ImageDraw, text: str, x1: float, y1: float, color: Tuple[int, int, int], font: Any
) -> None:
    """``text`` on a box of ``color`` above the corner (x1, y1), black or white for contrast."""
    left, top, right, bottom = d.textbbox((0, 0), text, font=font)
    tx, ty = max(0.0, x1), max(0.0, y1 - (bottom - top) - 3)
    d.rectangle([tx, ty, tx + (right - left) + 3, ty + (bottom - top) + 3], fill=color)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    d.text((tx + 1 - left, ty + 1 - top), text, fill=ink, font=font)


def _draw_keypoints(
    d: ImageDraw.ImageDraw,
    k: np.ndarray,
    color: Tuple[int, int, int],
    lw: int,
    skeleton: Optional[Sequence[Tuple[int, int]]],
    keypoint_threshold: float,
) -> None:
    """One instance's keypoints [P, 3] as dots, skeleton pairs as lines."""
    vis = k[:, 2] > keypoint_threshold
    rad = max(2, lw + 1)
    for a, b in skeleton or []:
        if 0 <= a < len(k) and 0 <= b < len(k) and vis[a] and vis[b]:
            d.line([(k[a, 0], k[a, 1]), (k[b, 0], k[b, 1])], fill=color, width=lw)
    for j in np.nonzero(vis)[0]:
        x, y = k[j, 0], k[j, 1]
        d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=(255, 255, 255), outline=color)


def draw(
    image: Any,
    detections: Any,
    class_names: Optional[Sequence[str]] = None,
    score_threshold: float = 0.5,
    *,
    show_masks: bool = True,
    show_boxes: bool = True,
    show_labels: bool = True,
    show_keypoints: bool = True,
    skeleton: Optional[Sequence[Tuple[int, int]]] = None,
    keypoint_threshold: float = 0.0,
    alpha: float = 0.45,
    line_width: Optional[int] = None,
    color_by: str = "instance",
    font_size: Optional[int] = None,
) -> Image.Image:
    """Draw detections on a copy of ``image`` and return it (RGB PIL image).

    Instances with ``score < score_threshold`` are not drawn. Masks are blended
    with ``alpha`` and outlined; boxes are rectangles; the label reads
    ``"name 0.93"`` (``class_names[label]``, or the label number). Keypoints with
    third value (visibility or score) > ``keypoint_threshold`` are dots;
    ``skeleton`` pairs (0-based keypoint indices) joining two drawn keypoints
    are lines. ``color_by``: ``"instance"`` or ``"class"``. ``font_size``
    (pixels) defaults to a 28th of the shorter image side, at least 10.
    Ground truth (no ``scores``) is labelled with the class name only.
    """
    if color_by not in ("instance", "class"):
        raise ValueError(f"draw: color_by must be 'instance' or 'class', got {color_by!r}")
    pil = to_pil(image)
    w, h = pil.size
    has_scores = _field(detections, "scores") is not None
    det = Instances.coerce(detections, default_scores=True)
    boxes = _np(det.boxes).reshape(-1, 4).astype(np.float64)
    n = len(boxes)
    scores = _np(det.scores)
    labels = _np(det.labels)
    keep = scores.reshape(-1) >= score_threshold
    masks = _masks_array(det.masks, n, h, w) if show_masks and n else None
    kps = _np(det.keypoints) if show_keypoints and det.keypoints is not None else None
    lw = line_width or max(1, round(min(h, w) / 200))
    colors = [color_for(int(labels[i]) if color_by == "class" else i) for i in range(n)]

    if masks is not None and keep.any():
        pil = _blend_masks(pil, masks, keep, colors, alpha)
    d = ImageDraw.Draw(pil)
    font = _font(font_size or max(10, min(h, w) // 28))
    for i in np.nonzero(keep)[0]:
        x1, y1, x2, y2 = boxes[i]
        if show_boxes:
            d.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colors[i], width=lw)
        if show_labels:
            lab = int(labels.reshape(-1)[i])
            name = class_names[lab] if class_names is not None and 0 <= lab < len(class_names) else str(lab)
            text = f"{name} {float(scores.reshape(-1)[i]):.2f}" if has_scores else name
            _draw_label(d, text, x1, y1, colors[i], font)
        if kps is not None and len(kps) == n:
            _draw_keypoints(d, kps[i], colors[i], lw, skeleton, keypoint_threshold)
    return pil


def save_grid(
    images: Sequence[Any],
    detections_list: Optional[Sequence[Any]],
    path: Optional[str] = None,
    *,
    ncols: Optional[int] = None,
    pad: int = 4,
    max_cell: Optional[int] = None,
    **draw_kwargs,
) -> Image.Image:
    """Draw each image with its detections and tile them into one picture.

    ``detections_list`` may be None (images only) or have one entry per image
    (None = nothing drawn). ``max_cell`` downsizes cells to at most that many
    pixels on the longer side. Saved to ``path`` when given (format from the
    extension); the grid is returned.
    """
    if detections_list is not None and len(detections_list) != len(images):
        raise ValueError(f"save_grid: {len(images)} images but {len(detections_list)} detection lists")
    if not len(images):
        raise ValueError("save_grid: no images")
    cells = []
    for i, im in enumerate(images):
        det = detections_list[i] if detections_list is not None else None
        cell = draw(im, det, **draw_kwargs) if det is not None else to_pil(im)
        if max_cell is not None and max(cell.size) > max_cell:
            s = max_cell / max(cell.size)
            new_size = (max(1, round(cell.width * s)), max(1, round(cell.height * s)))
            cell = cell.resize(new_size, Image.Resampling.BILINEAR)
        cells.append(cell)
    n = len(cells)
    cols = ncols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw = max(c.width for c in cells)
    ch = max(c.height for c in cells)
    grid = Image.new("RGB", (cols * cw + (cols + 1) * pad, rows * ch + (rows + 1) * pad), (255, 255, 255))
    for i, c in enumerate(cells):
        r, q = divmod(i, cols)
        grid.paste(c, (pad + q * (cw + pad), pad + r * (ch + pad)))
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        grid.save(path)
    return grid


def _scaled(det: Any, s: float) -> Dict[str, Any]:
    """A detection-like object as a dict with boxes and keypoint x/y times ``s``
    (masks keep their size: ``draw`` resizes them, nearest, to the image). No
    ``scores`` key when ``det`` has none, so ground truth stays unscored."""
    out: Dict[str, Any] = {}
    for name in ("boxes", "scores", "labels", "masks", "keypoints"):
        v = _field(det, name)
        if v is not None:
            out[name] = v
    out["boxes"] = torch.as_tensor(_np(out["boxes"]), dtype=torch.float64).reshape(-1, 4) * s
    if "keypoints" in out:
        k = torch.as_tensor(_np(out["keypoints"]), dtype=torch.float64).clone()
        k[..., :2] *= s
        out["keypoints"] = k
    return out


def _name(label: int, class_names: Optional[Sequence[str]]) -> str:
    return class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)


def ground_truth_caption(target: Any, class_names: Optional[Sequence[str]] = None) -> str:
    """``"ground truth: 3 objects (2 circle, 1 square)"`` (``"ground truth: no object"``)."""
    labels = _np(_field(target, "labels")).reshape(-1).astype(np.int64).tolist()
    if not labels:
        return "ground truth: no object"
    counts: Dict[str, int] = {}
    for lab in labels:
        counts[_name(lab, class_names)] = counts.get(_name(lab, class_names), 0) + 1
    what = ", ".join(f"{c} {n}" for n, c in counts.items())
    return f"ground truth: {len(labels)} object{'s' if len(labels) != 1 else ''} ({what})"


def prediction_caption(det: Any, score_threshold: float) -> str:
    """What the prediction panel shows, e.g. ``"prediction: 2 >= 0.50 (best 0.97)"``,
    or why it is empty: ``"no detection >= 0.50; best 0.31"`` /
    ``"no detection at all"``."""
    scores = _np(_field(det, "scores")).reshape(-1).astype(np.float64)
    if scores.size == 0:
        return "prediction: no detection at all"
    best = float(scores.max())
    kept = int((scores >= score_threshold).sum())
    if kept == 0:
        return f"no detection >= {score_threshold:.2f}; best {best:.2f}"
    return f"prediction: {kept} >= {score_threshold:.2f} (best {best:.2f})"


def _captioned(panel: Image.Image, caption: str, font: Any, height: int, warn: bool) -> Image.Image:
    """``panel`` under a white strip of ``height`` pixels holding ``caption``
    (dark red when ``warn``), the text cut with an ellipsis if it is too wide."""
    out = Image.new("RGB", (panel.width, panel.height + height), (255, 255, 255))
    out.paste(panel, (0, height))
    d = ImageDraw.Draw(out)
    text = caption
    while text and d.textlength(text, font=font) > panel.width - 8:
        text = text[:-2] + "…" if len(text) > 2 else ""
    d.text(
        (4, (height - font.size) // 2 if hasattr(font, "size") else 2),
        text,
        fill=(150, 0, 0) if warn else (0, 0, 0),
        font=font,
    )
    return out


def _upscaled(image: Any, s: int, resample: str) -> Image.Image:
    pil = to_pil(image)
    if s == 1:
        return pil
    mode = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}.get(resample)
    if mode is None:
        raise ValueError(f"save_comparison: resample must be 'nearest' or 'bilinear', got {resample!r}")
    return pil.resize((pil.width * s, pil.height * s), mode)


def save_comparison(
    images: Sequence[Any],
    targets: Sequence[Any],
    detections: Sequence[Any],
    path: Optional[str] = None,
    *,
    class_names: Optional[Sequence[str]] = None,
    score_threshold: float = 0.5,
    scale: Optional[int] = None,
    pairs_per_row: int = 2,
    skeleton: Optional[Sequence[Tuple[int, int]]] = None,
    resample: str = "nearest",
    title: Optional[str] = None,
    pad: int = 6,
) -> Tuple[Image.Image, List[Tuple[str, str]]]:
    """Ground truth beside prediction for each image, upscaled, captioned.

    Each image becomes a pair of panels, ``scale`` times its size (default: the
    integer that brings the longer side to about 384 px, at least 1): on the left
    its ``targets`` entry (boxes, masks, keypoints, class names), on the right
    its ``detections`` entry with score >= ``score_threshold`` ("name 0.93").
    Boxes, masks and text are drawn at the larger scale. Above each panel a
    caption (``ground_truth_caption`` / ``prediction_caption``: a prediction
    with nothing above the threshold says so, with its best score); a title
    line states the threshold. Saved to ``path`` when given. Returns the
    picture and the (ground truth, prediction) captions per image.
    """
    if not len(images):
        raise ValueError("save_comparison: no images")
    if len(targets) != len(images) or len(detections) != len(images):
        raise ValueError(
            f"save_comparison: {len(images)} images, {len(targets)} targets and {len(detections)} detection lists"
        )
    tiles = [to_pil(im) for im in images]
    side = max(max(t.size) for t in tiles)
    s = int(scale) if scale is not None else max(1, math.ceil(384 / side))
    if s < 1:
        raise ValueError(f"save_comparison: scale must be >= 1, got {scale}")
    cap_font = _font(max(12, side * s // 24))
    cap_h = cap_font.size + 10 if hasattr(cap_font, "size") else 20
    label_size = max(12, side * s // 26)
    captions: List[Tuple[str, str]] = []
    pairs = []
    for tile, tgt, det in zip(tiles, targets, detections):
        big = _upscaled(tile, s, resample)
        caps = (ground_truth_caption(tgt, class_names), prediction_caption(det, score_threshold))
        captions.append(caps)
        kw: Dict[str, Any] = dict(class_names=class_names, skeleton=skeleton, font_size=label_size)
        gt = draw(big, _scaled(tgt, s), score_threshold=-math.inf, **kw)
        pred = draw(big, _scaled(det, s), score_threshold=score_threshold, **kw)
        empty = caps[1].startswith("no detection") or caps[1].endswith("no detection at all")
        pairs.append(
            (_captioned(gt, caps[0], cap_font, cap_h, False), _captioned(pred, caps[1], cap_font, cap_h, empty))
        )
    head = title + "  |  " if title else ""
    heading = f"{head}left: ground truth   right: prediction, score >= {score_threshold:.2f}   (tiles upscaled {s}x)"
    grid = _tile_pairs(pairs, heading, cap_font, cap_h, pairs_per_row, pad)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        grid.save(path)
    return grid, captions


def _tile_pairs(
    pairs: Sequence[Tuple[Image.Image, Image.Image]], heading: str, font: Any, head_h: int, per_row: int, pad: int
) -> Image.Image:
    """Pairs of panels side by side, ``per_row`` pairs a row under a heading;
    a grey rule separates the pairs."""
    cw = max(max(a.width, b.width) for a, b in pairs)
    ch = max(max(a.height, b.height) for a, b in pairs)
    cols = max(1, min(per_row, len(pairs)))
    rows = math.ceil(len(pairs) / cols)
    pair_w = 2 * cw + pad
    gap = 4 * pad
    W = cols * pair_w + (cols - 1) * gap + 2 * pad
    H = head_h + rows * ch + (rows - 1) * gap + 2 * pad
    grid = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(grid)
    d.text((pad, pad), heading, fill=(0, 0, 0), font=font)
    for i, (a, b) in enumerate(pairs):
        r, q = divmod(i, cols)
        x = pad + q * (pair_w + gap)
        y = pad + head_h + r * (ch + gap)
        grid.paste(a, (x, y))
        grid.paste(b, (x + cw + pad, y))
        if q:
            d.line([(x - gap // 2, y), (x - gap // 2, y + ch)], fill=(170, 170, 170), width=2)
    return grid


_X_KEYS = ("iter", "iteration", "step")


def _read_records(source: Union[str, os.PathLike, Iterable[Mapping]]) -> List[Mapping]:
    if isinstance(source, (str, os.PathLike)):
        out = []
        with open(source, "r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"plot_losses: {source}:{n} is not valid JSON: {e}") from e
        return out
    return list(source)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step + 1e-9) + 1)]


def _loss_series(
    records: List[Mapping], keys: Optional[Sequence[str]], smooth: int
) -> Dict[str, Tuple[List[float], List[float]]]:
    """{loss name: (x values, y values)} of the finite numeric records, smoothed
    by a trailing moving average of ``smooth`` points."""
    if keys is None:
        seen: List[str] = []
        for r in records:
            for k, v in r.items():
                if k.startswith("loss") and isinstance(v, (int, float)) and not isinstance(v, bool) and k not in seen:
                    seen.append(k)
        keys = seen
    series: Dict[str, Tuple[List[float], List[float]]] = {}
    for k in keys:
        xs, ys = [], []
        for i, r in enumerate(records):
            v = r.get(k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                continue
            x = next((r[x] for x in _X_KEYS if isinstance(r.get(x), (int, float))), i)
            xs.append(float(x))
            ys.append(float(v))
        if smooth > 1 and ys:
            c = np.cumsum(np.insert(np.asarray(ys), 0, 0.0))
            ys = [
                float((c[i + 1] - c[max(0, i + 1 - smooth)]) / (i + 1 - max(0, i + 1 - smooth))) for i in range(len(ys))
            ]
        if xs:
            series[k] = (xs, ys)
    return series


def plot_losses(
    source: Union[str, os.PathLike, Iterable[Mapping]],
    png_path: Optional[str] = None,
    *,
    keys: Optional[Sequence[str]] = None,
    size: Tuple[int, int] = (800, 500),
    smooth: int = 1,
    title: str = "training losses",
) -> Image.Image:
    """Loss curves from JSONL metrics (a path) or a list of records, as a PNG.

    The x axis is ``iter``/``iteration``/``step`` (else the record index).
    ``keys`` default: every numeric field whose name starts with ``loss``.
    Records lacking a key or with a non-finite value are skipped for that
    curve. ``smooth`` > 1 draws a trailing moving average over that many points.
    """
    series = _loss_series([r for r in _read_records(source) if isinstance(r, Mapping)], keys, smooth)
    W, H = size
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = _font(12)
    left, right, top, bottom = 64, 170, 34, 44
    pw, ph = W - left - right, H - top - bottom
    d.text((left, 8), title, fill=(0, 0, 0), font=font)
    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    if not series:
        d.text((left + 10, top + 10), "no loss records", fill=(120, 0, 0), font=font)
    else:
        all_x = [x for xs, _ in series.values() for x in xs]
        all_y = [y for _, ys in series.values() for y in ys]
        x0, x1 = min(all_x), max(all_x)
        y0, y1 = min(0.0, min(all_y)), max(all_y)
        if x1 <= x0:
            x1 = x0 + 1.0
        if y1 <= y0:
            y1 = y0 + 1.0

        def px(x, y):
            return left + (x - x0) / (x1 - x0) * pw, top + ph - (y - y0) / (y1 - y0) * ph

        for yt in _nice_ticks(y0, y1):
            _, Y = px(x0, yt)
            d.line([(left, Y), (left + pw, Y)], fill=(225, 225, 225))
            d.text((4, Y - 6), f"{yt:.3g}", fill=(0, 0, 0), font=font)
        for xt in _nice_ticks(x0, x1):
            X, _ = px(xt, y0)
            d.line([(X, top + ph), (X, top + ph + 4)], fill=(0, 0, 0))
            d.text((X - 10, top + ph + 8), f"{xt:.6g}", fill=(0, 0, 0), font=font)
        d.text((left + pw // 2 - 10, H - 18), "iteration", fill=(0, 0, 0), font=font)
        for n, (k, (xs, ys)) in enumerate(series.items()):
            c = color_for(n)
            pts = [px(x, y) for x, y in zip(xs, ys)]
            if len(pts) == 1:
                X, Y = pts[0]
                d.ellipse([X - 2, Y - 2, X + 2, Y + 2], fill=c)
            else:
                d.line(pts, fill=c, width=2)
            ly = top + 6 + 18 * n
            d.line([(left + pw + 10, ly + 6), (left + pw + 30, ly + 6)], fill=c, width=3)
            d.text((left + pw + 36, ly), k, fill=(0, 0, 0), font=font)
    if png_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
        img.save(png_path)
    return img
