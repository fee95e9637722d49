"""COCO evaluation (bbox, segm, keypoints) through pycocotools' COCOeval.

Three layers, usable separately:

* :func:`predict_dataset` runs ``model.predict`` over (a shard of) a dataset and
  returns COCO result dicts (masks as compressed RLE, so the list is small and
  picklable). It is rank-agnostic: give each rank its own ``indices``
  (:func:`shard_indices`).
* :func:`merge_predictions` merges the per-rank lists (e.g. the output of
  ``torch.distributed.all_gather_object``), dropping duplicated images.
* :func:`evaluate_detections` scores predictions against ground truth (a
  pycocotools ``COCO``, a dataset, or anything with ``to_coco_api()``).

:func:`evaluate` chains them for one process. Metrics are fractions in [0, 1];
a metric COCOeval cannot define (no ground truth in that area range, e.g.
``bbox_APs`` when there are no small objects) is ``nan`` (``null`` in the
json written by :meth:`EvalResult.to_json`).

Predictions for one image may be a ``maskrcnn_native.Detections`` (an
``Instances``) or any object/dict ``Instances.coerce`` reads, with
``boxes`` [D, 4] XYXY absolute pixels, ``scores`` [D],
``labels`` [D] (contiguous, 1..K), optional ``masks`` (bool/uint8/float
[D, H, W] or [D, 1, H, W], or a list of COCO RLE dicts) and optional
``keypoints`` [D, P, 3]. Labels are mapped to category ids with the dataset's
``label_to_category_id`` (default: i-th sorted category id).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..structures import instances_to_coco

__all__ = [
    "EvalResult",
    "detections_to_coco",
    "to_coco_api",
    "evaluate_detections",
    "predict_dataset",
    "merge_predictions",
    "shard_indices",
    "evaluate",
    "format_per_class_table",
]

IOU_TYPES = ("bbox", "segm", "keypoints")
_BOX_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
_KP_STATS = ("AP", "AP50", "AP75", "APm", "APl")


class EvalResult(dict):
    """Flat metrics ``{"bbox_AP": 0.71, "segm_AP50": ..., ...}`` (a dict, so
    ``json.dump`` works) with extra attributes:

    * ``per_class``: ``{iou_type: {class_name: AP}}`` (``nan`` = no ground truth)
    * ``table``: the per-class AP table as printable text
    * ``summary``: COCOeval's ``summarize()`` text per iou type
    * ``num_images``, ``num_predictions``
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.per_class: Dict[str, Dict[str, float]] = {}
        self.table: str = ""
        self.summary: Dict[str, str] = {}
        self.num_images: int = 0
        self.num_predictions: int = 0

    def to_json(self, path: Optional[str] = None, *, include_per_class: bool = True) -> str:
        """Strict JSON (nan -> null); written to ``path`` when given."""

        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        data = clean(dict(self))
        if include_per_class:
            data["per_class_AP"] = clean(self.per_class)
        text = json.dumps(data, indent=2, allow_nan=False)
        if path is not None:
            _atomic_write(path, text)
        return text


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# The one exporter lives in structures/; evaluation keeps its historical name.
detections_to_coco = instances_to_coco


def to_coco_api(dataset_or_coco: Any) -> COCO:
    """Ground truth as a pycocotools ``COCO`` object.

    Accepts a ``COCO`` object (returned as is), a path to a COCO json, an object
    with ``to_coco_api()`` (CocoDataset: the original annotations with crowd
    regions; ShapesDataset), or any dataset of the library's item format with
    ``class_names`` and ``label_to_category_id`` (built in memory from its
    untransformed items; their size must equal ``orig_size``).
    """
    if isinstance(dataset_or_coco, COCO):
        return dataset_or_coco
    if isinstance(dataset_or_coco, (str, os.PathLike)):
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(os.fspath(dataset_or_coco))
    if hasattr(dataset_or_coco, "to_coco_api"):
        return dataset_or_coco.to_coco_api()
    if hasattr(dataset_or_coco, "dataset") and hasattr(dataset_or_coco, "indices"):  # torch Subset
        raise TypeError("to_coco_api: pass the underlying dataset and image_ids instead of a Subset")
    from ..data.shapes import coco_dict

    for attr in ("class_names", "label_to_category_id"):
        if not hasattr(dataset_or_coco, attr):
            raise TypeError(
                f"to_coco_api: {type(dataset_or_coco).__name__} has no {attr!r}; "
                "pass a COCO object or a dataset of maskrcnn_native.data"
            )
    data = coco_dict(dataset_or_coco)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco


def _label_map(gt: Any, coco: COCO, given: Optional[Mapping[int, int]]) -> Dict[int, int]:
    if given is not None:
        return dict(given)
    if hasattr(gt, "label_to_category_id"):
        return dict(gt.label_to_category_id)
    return {i + 1: c for i, c in enumerate(sorted(coco.getCatIds()))}


def _normalize_predictions(predictions: Any, l2c: Mapping[int, int]) -> List[dict]:
    if predictions is None:
        return []
    if isinstance(predictions, Mapping):
        items: Iterable = predictions.items()
    else:
        predictions = list(predictions)
        if all(isinstance(p, Mapping) and "category_id" in p and "image_id" in p for p in predictions):
            return predictions  # already COCO result dicts
        items = predictions
    out: List[dict] = []
    for entry in items:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise TypeError(
                "evaluate_detections: predictions must be COCO result dicts, "
                "{image_id: detections} or [(image_id, detections), ...]"
            )
        out.extend(detections_to_coco(entry[1], int(entry[0]), l2c))
    return out


def _load_results(gt: COCO, results: List[dict], iou_type: str) -> COCO:
    if not results:
        with contextlib.redirect_stdout(io.StringIO()):
            res = COCO()
            res.dataset = {
                "images": list(gt.dataset["images"]),
                "categories": copy.deepcopy(gt.dataset["categories"]),
                "annotations": [],
            }
            res.createIndex()
        return res
    if iou_type == "segm":
        anns = [{k: v for k, v in r.items() if k not in ("bbox", "keypoints")} for r in results]  # area from the mask
    elif iou_type == "keypoints":
        anns = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    else:
        anns = [{k: v for k, v in r.items() if k not in ("segmentation", "keypoints")} for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        return gt.loadRes(anns)


def _prepare_keypoint_gt(coco: COCO, num_kp: int) -> None:
    for ann in coco.dataset["annotations"]:
        if "keypoints" not in ann:
            ann["keypoints"] = [0.0] * (3 * num_kp)
        if "num_keypoints" not in ann:
            ann["num_keypoints"] = int(sum(1 for v in ann["keypoints"][2::3] if v > 0))


def evaluate_detections(
    predictions: Any,
    gt: Any,
    iou_types: Sequence[str] = ("bbox", "segm"),
    *,
    image_ids: Optional[Sequence[int]] = None,
    label_to_category_id: Optional[Mapping[int, int]] = None,
    keypoint_sigmas: Optional[Sequence[float]] = None,
    results_json: Optional[str] = None,
    verbose: bool = False,
) -> EvalResult:
    """Score predictions with COCOeval.

    Args:
        predictions: a list of COCO result dicts, ``{image_id: detections}`` or
            ``[(image_id, detections), ...]`` (detections as in the module doc).
        gt: a ``COCO`` object, a COCO json path or a dataset (see :func:`to_coco_api`).
        iou_types: any of ``"bbox"``, ``"segm"``, ``"keypoints"``. A type the
            predictions cannot be scored for (no masks / no keypoints) is skipped
            with a warning; empty predictions give AP 0.
        image_ids: evaluate on these images only (default: all gt images).
        keypoint_sigmas: OKS sigmas, one per keypoint; default: the dataset's
            ``keypoint_sigmas``, else COCO's when there are 17 keypoints, else 0.05.
        results_json: write the COCO results list there.
        verbose: print COCOeval's summaries.

    Returns:
        :class:`EvalResult` with ``{iou_type}_{AP,AP50,AP75,APs,APm,APl}``
        (keypoints: no APs).
    """
    for t in iou_types:
        if t not in IOU_TYPES:
            raise ValueError(f"evaluate_detections: unknown iou type {t!r}; choose from {IOU_TYPES}")
    coco = to_coco_api(gt)
    results = _normalize_predictions(predictions, _label_map(gt, coco, label_to_category_id))
    _check_ids(coco, results)
    if results_json is not None:
        _atomic_write(results_json, json.dumps(results))

    c2name = {c["id"]: str(c.get("name", c["id"])) for c in coco.dataset["categories"]}
    out = EvalResult()
    out.num_images = len(image_ids) if image_ids is not None else len(coco.getImgIds())
    out.num_predictions = len(results)
    for iou_type in iou_types:
        E = _run_cocoeval(coco, results, iou_type, image_ids, keypoint_sigmas, getattr(gt, "keypoint_sigmas", None))
        if E is None:
            continue
        out.summary[iou_type] = E.summary_text
        if verbose:
            print(f"== {iou_type} ==\n{E.summary_text}")
        names = _KP_STATS if iou_type == "keypoints" else _BOX_STATS
        for i, n in enumerate(names):
            v = float(E.stats[i])
            out[f"{iou_type}_{n}"] = v if v >= 0 else float("nan")
        out.per_class[iou_type] = _per_class_ap(E, c2name)
    out.table = format_per_class_table(out.per_class)
    return out


def _check_ids(coco: COCO, results: List[dict]) -> None:
    bad = {r["image_id"] for r in results} - set(coco.getImgIds())
    if bad:
        raise ValueError(f"evaluate_detections: predictions for image ids not in the ground truth: {sorted(bad)[:10]}")
    bad_cats = {r["category_id"] for r in results} - set(coco.getCatIds())
    if bad_cats:
        raise ValueError(f"evaluate_detections: predictions with unknown category ids {sorted(bad_cats)}")


def _run_cocoeval(
    coco: COCO,
    results: List[dict],
    iou_type: str,
    image_ids: Optional[Sequence[int]],
    keypoint_sigmas: Optional[Sequence[float]],
    dataset_sigmas: Optional[Sequence[float]],
):
    """COCOeval evaluated, accumulated and summarised for one iou type (its
    ``summarize()`` text in ``summary_text``), or None (with a warning) when
    the predictions or the ground truth cannot be scored for it."""
    import warnings

    if results and iou_type == "segm" and not all("segmentation" in r for r in results):
        warnings.warn("evaluate_detections: predictions have no masks; segm skipped", stacklevel=3)
        return None
    if results and iou_type == "keypoints" and not all("keypoints" in r for r in results):
        warnings.warn("evaluate_detections: predictions have no keypoints; keypoints skipped", stacklevel=3)
        return None
    num_kp = 0
    if iou_type == "keypoints":
        kcat = next((c for c in coco.dataset["categories"] if c.get("keypoints")), None)
        if kcat is None:
            warnings.warn("evaluate_detections: the ground truth has no keypoints; keypoints skipped", stacklevel=3)
            return None
        num_kp = len(kcat["keypoints"])
        _prepare_keypoint_gt(coco, num_kp)
    E = COCOeval(coco, _load_results(coco, results, iou_type), iou_type)
    if image_ids is not None:
        E.params.imgIds = sorted(int(i) for i in image_ids)
    if iou_type == "keypoints":
        given = keypoint_sigmas if keypoint_sigmas is not None else dataset_sigmas
        if given is None:
            given = E.params.kpt_oks_sigmas if num_kp == 17 else [0.05] * num_kp
        sig = np.asarray(given, dtype=np.float64)
        if sig.shape != (num_kp,):
            raise ValueError(f"evaluate_detections: {num_kp} keypoints need {num_kp} sigmas, got {sig.shape[0]}")
        E.params.kpt_oks_sigmas = sig
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        E.evaluate()
        E.accumulate()
        E.summarize()
    E.summary_text = buf.getvalue()
    return E


def _per_class_ap(E: COCOeval, c2name: Mapping[int, str]) -> Dict[str, float]:
    """AP over IoU thresholds and recall per category, all areas, max detections (nan: no ground truth)."""
    prec = E.eval["precision"]  # [T, R, K, A, M]
    per = {}
    for k, cat in enumerate(E.params.catIds):
        p = prec[:, :, k, 0, -1]
        p = p[p > -1]
        per[c2name.get(cat, str(cat))] = float(p.mean()) if p.size else float("nan")
    return per


def format_per_class_table(per_class: Mapping[str, Mapping[str, float]]) -> str:
    """Text table: one row per class, one column per iou type (AP as a fraction)."""
    types = list(per_class)
    if not types:
        return "(no results)"
    classes: List[str] = []
    for t in types:
        for c in per_class[t]:
            if c not in classes:
                classes.append(c)
    w = max([len("class")] + [len(c) for c in classes])
    head = f"{'class':<{w}} | " + " | ".join(f"{t + ' AP':>12}" for t in types)
    lines = [head, "-" * len(head)]
    for c in classes:
        cells = []
        for t in types:
            v = per_class[t].get(c, float("nan"))
            cells.append(f"{'n/a':>12}" if not math.isfinite(v) else f"{v:>12.3f}")
        lines.append(f"{c:<{w}} | " + " | ".join(cells))
    return "\n".join(lines)


def shard_indices(n: int, rank: int, world_size: int) -> List[int]:
    """Indices ``rank, rank + world_size, ...`` of ``range(n)``: disjoint shards, no padding."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_indices: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return list(range(rank, n, world_size))


def merge_predictions(per_rank: Sequence[Sequence[dict]]) -> List[dict]:
    """Merge per-rank COCO result lists (e.g. from ``all_gather_object``).

    An image predicted on several ranks (a padded DistributedSampler) keeps the
    results of the lowest rank only. Output is ordered by image id (stable).
    """
    owner: Dict[int, int] = {}
    merged: List[dict] = []
    for rank, preds in enumerate(per_rank):
        for r in preds:
            iid = int(r["image_id"])
            if owner.setdefault(iid, rank) != rank:
                continue
            merged.append(r)
    merged.sort(key=lambda r: int(r["image_id"]))
    return merged


def accepts_kwarg(fn: Any, name: str) -> bool:
    """Whether callable ``fn`` takes a parameter ``name`` (False when its signature cannot be read)."""
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def predict_dataset(
    model: Any,
    dataset: Any,
    *,
    indices: Optional[Sequence[int]] = None,
    batch_size: int = 1,
    progress: bool = True,
    predict_kwargs: Optional[Mapping[str, Any]] = None,
    return_image_ids: bool = False,
):
    """Run ``model.predict`` over ``dataset`` (or ``indices`` of it) -> COCO result dicts.

    Images go to the model as the dataset yields them (use a dataset without
    resize transforms: the model resizes internally). When an item's ``size``
    differs from its ``orig_size`` the predictions are mapped back. Labels are
    mapped with ``dataset.label_to_category_id``. When ``model.predict`` takes
    ``mask_format`` it is asked for ``"rle"`` unless ``predict_kwargs`` says
    otherwise. With ``return_image_ids`` also
    returns the list of image ids processed.
    """
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"predict_dataset: batch_size must be >= 1, got {batch_size}")
    idx = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    l2c = getattr(dataset, "label_to_category_id", None)
    kwargs = dict(predict_kwargs or {})
    if "mask_format" not in kwargs and accepts_kwarg(model.predict, "mask_format"):
        kwargs["mask_format"] = "rle"  # compact: no [D, H, W] bitmaps kept around
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    results: List[dict] = []
    image_ids: List[int] = []
    bar = tqdm(total=len(idx), desc="evaluating", unit="img", disable=not progress, dynamic_ncols=True)
    try:
        with torch.no_grad():
            for start in range(0, len(idx), batch_size):
                batch = [dataset[i] for i in idx[start : start + batch_size]]
                images = [b[0] for b in batch]
                dets = model.predict(images, **kwargs)
                if len(dets) != len(images):
                    raise RuntimeError(
                        f"predict_dataset: model.predict returned {len(dets)} results for {len(images)} images"
                    )
                for (image, target), det in zip(batch, dets):
                    iid = int(target["image_id"])
                    image_ids.append(iid)
                    size = (int(image.shape[-2]), int(image.shape[-1]))
                    o = target.get("orig_size", size)
                    orig = (int(o[0]), int(o[1]))
                    results.extend(detections_to_coco(det, iid, l2c, image_size=size, orig_size=orig))
                bar.update(len(batch))
    finally:
        bar.close()
        if was_training and hasattr(model, "train"):
            model.train()
    return (results, image_ids) if return_image_ids else results


def evaluate(
    model: Any,
    dataset: Any,
    *,
    batch_size: int = 1,
    out_dir: Optional[str] = None,
    progress: bool = True,
    iou_types: Optional[Sequence[str]] = None,
    max_images: Optional[int] = None,
    predict_kwargs: Optional[Mapping[str, Any]] = None,
    verbose: bool = False,
) -> EvalResult:
    """Predict over ``dataset`` with ``model.predict`` and score with COCOeval.

    ``iou_types`` default: bbox and segm, plus keypoints when the dataset has
    keypoints. ``max_images`` evaluates the first N images only. With
    ``out_dir``: writes ``coco_results.json`` (COCO results), ``metrics.json``
    (strict JSON, with the per-class APs) and ``per_class_AP.txt``.
    """
    n = len(dataset) if max_images is None else min(len(dataset), int(max_images))
    if iou_types is None:
        iou_types = ("bbox", "segm") + (("keypoints",) if getattr(dataset, "with_keypoints", False) else ())
    results, image_ids = predict_dataset(
        model,
        dataset,
        indices=range(n),
        batch_size=batch_size,
        progress=progress,
        predict_kwargs=predict_kwargs,
        return_image_ids=True,
    )
    results_json = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        results_json = os.path.join(out_dir, "coco_results.json")
    out = evaluate_detections(
        results, dataset, iou_types, image_ids=image_ids, results_json=results_json, verbose=verbose
    )
    if out_dir is not None:
        out.to_json(os.path.join(out_dir, "metrics.json"))
        _atomic_write(os.path.join(out_dir, "per_class_AP.txt"), out.table + "\n")
    return out
