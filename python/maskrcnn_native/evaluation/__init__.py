"""Evaluation: COCO metrics (bbox, segm, keypoints) and test-time augmentation."""

from .coco_eval import (
    EvalResult,
    detections_to_coco,
    evaluate,
    evaluate_detections,
    format_per_class_table,
    merge_predictions,
    predict_dataset,
    shard_indices,
    to_coco_api,
)

__all__ = [
    "EvalResult",
    "detections_to_coco",
    "evaluate",
    "evaluate_detections",
    "format_per_class_table",
    "merge_predictions",
    "predict_dataset",
    "shard_indices",
    "to_coco_api",
    "predict_tta",
]


def __getattr__(name):  # tta is optional and imported on first use
    if name == "predict_tta":
        from .tta import predict_tta

        return predict_tta
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
