"""RoI heads: proposal sampling, box / mask / keypoint branches, their losses
and inference post-processing (paper section 3 and 3.1).

All boxes here are Tensor[R, 4] float32 XYXY in resized-image pixels.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _ops
from ..box_coder import BoxCoder
from ..matcher import Matcher
from ..sampler import BalancedSampler
from .heads import BoxPredictor, KeypointHead, MaskHeadFCN, MaskHeadMLP, Res5Head, TwoMLPHead
from .poolers import MultiScalePooler


# ----------------------------------------------------------------- targets / losses

def mask_targets(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, m: int) -> Tensor:
    """Crop each matched GT mask to its RoI and resample to m x m with RoIAlign
    (aligned=False, adaptive sampling, as torchvision), not a box-quantised crop.

    gt_masks [G, H, W] uint8/bool, boxes [R, 4] XYXY, matched_idxs [R] int64
    -> Tensor[R, m, m] float32 in [0, 1]."""
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, m, m))
    rois = torch.cat([matched_idxs.to(boxes.dtype)[:, None], boxes], 1)
    return _ops.roi_align(gt_masks[:, None].to(boxes.dtype), rois, (m, m), 1.0, -1, False)[:, 0]


def keypoint_targets(keypoints: Tensor, rois: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """keypoints [R, P, 3] (x, y, visibility) matched to rois [R, 4] -> (flat
    heatmap index y*size+x [R, P] int64, valid [R, P] bool). Discretisation
    floor((x - x1) * size / w), with the right/bottom box edge mapped to size-1."""
    x1, y1 = rois[:, 0:1], rois[:, 1:2]
    sx = size / (rois[:, 2:3] - x1)
    sy = size / (rois[:, 3:4] - y1)
    x, y = keypoints[..., 0], keypoints[..., 1]
    xi = ((x - x1) * sx).floor().long()
    yi = ((y - y1) * sy).floor().long()
    xi[x == rois[:, 2:3]] = size - 1
    yi[y == rois[:, 3:4]] = size - 1
    valid = (xi >= 0) & (yi >= 0) & (xi < size) & (yi < size) & (keypoints[..., 2] > 0)
    return (yi * size + xi) * valid, valid


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """Decode keypoint logits [R, P, S, S] for boxes rois [R, 4] to
    (xy [R, P, 3] with (x, y, score) image pixels, scores [R, P]).

    Each map is resized bicubically to the box size rounded up (ceil(w) x
    ceil(h)), the arg-max pixel centre (i + 0.5) is rescaled by w / ceil(w) and
    offset by the box corner (torchvision's / Detectron's decoding). The
    per-RoI resize has a data-dependent output size, so this loops over RoIs
    (at most detections_per_image of them, each one small interpolate).
    """
    r, p = maps.shape[:2]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    wc, hc = widths.ceil(), heights.ceil()
    xy = maps.new_zeros((r, p, 3))
    scores = maps.new_zeros((r, p))
    wl, hl = wc.to(torch.int64).tolist(), hc.to(torch.int64).tolist()
    ar = torch.arange(p)
    for i in range(r):
        up = F.interpolate(maps[i][:, None], size=(hl[i], wl[i]), mode="bicubic", align_corners=False)[:, 0]
        pos = up.reshape(p, -1).argmax(dim=1)
        xi = pos % wl[i]
        yi = torch.div(pos - xi, wl[i], rounding_mode="floor")
        xy[i, :, 0] = (xi.float() + 0.5) * (widths[i] / wl[i]) + rois[i, 0]
        xy[i, :, 1] = (yi.float() + 0.5) * (heights[i] / hl[i]) + rois[i, 1]
        scores[i] = up[ar, yi, xi]
    xy[..., 2] = scores
    return xy, scores


class RoIHeads(nn.Module):
    """forward(features: dict name -> [N, C, H, W], proposals: list of [P_i, 4],
    image_sizes: list of (h, w), targets: list of dicts or None)
    -> (results: list of dicts with boxes [D, 4], scores [D], labels [D] int64,
        mask_probs [D, m, m] float (predicted class), keypoints [D, P, 3];
        losses: dict loss_classifier, loss_box_reg, loss_mask, loss_keypoint)."""

    def __init__(self, cfg, in_channels: int, pooler_levels, strides):
        super().__init__()
        self.cfg = cfg
        self.pooler_levels = tuple(pooler_levels)
        c4 = cfg.arch == "c4"
        self.c4 = c4
        nc = cfg.num_classes
        if c4:
            self.box_pooler = MultiScalePooler(14, strides, cfg.pooler_sampling_ratio, cfg.pooler, cfg.pooler_aligned)
            self.box_head = Res5Head(cfg, in_channels)
        else:
            self.box_pooler = MultiScalePooler(7, strides, cfg.pooler_sampling_ratio, cfg.pooler, cfg.pooler_aligned)
            self.box_head = TwoMLPHead(in_channels * 49, cfg.box_head_dim)
        self.box_predictor = BoxPredictor(self.box_head.out_dim, nc)
        self.box_coder = BoxCoder(cfg.box_reg_weights)
        self.matcher = Matcher(cfg.box_fg_iou, cfg.box_bg_iou, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(cfg.box_batch_size_per_image, cfg.box_positive_fraction)

        self.mask_head = None
        if cfg.masks:
            k = 1 if cfg.class_agnostic_masks else nc
            self.mask_pooler = MultiScalePooler(14, strides, cfg.pooler_sampling_ratio, cfg.pooler,
                                                cfg.pooler_aligned)
            if cfg.mask_head == "mlp":
                self.mask_head = MaskHeadMLP(in_channels * 14 * 14, k, cfg.mask_resolution, cfg.mask_head_dim or 1024)
            elif c4:
                self.mask_head = MaskHeadFCN(self.box_head.out_channels, k, num_convs=0, dim=cfg.mask_head_dim or 256)
            else:
                self.mask_head = MaskHeadFCN(in_channels, k, num_convs=4, dim=cfg.mask_head_dim or 256)
        self.keypoint_head = None
        if cfg.keypoints:
            self.keypoint_pooler = MultiScalePooler(14, strides, cfg.pooler_sampling_ratio, cfg.pooler,
                                                    cfg.pooler_aligned)
            kin = in_channels
            self.keypoint_head = KeypointHead(kin, cfg.num_keypoints, dim=cfg.keypoint_head_dim)

    # ------------------------------------------------------------- helpers
    def _feats(self, features: Dict[str, Tensor]) -> List[Tensor]:
        return [features[k] for k in self.pooler_levels]

    def _mask_logits(self, feats: List[Tensor], boxes: List[Tensor], res5: Optional[Tensor] = None) -> Tensor:
        if self.c4 and self.cfg.mask_head == "fcn":
            if res5 is None:
                res5 = self.box_head.res5_features(self.mask_pooler(feats, boxes))
            return self.mask_head(res5)
        return self.mask_head(self.mask_pooler(feats, boxes))

    # ------------------------------------------------------------- training
    def _sample(self, proposals: List[Tensor], targets: List[Dict[str, Tensor]]):
        """Add GT boxes to the proposals, match at IoU 0.5, sample 1:3.
        Returns per image (boxes [S, 4], labels [S] int64, matched gt idx [S],
        regression targets [S, 4])."""
        labels_all, matched_all, props = [], [], []
        for p, t in zip(proposals, targets):
            gt = t["boxes"].to(p.dtype)
            p = torch.cat([p, gt], 0)
            if gt.shape[0] == 0:
                m = torch.full((p.shape[0],), -1, dtype=torch.int64)
                lab = torch.zeros(p.shape[0], dtype=torch.int64)
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
            b, l, mi = p[idx], lab[idx], m[idx]
            gt = t["boxes"].to(p.dtype)
            ref = gt[mi] if gt.shape[0] else torch.zeros_like(b)
            out.append((b, l, mi, ref))
        return out

    def _box_losses(self, logits: Tensor, deltas: Tensor, labels: Tensor, boxes: Tensor,
                    ref: Tensor) -> Dict[str, Tensor]:
        loss_cls = F.cross_entropy(logits, labels)
        pos = torch.where(labels > 0)[0]
        if pos.numel():
            d = deltas.reshape(deltas.shape[0], -1, 4)[pos, labels[pos]]
            tgt = self.box_coder.encode(ref[pos], boxes[pos])
            loss_box = F.smooth_l1_loss(d, tgt, beta=1.0 / 9, reduction="sum") / labels.numel()
        else:
            loss_box = deltas.sum() * 0
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def _mask_loss(self, logits: Tensor, boxes: List[Tensor], matched: List[Tensor], labels: Tensor,
                   targets: List[Dict[str, Tensor]]) -> Tensor:
        m = logits.shape[-1]
        tg = [mask_targets(t["masks"], b, mi, m) for t, b, mi in zip(targets, boxes, matched)]
        tgt = torch.cat(tg, 0) if tg else logits.new_zeros((0, m, m))
        if tgt.numel() == 0:
            return logits.sum() * 0
        if self.cfg.mask_loss == "softmax":
            cls_t = torch.where(tgt >= 0.5, labels[:, None, None], torch.zeros_like(labels)[:, None, None])
            return F.cross_entropy(logits, cls_t)
        sel = logits[:, 0] if logits.shape[1] == 1 else logits[torch.arange(labels.numel()), labels]
        return F.binary_cross_entropy_with_logits(sel, tgt)

    def _keypoint_loss(self, logits: Tensor, boxes: List[Tensor], matched: List[Tensor],
                       targets: List[Dict[str, Tensor]]) -> Tensor:
        r, p, s, _ = logits.shape
        hm, va = [], []
        for b, mi, t in zip(boxes, matched, targets):
            h, v = keypoint_targets(t["keypoints"][mi], b, s)
            hm.append(h.reshape(-1))
            va.append(v.reshape(-1))
        if not hm:
            return logits.sum() * 0
        hm, va = torch.cat(hm), torch.cat(va)
        valid = torch.where(va)[0]
        if valid.numel() == 0:
            return logits.sum() * 0
        return F.cross_entropy(logits.reshape(r * p, s * s)[valid], hm[valid])

    # ------------------------------------------------------------- forward
    def forward(self, features: Dict[str, Tensor], proposals: List[Tensor], image_sizes: List[Tuple[int, int]],
                targets: Optional[List[Dict[str, Tensor]]] = None):
        feats = self._feats(features)
        if self.training:
            if targets is None:
                raise ValueError("RoIHeads: targets are required in training mode")
            samples = self._sample(proposals, targets)
            boxes = [s[0] for s in samples]
            labels = torch.cat([s[1] for s in samples])
            pooled = self.box_pooler(feats, boxes)
            res5 = None
            if self.c4:
                res5 = self.box_head.res5_features(pooled)
                x = res5.mean(dim=(2, 3))
            else:
                x = self.box_head(pooled)
            logits, deltas = self.box_predictor(x)
            losses = self._box_losses(logits, deltas, labels, torch.cat(boxes), torch.cat([s[3] for s in samples]))
            pos_boxes, pos_matched, pos_sel = [], [], []
            offset = 0
            for b, l, mi, _ in samples:
                pi = torch.where(l > 0)[0]
                pos_boxes.append(b[pi])
                pos_matched.append(mi[pi])
                pos_sel.append(pi + offset)
                offset += b.shape[0]
            pos_sel = torch.cat(pos_sel)
            if self.mask_head is not None:
                r5 = res5[pos_sel] if res5 is not None else None
                if pos_sel.numel():
                    ml = self._mask_logits(feats, pos_boxes, r5)
                    losses["loss_mask"] = self._mask_loss(ml, pos_boxes, pos_matched, labels[pos_sel], targets)
                else:
                    losses["loss_mask"] = sum(p.sum() for p in self.mask_head.parameters()) * 0 + x.sum() * 0
            if self.keypoint_head is not None:
                if pos_sel.numel():
                    kl = self.keypoint_head(self.keypoint_pooler(feats, pos_boxes))
                    losses["loss_keypoint"] = self._keypoint_loss(kl, pos_boxes, pos_matched, targets)
                else:
                    losses["loss_keypoint"] = sum(p.sum() for p in self.keypoint_head.parameters()) * 0
            return [], losses

        pooled = self.box_pooler(feats, proposals)
        logits, deltas = self.box_predictor(self.box_head(pooled))
        results = self._postprocess(logits, deltas, proposals, image_sizes)
        dboxes = [r["boxes"] for r in results]
        if self.mask_head is not None:
            if sum(b.shape[0] for b in dboxes):
                ml = self._mask_logits(feats, dboxes)
                labels = torch.cat([r["labels"] for r in results])
                if self.cfg.mask_loss == "softmax":
                    probs = ml.softmax(dim=1)[torch.arange(labels.numel()), labels]
                elif ml.shape[1] == 1:
                    probs = ml[:, 0].sigmoid()
                else:
                    probs = ml[torch.arange(labels.numel()), labels].sigmoid()
                for r, pr in zip(results, probs.split([b.shape[0] for b in dboxes])):
                    r["mask_probs"] = pr
            else:
                m = self.cfg.mask_resolution
                for r in results:
                    r["mask_probs"] = torch.zeros((0, m, m))
        if self.keypoint_head is not None:
            if sum(b.shape[0] for b in dboxes):
                kl = self.keypoint_head(self.keypoint_pooler(feats, dboxes))
                for r, k in zip(results, kl.split([b.shape[0] for b in dboxes])):
                    r["keypoints"], r["keypoint_scores"] = heatmaps_to_keypoints(k, r["boxes"])
            else:
                p = self.cfg.num_keypoints
                for r in results:
                    r["keypoints"], r["keypoint_scores"] = torch.zeros((0, p, 3)), torch.zeros((0, p))
        return results, {}

    def _postprocess(self, logits: Tensor, deltas: Tensor, proposals: List[Tensor],
                     image_sizes: List[Tuple[int, int]]) -> List[Dict[str, Tensor]]:
        """Per class decode + clip, drop background, score > threshold, drop boxes
        under 0.01 px, per-class NMS, keep the top detections_per_image."""
        cfg = self.cfg
        nc = logits.shape[1]
        counts = [p.shape[0] for p in proposals]
        boxes_all = self.box_coder.decode(deltas, torch.cat(proposals))  # [R, C, 4]
        scores_all = F.softmax(logits, -1)
        results = []
        for boxes, scores, (h, w) in zip(boxes_all.split(counts), scores_all.split(counts), image_sizes):
            boxes = torch.stack((boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                                 boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)), dim=-1)
            nprop = boxes.shape[0]
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = torch.arange(1, nc).repeat(nprop)
            keep = scores > cfg.score_threshold
            keep &= ((boxes[:, 2] - boxes[:, 0]) >= 1e-2) & ((boxes[:, 3] - boxes[:, 1]) >= 1e-2)
            idx = torch.where(keep)[0]
            boxes, scores, labels = boxes[idx], scores[idx], labels[idx]
            keep = _ops.batched_nms(boxes, scores, labels, cfg.nms_threshold)[: cfg.detections_per_image]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results
