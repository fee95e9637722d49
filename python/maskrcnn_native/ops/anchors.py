"""Anchor generation: torchvision ``AnchorGenerator`` (default) and
detectron2's ``DefaultAnchorGenerator`` (``style="detectron2"``).

Anchors are XYXY boxes in image pixels. For one feature level:

* :func:`cell_anchors` gives the A = len(sizes) * len(aspect_ratios) boxes
  centred at 0 (aspect ratio = height / width).
* :func:`grid_anchors` shifts them over an H x W grid with the level's
  stride: Tensor[H * W * A, 4], location-major (row y, then column x), then
  anchor, exactly torchvision's order.
* :func:`multilevel_grid_anchors` does all levels at once and concatenates,
  which is what ``AnchorGenerator.forward`` returns for each image.

Caching (DESIGN section 6): with ``cache=True`` grids are kept in a small LRU
cache keyed on (cell anchors content, grid size, stride, offset) and every
call returns a fresh copy (``clone``), so a caller that modifies its anchors
in place cannot corrupt later calls. Measured on the 2-core dev machine for
the 5 FPN levels of an 800x1216 image (242,991 anchors, 3.9 MB): writing the
grid from scratch into a fresh tensor (~0.8-1.6 ms) is faster than copying a
cached one (~1.2-7 ms for the clone alone, plus key hashing), because the
kernel only writes memory while a copy reads and writes it. So the default
is ``cache=False`` (recompute into a fresh tensor, equally safe); the cache
remains available for callers whose grids are expensive to describe.
"""

import math
import threading
from collections import OrderedDict
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from . import _validate as _V
from ._lib import DTypeError, ShapeError, _C, check_tensor, is_numpy
from ._lib import stream as _stream

Array = Union[Tensor, np.ndarray]

_CACHE_SIZE = 32
_cache: "OrderedDict[tuple, Tensor]" = OrderedDict()
_cache_lock = threading.Lock()


def _floats(op: str, arg: str, v) -> List[float]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [_V.real(op, arg, v, finite=False)]
    if isinstance(v, Tensor) or is_numpy(v):
        v = v.tolist()
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{op}: {arg} must be a number or a sequence of numbers, got {v!r:.60}")
    try:
        items = list(v)
    except TypeError:
        raise TypeError(f"{op}: {arg} must be a number or a sequence of numbers, got {v!r:.60}") from None
    return [_V.real(op, f"{arg}[{i}]", x, finite=False) for i, x in enumerate(items)]


def _pair(op: str, arg: str, v, cast) -> Tuple:
    """(h, w) from a number or a pair: ints (grid sizes, refusing non-integers
    and sizes over MAX_IMAGE_SIDE) or finite floats (strides)."""
    if cast is int:

        def conv(name, x):
            return _V.integer(op, name, x, None, _V.MAX_IMAGE_SIDE, " cells")
    else:

        def conv(name, x):
            return _V.real(op, name, x, finite=False)

    if isinstance(v, Tensor) or is_numpy(v):
        v = v.tolist()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return conv(arg, v), conv(arg, v)
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{op}: {arg} must be a number or a pair (h, w), got {v!r:.60}")
    try:
        a, b = v
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {arg} must be a number or a pair (h, w), got {v!r:.60}") from None
    return conv(f"{arg}[0]", a), conv(f"{arg}[1]", b)


def _check_grid(op: str, cell, h: int, w: int) -> None:
    if h < 0 or w < 0:  # before the output is allocated
        raise ShapeError(f"{op}: grid_size must be non-negative, got ({h}, {w})")
    a = cell.shape[0] if getattr(cell, "ndim", 0) == 2 else 0
    _V.elements(op, "the anchors", (h * w * a, 4))


def cell_anchors(sizes, aspect_ratios, *, dtype=torch.float32, style: str = "torchvision") -> Array:
    """Zero-centred anchors of one level.

    Args:
        sizes: anchor sizes (sqrt of the area) in pixels, e.g. (32,) or (32, 40, 50).
        aspect_ratios: height / width ratios, e.g. (0.5, 1.0, 2.0).
        dtype: torch.float32|float64, or a NumPy float dtype (returns an ndarray).
        style: ``"torchvision"``: computed in ``dtype`` as
            ``AnchorGenerator.generate_anchors``: w = size / sqrt(r),
            h = size * sqrt(r), rounded to integers (half to even); order ratio
            major, size minor. ``"detectron2"``: computed in double,
            w = sqrt(size^2 / r), h = r * w, no rounding; order size major,
            ratio minor.
    Returns:
        Tensor[A, 4] (x1, y1, x2, y2) centred at 0.
    """
    s = _floats("cell_anchors", "sizes", sizes)
    r = _floats("cell_anchors", "aspect_ratios", aspect_ratios)
    if isinstance(dtype, torch.dtype):
        out = torch.empty((len(s) * len(r), 4), dtype=dtype)
    else:
        out = np.empty((len(s) * len(r), 4), dtype=np.dtype(dtype))
    _C.cell_anchors(s, r, style, out)
    return out


def _grid_key(cell: Tensor, h: int, w: int, sh: float, sw: float, offset: float) -> tuple:
    return (cell.dtype, tuple(cell.shape), cell.numpy().tobytes(), h, w, sh, sw, offset)


def _cached(key: tuple, make) -> Tensor:
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        hit = make()
        with _cache_lock:
            _cache[key] = hit
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return hit.clone()


def clear_anchor_cache() -> None:
    """Drops every cached grid."""
    with _cache_lock:
        _cache.clear()


@torch.library.custom_op("maskrcnn_native::grid_anchors", mutates_args=())
def _grid_anchors_op(
    cell_anchors: Tensor, grid_h: int, grid_w: int, stride_h: float, stride_w: float, offset: float, use_cache: bool
) -> Tensor:
    cell = cell_anchors.detach().contiguous()
    a = cell.shape[0] if cell.dim() == 2 else 0

    def make() -> Tensor:
        out = torch.empty((max(grid_h, 0) * max(grid_w, 0) * a, 4), dtype=cell.dtype, device=cell.device)
        _C.grid_anchors(cell, grid_h, grid_w, stride_h, stride_w, offset, out, stream=_stream(cell))
        return out

    if not use_cache or cell.device.type != "cpu" or cell.dim() != 2:
        return make()  # (also lets the native op raise on bad input)
    return _cached(_grid_key(cell, grid_h, grid_w, stride_h, stride_w, offset), make)


@_grid_anchors_op.register_fake
def _(cell_anchors, grid_h, grid_w, stride_h, stride_w, offset, use_cache):
    torch._check(
        cell_anchors.dim() == 2 and cell_anchors.shape[1] == 4,
        lambda: "grid_anchors: cell_anchors must have shape [A, 4]",
    )
    return cell_anchors.new_empty((grid_h * grid_w * cell_anchors.shape[0], 4))


def grid_anchors(
    cell_anchors: Tensor, grid_size: List[int], stride: List[float], offset: float = 0.0, cache: bool = False
) -> Tensor:
    """Cell anchors shifted over a feature grid.

    Args:
        cell_anchors: Tensor[A, 4] float32|float64 from :func:`cell_anchors`
            (or NumPy).
        grid_size: (H, W) of the feature map (or one int for both).
        stride: pixels per feature cell, a number or (stride_h, stride_w);
            torchvision uses image_size // grid_size per axis.
        offset: 0.0 (torchvision, detectron2 default) or 0.5 (detectron2
            ``ANCHOR_GENERATOR.OFFSET``): the shift of column x is
            (offset + x) * stride_w, likewise rows.
    Returns:
        Tensor[H * W * A, 4]: row (y * W + x) * A + a is cell_anchors[a] +
        (sx, sy, sx, sy). Always a fresh tensor the caller may modify; with
        ``cache=True`` it is a copy of a grid cached per (cell anchors, grid,
        stride, offset) (see the module docstring for why that is off by default).
        Scriptable: there grid_size is [H, W] and stride [sh, sw] (floats).
    """
    if torch.jit.is_scripting():
        return torch.ops.maskrcnn_native.grid_anchors(
            cell_anchors, grid_size[0], grid_size[1], stride[0], stride[1], offset, cache
        )
    h, w = _pair("grid_anchors", "grid_size", grid_size, int)
    sh, sw = _pair("grid_anchors", "stride", stride, float)
    offset = _V.real("grid_anchors", "offset", offset, finite=False)
    _V.array("grid_anchors", "cell_anchors", cell_anchors)
    if isinstance(cell_anchors, Tensor):
        check_tensor("grid_anchors", "cell_anchors", cell_anchors, (torch.float32, torch.float64))
    _check_grid("grid_anchors", cell_anchors, h, w)
    if is_numpy(cell_anchors):
        cell = np.ascontiguousarray(cell_anchors)
        a = cell.shape[0] if cell.ndim == 2 else 0
        out = np.empty((max(h, 0) * max(w, 0) * a, 4), dtype=cell.dtype)
        _C.grid_anchors(cell, h, w, sh, sw, float(offset), out)
        return out
    if not isinstance(cell_anchors, Tensor):
        raise TypeError(
            f"grid_anchors: cell_anchors must be a Tensor or a NumPy array, got {type(cell_anchors).__name__}"
        )
    return torch.ops.maskrcnn_native.grid_anchors(cell_anchors, h, w, sh, sw, float(offset), bool(cache))


@torch.library.custom_op("maskrcnn_native::multilevel_grid_anchors", mutates_args=())
def _multilevel_op(
    cell_anchors: List[Tensor], grid_sizes: List[int], strides: List[float], offset: float, use_cache: bool
) -> Tensor:
    cells = [c.detach().contiguous() for c in cell_anchors]
    n = len(cells)
    hs, ws = grid_sizes[0::2], grid_sizes[1::2]
    shs, sws = strides[0::2], strides[1::2]
    if not (len(hs) == len(ws) == len(shs) == len(sws) == n) or n == 0:
        raise ValueError(
            f"multilevel_grid_anchors: need one grid size and one stride per level, got "
            f"{n} cell anchor sets, {len(grid_sizes) // 2} grid sizes, {len(strides) // 2} strides"
        )
    if not math.isfinite(offset):  # the per-level kernel's own check would name grid_anchors
        raise ShapeError(f"multilevel_grid_anchors: offset must be finite, got {offset}")
    for i, c in enumerate(cells):
        if c.dtype != cells[0].dtype:
            raise TypeError(
                f"multilevel_grid_anchors: cell_anchors[{i}] must have the same dtype as "
                f"cell_anchors[0] ({cells[0].dtype}), got {c.dtype}"
            )

    def rows(i: int) -> int:
        a = cells[i].shape[0] if cells[i].dim() == 2 else 0
        return max(hs[i], 0) * max(ws[i], 0) * a

    def make() -> Tensor:
        counts = [rows(i) for i in range(n)]
        out = torch.empty((sum(counts), 4), dtype=cells[0].dtype, device=cells[0].device)
        start = 0
        for i in range(n):
            _C.grid_anchors(
                cells[i], hs[i], ws[i], shs[i], sws[i], offset, out[start : start + counts[i]], stream=_stream(out)
            )
            start += counts[i]
        return out

    if not use_cache or any(c.device.type != "cpu" or c.dim() != 2 for c in cells):
        return make()
    key = ("multi", offset) + tuple(_grid_key(cells[i], hs[i], ws[i], shs[i], sws[i], offset) for i in range(n))
    return _cached(key, make)


@_multilevel_op.register_fake
def _(cell_anchors, grid_sizes, strides, offset, use_cache):
    total = 0
    for i, c in enumerate(cell_anchors):
        total += grid_sizes[2 * i] * grid_sizes[2 * i + 1] * c.shape[0]
    return cell_anchors[0].new_empty((total, 4))


def multilevel_grid_anchors(
    cell_anchors: List[Tensor],
    grid_sizes: List[List[int]],
    strides: List[List[float]],
    offset: float = 0.0,
    cache: bool = False,
) -> Tensor:
    """All FPN levels at once: ``torch.cat([grid_anchors(c, g, s) ...])``.

    This is the per-image output of torchvision's ``AnchorGenerator.forward``
    (with strides = image_size // grid_size per level), written into one
    tensor by one native call per level (with ``cache=True``: a copy of the
    whole result cached per inputs).

    Args:
        cell_anchors: one Tensor[A_l, 4] per level (same dtype).
        grid_sizes: one (H_l, W_l) per level.
        strides: one stride (number or (sh, sw)) per level.
        offset: as in :func:`grid_anchors`.
        cache: as in :func:`grid_anchors`.
    Returns:
        Tensor[sum_l H_l * W_l * A_l, 4], a fresh tensor. Scriptable: there
        grid_sizes is a list of [H, W] and strides a list of [sh, sw] (floats).
    """
    flat_g: List[int] = []
    flat_s: List[float] = []
    if torch.jit.is_scripting():
        for g in grid_sizes:
            flat_g.extend(g)
        for st in strides:
            flat_s.extend(st)
        return torch.ops.maskrcnn_native.multilevel_grid_anchors(cell_anchors, flat_g, flat_s, offset, cache)
    for g in grid_sizes:
        flat_g.extend(_pair("multilevel_grid_anchors", "grid_sizes", g, int))
    for i, s in enumerate(strides):
        sh, sw = _pair("multilevel_grid_anchors", "strides", s, float)
        if not (math.isfinite(sh) and math.isfinite(sw) and sh > 0 and sw > 0):
            raise ShapeError(f"multilevel_grid_anchors: strides[{i}] must be positive and finite, got ({sh}, {sw})")
        flat_s.extend((sh, sw))
    for i in range(0, len(flat_g), 2):
        _check_grid("multilevel_grid_anchors", None, flat_g[i], flat_g[i + 1])
    offset = _V.real("multilevel_grid_anchors", "offset", offset, finite=False)
    if not isinstance(cell_anchors, (list, tuple)):
        raise DTypeError(
            f"multilevel_grid_anchors: cell_anchors must be a list of Tensor[A, 4], got {type(cell_anchors).__name__}"
        )
    for i, c in enumerate(cell_anchors):
        check_tensor("multilevel_grid_anchors", f"cell_anchors[{i}]", c, (torch.float32, torch.float64))
        if c.dim() != 2 or c.shape[1] != 4:
            raise ShapeError(f"multilevel_grid_anchors: cell_anchors[{i}] must have shape [A, 4], got {list(c.shape)}")
    if isinstance(cell_anchors, (list, tuple)):
        total = 0
        for i, c in enumerate(cell_anchors):
            if isinstance(c, Tensor) and c.dim() == 2 and 2 * i + 1 < len(flat_g):
                total += flat_g[2 * i] * flat_g[2 * i + 1] * c.shape[0]
        _V.elements("multilevel_grid_anchors", "the anchors", (total, 4))
    return torch.ops.maskrcnn_native.multilevel_grid_anchors(list(cell_anchors), flat_g, flat_s, offset, bool(cache))
