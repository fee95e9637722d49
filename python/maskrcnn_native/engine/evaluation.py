"""Evaluation across processes: every rank predicts a disjoint shard of the
dataset, the COCO results are gathered with ``all_gather_object`` and rank 0
scores them with COCOeval (``maskrcnn_native.evaluation``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .distributed import all_gather_object, get_rank, get_world_size

__all__ = ["evaluate_distributed"]


def evaluate_distributed(
    model: Any,
    dataset: Any,
    *,
    out_dir: Union[str, Path, None] = None,
    batch_size: int = 4,
    progress: bool = True,
) -> Optional[Dict[str, Any]]:
    """COCO metrics of ``model`` on ``dataset`` (an ``EvalResult`` dict) on
    rank 0, None on the other ranks. One process: ``mn.evaluate``. With
    ``out_dir``: coco_results.json, metrics.json and per_class_AP.txt there."""
    from .. import evaluation as ev

    out = str(out_dir) if out_dir is not None else None
    world, rank = get_world_size(), get_rank()
    if world == 1:
        return ev.evaluate(model, dataset, batch_size=batch_size, out_dir=out, progress=progress)
    indices = ev.shard_indices(len(dataset), rank, world)
    results, image_ids = ev.predict_dataset(
        model, dataset, indices=indices, batch_size=batch_size, progress=progress and rank == 0, return_image_ids=True
    )
    gathered = all_gather_object((results, image_ids))
    if rank != 0:
        return None
    merged = ev.merge_predictions([g[0] for g in gathered])
    all_ids = sorted({i for g in gathered for i in g[1]})
    iou_types = ("bbox", "segm") + (("keypoints",) if getattr(dataset, "with_keypoints", False) else ())
    results_json = None
    if out is not None:
        os.makedirs(out, exist_ok=True)
        results_json = os.path.join(out, "coco_results.json")
    metrics = ev.evaluate_detections(merged, dataset, iou_types, image_ids=all_ids, results_json=results_json)
    if out is not None:
        metrics.to_json(os.path.join(out, "metrics.json"))
        with open(os.path.join(out, "per_class_AP.txt"), "w") as f:
            f.write(metrics.table + "\n")
    return metrics
