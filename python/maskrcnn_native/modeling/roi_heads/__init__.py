"""RoI heads: poolers, box / mask / keypoint heads, sampling, losses, post-processing."""

from .heads import BoxPredictor, KeypointHead, MaskHeadFCN, MaskHeadMLP, Res5Head, TwoMLPHead
from .inference import fast_rcnn_inference, heatmaps_to_keypoints, mask_probs_of_labels
from .losses import fast_rcnn_losses, keypoint_rcnn_loss, keypoint_targets, mask_rcnn_loss, mask_targets
from .poolers import MultiScalePooler, assign_levels
from .roi_heads import Res5RoIHeads, RoIHeads, SampledRoIs, build_roi_heads

__all__ = [
    "BoxPredictor",
    "KeypointHead",
    "MaskHeadFCN",
    "MaskHeadMLP",
    "Res5Head",
    "TwoMLPHead",
    "MultiScalePooler",
    "assign_levels",
    "RoIHeads",
    "Res5RoIHeads",
    "SampledRoIs",
    "build_roi_heads",
    "fast_rcnn_inference",
    "fast_rcnn_losses",
    "heatmaps_to_keypoints",
    "keypoint_rcnn_loss",
    "keypoint_targets",
    "mask_probs_of_labels",
    "mask_rcnn_loss",
    "mask_targets",
]
