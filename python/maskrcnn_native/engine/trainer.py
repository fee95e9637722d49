"""The training loop behind ``mn.train(config)``.

Reproducibility and exact resume
--------------------------------
- Data order and augmentation come from :mod:`.sampler`: a pure function of
  ``(seed, global position)``.
- The model's own randomness (anchor / RoI sampling, multi-scale size choice)
  draws from torch's global RNG, which is re-seeded before every micro-batch
  from ``(seed, iteration, slot)`` where ``slot = micro_step * world + rank``.
  So a run split over 2 processes and a 1-process run with 2 accumulation
  steps compute the same losses and gradients, and a resumed run continues
  exactly where the interrupted one stopped.
- A checkpoint (every ``checkpoint_period`` iterations, see
  :mod:`.checkpoint`) holds model, optimizer, schedule, iteration, RNG states
  and the data cursor; on CPU with a fixed thread count a killed-and-resumed
  run ends with bit-identical weights.

Loss normalisation: every micro-batch loss is divided by
``grad_accum_steps`` and DistributedDataParallel averages gradients over
ranks, so an update always uses the mean of the per-micro-batch losses over
the global batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from .._malloc import reuse_freed_memory
from ..data.transforms import collate
from ..structures import image_to_float
from . import checkpoint as ckpt
from .config import TrainConfig, config_to_dict, save_config
from .distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    convert_sync_batchnorm,
    init_distributed,
    shutdown_distributed,
)
from .sampler import GlobalOrder, SeededDataset, TrainBatchSampler, derive_seed
from .solver import WarmupMultiStepLR, build_optimizer

__all__ = ["train", "TrainResult", "build_datasets", "build_model", "NonFiniteLossError"]

log = logging.getLogger("maskrcnn_native.train")

_MODEL_STREAM = 3


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite."""


@dataclass
class TrainResult:
    model: torch.nn.Module  # the trained model (unwrapped from DDP)
    output_dir: Path
    iteration: int
    metrics: Optional[Dict[str, Any]] = None  # evaluation results (rank 0)
    history: List[Dict[str, Any]] = field(default_factory=list)  # logged records (rank 0)


# ----------------------------------------------------------------------------
# datasets and model


class _Flipped(torch.utils.data.Dataset):
    """Random horizontal flip (p = 0.5, keypoint flip map from the dataset)."""

    def __init__(self, dataset, flip_map):
        from ..data.transforms import RandomHorizontalFlip

        self.dataset = dataset
        self.flip = RandomHorizontalFlip(0.5, flip_map)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        image, target = self.dataset[i]
        return self.flip(image, target)


def _flip_map(dataset) -> Optional[List[int]]:
    for name in ("keypoint_flip_map", "flip_map"):
        fm = getattr(dataset, name, None)
        if fm is not None:
            return list(fm)
    return None


def build_datasets(cfg: TrainConfig, train: bool = True, eval: bool = True):
    """(train_dataset, eval_dataset) as described by ``cfg.data``; either is
    None when not requested (or, for eval, not configured)."""
    from .. import data as mdata

    d = cfg.data
    train_ds: Any = None
    eval_ds: Any = None
    if d.source == "shapes":
        if train:
            train_ds = mdata.ShapesDataset(d.num_images, image_size=d.image_size, seed=d.seed, keypoints=d.keypoints)
        if eval and d.eval_num_images > 0:
            eval_ds = mdata.ShapesDataset(
                d.eval_num_images, image_size=d.image_size, seed=d.eval_seed, keypoints=d.keypoints
            )
    else:
        if train:
            if not d.image_dir or not d.annotation_json:
                raise ValueError("data.source=coco needs data.image_dir and data.annotation_json")
            train_ds = mdata.CocoDataset(d.image_dir, d.annotation_json, skip_invalid=d.skip_invalid)
        if eval and d.eval_annotation_json:
            eval_ds = mdata.CocoDataset(
                d.eval_image_dir or d.image_dir or "", d.eval_annotation_json, skip_invalid=d.skip_invalid
            )
    if train_ds is not None and d.horizontal_flip:
        train_ds = _Flipped(train_ds, _flip_map(train_ds))
    return train_ds, eval_ds


def dataset_num_classes(dataset) -> Optional[int]:
    while dataset is not None:
        n = getattr(dataset, "num_classes", None)
        if n is not None:
            return int(n)
        names = getattr(dataset, "class_names", None)
        if names is not None:
            return len(names) + (0 if names and names[0] in ("__background__", "background") else 1)
        dataset = getattr(dataset, "dataset", None)
    return None


def _num_keypoints(dataset) -> Optional[int]:
    while dataset is not None:
        n = getattr(dataset, "num_keypoints", None)
        if n is not None:
            return int(n)
        names = getattr(dataset, "keypoint_names", None)
        if names:
            return len(names)
        dataset = getattr(dataset, "dataset", None)
    return None


def build_model(cfg: TrainConfig, dataset=None) -> torch.nn.Module:
    """``mn.Model(cfg.model.preset, num_classes=..., **cfg.model.overrides)``,
    optionally initialised from ``cfg.model.weights``."""
    from .. import Model

    overrides = dict(cfg.model.overrides)
    nc = cfg.model.num_classes or dataset_num_classes(dataset)
    if nc is not None:
        overrides["num_classes"] = nc
    if cfg.data.keypoints:
        overrides.setdefault("keypoints", True)
        nk = _num_keypoints(dataset)
        if nk is not None:
            overrides.setdefault("num_keypoints", nk)
    model = Model(cfg.model.preset, **overrides)
    if cfg.model.weights:
        load_initial_weights(model, cfg.model.weights, cfg.model.preset)
    return model


def load_initial_weights(model: torch.nn.Module, path: str, preset: str) -> None:
    """Loads every tensor of ``path`` whose name and shape match the model;
    the rest (e.g. class-specific predictors) keep their initialisation."""
    p = Path(path)
    if p.suffix == ".pth" or p.suffix == ".pt":
        from .. import Model

        arch = "keypointrcnn_resnet50_fpn" if preset.endswith("-KP") else "maskrcnn_resnet50_fpn"
        source = Model.from_torchvision(str(p), arch=arch).state_dict()
    else:
        from .. import _io
        from ..modeling.config import ModelConfig

        source, meta = _io.read_safetensors(p, "model.weights")
        if "config" in meta:  # a native model file: its config must at least be one
            _io.build_config(
                ModelConfig.from_dict,
                _io.parse_config_json(meta["config"], str(p), "model.weights"),
                str(p),
                "model.weights",
            )
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    log.info("initialised %d/%d tensors from %s", len(matched), len(own), p)


# ----------------------------------------------------------------------------
# helpers


def _to_device(images, targets, device):
    out_images = [image_to_float(im).to(device, non_blocking=True) for im in images]
    out_targets = []
    for t in targets:
        out_targets.append({k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()})
    return out_images, out_targets


def _autocast(amp: str, device: torch.device):
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("solver.amp='fp16' needs CUDA; use 'bf16' on CPU")
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    raise ValueError(f"solver.amp must be none|bf16|fp16, got {amp!r}")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def save_final_model(model: torch.nn.Module, path: Path) -> Path:
    """``model.save`` (safetensors + config JSON) when the model has it,
    else a plain safetensors file of the state_dict."""
    save = getattr(model, "save", None)
    if callable(save):
        save(str(path))
    else:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


class _MetricsWriter:
    """metrics.jsonl (appended) and TensorBoard when installed, rank 0 only."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except Exception:
                self.tb = None

    def write(self, record: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            step = record.get("iteration", 0)
            for k, v in record.items():
                if k != "iteration" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)

    def truncate_after(self, iteration: int) -> None:
        """On resume, drops records beyond the checkpoint so the file has no
        duplicate iterations."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec.get("iteration", 0) <= iteration:
                keep.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _format_postfix(values: Dict[str, float]) -> Dict[str, str]:
    short = {}
    for k, v in values.items():
        name = k[5:] if k.startswith("loss_") else k
        short[name] = f"{v:.3f}"
    return short


# ----------------------------------------------------------------------------
# the loop


def train(
    config: TrainConfig,
    *,
    model: Optional[torch.nn.Module] = None,
    train_dataset=None,
    eval_dataset=None,
    evaluate: Optional[Callable[..., Dict[str, Any]]] = None,
) -> TrainResult:
    """Trains ``config`` (see :class:`TrainConfig`); returns a :class:`TrainResult`.

    ``model``, ``train_dataset``, ``eval_dataset`` replace the ones the config
    would build (useful from Python; the model must follow the ``mn.Model``
    interface: ``model(images, targets) -> dict of scalar losses`` in train
    mode). ``evaluate(model, dataset, out_dir)`` replaces the default
    evaluation (:func:`maskrcnn_native.engine.evaluation.evaluate_distributed`).

    Under torchrun every process calls ``train``; DistributedDataParallel
    averages gradients, rank 0 logs, checkpoints and evaluates.
    """
    cfg = config
    s = cfg.solver
    if s.max_iter < 1:
        raise ValueError("solver.max_iter must be >= 1")
    if cfg.checkpoint_period < 1 or cfg.log_period < 1:
        raise ValueError("checkpoint_period and log_period must be >= 1")
    info = init_distributed(cfg.device)
    from .._threads import get_num_threads, set_num_threads

    threads = (torch.get_num_threads(), get_num_threads())  # adaptive_threads may change them
    try:
        return _train(cfg, info, model, train_dataset, eval_dataset, evaluate)
    finally:
        shutdown_distributed(info)
        if cfg.adaptive_threads:
            torch.set_num_threads(threads[0])
            set_num_threads(threads[1])


@dataclass
class _Run:
    """The state one training run carries between its phases."""

    cfg: TrainConfig
    info: DistInfo
    out: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: WarmupMultiStepLR
    scaler: Optional[Any]
    writer: "_MetricsWriter"
    train_dataset: Any
    eval_dataset: Any
    start_iter: int = 0
    start_position: Optional[int] = None


def _train(cfg: TrainConfig, info: DistInfo, model, train_dataset, eval_dataset, evaluate) -> TrainResult:
    run = _setup(cfg, info, model, train_dataset, eval_dataset, evaluate)
    _restore(run)
    iteration, history = _loop(run)
    return _finish(run, iteration, history, evaluate)


def _setup(cfg: TrainConfig, info: DistInfo, model, train_dataset, eval_dataset, evaluate) -> _Run:
    """Output directory, seeds, datasets, model on its device, optimizer, schedule, metrics writer."""
    s = cfg.solver
    device = info.device
    out = Path(cfg.output_dir)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    barrier()

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed & 0xFFFFFFFF)
    random.seed(cfg.seed)

    if train_dataset is None or (eval_dataset is None and cfg.eval_at_end and evaluate is None):
        built_train, built_eval = build_datasets(
            cfg, train=train_dataset is None, eval=eval_dataset is None and cfg.eval_at_end
        )
        train_dataset = train_dataset if train_dataset is not None else built_train
        eval_dataset = eval_dataset if eval_dataset is not None else built_eval
    if model is None:
        model = build_model(cfg, train_dataset)
    model.to(device)
    model.train()

    optimizer = build_optimizer(model, s.lr, s.momentum, s.weight_decay)
    scheduler = WarmupMultiStepLR(optimizer, s.lr, s.warmup_iters, s.warmup_factor, s.steps, s.gamma)
    if s.amp == "fp16" and device.type != "cuda":
        raise ValueError("solver.amp='fp16' needs CUDA; use 'bf16' on CPU")
    scaler = torch.amp.GradScaler("cuda") if s.amp == "fp16" else None
    return _Run(
        cfg,
        info,
        out,
        model,
        optimizer,
        scheduler,
        scaler,
        _MetricsWriter(out, info.is_main),
        train_dataset,
        eval_dataset,
    )


def _restore(run: _Run) -> None:
    """Resume from the latest checkpoint (model, optimizer, schedule, RNG,
    data cursor) or, on a fresh run, optionally calibrate frozen BN from data."""
    cfg, info, writer = run.cfg, run.info, run.writer
    latest = ckpt.latest_checkpoint(run.out) if cfg.resume else None
    if latest is not None:
        state = ckpt.load_checkpoint(latest, map_location="cpu")
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.scaler is not None and state.get("grad_scaler"):
            run.scaler.load_state_dict(state["grad_scaler"])
        ckpt.restore_rng_state(state["rng"])
        run.start_iter = int(state["iteration"])
        run.start_position = int(state["data"]["position"])
        if info.is_main:
            writer.truncate_after(run.start_iter)
            log.info("resumed from %s at iteration %d", latest, run.start_iter)
        return
    if info.is_main and writer.path.exists():
        writer.path.unlink()  # a fresh run starts a fresh log
    if cfg.model.init_bn_from_data and not cfg.model.weights:
        from .bn_init import init_frozen_bn_from_data

        order0 = GlobalOrder(len(run.train_dataset), cfg.seed)
        seeded = SeededDataset(run.train_dataset)
        n = min(16, len(run.train_dataset))
        images = [seeded[(order0[p], order0.sample_seed(p))][0] for p in range(n)]
        init_frozen_bn_from_data(run.model, [im.to(run.info.device) for im in images])


def _wrap_ddp(run: _Run) -> torch.nn.Module:
    if run.info.world_size == 1:
        return run.model
    device = run.info.device
    convert_sync_batchnorm(run.model)  # norm="bn": global-batch statistics, as one process would have
    return torch.nn.parallel.DistributedDataParallel(
        run.model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=run.cfg.find_unused_parameters,
    )


def _loop(run: _Run):
    """Iterations start_iter..max_iter: step, log every log_period, checkpoint
    every checkpoint_period. Returns (last iteration, logged records)."""
    cfg, info, s = run.cfg, run.info, run.cfg.solver
    ddp_model = _wrap_ddp(run)
    order = GlobalOrder(len(run.train_dataset), cfg.seed)
    batch_sampler = TrainBatchSampler(
        order,
        s.batch_size,
        info.world_size,
        info.rank,
        s.grad_accum_steps,
        run.start_iter,
        s.max_iter,
        run.start_position,
    )
    loader = torch.utils.data.DataLoader(
        SeededDataset(run.train_dataset),
        batch_sampler=batch_sampler,
        collate_fn=collate,
        num_workers=cfg.data.num_workers,
        persistent_workers=False,
    )
    bar = None
    if info.is_main and cfg.progress and run.start_iter < s.max_iter:
        from tqdm.auto import tqdm

        bar = tqdm(total=s.max_iter, initial=run.start_iter, desc="train", dynamic_ncols=True, smoothing=0.1)
    logger = _WindowLog(run, bar)
    governor = _thread_governor(cfg)
    logger.governor = governor
    data_iter = iter(loader)
    iteration = run.start_iter
    try:
        # freed activations stay mapped between steps (see _malloc)
        with reuse_freed_memory():
            for it in range(run.start_iter, s.max_iter):
                if governor is not None:
                    _update_threads(governor)
                lr = run.scheduler.apply(it)
                step_losses, data_time = _step(run, ddp_model, data_iter, it, lr)
                iteration = it + 1
                logger.add(iteration, lr, step_losses, data_time)
                if iteration % cfg.checkpoint_period == 0 or iteration == s.max_iter:
                    _save(
                        cfg,
                        info,
                        run.out,
                        run.model,
                        run.optimizer,
                        run.scheduler,
                        run.scaler,
                        iteration,
                        order,
                        batch_sampler,
                    )
    finally:
        if bar is not None:
            bar.close()
        run.writer.close()
    return iteration, logger.history


def _thread_governor(cfg: TrainConfig):
    if not cfg.adaptive_threads:
        return None
    from .._threads import LoadAwareThreads

    g = LoadAwareThreads()
    return g if g.enabled else None


def _update_threads(governor) -> None:
    before = governor.threads
    after = governor.update()
    if after != before:
        log.info(
            "threads %d -> %d: other processes keep %.1f of this process's CPUs busy",
            before,
            after,
            governor.others,
        )


def _seed_model_rng(seed: int, device: torch.device) -> None:
    """Seeds the generator the model's sampling draws from: torch.manual_seed
    where the model runs on an accelerator (it seeds every device), else only
    the CPU generator, with the same result on the CPU: on a CUDA build of
    torch with no GPU initialised, torch.manual_seed queues the CUDA seeding
    with a formatted Python stack, 146 us a call against 1.3 us (AMD EPYC Zen 4)."""
    if device.type == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def _step(run: _Run, ddp_model: torch.nn.Module, data_iter, it: int, lr: float):
    """One optimizer update over grad_accum_steps micro-batches -> (the mean
    loss terms of the global batch, seconds spent waiting for data)."""
    cfg, info, s = run.cfg, run.info, run.cfg.solver
    step_losses: Dict[str, float] = {}
    data_time = 0.0
    for micro in range(s.grad_accum_steps):
        t0 = time.perf_counter()
        images, targets = next(data_iter)
        images, targets = _to_device(images, targets, info.device)
        data_time += time.perf_counter() - t0
        slot = micro * info.world_size + info.rank
        _seed_model_rng(derive_seed(cfg.seed, _MODEL_STREAM, it, slot), info.device)
        sync = info.world_size == 1 or micro == s.grad_accum_steps - 1
        ctx = contextlib.nullcontext() if sync else ddp_model.no_sync()  # type: ignore[operator]
        with ctx:
            with _autocast(s.amp, info.device):
                losses = ddp_model(images, targets)
            names, mean_values = _checked_losses(losses, it, lr)
            total = sum(losses[k].float() for k in names) / s.grad_accum_steps
            if run.scaler is not None:
                run.scaler.scale(total).backward()
            else:
                total.backward()
        for i, n in enumerate(names):
            step_losses[n] = step_losses.get(n, 0.0) + mean_values[i].item() / s.grad_accum_steps
    _apply_update(run)
    step_losses["loss"] = sum(v for k, v in step_losses.items() if k != "loss")
    return step_losses, data_time


def _checked_losses(losses: Any, it: int, lr: float):
    """(loss names, their values averaged over ranks); raises on a non-dict or a non-finite loss."""
    if not isinstance(losses, dict) or not losses:
        raise TypeError("the model must return a non-empty dict of losses in training mode")
    names = list(losses)
    values = torch.stack([losses[k].detach().float().reshape(()) for k in names])
    mean_values = all_reduce_mean(values)  # every rank sees the same values
    finite = torch.isfinite(mean_values)
    if not bool(finite.all()):
        bad = [f"{n}={mean_values[i].item()}" for i, n in enumerate(names) if not finite[i]]
        raise NonFiniteLossError(
            f"non-finite loss at iteration {it + 1}: {', '.join(bad)} "
            f"(lr {lr:.3g}); lower solver.lr, raise solver.warmup_iters or set solver.clip_grad_norm"
        )
    return names, mean_values


def _apply_update(run: _Run) -> None:
    """Clip (when configured), step the optimizer (through the fp16 scaler) and clear the gradients."""
    s, model, optimizer, scaler = run.cfg.solver, run.model, run.optimizer, run.scaler
    if scaler is not None:
        if s.clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_grad_norm, foreach=True)
        scaler.step(optimizer)
        scaler.update()
    else:
        if s.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_grad_norm, foreach=True)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class _WindowLog:
    """Averages the step losses over each log_period window and writes one
    record per window (rank 0), with timing and ETA."""

    def __init__(self, run: _Run, bar):
        self.run, self.bar = run, bar
        self.history: List[Dict[str, Any]] = []
        self.window: Dict[str, float] = {}
        self.n = 0
        self.data_time = 0.0
        self.t_window = time.perf_counter()
        self.governor: Any = None  # LoadAwareThreads when cfg.adaptive_threads

    def add(self, iteration: int, lr: float, step_losses: Dict[str, float], data_time: float) -> None:
        cfg, max_iter = self.run.cfg, self.run.cfg.solver.max_iter
        self.data_time += data_time
        for k, v in step_losses.items():
            self.window[k] = self.window.get(k, 0.0) + v
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix(_format_postfix(step_losses), refresh=False)
            self.bar.update(1)
        if iteration % cfg.log_period != 0 and iteration != max_iter:
            return
        elapsed = time.perf_counter() - self.t_window
        record: Dict[str, Any] = {"iteration": iteration, "lr": lr}
        record.update({k: v / self.n for k, v in self.window.items()})
        record["time_per_iter"] = elapsed / self.n
        record["data_time"] = self.data_time / self.n
        if self.governor is not None:
            record["threads"] = self.governor.threads
        record["eta_seconds"] = record["time_per_iter"] * (max_iter - iteration)
        if self.run.info.is_main:
            self.run.writer.write(record)
            self.history.append(record)
        self.window, self.n, self.data_time = {}, 0, 0.0
        self.t_window = time.perf_counter()


def _finish(run: _Run, iteration: int, history: List[Dict[str, Any]], evaluate) -> TrainResult:
    """Final model and dataset info (rank 0), then the evaluation at the end."""
    cfg, info, out, model = run.cfg, run.info, run.out, run.model
    metrics = None
    if info.is_main:
        save_final_model(model, out / "model.safetensors")
        _write_dataset_info(run.train_dataset, out / "dataset_info.json")
    if cfg.eval_at_end and run.eval_dataset is not None:
        model.eval()
        from .evaluation import evaluate_distributed

        fn = evaluate or evaluate_distributed
        metrics = fn(model, run.eval_dataset, out_dir=out, batch_size=cfg.eval_batch_size)
        if info.is_main and metrics is not None and not (out / "metrics.json").exists():
            with open(out / "metrics.json", "w") as f:
                json.dump(_jsonable(metrics), f, indent=1)
    barrier()
    return TrainResult(model=model, output_dir=out, iteration=iteration, metrics=metrics, history=history)


def _dataset_attr(dataset, name):
    while dataset is not None:
        v = getattr(dataset, name, None)
        if v is not None:
            return v
        dataset = getattr(dataset, "dataset", None)
    return None


def _write_dataset_info(dataset, path: Path) -> None:
    """Class names, keypoint names and skeleton next to the model, so that
    ``predict`` and ``eval`` can label pictures without the training data."""
    info = {}
    for name in ("class_names", "keypoint_names", "skeleton", "label_to_category_id"):
        v = _dataset_attr(dataset, name)
        if v is not None:
            info[name] = _jsonable(dict(v) if isinstance(v, dict) else list(v))
    path.write_text(json.dumps(info, indent=1))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if torch.is_tensor(x):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _save(cfg, info, out, model, optimizer, scheduler, scaler, iteration, order, batch_sampler) -> None:
    if not info.is_main:
        return
    position = batch_sampler.position_after(iteration)
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "grad_scaler": scaler.state_dict() if scaler is not None else None,
        "iteration": iteration,
        "rng": ckpt.capture_rng_state(),
        "data": {
            "seed": order.seed,
            "position": position,
            "epoch": position // order.num_samples,
            "position_in_epoch": position % order.num_samples,
            "global_batch": batch_sampler.global_batch,
        },
        "world_size": info.world_size,
        "config": config_to_dict(cfg),
    }
    ckpt.save_checkpoint(state, ckpt.checkpoint_path(out, iteration))
    ckpt.prune_checkpoints(out, cfg.keep_last)
