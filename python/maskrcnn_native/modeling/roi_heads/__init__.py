"""RoI heads: poolers, box / mask / keypoint heads, sampling, losses, post-processing."""

from .heads import BoxPredictor, KeypointHead, MaskHeadFCN, MaskHeadMLP, Res5Head, TwoMLPHead
from .poolers import MultiScalePooler, assign_levels
from .roi_heads import RoIHeads, heatmaps_to_keypoints, keypoint_targets, mask_targets

__all__ = ["BoxPredictor", "KeypointHead", "MaskHeadFCN", "MaskHeadMLP", "Res5Head", "TwoMLPHead",
           "MultiScalePooler", "assign_levels", "RoIHeads", "heatmaps_to_keypoints", "keypoint_targets",
           "mask_targets"]
