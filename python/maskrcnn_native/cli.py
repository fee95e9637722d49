"""The ``maskrcnn-native`` command line (also ``python -m maskrcnn_native``).

Commands: demo, train, eval, predict, make-shapes, convert, bench. Every
command has ``--help``. Multi-process training::

    torchrun --nproc_per_node 2 -m maskrcnn_native train --config cfg.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["main", "build_parser", "demo_config"]

# ----------------------------------------------------------------------------
# demo defaults: the smallest recipe found that keeps held-out segm AP above
# 0.6 (README gives the time on each project CPU). Iterations matter most (1000
# instead of 1500: segm AP 0.49); the trunk's width barely (backbone_channels
# 32 vs 64 at 1500 iterations: segm AP 0.627 vs 0.624-0.632) while it is 1.4x
# the step speed on the AVX2 machine. Once the model detects, nearly all of the
# 32 box positives per image reach the mask head, whose convolutions then cost
# more than the rest of the step; capping them (mask_batch_size_per_image) is
# faster but costs AP: 16 per image gave segm AP 0.611 with 1
# thread and 0.575 with 2 (0.40 vs 0.60 s per trained step on the AVX2 Zen 3),
# 8 gave 0.600 (with 400 training images). Fresh images cost nothing per
# step (6000 are drawn in ~2 s) and are the cheapest AP there is: 400 images
# (15 epochs) overfit, 6000 (one epoch) gave segm AP 0.645 against 0.598 with
# 400 and 0.637 with 1200 at the same 1500 iterations on the Intel Xeon
# (family 6, model 167). That margin buys a cap on the mask head's RoIs: 24
# per image (of at most 32 box positives) gave 0.629 in 345 s there, against
# 0.645 in 387 s uncapped and 0.619 in 341 s with 16; 1100 iterations gave 0.539.
# The mask head's width (same Xeon, spinning OpenMP workers, 2 threads):
# 48 channels gave segm AP 0.642 (seed 0) and 0.626 (seed 1) in 235 / 264 s,
# 64 gave 0.629 / 0.598 in 248 / 298 s, 32 gave 0.604 in 218 s (seed 0).
# BatchNorm in the box head (box_head_norm="bn", 2026-12-03, same Xeon, 2
# threads, no extra time: 185-190 s) gave segm AP 0.671 / 0.605 / 0.595 for
# seeds 0 / 1 / 2, 0.648 training NCHW and 0.662 / 0.606 with AVX2 kernels
# (mean 0.631), against 0.642 / 0.626 / 0.616, 0.587 and 0.581 / 0.621 without
# (mean 0.612). Most of the spread between runs is square/triangle confusion:
# class-agnostic segm AP varies far less (0.65-0.69).
# The held-out split has 500 images (100 until 2026-12-07): on 100 images the
# same trained model scored segm AP 0.632-0.705 across six splits (AMD EPYC
# Zen 4, family 25 model 17), an evaluation noise as large as the spread
# between training seeds; 500 images cut it ~2.2x for ~7 s. The split's seed
# is unchanged, so its first 100 images are the old split (image i depends
# only on (seed, i)) and predictions.png shows the same 8 images.

DEMO: Dict[str, Any] = {
    "preset": "R18-FPN",
    "image_size": 96,
    "train_images": 6000,
    "eval_images": 500,
    "iters": 1500,
    "batch_size": 4,
    "lr": 0.03,
    "seed": 0,
    "eval_seed": 1000,
    # A half-width R18-FPN trained from scratch: BatchNorm with batch statistics in
    # the whole trunk (frozen BN from scratch: segm AP 0.455 vs 0.555 for BN at
    # 1200 iterations), 64-channel FPN, a small box head with 128 sampled RoIs
    # per image (0.615 vs 0.555 with 64), a 48-channel FCN mask head (faster
    # on CPU than the MLP head and at least as accurate here), class-agnostic
    # masks, fewer proposals, anchors for 10-50 px shapes.
    "model": {
        "backbone_channels": 32,
        "fpn_channels": 64,
        "box_head_dim": 256,
        "box_head_norm": "bn",
        "mask_head": "fcn",
        "mask_head_dim": 48,
        "class_agnostic_masks": True,
        "box_batch_size_per_image": 128,
        "mask_batch_size_per_image": 24,
        "rpn_pre_nms_top_n_train": 600,
        "rpn_post_nms_top_n_train": 200,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 100,
        "anchor_sizes": ((16,), (32,), (64,), (128,), (256,)),
        "trainable_layers": 5,
        "norm": "bn",
    },
    # the paper's keypoint head (8 x conv512 per RoI, 3.7 GMAC each) would
    # dominate on CPU: a 64-channel head and fewer RoIs
    "keypoint_model": {
        "keypoint_head_dim": 64,
        "box_batch_size_per_image": 64,
    },
}


def demo_config(
    out: str,
    *,
    keypoints: bool = False,
    iters: Optional[int] = None,
    image_size: Optional[int] = None,
    train_images: Optional[int] = None,
    eval_images: Optional[int] = None,
    batch_size: Optional[int] = None,
    lr: Optional[float] = None,
    seed: Optional[int] = None,
    eval_seed: Optional[int] = None,
    preset: Optional[str] = None,
    adaptive_threads: bool = False,
    overrides: Sequence[str] = (),
):
    """The TrainConfig of ``maskrcnn-native demo`` (defaults in ``DEMO``)."""
    from .engine import TrainConfig, apply_overrides

    d = DEMO
    it = iters if iters is not None else d["iters"]
    size = image_size if image_size is not None else d["image_size"]
    model_over: Dict[str, Any] = dict(d["model"])
    model_over["min_size"] = size
    model_over["max_size"] = size
    if keypoints:
        model_over.update({"keypoints": True, "masks": True})
        model_over.update(d["keypoint_model"])
    changes = {
        "output_dir": out,
        "seed": seed if seed is not None else d["seed"],
        "model.preset": preset or d["preset"],
        "model.overrides": model_over,
        "model.init_bn_from_data": False,
        "solver.clip_grad_norm": 10.0,
        "data.source": "shapes",
        "data.num_images": train_images if train_images is not None else d["train_images"],
        "data.eval_num_images": eval_images if eval_images is not None else d["eval_images"],
        "data.image_size": size,
        "data.seed": seed if seed is not None else d["seed"],
        "data.eval_seed": eval_seed if eval_seed is not None else d["eval_seed"],
        "data.keypoints": keypoints,
        "solver.max_iter": it,
        "solver.batch_size": batch_size if batch_size is not None else d["batch_size"],
        "solver.lr": lr if lr is not None else d["lr"],
        "solver.warmup_iters": max(1, min(50, it // 6)),
        "solver.steps": [int(it * 0.75), int(it * 0.92)],
        "checkpoint_period": max(1, it // 3),
        "keep_last": 1,
        "log_period": max(1, min(20, it // 30)),
        "eval_at_end": True,
        "eval_batch_size": 16,  # 96 px images: larger batches, fewer calls
        "adaptive_threads": adaptive_threads,
    }
    cfg = apply_overrides(TrainConfig(), changes)
    return apply_overrides(cfg, list(overrides))


# ----------------------------------------------------------------------------
# helpers


def _fmt_metrics(metrics: Dict[str, Any]) -> str:
    keys = [k for k in metrics if isinstance(metrics[k], (int, float))]
    lines = []
    for prefix in ("bbox", "segm", "keypoints"):
        ks = [k for k in keys if k.startswith(prefix + "_")]
        if ks:
            cells = []
            for k in ks:
                v = metrics[k]
                cells.append(f"{k[len(prefix) + 1 :]}={v:.3f}" if v == v else f"{k[len(prefix) + 1 :]}=n/a")
            lines.append(f"  {prefix:9s} " + "  ".join(cells))
    return "\n".join(lines)


def _load_sidecar(weights: Path) -> Dict[str, Any]:
    """config.yaml and dataset_info.json written next to a trained model."""
    info: Dict[str, Any] = {}
    cfg_path = weights.parent / "config.yaml"
    if cfg_path.exists():
        import yaml

        try:
            info["config"] = yaml.safe_load(cfg_path.read_text()) or {}
        except Exception:
            info["config"] = {}
    ds_path = weights.parent / "dataset_info.json"
    if ds_path.exists():
        try:
            info["dataset"] = json.loads(ds_path.read_text())
        except Exception:
            info["dataset"] = {}
    return info


def _save_predictions_png(model, dataset, path: Path, n: int = 8, title: str = "") -> None:
    """The first ``n`` held-out images: ground truth beside prediction, each
    tile upscaled at least 3x, at the model's score threshold."""
    from . import visualize

    n = min(n, len(dataset))
    items = [dataset[i] for i in range(n)]
    images = [im for im, _ in items]
    dets = model.predict(images, batch_size=4)
    side = max(max(visualize.to_pil(im).size) for im in images)
    visualize.save_comparison(
        images,
        [t for _, t in items],
        dets,
        str(path),
        class_names=getattr(dataset, "class_names", None),
        skeleton=getattr(dataset, "skeleton", None) or None,
        score_threshold=0.5,
        scale=max(3, math.ceil(384 / side)),
        title=title,
    )


def _adaptive_threads(n: Optional[int]) -> bool:
    """The command line adapts the thread count to the machine's load unless
    the user fixed it (``--threads`` or ``OMP_NUM_THREADS``)."""
    return not n and "OMP_NUM_THREADS" not in os.environ


def _set_threads(n: Optional[int]) -> None:
    if n:
        import torch

        torch.set_num_threads(n)
        from . import set_num_threads

        set_num_threads(n)


def _plot_losses(out: Path) -> None:
    """loss.png from the run's metrics.jsonl (rank 0 only; a convenience that
    never fails the command)."""
    log = out / "metrics.jsonl"
    # torchrun's RANK: the process group is already shut down when training returns
    if int(os.environ.get("RANK", "0")) != 0 or not log.exists():
        return
    try:
        from . import visualize

        visualize.plot_losses(str(log), str(out / "loss.png"))
    except Exception as e:  # noqa: BLE001  (plotting must not fail a finished training)
        print(f"could not draw the loss curve: {e}", file=sys.stderr)


# ----------------------------------------------------------------------------
# commands


def cmd_demo(a: argparse.Namespace) -> int:
    _set_threads(a.threads)
    from .engine import train

    t0 = time.perf_counter()
    out = Path(a.out)
    cfg = demo_config(
        str(out),
        keypoints=a.keypoints,
        iters=a.iters,
        image_size=a.image_size,
        train_images=a.train_images,
        eval_images=a.eval_images,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        eval_seed=a.eval_seed,
        preset=a.preset,
        adaptive_threads=_adaptive_threads(a.threads),
        overrides=a.set,
    )
    if a.no_resume:
        cfg = cfg.replace(resume=False)
    print(
        f"demo: training {cfg.model.preset} on {cfg.data.num_images} synthetic {cfg.data.image_size}px images "
        f"for {cfg.solver.max_iter} iterations (batch {cfg.solver.batch_size}), then evaluating on "
        f"{cfg.data.eval_num_images} held-out images (seed {cfg.data.eval_seed}) -> {out}",
        flush=True,
    )
    from ._machine import describe_machine, machine_info

    machine = machine_info()  # before training: the thread count it starts with
    result = train(cfg)
    _plot_losses(out)
    metrics = dict(result.metrics or {})
    from .engine.trainer import build_datasets

    _, eval_ds = build_datasets(cfg, train=False, eval=True)
    ap = metrics.get("segm_AP")
    title = f"{cfg.model.preset}, {cfg.solver.max_iter} iterations" + (
        f", held-out segm AP {ap:.3f}" if isinstance(ap, float) and ap == ap else ""
    )
    _save_predictions_png(result.model, eval_ds, out / "predictions.png", title=title)
    wall = time.perf_counter() - t0
    summary = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    summary["wall_seconds"] = round(wall, 1)
    # metrics.json: the COCO metrics (written by evaluation) plus wall time and the CPU it took
    mpath = out / "metrics.json"
    full = json.loads(mpath.read_text()) if mpath.exists() else {}
    full.update({k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()})
    full["machine"] = machine
    mpath.write_text(json.dumps(full, indent=2))
    print("\nheld-out COCO metrics (fractions):")
    print(_fmt_metrics(metrics))
    table = getattr(result.metrics, "table", "")
    if table:
        print("\nper-class AP:\n" + table)
    print(f"\nwrote {out / 'metrics.json'}, {out / 'predictions.png'}, {out / 'model.safetensors'}")
    print(f"demo finished in {wall:.0f} s on {describe_machine(machine)}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    _set_threads(a.threads)
    from .engine import load_config, train

    overrides = ["adaptive_threads=true"] if _adaptive_threads(a.threads) else []
    overrides += list(a.set)
    if a.output_dir:
        overrides.append(f"output_dir={a.output_dir}")
    cfg = load_config(a.config, overrides)
    if a.no_resume:
        cfg = cfg.replace(resume=False)
    if a.no_eval:
        cfg = cfg.replace(eval_at_end=False)
    result = train(cfg)
    _plot_losses(Path(cfg.output_dir))
    if result.metrics:
        print("evaluation (fractions):")
        print(_fmt_metrics(result.metrics))
    if os.environ.get("RANK", "0") == "0":  # the process group is gone by now
        print(f"model written to {Path(cfg.output_dir) / 'model.safetensors'}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    _set_threads(a.threads)
    import maskrcnn_native as mn

    weights = Path(a.weights)
    side = _load_sidecar(weights)
    dcfg = side.get("config", {}).get("data", {}) or {}
    model = mn.Model.load(weights)
    if a.annotations:
        if not a.images:
            print("eval: --annotations needs --images", file=sys.stderr)
            return 2
        dataset = mn.data.CocoDataset(a.images, a.annotations)
        what = f"{a.annotations}"
    else:
        size = a.image_size or dcfg.get("image_size", 128)
        n = a.num_images or dcfg.get("eval_num_images") or 50
        kp = a.keypoints or bool(dcfg.get("keypoints", False))
        dataset = mn.data.ShapesDataset(n, image_size=size, seed=a.shapes_seed, keypoints=kp)  # type: ignore[assignment]
        what = f"{n} synthetic {size}px images with seed {a.shapes_seed}"
    print(f"eval: {weights} on {what}" + (f" in {a.dtype} (autocast)" if a.dtype != "float32" else ""), flush=True)
    out = Path(a.out) if a.out else None
    dtype = _predict_dtype(a.dtype)
    metrics = mn.evaluate(
        model,
        dataset,
        batch_size=a.batch_size,
        out_dir=str(out) if out else None,
        predict_kwargs={"dtype": dtype} if dtype is not None else None,
    )
    print(_fmt_metrics(metrics))
    table = getattr(metrics, "table", "")
    if table:
        print("\nper-class AP:\n" + table)
    if a.json:
        print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    _set_threads(a.threads)
    import maskrcnn_native as mn

    from .data import load_image
    from .evaluation import detections_to_coco

    weights = Path(a.weights)
    side = _load_sidecar(weights).get("dataset", {})
    overrides = {}
    if a.score_threshold is not None:
        overrides["score_threshold"] = a.score_threshold
    model = mn.Model.load(weights, **overrides)
    class_names = a.class_names.split(",") if a.class_names else side.get("class_names")
    if class_names and a.class_names and class_names[0] != "__background__":
        class_names = ["__background__"] + class_names
    l2c = side.get("label_to_category_id")
    l2c = {int(k): int(v) for k, v in l2c.items()} if l2c else None
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results: List[dict] = []
    images_info = []
    import numpy as np
    import torch

    for i, path in enumerate(a.images, start=1):
        pil = load_image(path)
        image = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        det = model.predict([image], dtype=_predict_dtype(a.dtype))[0]
        pic = mn.visualize.draw(
            image, det, class_names, score_threshold=a.draw_threshold, skeleton=side.get("skeleton") or None
        )
        name = Path(path).stem + "_pred.png"
        pic.save(out / name)
        h, w = image.shape[-2:]
        images_info.append({"id": i, "file_name": str(path), "height": int(h), "width": int(w)})
        results.extend(detections_to_coco(det, i, l2c, image_size=(h, w), orig_size=(h, w)))
        print(f"{path}: {len(det.boxes) if hasattr(det, 'boxes') else '?'} detections -> {out / name}")
    (out / "predictions.json").write_text(json.dumps(results))
    (out / "images.json").write_text(json.dumps(images_info, indent=1))
    print(f"COCO results: {out / 'predictions.json'} (image ids in {out / 'images.json'})")
    return 0


def cmd_make_shapes(a: argparse.Namespace) -> int:
    from .data import ShapesDataset, write_coco

    ds = ShapesDataset(a.num_images, image_size=a.image_size, seed=a.seed, keypoints=a.keypoints)
    image_dir, json_path = write_coco(ds, a.dir, progress=True)
    print(f"wrote {len(ds)} images to {image_dir} and annotations to {json_path}")
    print(
        f"train on them with: maskrcnn-native train --set data.source=coco "
        f"--set data.image_dir={image_dir} --set data.annotation_json={json_path}"
    )
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    import maskrcnn_native as mn

    overrides = {}
    if a.num_classes is not None:
        overrides["num_classes"] = a.num_classes
    model = mn.Model.from_torchvision(a.src, arch=a.arch, reinit_heads=a.reinit_heads, **overrides)
    dst = Path(a.dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    model.save(dst)
    n = sum(v.numel() for v in model.state_dict().values())
    print(f"converted {a.src} ({a.arch}) -> {dst} (+ {dst.with_suffix('.json')}), {n / 1e6:.1f} M values")
    return 0


def _quick_bench(repeats: int) -> None:
    import torch

    import maskrcnn_native as mn

    try:
        import torchvision.ops as tvo
    except Exception:
        tvo = None
    torch.manual_seed(0)
    feats = torch.randn(2, 256, 50, 68).contiguous(memory_format=torch.channels_last)
    k = 512
    xy = torch.rand(k, 2) * torch.tensor([500.0, 360.0])
    wh = torch.rand(k, 2) * 150 + 8
    rois = torch.cat([torch.randint(0, 2, (k, 1)).float(), xy, xy + wh], 1)

    def timeit(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best * 1e3

    rows = []
    ours = timeit(lambda: mn.ops.roi_align(feats, rois, (7, 7), 0.125, sampling_ratio=2, aligned=True))
    ref = timeit(lambda: tvo.roi_align(feats, rois, (7, 7), 0.125, sampling_ratio=2, aligned=True)) if tvo else None
    rows.append(("roi_align fwd 512 RoIs 256ch 7x7", ours, ref))
    print(f"{'op':40s} {'native ms':>10s} {'torchvision ms':>15s} {'speed-up':>9s}")
    for name, o, r in rows:
        rs = f"{r:15.2f}" if r is not None else f"{'n/a':>15s}"
        sp = f"{r / o:8.1f}x" if r is not None else f"{'':>9s}"
        print(f"{name:40s} {o:10.2f} {rs} {sp}")


def cmd_bench(a: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    if not a.quick and root.is_dir():
        try:
            import pytest  # noqa: F401
            import pytest_benchmark  # noqa: F401
        except ImportError:
            print("bench: pytest-benchmark is not installed; running the quick built-in timing", file=sys.stderr)
        else:
            import subprocess

            cmd = [sys.executable, "-m", "pytest", str(root), "-q", "-p", "no:cacheprovider", *a.pytest_args]
            print("running", " ".join(cmd), flush=True)
            return subprocess.call(cmd)
    _quick_bench(a.repeats)
    return 0


# ----------------------------------------------------------------------------
# parser


def _subcommand(sub, fmt, name: str, func, summary: str, description: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, which runs ``func(args)``: ``summary`` in
    the command list, ``description`` at the top of its --help."""
    p = sub.add_parser(name, formatter_class=fmt, help=summary, description=description)
    p.set_defaults(func=func)
    return p


def _add_overrides(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch and the native ops (default: torch's default, one per core). "
        "Without it (and without OMP_NUM_THREADS) training uses fewer threads while other processes "
        "keep the CPUs busy (TrainConfig.adaptive_threads); fix it for bit-reproducible runs",
    )


def _add_dtype(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="compute dtype of the network: bfloat16 runs it under torch.autocast (fast on CPUs with "
        "avx512_bf16/AMX, slower without); float16 needs CUDA. Results are float32 either way",
    )


def _predict_dtype(name: str) -> Any:
    """None for float32 (the weights' dtype), else the torch dtype ``predict`` autocasts to."""
    import torch

    return None if name == "float32" else getattr(torch, name)


def _add_demo(sub, fmt) -> None:
    d = _subcommand(
        sub,
        fmt,
        "demo",
        cmd_demo,
        "generate shapes, train a small model, evaluate it, draw predictions",
        "Generates synthetic shapes (a training split and a held-out split with "
        "another seed), trains a small Mask R-CNN, evaluates it with the COCO metrics and writes "
        "OUT/metrics.json, OUT/predictions.png and OUT/model.safetensors (+ .json config). "
        "Re-running with the same OUT resumes from its checkpoints.",
    )
    d.add_argument("--out", default="demo_out", help="output directory")
    d.add_argument(
        "--keypoints",
        action="store_true",
        help="also train the keypoint head on the shapes' vertices and report keypoint AP",
    )
    d.add_argument("--iters", type=int, default=DEMO["iters"], help="training iterations")
    d.add_argument(
        "--image-size",
        type=int,
        default=DEMO["image_size"],
        help="side of the square synthetic images and the model's input size",
    )
    d.add_argument("--train-images", type=int, default=DEMO["train_images"], help="synthetic training images")
    d.add_argument("--eval-images", type=int, default=DEMO["eval_images"], help="held-out evaluation images")
    d.add_argument("--batch-size", type=int, default=DEMO["batch_size"], help="images per iteration")
    d.add_argument("--lr", type=float, default=DEMO["lr"], help="base learning rate")
    d.add_argument("--seed", type=int, default=DEMO["seed"], help="seed of the training split and of training")
    d.add_argument("--eval-seed", type=int, default=DEMO["eval_seed"], help="seed of the held-out split")
    d.add_argument("--preset", default=DEMO["preset"], help="model preset")
    _add_overrides(d, "any other TrainConfig override, e.g. --set solver.amp=bf16 (repeatable)")
    d.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in OUT")
    _add_threads(d)


def _add_train(sub, fmt) -> None:
    t = _subcommand(
        sub,
        fmt,
        "train",
        cmd_train,
        "train from a YAML/JSON config plus overrides",
        "Trains a model described by a TrainConfig (model, data, solver sections; see "
        "configs/*.yaml). Resumes automatically from the newest checkpoint in the output directory. "
        "Under torchrun every process runs this command (DistributedDataParallel; gloo on CPU, "
        "nccl on CUDA); rank 0 logs, checkpoints and evaluates.",
    )
    t.add_argument("--config", default=None, help="YAML (.yaml/.yml) or JSON (.json) config file; defaults if omitted")
    _add_overrides(
        t,
        "dotted override, type-checked: --set solver.lr=0.01 --set solver.steps=[800,900] "
        "--set model.min_size=160 (repeatable)",
    )
    t.add_argument("--output-dir", default=None, help="shortcut for --set output_dir=DIR")
    t.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    t.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    _add_threads(t)


def _add_eval(sub, fmt) -> None:
    e = _subcommand(
        sub,
        fmt,
        "eval",
        cmd_eval,
        "COCO metrics of a trained model",
        "Evaluates a saved model (bbox, segm and keypoint AP through pycocotools). "
        "Data: a freshly generated synthetic split (--shapes-seed; image size, count and keypoints "
        "default to the training config saved next to the weights) or a COCO-format dataset "
        "(--images and --annotations).",
    )
    e.add_argument("--weights", required=True, help="model.safetensors written by train/demo/convert")
    e.add_argument("--shapes-seed", type=int, default=2024, help="seed of the generated evaluation split")
    e.add_argument("--num-images", type=int, default=None, help="generated evaluation images")
    e.add_argument("--image-size", type=int, default=None, help="generated image size")
    e.add_argument("--keypoints", action="store_true", help="generate keypoints and report keypoint AP")
    e.add_argument("--images", default=None, help="image directory of a COCO-format dataset")
    e.add_argument("--annotations", default=None, help="COCO json of the evaluation set")
    e.add_argument("--batch-size", type=int, default=4, help="images per forward pass")
    e.add_argument("--out", default=None, help="write coco_results.json, metrics.json, per_class_AP.txt here")
    e.add_argument("--json", action="store_true", help="also print the metrics as one JSON line")
    _add_dtype(e)
    _add_threads(e)


def _add_predict(sub, fmt) -> None:
    pr = _subcommand(
        sub,
        fmt,
        "predict",
        cmd_predict,
        "detect objects in images; pictures + COCO json",
        "Runs a saved model on image files; writes OUT/<name>_pred.png with masks, "
        "boxes, labels, scores (and keypoints) drawn, OUT/predictions.json (COCO results format) "
        "and OUT/images.json (image id -> file).",
    )
    pr.add_argument("--weights", required=True, help="model.safetensors")
    pr.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    pr.add_argument("--out", default="predictions", help="output directory")
    pr.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="drop detections below this score (default: the model's config)",
    )
    pr.add_argument("--draw-threshold", type=float, default=0.5, help="draw detections with at least this score")
    pr.add_argument(
        "--class-names",
        default=None,
        help="comma-separated class names for labels 1..K (default: dataset_info.json next to the weights)",
    )
    _add_dtype(pr)
    _add_threads(pr)


def _add_make_shapes(sub, fmt) -> None:
    m = _subcommand(
        sub,
        fmt,
        "make-shapes",
        cmd_make_shapes,
        "write the synthetic shapes as images + COCO json",
        "Writes DIR/images/*.png and DIR/annotations.json (COCO format, RLE masks, "
        "keypoints with --keypoints), readable by CocoDataset and 'train --set data.source=coco'.",
    )
    m.add_argument("dir", help="output directory")
    m.add_argument("--num-images", type=int, default=100, help="number of images")
    m.add_argument("--image-size", type=int, default=128, help="side of the square images")
    m.add_argument("--seed", type=int, default=0, help="generator seed (image i depends only on seed and i)")
    m.add_argument("--keypoints", action="store_true", help="include keypoints (shape vertices)")


def _add_convert(sub, fmt) -> None:
    c = _subcommand(
        sub,
        fmt,
        "convert",
        cmd_convert,
        "torchvision .pth -> native safetensors",
        "Converts a torchvision detection checkpoint (read with weights_only=True, "
        "nothing is unpickled) into DST (safetensors) plus DST.json (the model config), loadable "
        "with mn.Model.load.",
    )
    c.add_argument("src", help="torchvision checkpoint, e.g. maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
    c.add_argument("dst", help="output .safetensors path")
    c.add_argument(
        "--arch",
        default="maskrcnn_resnet50_fpn",
        choices=["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn"],
        help="torchvision architecture",
    )
    c.add_argument("--num-classes", type=int, default=None, help="change the number of classes (with --reinit-heads)")
    c.add_argument(
        "--reinit-heads",
        action="store_true",
        help="re-initialise class-specific layers (for fine-tuning on other classes)",
    )


def _add_bench(sub, fmt) -> None:
    b = _subcommand(
        sub,
        fmt,
        "bench",
        cmd_bench,
        "time the native ops (vs torchvision when installed)",
        "Runs the pytest-benchmark suite in benchmarks/ (source checkout), or with "
        "--quick (or outside a checkout) a short built-in timing of RoIAlign against torchvision.",
    )
    b.add_argument("--quick", action="store_true", help="built-in timing only")
    b.add_argument("--repeats", type=int, default=5, help="repeats of the quick timing (best is reported)")
    b.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments passed to pytest")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maskrcnn-native",
        description="Mask R-CNN with fast native ops: train, evaluate, predict, convert.",
        epilog="Run '%(prog)s COMMAND --help' for the options of a command. "
        "Multi-process: torchrun --nproc_per_node N -m maskrcnn_native train ...",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter
    _add_demo(sub, fmt)
    _add_train(sub, fmt)
    _add_eval(sub, fmt)
    _add_predict(sub, fmt)
    _add_make_shapes(sub, fmt)
    _add_convert(sub, fmt)
    _add_bench(sub, fmt)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .engine.config import ConfigError

    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"maskrcnn-native {args.command}: config error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # data and weights-file errors: one line, no traceback
        from ._io import one_line_error

        msg = one_line_error(e)
        if msg is None:
            raise
        print(f"maskrcnn-native {args.command}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
