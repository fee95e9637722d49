"""Reading untrusted files: weights (safetensors, torchvision ``.pth``) and
model configs, with one clear error that names the file.

Nothing here unpickles: ``.pth`` files go through
``torch.load(weights_only=True)``, whose restricted unpickler builds only
tensors and plain containers and refuses every other global (a malicious
``__reduce__`` never runs). Library errors (``SafetensorError``,
``JSONDecodeError``, ``UnpicklingError``...) become :class:`WeightsFileError`
naming the file and what was wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar, Union

__all__ = [
    "WeightsFileError",
    "read_safetensors",
    "parse_config_json",
    "build_config",
    "torch_load_weights",
    "one_line_error",
]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class WeightsFileError(ValueError):
    """A weights or config file that cannot be used (names the file)."""


def _exists(path: Path, what: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file: {path}")


def read_safetensors(path: PathLike, what: str) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(tensors, metadata) of a safetensors file; ``what`` names the caller in errors."""
    from safetensors import safe_open

    p = Path(path)
    _exists(p, what)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # SafetensorError, OSError, ValueError from a corrupt header...
        size = p.stat().st_size
        raise WeightsFileError(
            f"{what}: {p} is not a readable safetensors file ({size} bytes; "
            f"{type(e).__name__}: {e}); was it truncated or written by something else?"
        ) from e
    return tensors, meta


def parse_config_json(text: Union[str, bytes], source: str, what: str) -> Dict[str, Any]:
    """A config stored as JSON text (a file's content or safetensors metadata) -> dict."""
    try:
        cfg = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise WeightsFileError(f"{what}: the model config in {source} is not valid JSON: {e}") from e
    if not isinstance(cfg, dict):
        raise WeightsFileError(f"{what}: the model config in {source} must be a JSON object, got {type(cfg).__name__}")
    return cfg


def build_config(from_dict: Callable[[Dict[str, Any]], T], cfg: Dict[str, Any], source: str, what: str) -> T:
    """``from_dict(cfg)``, its TypeError/ValueError (unknown keys, bad values)
    re-raised naming ``source``."""
    try:
        return from_dict(cfg)
    except (TypeError, ValueError) as e:
        raise WeightsFileError(f"{what}: the model config in {source} does not fit: {e}") from e


def unpickler_reason(e: BaseException) -> str:
    """The specific line of torch's weights-only refusal ("Unsupported global:
    GLOBAL builtins.open ..."), without its advice to turn the check off."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[-1].strip()
            if rest:
                return rest
            if i + 1 < len(lines):
                return lines[i + 1]
    return lines[0] if lines else repr(e)


def torch_load_weights(path: PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; errors name the file.
    A pickle that needs anything beyond tensors and containers is refused
    before any of its code runs."""
    import pickle
    import warnings

    import torch

    p = Path(path)
    _exists(p, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol 4 ..."
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsFileError(
            f"{what}: refusing {p}: it holds more than tensors and containers, and nothing in it is "
            f"unpickled ({unpickler_reason(e)})"
        ) from e
    except Exception as e:  # zip errors, EOF, RuntimeError of a truncated archive...
        raise WeightsFileError(f"{what}: cannot read {p} as a torch checkpoint ({type(e).__name__}: {e})") from e


def one_line_error(e: BaseException) -> Optional[str]:
    """The message to print for an expected user-facing failure (a dataset or
    weights-file error), as one line; None for anything else (a bug: let the
    traceback show)."""
    from .data.coco import DatasetError

    if not isinstance(e, (DatasetError, WeightsFileError, FileNotFoundError)):
        return None
    text = str(e)
    if "Original Traceback" in text:  # re-raised from a DataLoader worker process
        lines = [line for line in text.strip().splitlines() if line.strip()]
        text = lines[-1]
        cls = type(e).__name__ + ": "
        if cls in text:
            text = text.split(cls, 1)[1]
    text = " ".join(text.split())
    kind = "data error" if isinstance(e, DatasetError) else "file error"
    return f"{kind}: {text}"
