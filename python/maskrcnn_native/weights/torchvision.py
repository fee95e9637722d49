"""Import torchvision detection checkpoints (``maskrcnn_resnet50_fpn``,
``keypointrcnn_resnet50_fpn``).

The file is read with ``torch.load(weights_only=True)`` (no unpickling of
arbitrary objects). Parameter names are mapped by a short rename table; the
backbone trunk keeps torchvision's names. ``num_batches_tracked`` buffers are
dropped (BatchNorm is frozen here).

Fine-tuning with a new number of classes::

    model = mn.Model.from_torchvision("maskrcnn_resnet50_fpn_coco.pth", num_classes=5, reinit_heads=True)

keeps every pretrained weight except the class-specific layers (box classifier,
box regressor, mask logits; the keypoint logits when ``num_keypoints``
differs), which keep their fresh initialisation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Union

from torch import Tensor

from .state_dict import load_checked

_RENAMES = [
    (r"^backbone\.fpn\.(inner_blocks|layer_blocks)\.(\d+)\.0\.", r"backbone.fpn.\1.\2."),
    (r"^rpn\.head\.conv\.0\.0\.", "rpn.head.conv."),
    (r"^roi_heads\.mask_head\.(\d+)\.0\.", r"roi_heads.mask_head.convs.\1."),
    (r"^roi_heads\.mask_head\.mask_fcn(\d+)\.", None),  # old torchvision naming, handled below
    (r"^roi_heads\.mask_predictor\.", "roi_heads.mask_head."),
    (r"^roi_heads\.keypoint_predictor\.", "roi_heads.keypoint_head."),
]

_ARCHS = {
    "maskrcnn_resnet50_fpn": dict(preset="R50-FPN"),
    "keypointrcnn_resnet50_fpn": dict(preset="R50-FPN-KP"),
}

# class-specific parameters re-initialised by reinit_heads=True
_HEAD_KEYS = (
    "roi_heads.box_predictor.cls_score.",
    "roi_heads.box_predictor.bbox_pred.",
    "roi_heads.mask_head.mask_fcn_logits.",
    "roi_heads.keypoint_head.kps_score_lowres.",
)


def _rename(k: str) -> str:
    m = re.match(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(.*)$", k)
    if m:  # torchvision < 0.13
        return f"roi_heads.mask_head.convs.{int(m.group(1)) - 1}.{m.group(2)}"
    m = re.match(r"^roi_heads\.keypoint_head\.(\d+)\.(.*)$", k)
    if m:
        return f"roi_heads.keypoint_head.convs.{int(m.group(1)) // 2}.{m.group(2)}"
    m = re.match(r"^roi_heads\.keypoint_head\.conv_fcn(\d+)\.(.*)$", k)
    if m:
        return f"roi_heads.keypoint_head.convs.{int(m.group(1)) - 1}.{m.group(2)}"
    for pat, rep in _RENAMES:
        if rep is not None and re.match(pat, k):
            return re.sub(pat, rep, k)
    return k


def convert_torchvision_state_dict(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """torchvision detection state dict -> this package's names (drops num_batches_tracked)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        out[_rename(k)] = v
    return out


def from_torchvision(
    model_cls,
    state_dict_or_path: Union[str, Path, Dict[str, Tensor]],
    arch: str = "maskrcnn_resnet50_fpn",
    reinit_heads: bool = False,
    **overrides,
):
    """Build ``model_cls`` for ``arch`` and load torchvision weights into it.

    num_classes (and num_keypoints) default to the checkpoint's. With a
    different ``num_classes`` pass ``reinit_heads=True``; otherwise the shape
    mismatch raises a ValueError that lists every offending key."""
    if arch not in _ARCHS:
        raise ValueError(f"from_torchvision: arch must be one of {sorted(_ARCHS)}, got {arch!r}")
    if isinstance(state_dict_or_path, (str, Path)):
        from .._io import torch_load_weights

        sd = torch_load_weights(state_dict_or_path, "from_torchvision")
        if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
            sd = sd["model"]
    else:
        sd = state_dict_or_path
    if not isinstance(sd, dict):
        raise TypeError("from_torchvision: expected a state dict (mapping name -> tensor)")
    sd = convert_torchvision_state_dict(dict(sd))
    kw = {}
    w = sd.get("roi_heads.box_predictor.cls_score.weight")
    if w is not None:
        kw["num_classes"] = int(w.shape[0])
    kp = sd.get("roi_heads.keypoint_head.kps_score_lowres.weight")
    if kp is not None:
        kw["num_keypoints"] = int(kp.shape[1])
    kw.update(overrides)
    model = model_cls(_ARCHS[arch]["preset"], **kw)
    if reinit_heads:
        own = model.state_dict()
        sd = {k: v for k, v in sd.items() if not (k.startswith(_HEAD_KEYS) and k in own and own[k].shape != v.shape)}
        load_checked(model, sd, allow_missing=[k for k in own if k.startswith(_HEAD_KEYS)])
    else:
        load_checked(model, sd)
    model.eval()
    return model
