"""A one-line switch that runs existing torchvision code on the native kernels.

    import maskrcnn_native as mn
    mn.compat.use_in_torchvision()          # from now on
    with mn.compat.use_in_torchvision():    # or only inside the block
        detections = torchvision_model(images)
    mn.compat.restore_torchvision()         # undo

What is routed (CPU tensors; anything else falls through to torchvision's own
implementation, so CUDA, quantized or batched-``box_iou`` calls keep working):

* ``torchvision.ops.roi_align`` / ``roi_pool`` / ``nms`` / ``batched_nms`` /
  ``box_iou`` and the ``RoIAlign`` / ``RoIPool`` modules;
* ``MultiScaleRoIAlign``'s per-level pooling (``torchvision.ops.poolers.roi_align``);
* ``torchvision.models.detection.roi_heads``: ``roi_align`` (mask targets),
  ``box_ops.*`` (through ``torchvision.ops.boxes``) and
  ``paste_masks_in_image`` (also the name bound in ``transform``), pasted with
  ``paste_masks(mode="torchvision")``;
* ``AnchorGenerator.forward`` (one native call for all levels) and
  ``BoxCoder.encode_single`` / ``decode_single`` (``models.detection._utils``).
* ``GeneralizedRCNNTransform.batch_images``: at inference (no autograd) the
  padded CPU batch is made channels_last, as ``mn.Model`` infers, so the
  detector's convolutions run in the layout oneDNN is fastest in
  (``use_in_torchvision(layout="keep")`` turns this off).
* ``Bottleneck`` / ``BasicBlock.forward`` (``torchvision.models.resnet``): at
  inference with ``layout="auto"`` the residual blocks run as ``mn.Model``'s do,
  frozen BatchNorm folded into the convolutions (cached) and conv + residual
  add + ReLU as one oneDNN call each, instead of a conv and two elementwise
  passes per norm;
* ``Conv2dNormActivation.forward`` (``torchvision.ops.misc``: the FPN's
  inner and output convs, the RPN head's conv, the mask head's convs): at
  inference with ``layout="auto"`` on a channels_last float32 map, a plain
  conv (+ frozen norm) (+ ReLU) runs as ``mn.Model``'s convolutions do (one
  fused oneDNN call, or Winograd F(4x4,3x3) for the wide 3x3 ones; see
  ``modeling.layers.conv2d``);
* ``RPNHead.forward`` (``conv_depth=1``): in training its backward runs only
  on the anchors the RPN loss sampled (``modeling.proposal_generator.head_grad``):
  the same forward, the same gradients up to summation order, without the
  dense convolution backward over every FPN level.

torchvision modules import several of these by name, so every binding site is
patched and every one is restored. Nothing imports torchvision until
:func:`use_in_torchvision` is called. Not thread-safe against concurrent
switching (patching is process-wide, like any monkeypatch).
"""

import importlib
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from . import ops as _ops
from .modeling.proposal_generator import head_grad as _head_grad

__all__ = ["use_in_torchvision", "restore_torchvision", "is_active"]

_saved: Dict[Tuple[str, str], Any] = {}  # (module or "module:Class", attr) -> original
_LAYOUTS = ("auto", "keep")
_layout = ["auto"]  # use_in_torchvision(layout=...): read by the batch_images wrapper


def _cpu(*ts) -> bool:
    return all(isinstance(t, Tensor) and t.device.type == "cpu" and not t.is_quantized for t in ts)


_FLOAT = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ---------------------------------------------------------------- replacements ----


def _make_roi_align(orig: Callable) -> Callable:
    def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        bs = boxes if isinstance(boxes, (list, tuple)) else [boxes]
        if not (_cpu(input, *bs) and input.dtype in _FLOAT):
            return orig(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)
        return _ops.roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)

    roi_align.__wrapped__ = orig  # type: ignore[attr-defined]
    return roi_align


def _make_roi_pool(orig: Callable) -> Callable:
    def roi_pool(input, boxes, output_size, spatial_scale=1.0):
        bs = boxes if isinstance(boxes, (list, tuple)) else [boxes]
        if not (_cpu(input, *bs) and input.dtype in _FLOAT):
            return orig(input, boxes, output_size, spatial_scale)
        return _ops.roi_pool(input, boxes, output_size, spatial_scale)

    roi_pool.__wrapped__ = orig  # type: ignore[attr-defined]
    return roi_pool


def _make_nms(orig: Callable) -> Callable:
    def nms(boxes, scores, iou_threshold):
        if not _cpu(boxes, scores):
            return orig(boxes, scores, iou_threshold)
        return _ops.nms(boxes, scores, iou_threshold)

    nms.__wrapped__ = orig  # type: ignore[attr-defined]
    return nms


def _make_batched_nms(orig: Callable) -> Callable:
    def batched_nms(boxes, scores, idxs, iou_threshold):
        if isinstance(boxes, Tensor) and boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64, device=boxes.device)
        if not _cpu(boxes, scores, idxs):
            return orig(boxes, scores, idxs, iou_threshold)
        return _ops.batched_nms(boxes, scores, idxs, iou_threshold)

    batched_nms.__wrapped__ = orig  # type: ignore[attr-defined]
    return batched_nms


def _make_box_iou(orig: Callable) -> Callable:
    def box_iou(boxes1, boxes2, fmt="xyxy"):
        if (
            fmt != "xyxy"
            or not _cpu(boxes1, boxes2)
            or boxes1.dim() != 2
            or boxes2.dim() != 2
            or boxes1.dtype == torch.bool
            or boxes1.is_complex()
        ):
            return orig(boxes1, boxes2, fmt=fmt)
        return _ops.box_iou(boxes1, boxes2)

    box_iou.__wrapped__ = orig  # type: ignore[attr-defined]
    return box_iou


def _make_paste(orig: Callable) -> Callable:
    def paste_masks_in_image(masks, boxes, img_shape, padding=1):
        if (
            padding != 1
            or not _cpu(masks, boxes)
            or masks.dim() != 4
            or masks.shape[1] != 1
            or masks.dtype not in _FLOAT
        ):
            return orig(masks, boxes, img_shape, padding)
        h, w = int(img_shape[0]), int(img_shape[1])
        out = _ops.paste_masks(masks[:, 0], boxes, (h, w), mode="torchvision", threshold=None)
        return out[:, None]

    paste_masks_in_image.__wrapped__ = orig  # type: ignore[attr-defined]
    return paste_masks_in_image


def _make_anchor_forward(orig: Callable) -> Callable:
    def forward(self, image_list, feature_maps: List[Tensor]) -> List[Tensor]:
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
            return orig(self, image_list, feature_maps)
        grid_sizes = [[int(f.shape[-2]), int(f.shape[-1])] for f in feature_maps]
        ih, iw = int(image_list.tensors.shape[-2]), int(image_list.tensors.shape[-1])
        strides = [[float(ih // g[0]), float(iw // g[1])] for g in grid_sizes]
        self.set_cell_anchors(dtype, device)
        if not (len(grid_sizes) == len(strides) == len(self.cell_anchors)):
            raise ValueError(
                "Anchors should be Tuple[Tuple[int]] because each feature map could potentially have "
                "different sizes and aspect ratios. There needs to be a match between the number of "
                "feature maps passed and the number of sizes / aspect ratios specified."
            )
        anchors = _ops.multilevel_grid_anchors(list(self.cell_anchors), grid_sizes, strides)
        n = len(image_list.image_sizes)
        return [anchors] + [anchors.clone() for _ in range(n - 1)] if n else []

    forward.__wrapped__ = orig  # type: ignore[attr-defined]
    return forward


def _needs_autograd(*ts) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def _make_decode_single(orig: Callable) -> Callable:
    def decode_single(self, rel_codes, boxes):
        if (
            not _cpu(rel_codes, boxes)
            or rel_codes.dtype not in (torch.float32, torch.float64)
            or rel_codes.dim() != 2
            or _needs_autograd(rel_codes, boxes)
        ):
            return orig(self, rel_codes, boxes)
        return _ops.decode_boxes(
            rel_codes, boxes.to(rel_codes.dtype), tuple(float(w) for w in self.weights), float(self.bbox_xform_clip)
        )

    decode_single.__wrapped__ = orig  # type: ignore[attr-defined]
    return decode_single


def _make_encode_single(orig: Callable) -> Callable:
    def encode_single(self, reference_boxes, proposals):
        if (
            not _cpu(reference_boxes, proposals)
            or reference_boxes.dtype not in (torch.float32, torch.float64)
            or _needs_autograd(reference_boxes, proposals)
        ):
            return orig(self, reference_boxes, proposals)
        return _ops.encode_boxes(
            reference_boxes, proposals.to(reference_boxes.dtype), tuple(float(w) for w in self.weights)
        )

    encode_single.__wrapped__ = orig  # type: ignore[attr-defined]
    return encode_single


def _make_batch_images(orig: Callable) -> Callable:
    def batch_images(self, images: List[Tensor], size_divisible: int = 32) -> Tensor:
        batched = orig(self, images, size_divisible)
        if _layout[0] != "auto" or not _cpu(batched) or batched.dim() != 4 or batched.dtype not in _FLOAT:
            return batched
        # At inference the padded batch goes channels_last, the layout mn.Model
        # infers in: every conv, the FPN's interpolation and the RoI ops keep
        # it, so oneDNN does not reorder at each layer. Training keeps
        # torchvision's layout: there a different summation order flips the
        # samplers' near-ties (other proposals, other sampled RoIs), and the
        # switch is meant to reproduce torchvision's losses and gradients.
        if torch.is_grad_enabled():
            return batched
        return batched.contiguous(memory_format=torch.channels_last)

    batch_images.__wrapped__ = orig  # type: ignore[attr-defined]
    return batch_images


def _make_rpn_head_forward(orig: Callable) -> Callable:
    def forward(self, x):
        # torchvision's RPNHead with conv_depth=1: conv = [Conv2dNormActivation(Conv2d, ReLU)]
        block = self.conv[0] if len(self.conv) == 1 else None
        parts = list(block.children()) if isinstance(block, torch.nn.Sequential) else []
        if not (len(parts) == 2 and isinstance(parts[0], torch.nn.Conv2d) and isinstance(parts[1], torch.nn.ReLU)):
            return orig(self, x)
        conv = parts[0]
        logits, bbox_reg = [], []
        for feature in x:
            if _cpu(feature) and _head_grad.sparse_backward_applies(feature, conv, self.cls_logits, self.bbox_pred):
                # torchvision's own modules compute the forward; the backward
                # runs on the anchors its loss sampled (same gradients)
                lo, de = _head_grad.rpn_head_level(
                    feature,
                    conv,
                    self.cls_logits,
                    self.bbox_pred,
                    self.conv,
                    lambda t: (self.cls_logits(t), self.bbox_pred(t)),
                )
            else:
                t = self.conv(feature)
                lo, de = self.cls_logits(t), self.bbox_pred(t)
            logits.append(lo)
            bbox_reg.append(de)
        return logits, bbox_reg

    forward.__wrapped__ = orig  # type: ignore[attr-defined]
    return forward


def _foldable_norm(bn: Any) -> bool:
    from torchvision.ops.misc import FrozenBatchNorm2d as TvFrozenBN

    return isinstance(bn, TvFrozenBN) or (isinstance(bn, torch.nn.BatchNorm2d) and not bn.training)


def _block_pairs(block: Any) -> Optional[List[Tuple[Any, Any]]]:
    """(conv, norm) pairs of a torchvision ResNet block, conv1 first, when all of
    them (and the downsample, if any) are plain convs with frozen norms."""
    names = ("1", "2", "3") if hasattr(block, "conv3") else ("1", "2")
    pairs = [(getattr(block, "conv" + n), getattr(block, "bn" + n)) for n in names]
    ds = block.downsample
    if ds is not None:
        if not (isinstance(ds, torch.nn.Sequential) and len(ds) == 2):
            return None
        pairs.append((ds[0], ds[1]))
    ok = all(type(c) is torch.nn.Conv2d and c.padding_mode == "zeros" and _foldable_norm(b) for c, b in pairs)
    return pairs if ok else None


def _make_block_forward(orig: Callable) -> Callable:
    def forward(self, x):
        # At inference with layout="auto": the block as mn.Model runs its own,
        # frozen norms folded into the convolutions and each conv + (add) + ReLU
        # one oneDNN call (``modeling.layers.conv_bn``). Another summation
        # order, like the channels_last batch; training and layout="keep" run
        # torchvision's code.
        if _layout[0] != "auto" or torch.is_grad_enabled() or not _cpu(x) or x.dtype != torch.float32:
            return orig(self, x)
        pairs = _block_pairs(self)
        if pairs is None or not isinstance(self.relu, torch.nn.ReLU):
            return orig(self, x)
        from .modeling.layers import conv_bn

        body = pairs[:-1] if self.downsample is not None else pairs
        identity = x if self.downsample is None else conv_bn(x, *pairs[-1])
        out = x
        for conv, bn in body[:-1]:
            out = conv_bn(out, conv, bn, relu=True)
        return conv_bn(out, *body[-1], relu=True, add=identity)

    forward.__wrapped__ = orig  # type: ignore[attr-defined]
    return forward


def _conv_norm_act_parts(block: Any) -> Optional[Tuple[Any, Any, bool]]:
    """(conv, foldable norm or None, relu) of a Conv2dNormActivation made of a
    plain Conv2d, optionally a frozen / eval-mode norm, optionally a ReLU."""
    parts = list(block.children())
    if not parts or type(parts[0]) is not torch.nn.Conv2d or parts[0].padding_mode != "zeros":
        return None
    conv, rest = parts[0], parts[1:]
    bn = rest.pop(0) if rest and _foldable_norm(rest[0]) else None
    relu = bool(rest) and isinstance(rest[0], torch.nn.ReLU)
    if rest[1 if relu else 0 :]:
        return None
    return conv, bn, relu


def _make_conv_norm_act_forward(orig: Callable) -> Callable:
    def forward(self, x):
        # At inference with layout="auto" on the channels_last batch's maps: as
        # mn.Model runs its convolutions (layers.conv_bn / conv_module). Another
        # summation order; anything else runs torchvision's Sequential.
        if (
            _layout[0] != "auto"
            or torch.is_grad_enabled()
            or not _cpu(x)
            or x.dtype != torch.float32
            or x.dim() != 4
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return orig(self, x)
        parts = _conv_norm_act_parts(self)
        if parts is None:
            return orig(self, x)
        from .modeling.layers import conv_bn, conv_module

        conv, bn, relu = parts
        return conv_module(x, conv, relu=relu) if bn is None else conv_bn(x, conv, bn, relu=relu)

    forward.__wrapped__ = orig  # type: ignore[attr-defined]
    return forward


# ------------------------------------------------------------- binding sites ----

# (module, attribute, factory). A function imported by name into several modules
# is listed once per module; the original seen at the first site is wrapped
# for all of them (they are the same object in torchvision).
_FUNCTION_SITES = [
    ("torchvision.ops.roi_align", "roi_align", _make_roi_align),
    ("torchvision.ops", "roi_align", _make_roi_align),
    ("torchvision.ops.poolers", "roi_align", _make_roi_align),
    ("torchvision.models.detection.roi_heads", "roi_align", _make_roi_align),
    ("torchvision.ops.roi_pool", "roi_pool", _make_roi_pool),
    ("torchvision.ops", "roi_pool", _make_roi_pool),
    ("torchvision.ops.boxes", "nms", _make_nms),
    ("torchvision.ops", "nms", _make_nms),
    ("torchvision.ops.boxes", "batched_nms", _make_batched_nms),
    ("torchvision.ops", "batched_nms", _make_batched_nms),
    ("torchvision.ops.boxes", "box_iou", _make_box_iou),
    ("torchvision.ops", "box_iou", _make_box_iou),
    ("torchvision.models.detection.roi_heads", "paste_masks_in_image", _make_paste),
    ("torchvision.models.detection.transform", "paste_masks_in_image", _make_paste),
]
_OPTIONAL_SITES = [  # patched only when already imported (importing them is heavy)
    ("torchvision.transforms.v2._geometry", "box_iou", _make_box_iou),
]
_METHOD_SITES = [
    ("torchvision.models.detection.anchor_utils", "AnchorGenerator", "forward", _make_anchor_forward),
    ("torchvision.models.detection._utils", "BoxCoder", "decode_single", _make_decode_single),
    ("torchvision.models.detection._utils", "BoxCoder", "encode_single", _make_encode_single),
    ("torchvision.models.detection.transform", "GeneralizedRCNNTransform", "batch_images", _make_batch_images),
    ("torchvision.models.detection.rpn", "RPNHead", "forward", _make_rpn_head_forward),
    ("torchvision.models.resnet", "Bottleneck", "forward", _make_block_forward),
    ("torchvision.models.resnet", "BasicBlock", "forward", _make_block_forward),
    ("torchvision.ops.misc", "Conv2dNormActivation", "forward", _make_conv_norm_act_forward),
]
_INHERITED = object()  # a patched method the class only inherited: restored by deleting ours


def is_active() -> bool:
    """True while torchvision is routed to the native kernels."""
    return bool(_saved)


class _Switch:
    """Returned by :func:`use_in_torchvision`; as a context manager it restores on exit
    (unless the switch was already on when it was entered)."""

    def __init__(self, was_active: bool, previous_layout: str):
        self._was_active = was_active
        self._previous_layout = previous_layout

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if not self._was_active:
            restore_torchvision()
        else:
            _layout[0] = self._previous_layout


def use_in_torchvision(layout: str = "auto") -> _Switch:
    """Routes torchvision's ops, MultiScaleRoIAlign pooling, mask pasting,
    AnchorGenerator and BoxCoder to the native kernels (see the module docstring).
    Idempotent. Use as a call or as ``with mn.compat.use_in_torchvision(): ...``.

    ``layout="auto"`` (default) also makes the detector's padded CPU image
    batch channels_last at inference, as ``mn.Model`` infers, which is most of
    the inference speed-up, and folds the ResNet blocks' frozen norms into their
    convolutions there: the convolutions then sum in another order, so
    scores and boxes move by float rounding (up to ~2e-4 in score and ~0.01 px
    on the randomly initialised R50-FPN detectors of the tests). Training is
    not affected (it keeps torchvision's layout). ``layout="keep"`` leaves the
    batch alone at inference too: only the routed ops differ from torchvision."""
    if layout not in _LAYOUTS:
        raise ValueError(f"use_in_torchvision: layout must be one of {_LAYOUTS}, got {layout!r}")
    previous = _layout[0]
    _layout[0] = layout
    if _saved:
        return _Switch(True, previous)
    try:
        originals: Dict[Any, Callable] = {}  # torchvision function -> our wrapper
        for mod_name, attr, factory in _FUNCTION_SITES + [s for s in _OPTIONAL_SITES if s[0] in sys.modules]:
            mod = importlib.import_module(mod_name)
            orig = getattr(mod, attr)
            key = (factory, orig)
            if key not in originals:
                originals[key] = factory(orig)
            _saved[(mod_name, attr)] = orig
            setattr(mod, attr, originals[key])
        for mod_name, cls_name, attr, factory in _METHOD_SITES:
            cls = getattr(importlib.import_module(mod_name), cls_name)
            orig = cls.__dict__.get(attr, _INHERITED)
            _saved[(f"{mod_name}:{cls_name}", attr)] = orig
            setattr(cls, attr, factory(getattr(cls, attr) if orig is _INHERITED else orig))
    except BaseException:
        restore_torchvision()
        raise
    return _Switch(False, previous)


def restore_torchvision() -> None:
    """Puts every patched torchvision binding back. A no-op when the switch is off."""
    _layout[0] = "auto"
    while _saved:
        (site, attr), orig = _saved.popitem()
        if ":" in site:
            mod_name, cls_name = site.split(":")
            cls = getattr(sys.modules[mod_name], cls_name)
            if orig is _INHERITED:
                delattr(cls, attr)
            else:
                setattr(cls, attr, orig)
        else:
            setattr(sys.modules[site], attr, orig)
