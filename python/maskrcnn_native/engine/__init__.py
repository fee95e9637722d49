"""Training engine: config, the training loop, checkpoints, multi-process.

``mn.train(config)`` trains a model described by a :class:`TrainConfig`
(see :mod:`.config`); ``load_config(path, overrides)`` reads one from YAML or
JSON plus dotted overrides.
"""

from .config import (
    ConfigError,
    DataSection,
    ModelSection,
    SolverSection,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)
from .trainer import NonFiniteLossError, TrainResult, build_datasets, build_model, train

__all__ = [
    "ConfigError",
    "DataSection",
    "ModelSection",
    "NonFiniteLossError",
    "SolverSection",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "build_datasets",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "train",
]
