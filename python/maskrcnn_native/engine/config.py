"""Training configuration: frozen dataclasses, loaded from YAML/JSON plus
dotted overrides (``solver.lr=0.01``), type-checked against the field types.

A config file mirrors the dataclasses::

    model:  {preset: R18-FPN, overrides: {min_size: 160}}
    data:   {source: shapes, num_images: 200, image_size: 160, seed: 0}
    solver: {lr: 0.02, max_iter: 600, steps: [450, 550], batch_size: 4}
    output_dir: runs/shapes

Under ``model``, any key that is not a field of :class:`ModelSection`
(``model.min_size=160``) is a field of ``mn.ModelConfig`` and goes to
``model.overrides``; it is checked against ``mn.ModelConfig`` when the model
package is importable.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Literal, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "ConfigError",
    "DataSection",
    "ModelSection",
    "SolverSection",
    "TrainConfig",
    "load_config",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
]


class ConfigError(ValueError):
    """A config file or override is malformed: unknown key, wrong type."""


@dataclass(frozen=True)
class ModelSection:
    """Which model to train.

    preset: a named preset of ``mn.Model`` ("R18-FPN", "R50-FPN", "R50-FPN-KP", ...).
    weights: optional initial weights: a native ``.safetensors`` file (loaded
        non-strictly; tensors whose shape differs, e.g. class-specific
        predictors, keep their fresh initialisation) or a torchvision ``.pth``
        (converted with ``mn.Model.from_torchvision``).
    num_classes: including background; ``None`` = taken from the dataset.
    overrides: fields of ``mn.ModelConfig`` that replace the preset's values.
    init_bn_from_data: when training from scratch (no weights, no checkpoint),
        set the frozen BatchNorm statistics from a forward pass over a few
        training images (see engine/bn_init.py).
    """

    preset: str = "R18-FPN"
    weights: Optional[str] = None
    num_classes: Optional[int] = None
    init_bn_from_data: bool = False
    overrides: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSection:
    """Where the training (and evaluation) images come from.

    source: "shapes" (synthetic, generated on the fly) or "coco" (a COCO-format
        json plus an image directory).
    num_images, image_size, seed, keypoints: the synthetic training split.
    eval_num_images, eval_seed: the held-out synthetic split (a different seed).
    image_dir, annotation_json: the COCO training set.
    eval_image_dir, eval_annotation_json: the COCO evaluation set (optional).
    horizontal_flip: random left/right flip while training (with the keypoint
        flip map when keypoints are present).
    num_workers: DataLoader worker processes per training process.
    skip_invalid: COCO source: skip (and count) malformed annotations and
        unreadable images instead of stopping with an error naming them.
    """

    source: Literal["shapes", "coco"] = "shapes"
    num_images: int = 200
    image_size: int = 160
    seed: int = 0
    keypoints: bool = False
    eval_num_images: int = 50
    eval_seed: int = 1000
    image_dir: Optional[str] = None
    annotation_json: Optional[str] = None
    eval_image_dir: Optional[str] = None
    eval_annotation_json: Optional[str] = None
    horizontal_flip: bool = True
    num_workers: int = 0
    skip_invalid: bool = False


@dataclass(frozen=True)
class SolverSection:
    """SGD with momentum, linear warmup and step decay.

    lr: base learning rate for the *global* batch (batch_size x processes x
        grad_accum_steps); it is not rescaled automatically.
    warmup_iters / warmup_factor: the lr ramps linearly from
        lr * warmup_factor at iteration 0 to lr at warmup_iters.
    steps / gamma: the lr is multiplied by gamma at each iteration in steps.
    batch_size: images per process per micro-step.
    grad_accum_steps: micro-steps whose gradients are averaged per update.
    clip_grad_norm: clip the global gradient norm to this value (None = off).
    amp: "none", "bf16" (CPU autocast) or "fp16" (CUDA autocast + GradScaler).
    """

    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    steps: Tuple[int, ...] = ()
    gamma: float = 0.1
    max_iter: int = 1000
    batch_size: int = 2
    grad_accum_steps: int = 1
    clip_grad_norm: Optional[float] = None
    amp: Literal["none", "bf16", "fp16"] = "none"


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``mn.train`` needs.

    output_dir: checkpoints, metrics.jsonl, loss.png, model.safetensors.
    seed: seeds the data order, augmentation and the model's sampling.
    checkpoint_period: save every N iterations (and at the end).
    keep_last: how many periodic checkpoints to keep.
    resume: continue from the newest checkpoint in output_dir if there is one.
    log_period: append metrics to metrics.jsonl every N iterations.
    eval_at_end: evaluate on the held-out split after training.
    eval_batch_size: images per forward pass in evaluation.
    device: "auto" (CUDA when available), "cpu" or "cuda".
    progress: show a tqdm progress bar (rank 0 only).
    find_unused_parameters: passed to DistributedDataParallel.
    adaptive_threads: between iterations, use fewer CPU threads while other
        processes keep this process's CPUs busy, and all of them again once they
        stop (:class:`maskrcnn_native._threads.LoadAwareThreads`). Off by default:
        results are bit-reproducible only at a fixed thread count. The command
        line turns it on unless ``--threads`` or ``OMP_NUM_THREADS`` is given.
    """

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    solver: SolverSection = field(default_factory=SolverSection)
    output_dir: str = "output"
    seed: int = 0
    checkpoint_period: int = 500
    keep_last: int = 3
    resume: bool = True
    log_period: int = 20
    eval_at_end: bool = True
    eval_batch_size: int = 4
    device: str = "auto"
    progress: bool = True
    find_unused_parameters: bool = True
    adaptive_threads: bool = False

    def replace(self, **changes: Any) -> "TrainConfig":
        """Returns a copy with dotted keys replaced: ``cfg.replace(**{"solver.lr": 0.01})``."""
        return apply_overrides(self, changes)

    def to_dict(self) -> Dict[str, Any]:
        return config_to_dict(self)


_SECTIONS = {"model": ModelSection, "data": DataSection, "solver": SolverSection}


# ----------------------------------------------------------------------------
# type checking


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; converts lossless cases
    (int -> float, list -> tuple). Raises ConfigError naming ``key``."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"config key '{key}': expected one of {list(args)}, got {value!r}")
    if origin in (tuple, Tuple):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"config key '{key}': expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    if origin in (dict, Dict, Mapping) or tp in (dict, Dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}': expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def _hints(cls: type) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _model_config_fields() -> Optional[Dict[str, Any]]:
    """Field name -> annotation of mn.ModelConfig, or None when the model
    package is not importable (then overrides are passed through unchecked)."""
    try:
        from .. import modeling  # type: ignore

        ModelConfig = modeling.ModelConfig
    except Exception:
        return None
    if not dataclasses.is_dataclass(ModelConfig):
        return None
    try:
        hints = typing.get_type_hints(ModelConfig)
    except Exception:
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(ModelConfig)}


def _check_model_override(name: str, value: Any) -> Any:
    fields = _model_config_fields()
    if fields is None:
        return value
    if name not in fields:
        raise ConfigError(
            f"unknown config key 'model.{name}': not a field of ModelSection "
            f"({', '.join(f.name for f in dataclasses.fields(ModelSection))}) "
            f"nor of mn.ModelConfig ({', '.join(sorted(fields))})"
        )
    try:
        return _coerce(value, fields[name], f"model.{name}")
    except ConfigError:
        raise
    except Exception:  # exotic annotation we cannot check: pass through
        return value


def _build_section(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix}': expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: Dict[str, Any] = {}
    extra_overrides: Dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            if cls is ModelSection:
                extra_overrides[k] = _check_model_override(k, v)
                continue
            raise ConfigError(
                f"unknown config key '{key}' (valid keys{' in ' + repr(prefix) if prefix else ''}: {', '.join(names)})"
            )
        if k in _SECTIONS and cls is TrainConfig:
            kwargs[k] = _build_section(_SECTIONS[k], v or {}, k)
        elif cls is ModelSection and k == "overrides":
            v = _coerce(v or {}, hints[k], key)
            kwargs[k] = {ok: _check_model_override(ok, ov) for ok, ov in v.items()}
        else:
            kwargs[k] = _coerce(v, hints[k], key)
    if extra_overrides:
        merged = dict(kwargs.get("overrides", {}))
        merged.update(extra_overrides)
        kwargs["overrides"] = merged
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Builds a TrainConfig from nested dicts; missing keys take defaults."""
    return _build_section(TrainConfig, data or {}, "")


def config_to_dict(cfg: Any) -> Dict[str, Any]:
    """Nested plain dicts/lists (JSON- and YAML-safe)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def _parse_scalar(text: str) -> Any:
    """Parses an override value with YAML rules: 0.01 -> float, [1, 2] -> list,
    true -> bool, null -> None, anything else -> str."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_override(item: str) -> Tuple[str, Any]:
    """``"solver.lr=0.01"`` -> ``("solver.lr", 0.01)``."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    return key, _parse_scalar(value.strip())


def apply_overrides(cfg: TrainConfig, overrides: Union[Mapping[str, Any], Sequence[str], None]) -> TrainConfig:
    """Returns ``cfg`` with dotted keys replaced. ``overrides`` is a mapping
    (``{"solver.lr": 0.01}``) or ``["solver.lr=0.01", ...]`` strings."""
    if not overrides:
        return cfg
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = [parse_override(s) for s in overrides]
    data = config_to_dict(cfg)
    for key, value in items:
        parts = key.split(".")
        node = data
        for i, p in enumerate(parts[:-1]):
            if p == "overrides" and i == 1 and parts[0] == "model":
                node = node.setdefault("overrides", {})
                continue
            if p not in node or not isinstance(node[p], dict):
                valid = ", ".join(k for k in node)
                raise ConfigError(f"unknown config key '{'.'.join(parts[: i + 1])}' (valid keys: {valid})")
            node = node[p]
        last = parts[-1]
        if parts[0] == "model" and len(parts) == 2 and last not in (f.name for f in dataclasses.fields(ModelSection)):
            node.setdefault("overrides", {})[last] = value
            continue
        if isinstance(node.get(last), dict) and last in _SECTIONS and len(parts) == 1:
            raise ConfigError(f"config key '{key}' is a section; set one of its keys")
        node[last] = value
    return config_from_dict(data)


def load_config(
    path: Union[str, Path, None] = None,
    overrides: Union[Mapping[str, Any], Sequence[str], None] = None,
) -> TrainConfig:
    """Reads a YAML (``.yaml``/``.yml``) or JSON file, then applies overrides."""
    data: Dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config file {p}: {e}") from e
        if p.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(f"config file {p} is not valid JSON: {e}") from e
        else:
            import yaml

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        try:
            cfg = config_from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None
    else:
        cfg = TrainConfig()
    return apply_overrides(cfg, overrides)


def save_config(cfg: TrainConfig, path: Union[str, Path]) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
