"""RoI heads: proposal sampling and the box / mask / keypoint branches (paper
section 3 and 3.1), for FPN (``RoIHeads``) and C4 (``Res5RoIHeads``).

Each task has its own ``_forward_box`` / ``_forward_mask`` /
``_forward_keypoint`` (pooling + head network -> raw outputs); the losses and
the inference post-processing are free functions (``losses.py``,
``inference.py``). Every option is bound at construction.

All boxes here are Tensor[R, 4] XYXY in resized-image pixels, in the model's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.fx.experimental.symbolic_shapes import guard_or_true

from ...structures import Instances
from .. import _ops
from ..box_coder import BoxCoder
from ..layers import ShapeSpec
from ..matcher import Matcher
from ..sampler import BalancedSampler
from .heads import BoxPredictor, KeypointHead, MaskHeadFCN, MaskHeadMLP, Res5Head, TwoMLPHead
from .inference import fast_rcnn_inference, heatmaps_to_keypoints, mask_probs_of_labels
from .losses import fast_rcnn_losses, keypoint_rcnn_loss, mask_rcnn_loss
from .poolers import MultiScalePooler

__all__ = ["RoIHeads", "Res5RoIHeads", "build_roi_heads"]


@dataclass
class SampledRoIs:
    """The RoIs of one image that train the heads.

    boxes: Tensor[S, 4] proposals (plus ground truth) kept by the sampler;
    labels: Tensor[S] int64 class of the matched ground truth, 0 = background;
    matched: Tensor[S] int64 index of the matched ground truth (0 for
    background); gt_boxes: Tensor[S, 4] that ground truth's box (zeros when
    the image has none)."""

    boxes: Tensor
    labels: Tensor
    matched: Tensor
    gt_boxes: Tensor


# the mask head computes only the RoIs' own classes from this many classes on
_MIN_CLASSES_TO_SELECT = 16


class RoIHeads(nn.Module):
    """FPN RoI heads.

    forward(features: dict name -> Tensor[N, C, H_l, W_l], proposals: per image
    Tensor[P_i, 4], image_sizes: per image (h, w), targets: per image dict
    (boxes [G, 4], labels [G] int64, masks [G, H, W], keypoints [G, P, 3]) in
    training, else None)
    -> (per image ``Instances`` in the resized frame with boxes, scores,
        labels, mask_probs [D, M, M] (predicted class) and keypoints
        [D, P, 3] / keypoint_scores [D, P] (empty list in training);
        losses: loss_classifier, loss_box_reg, loss_mask, loss_keypoint
        (empty dict in eval)).
    """

    box_pooler_resolution = 7
    box_head: Union[TwoMLPHead, Res5Head]

    def __init__(self, cfg, input_shape: Mapping[str, ShapeSpec]):
        super().__init__()
        self.in_features = tuple(input_shape)
        strides = [input_shape[k].stride for k in self.in_features]
        in_channels = input_shape[self.in_features[0]].channels
        self.score_threshold = float(cfg.score_threshold)
        self.nms_threshold = float(cfg.nms_threshold)
        self.detections_per_image = int(cfg.detections_per_image)
        self.mask_loss = cfg.mask_loss
        self.mask_resolution = int(cfg.mask_resolution)
        self.num_keypoints = int(cfg.num_keypoints)
        self.mask_rois_per_image = cfg.mask_batch_size_per_image

        def pooler(size: int) -> MultiScalePooler:
            """A pooler of output size ``size`` over the configured levels."""
            return MultiScalePooler(size, strides, cfg.pooler_sampling_ratio, cfg.pooler, cfg.pooler_aligned)

        self.box_pooler = pooler(self.box_pooler_resolution)
        self.box_head = self._build_box_head(cfg, in_channels)
        self.box_predictor = BoxPredictor(self.box_head.out_dim, cfg.num_classes)
        self.box_coder = BoxCoder(cfg.box_reg_weights)
        self.matcher = Matcher(cfg.box_fg_iou, cfg.box_bg_iou, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(cfg.box_batch_size_per_image, cfg.box_positive_fraction)
        self.mask_head: Optional[nn.Module] = None
        if cfg.masks:
            self.mask_pooler = pooler(14)
            self.mask_head = self._build_mask_head(cfg, in_channels)
        self.keypoint_head: Optional[KeypointHead] = None
        if cfg.keypoints:
            self.keypoint_pooler = pooler(14)
            self.keypoint_head = KeypointHead(in_channels, cfg.num_keypoints, dim=cfg.keypoint_head_dim)

    def _build_box_head(self, cfg, in_channels: int) -> Union[TwoMLPHead, Res5Head]:
        r = self.box_pooler_resolution
        return TwoMLPHead(in_channels * r * r, cfg.box_head_dim, cfg.box_head_norm)

    def _build_mask_head(self, cfg, in_channels: int) -> nn.Module:
        k = 1 if cfg.class_agnostic_masks else cfg.num_classes
        if cfg.mask_head == "mlp":
            return MaskHeadMLP(in_channels * 14 * 14, k, cfg.mask_resolution, cfg.mask_head_dim or 1024)
        return MaskHeadFCN(in_channels, k, num_convs=4, dim=cfg.mask_head_dim or 256)

    # ------------------------------------------------------------- per task
    def _forward_box(self, feats: List[Tensor], boxes: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """Box branch on RoIs ``boxes`` (per image [R_i, 4]) -> (class logits
        [R, K], box codes [R, 4K], head features [R, D], features the mask
        branch may share (None for FPN))."""
        x = self.box_head(self.box_pooler(feats, boxes))
        logits, deltas = self.box_predictor(x)
        return logits, deltas, x, None

    def _forward_mask(
        self, feats: List[Tensor], boxes: List[Tensor], shared: Optional[Tensor] = None, labels: Optional[Tensor] = None
    ) -> Tensor:
        """Mask branch on RoIs ``boxes`` -> logits [R, K or 1, M, M]; given the RoIs'
        classes ``labels`` [R], the FCN head with the sigmoid loss computes only
        those classes' masks: [R, 1, M, M]."""
        assert self.mask_head is not None
        return self._run_mask_head(self.mask_pooler(feats, boxes), labels)

    def _run_mask_head(self, x: Tensor, labels: Optional[Tensor]) -> Tensor:
        head = self.mask_head
        assert head is not None
        if labels is not None and isinstance(head, MaskHeadFCN) and self.mask_loss == "sigmoid":
            # with few classes all of them cost about as much as one (the demo: 4)
            if head.mask_fcn_logits.out_channels >= _MIN_CLASSES_TO_SELECT:
                return head(x, labels)
        return head(x)

    def _forward_keypoint(self, feats: List[Tensor], boxes: List[Tensor]) -> Tensor:
        """Keypoint branch on RoIs ``boxes`` -> heatmap logits [R, P, S, S]."""
        assert self.keypoint_head is not None
        return self.keypoint_head(self.keypoint_pooler(feats, boxes))

    # ------------------------------------------------------------- forward
    def forward(
        self,
        features: Dict[str, Tensor],
        proposals: List[Tensor],
        image_sizes: List[Tuple[int, int]],
        targets: Optional[List[Dict[str, Tensor]]] = None,
    ) -> Tuple[List[Instances], Dict[str, Tensor]]:
        """See the class docstring: (per image ``Instances`` in eval, losses in training)."""
        feats = [features[k] for k in self.in_features]
        if self.training:
            if targets is None:
                raise ValueError("RoIHeads: targets are required in training mode")
            return [], self._losses(feats, proposals, targets)
        return self._inference(feats, proposals, image_sizes), {}

    def _losses(
        self, feats: List[Tensor], proposals: List[Tensor], targets: List[Dict[str, Tensor]]
    ) -> Dict[str, Tensor]:
        samples = self._sample(proposals, targets)
        boxes = [s.boxes for s in samples]
        labels = torch.cat([s.labels for s in samples])
        logits, deltas, x, shared = self._forward_box(feats, boxes)
        loss_cls, loss_box = fast_rcnn_losses(
            logits, deltas, labels, torch.cat(boxes), torch.cat([s.gt_boxes for s in samples]), self.box_coder
        )
        losses = {"loss_classifier": loss_cls, "loss_box_reg": loss_box}
        pos_boxes, pos_matched, pos_rows = _positives(samples, self.mask_rois_per_image)
        if self.mask_head is not None:
            if pos_rows.numel():
                ml = self._forward_mask(
                    feats, pos_boxes, shared[pos_rows] if shared is not None else None, labels[pos_rows]
                )
                losses["loss_mask"] = mask_rcnn_loss(
                    ml, [t["masks"] for t in targets], pos_boxes, pos_matched, labels[pos_rows], self.mask_loss
                )
            else:
                # 0 connected to every mask-head parameter (DDP needs a gradient for each)
                losses["loss_mask"] = sum(p.sum() for p in self.mask_head.parameters()) * 0 + x.sum() * 0  # type: ignore[assignment]
        if self.keypoint_head is not None:
            if pos_rows.numel():
                kl = self._forward_keypoint(feats, pos_boxes)
                losses["loss_keypoint"] = keypoint_rcnn_loss(
                    kl, [t["keypoints"] for t in targets], pos_boxes, pos_matched
                )
            else:
                losses["loss_keypoint"] = sum(p.sum() for p in self.keypoint_head.parameters()) * 0  # type: ignore[assignment]
        return losses

    def _inference(
        self, feats: List[Tensor], proposals: List[Tensor], image_sizes: List[Tuple[int, int]]
    ) -> List[Instances]:
        logits, deltas, _, _ = self._forward_box(feats, proposals)
        results = fast_rcnn_inference(
            logits,
            deltas,
            proposals,
            image_sizes,
            self.box_coder,
            self.score_threshold,
            self.nms_threshold,
            self.detections_per_image,
        )
        boxes = [r.boxes for r in results]
        counts = [b.shape[0] for b in boxes]
        ref = feats[0]
        if self.mask_head is not None:
            m = self.mask_resolution
            if _any_detection(counts):
                labels = torch.cat([r.labels for r in results])
                probs = mask_probs_of_labels(self._forward_mask(feats, boxes, labels=labels), labels, self.mask_loss)
                for r, pr in zip(results, probs.split(counts)):
                    r.mask_probs = pr
            else:
                for r in results:
                    r.mask_probs = ref.new_zeros((0, m, m))
        if self.keypoint_head is not None:
            if _any_detection(counts):
                kl = self._forward_keypoint(feats, boxes)
                for r, k in zip(results, kl.split(counts)):
                    r.keypoints, r.keypoint_scores = heatmaps_to_keypoints(k, r.boxes)
            else:
                p = self.num_keypoints
                for r in results:
                    r.keypoints, r.keypoint_scores = ref.new_zeros((0, p, 3)), ref.new_zeros((0, p))
        return results

    # ------------------------------------------------------------- sampling
    def _sample(self, proposals: List[Tensor], targets: List[Dict[str, Tensor]]) -> List[SampledRoIs]:
        """Add the ground-truth boxes to the proposals, match at IoU
        ``box_fg_iou`` / ``box_bg_iou``, sample ``box_batch_size_per_image``
        RoIs per image at the configured positive fraction."""
        labels_all, matched_all, props = [], [], []
        for p, t in zip(proposals, targets):
            gt = t["boxes"].to(p.dtype)
            p = torch.cat([p, gt], 0)
            if gt.shape[0] == 0:
                m = torch.full((p.shape[0],), -1, dtype=torch.int64, device=p.device)
                lab = torch.zeros(p.shape[0], dtype=torch.int64, device=p.device)
            else:
                m = self.matcher(_ops.box_iou(gt, p))
                lab = t["labels"].to(torch.int64)[m.clamp(min=0)]
                lab[m == Matcher.BELOW_LOW_THRESHOLD] = 0
                lab[m == Matcher.BETWEEN_THRESHOLDS] = -1
            labels_all.append(lab)
            matched_all.append(m.clamp(min=0))
            props.append(p)
        pos_masks, neg_masks = self.sampler(labels_all)
        out = []
        for p, lab, m, pm, nm, t in zip(props, labels_all, matched_all, pos_masks, neg_masks, targets):
            idx = torch.where(pm | nm)[0]
            b, lb, mi = p[idx], lab[idx], m[idx]
            gt = t["boxes"].to(p.dtype)
            out.append(SampledRoIs(b, lb, mi, gt[mi] if gt.shape[0] else torch.zeros_like(b)))
        return out


def _any_detection(counts: Sequence[int]) -> bool:
    """Whether any image has a detection. A traced, data-dependent count
    (torch.export) answers True: the heads then run on what may be zero RoIs,
    which gives the same empty results as the shortcut."""
    return bool(guard_or_true(sum(counts) != 0))


def _positives(
    samples: Sequence[SampledRoIs], limit: Optional[int] = None
) -> Tuple[List[Tensor], List[Tensor], Tensor]:
    """Per image positive RoI boxes and matched indices, and the rows of the
    positives in the concatenated samples (Tensor[R+] int64). With ``limit``,
    at most that many positives per image, drawn at random (torch's generator,
    which the trainer seeds every step), in their original order."""
    boxes, matched, rows = [], [], []
    offset = 0
    for s in samples:
        pi = torch.where(s.labels > 0)[0]
        if limit is not None and pi.numel() > limit:
            pi = pi[torch.randperm(pi.numel(), device=pi.device)[:limit].sort().values]
        boxes.append(s.boxes[pi])
        matched.append(s.matched[pi])
        rows.append(pi + offset)
        offset += s.boxes.shape[0]
    return boxes, matched, torch.cat(rows)


class Res5RoIHeads(RoIHeads):
    """C4 RoI heads (the paper's ResNet-C4 variant): RoIAlign 14x14 on C4, then
    res5 (``Res5Head``) as the box head; the FCN mask head deconvolves the
    same res5 features [R, 2048, 7, 7] (in training, the positives' rows of
    the box branch's; at inference, res5 on the detections' boxes)."""

    box_pooler_resolution = 14

    def __init__(self, cfg, input_shape: Mapping[str, ShapeSpec]):
        self._mask_on_res5 = cfg.mask_head == "fcn"
        super().__init__(cfg, input_shape)

    def _build_box_head(self, cfg, in_channels: int) -> Union[TwoMLPHead, Res5Head]:
        return Res5Head(cfg, in_channels)

    @property
    def res5(self) -> Res5Head:
        """The box head as ``Res5Head`` (C4 heads always have one)."""
        assert isinstance(self.box_head, Res5Head)
        return self.box_head

    def _build_mask_head(self, cfg, in_channels: int) -> nn.Module:
        if not self._mask_on_res5:
            return super()._build_mask_head(cfg, in_channels)
        k = 1 if cfg.class_agnostic_masks else cfg.num_classes
        return MaskHeadFCN(self.res5.out_channels, k, num_convs=0, dim=cfg.mask_head_dim or 256)

    def _forward_box(self, feats: List[Tensor], boxes: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        res5 = self.res5.res5_features(self.box_pooler(feats, boxes))
        x = res5.mean(dim=(2, 3))
        logits, deltas = self.box_predictor(x)
        return logits, deltas, x, res5 if self._mask_on_res5 else None

    def _forward_mask(
        self, feats: List[Tensor], boxes: List[Tensor], shared: Optional[Tensor] = None, labels: Optional[Tensor] = None
    ) -> Tensor:
        if not self._mask_on_res5:
            return super()._forward_mask(feats, boxes, labels=labels)
        if shared is None:
            shared = self.res5.res5_features(self.mask_pooler(feats, boxes))
        return self._run_mask_head(shared, labels)


def build_roi_heads(cfg, input_shape: Mapping[str, ShapeSpec]) -> RoIHeads:
    """``RoIHeads`` for FPN backbones, ``Res5RoIHeads`` for C4; ``input_shape``
    holds the pooled levels (finest first) with their channels and strides."""
    return Res5RoIHeads(cfg, input_shape) if cfg.arch == "c4" else RoIHeads(cfg, input_shape)
