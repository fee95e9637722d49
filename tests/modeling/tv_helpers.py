"""Helpers shared by the torchvision parity tests (torchvision is a test oracle only)."""

from __future__ import annotations

import torch


def randomize_(model: torch.nn.Module, seed: int = 0, cls_gain: float = 0.25) -> torch.nn.Module:
    """Give a torchvision detection model non-trivial seeded random weights.

    BatchNorm statistics and affine parameters are randomised too (otherwise
    folding them is a no-op and the test proves nothing). ``cls_gain`` scales
    the box classifier so softmax scores are spread out instead of ~1/K (the
    parity check is about the pipeline, not about ties of near-equal scores).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__ == "FrozenBatchNorm2d":
                c = m.running_mean.shape[0]
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        rh = model.roi_heads
        rh.box_predictor.cls_score.weight.mul_(cls_gain)
        # objectness logits of a few units: sigmoid must not saturate to 1.0,
        # or NMS order among tied scores (unstable sort in torchvision) decides
        model.rpn.head.cls_logits.weight.mul_(0.2)
        # proposals should move a little, not jump across the image
        model.rpn.head.bbox_pred.weight.mul_(0.1)
        rh.box_predictor.bbox_pred.weight.mul_(0.1)
    return model


def make_images(sizes, seed: int = 0):
    """Smooth random RGB images [3, H, W] in [0, 1] (low-frequency blobs so the
    features have structure)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in sizes:
        low = torch.rand((1, 3, max(h // 32, 2), max(w // 32, 2)), generator=g)
        img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0]
        img = (img + 0.05 * torch.rand((3, h, w), generator=g)).clamp(0, 1)
        out.append(img)
    return out


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def match_detections(ref_boxes, ref_labels, boxes, labels, iou_thr: float = 0.999):
    """One-to-one greedy matching (reference order = descending score): each
    reference detection takes the unmatched prediction with the same label and
    the highest box IoU, if that IoU >= iou_thr. Returns a list of (i_ref, j)."""
    iou = box_iou(ref_boxes.double(), boxes.double())
    iou[ref_labels[:, None] != labels[None, :]] = -1
    used = torch.zeros(boxes.shape[0], dtype=torch.bool)
    pairs = []
    for i in range(ref_boxes.shape[0]):
        row = iou[i].clone()
        row[used] = -1
        if row.numel() == 0:
            continue
        j = int(row.argmax())
        if row[j] >= iou_thr:
            used[j] = True
            pairs.append((i, j))
    return pairs


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    inter = (a & b).sum().item()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else inter / union
