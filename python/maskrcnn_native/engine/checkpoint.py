"""Training checkpoints: atomic writes, keep-last-k, exact resume.

A checkpoint is ``torch.save`` of a dict holding only tensors, numbers,
strings, None and lists/dicts of them, so it loads with
``torch.load(weights_only=True)`` (nothing is unpickled):

- ``model``: the model's state_dict
- ``optimizer``: ``torch.optim.SGD.state_dict()`` (momentum buffers)
- ``scheduler``: the lr schedule's state
- ``iteration``: completed iterations
- ``rng``: torch (CPU and CUDA), numpy and python ``random`` states
- ``data``: the sampler cursor (position in the global order, epoch, seed)
- ``grad_scaler``: fp16 GradScaler state (or None)
- ``config``: the TrainConfig as nested dicts (for reference)

Writes go to ``.checkpoint_<iter>.pt.<random>.tmp`` and are renamed into
place, so a kill mid-write leaves at worst such a temporary, never a partial
checkpoint; the next write in the directory deletes those leftovers.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

__all__ = [
    "capture_rng_state",
    "restore_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "remove_stale_temporaries",
]

_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
_TMP = re.compile(r"^\.checkpoint_\d+\.pt\..+\.tmp$")


def capture_rng_state() -> Dict[str, Any]:
    """Every global RNG the training loop touches, as tensors and lists."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "internal": [int(x) for x in py_state[1]],
            "gauss_next": py_state[2],
        },
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(output_dir: Union[str, Path], iteration: int) -> Path:
    return Path(output_dir) / f"checkpoint_{iteration:07d}.pt"


def save_checkpoint(state: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Writes ``state`` to ``path`` atomically: a temporary file in the same
    directory, flushed and fsync'ed, then ``os.replace``. A reader (or a
    process killed mid-write) never sees a partial file under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def remove_stale_temporaries(output_dir: Union[str, Path]) -> List[Path]:
    """Deletes the ``.checkpoint_*.tmp`` files that writes killed midway left
    in ``output_dir``. Only the process that writes checkpoints (rank 0) calls
    it, before it starts its next write, so no live temporary is touched."""
    d = Path(output_dir)
    removed = []
    if d.is_dir():
        for p in d.iterdir():
            if _TMP.match(p.name):
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def load_checkpoint(path: Union[str, Path], map_location: Any = "cpu") -> Dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True`` (no arbitrary unpickling);
    an unreadable file raises ``WeightsFileError`` naming it."""
    import pickle
    import warnings

    from .._io import WeightsFileError, unpickler_reason

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(p, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        raise WeightsFileError(
            f"checkpoint {p}: refusing it: it holds more than tensors and containers ({unpickler_reason(e)})"
        ) from e
    except Exception as e:
        raise WeightsFileError(f"checkpoint {p} cannot be read ({type(e).__name__}: {e})") from e


def list_checkpoints(output_dir: Union[str, Path]) -> List[Path]:
    """Checkpoints in ``output_dir``, oldest first (by iteration)."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Union[str, Path]) -> Optional[Path]:
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1] if ckpts else None


def prune_checkpoints(output_dir: Union[str, Path], keep_last: int) -> List[Path]:
    """Deletes all but the newest ``keep_last`` checkpoints; returns the deleted."""
    ckpts = list_checkpoints(output_dir)
    doomed = ckpts[: max(0, len(ckpts) - max(1, keep_last))]
    for p in doomed:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    return doomed
