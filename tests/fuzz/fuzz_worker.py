"""Executes fuzz cases (plain, picklable specs) in a worker process and
classifies each outcome; test_fuzz_ops.py generates the specs with
Hypothesis and runs them here through a process pool, so a crash kills a
worker, not the run.

A spec is ``(op, args, kwargs)``; each argument is a recipe:

- ``("t", dtype, shape, fill, view, device)``: a torch tensor
- ``("q", shape)``: a quantized tensor
- ``("np", dtype, shape, fill, view)``: a NumPy array
- ``("list", [recipes])``: a Python list of materialised recipes
- ``("py", value)``: a Python value as is

Outcome of one call: ``ok`` (returned; checked against ops/reference.py when
the inputs are well-formed), ``clean`` (TypeError/ValueError/IndexError whose
message names the op), ``unnamed`` (a documented class, message without the
op), ``bad_class`` (any other exception), ``wrong`` (returned something that
differs from the reference).
"""

from __future__ import annotations

import math
import traceback
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

DOCUMENTED = (TypeError, ValueError, IndexError)

_TORCH_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64,
    "bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "complex64": torch.complex64,
}
_NP_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64, "int32": np.int32,
              "int64": np.int64, "bool": np.bool_, "longdouble": np.longdouble, "complex64": np.complex64}


def _fill(shape, fill: str, seed: int) -> np.ndarray:
    """Float64 values of ``shape`` for the recipe ``fill``."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if len(shape) else 1
    if fill == "randn":
        a = rng.standard_normal(n)
    elif fill == "unit":
        a = rng.random(n)
    elif fill == "boxes":  # XYXY boxes inside ~[0, 40] (or K x 5 RoIs with a batch index)
        a = rng.random(n) * 40
        if len(shape) == 2 and shape[1] in (4, 5):
            b = a.reshape(shape)
            o = shape[1] - 4
            if o:
                b[:, 0] = rng.integers(0, 2, shape[0])
            x1, y1 = b[:, o], b[:, o + 1]
            b[:, o + 2] = x1 + rng.random(shape[0]) * 30
            b[:, o + 3] = y1 + rng.random(shape[0]) * 30
            a = b.ravel()
    elif fill == "special":  # NaN, +-inf, 1e30, -1, huge batch indices
        pool = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -1.0, 0.0, 1.0, 2.5, 1e38, 7.0])
        a = pool[rng.integers(0, len(pool), n)]
    elif fill == "ints":
        a = rng.integers(-3, 5, n).astype(np.float64)
    elif fill == "zeros":
        a = np.zeros(n)
    else:
        raise AssertionError(fill)
    return a.reshape(shape)


def _torch(dtype: str, shape, fill: str, view: str, device: str, seed: int):
    dt = _TORCH_DTYPES[dtype]
    base_shape = list(shape)
    if view == "strided" and base_shape:
        base_shape[-1] = base_shape[-1] * 2
    vals = _fill(tuple(base_shape), fill, seed)
    if device == "meta":
        return torch.empty(shape, dtype=dt, device="meta")
    if device == "cuda":
        if not torch.cuda.is_available():
            return ("skip", "no CUDA")
        return torch.from_numpy(vals).to(dt).to("cuda")
    t = torch.from_numpy(np.ascontiguousarray(vals))
    t = t.to(dt) if dt is not torch.complex64 else t.to(torch.complex64)
    if view == "strided" and t.dim():
        t = t[..., ::2]
    elif view == "channels_last" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    elif view == "transposed" and t.dim() >= 2:
        t = t.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif view == "expanded" and t.dim() >= 1 and t.shape[0] >= 1:
        t = t[:1].expand(*t.shape)
    elif view == "neg" and dt.is_floating_point:
        t = torch._neg_view(-t)
    elif view == "requires_grad" and dt.is_floating_point:
        t = t.requires_grad_()
    return t


def _numpy(dtype: str, shape, fill: str, view: str, seed: int):
    dt = _NP_DTYPES[dtype]
    vals = _fill(tuple(shape), fill, seed).astype(dt)
    if view == "negstride" and vals.ndim:
        vals = np.ascontiguousarray(vals[::-1])[::-1]
    elif view == "zerostride" and vals.ndim and vals.shape[0] >= 1:
        vals = np.broadcast_to(vals[:1], vals.shape)
    elif view == "readonly":
        vals = vals.copy()
        vals.setflags(write=False)
    elif view == "misaligned":
        raw = np.zeros(vals.nbytes + 1, np.uint8)
        vals = np.frombuffer(raw.data, dtype=dt, count=vals.size, offset=1).reshape(vals.shape)
    elif view == "byteswapped":
        vals = vals.astype(vals.dtype.newbyteorder(">" if vals.dtype.byteorder in "=<|" else "<"))
    elif view == "noncontig" and vals.ndim >= 2:
        vals = np.asfortranarray(vals)
    return vals


def materialise(recipe, seed: int) -> Any:
    kind = recipe[0]
    if kind == "t":
        return _torch(*recipe[1:], seed=seed)
    if kind == "q":
        return torch.quantize_per_tensor(torch.rand(recipe[1]), 0.1, 0, torch.quint8)
    if kind == "np":
        return _numpy(*recipe[1:], seed=seed)
    if kind == "list":
        return [materialise(r, seed + 17 * i) for i, r in enumerate(recipe[1])]
    if kind == "py":
        return recipe[1]
    raise AssertionError(kind)


def _call(op: str, args, kwargs):
    import maskrcnn_native as mn

    if op == "roi_align_backward":
        out = mn.ops.roi_align(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.sum().backward()
        return out
    return getattr(mn.ops, op)(*args, **kwargs)


def _plain(recipe) -> bool:
    """Well-formed for a reference comparison: a finite float32/float64 tensor."""
    if recipe[0] == "t":
        return recipe[1] in ("float32", "float64") and recipe[3] in ("randn", "unit", "boxes", "zeros") \
            and recipe[5] == "cpu"
    if recipe[0] == "list":
        return all(_plain(r) for r in recipe[1])
    return recipe[0] == "py"


def _reference_check(op: str, spec, args, kwargs, out) -> str:
    """'' when ``out`` matches ops/reference.py (or no check applies), else a description."""
    from maskrcnn_native.ops import reference as ref

    _, rargs, rkw = spec
    if not all(_plain(r) for r in list(rargs) + list(rkw.values())):
        return ""
    try:
        if op in ("roi_align", "roi_pool", "roi_warp"):
            exp = getattr(ref, op)(*[a.detach() if torch.is_tensor(a) else a for a in args], **kwargs)
            tol = 1e-4 if args[0].dtype == torch.float32 else 1e-9
            if exp.shape != out.shape or not torch.allclose(out.detach().to(exp.dtype), exp, atol=tol, rtol=tol):
                return f"{op}: max |diff| {(out.detach().to(exp.dtype) - exp).abs().max().item() if exp.shape == out.shape else 'shape'}"
        elif op == "nms":
            exp = ref.nms(*args, **kwargs)
            if not torch.equal(out, exp):
                return f"nms: {out.tolist()} vs reference {exp.tolist()}"
        elif op == "box_iou":
            exp = ref.box_iou(*args)
            if not torch.allclose(out.to(exp.dtype), exp, atol=1e-6, equal_nan=True):
                return "box_iou differs"
        elif op == "grid_anchors":
            exp = ref.grid_anchors(*args, **kwargs)
            if not torch.allclose(out, exp.to(out.dtype)):
                return "grid_anchors differs"
    except Exception:  # the reference cannot evaluate this input: no verdict
        return ""
    return ""


def run_case(spec, seed: int) -> Dict[str, Any]:
    op, rargs, rkw = spec
    name = "roi_align" if op == "roi_align_backward" else op
    try:
        args = [materialise(r, seed + i) for i, r in enumerate(rargs)]
        kwargs = {k: materialise(r, seed + 100 + i) for i, (k, r) in enumerate(sorted(rkw.items()))}
    except Exception as e:  # a recipe this machine cannot build (e.g. CUDA): not a call
        return {"outcome": "skipped", "detail": f"{type(e).__name__}: {e}"}
    if any(isinstance(a, tuple) and a and a[0] == "skip" for a in list(args) + list(kwargs.values())):
        return {"outcome": "skipped", "detail": "no CUDA"}
    try:
        out = _call(op, args, kwargs)
    except DOCUMENTED as e:
        cls = type(e).__name__
        msg = str(e)
        if name in msg or op in msg:
            return {"outcome": "clean", "cls": cls}
        return {"outcome": "unnamed", "cls": cls, "detail": msg[:300]}
    except BaseException as e:  # noqa: BLE001 - classifying everything is the point
        return {"outcome": "bad_class", "cls": type(e).__name__, "detail": f"{e}"[:300] + "\n" +
                "".join(traceback.format_exc(limit=-3))[-800:]}
    wrong = _reference_check(op, spec, args, kwargs, out)
    if wrong:
        return {"outcome": "wrong", "detail": wrong}
    return {"outcome": "ok"}


def run_batch(batch: List[Tuple[Any, int]]) -> List[Dict[str, Any]]:
    import maskrcnn_native as mn

    mn.set_num_threads(1)
    torch.set_num_threads(1)
    return [run_case(spec, seed) for spec, seed in batch]
