"""Inference of a ``Model`` as a ``torch.export.ExportedProgram``.

``export_model(model, image_size=(H, W), batch_size=N)`` (or
``model.export(...)``) traces the eval path of ``Model.predict`` for one fixed
input shape ``[N, 3, H, W]``: preprocessing (normalise, resize, pad), backbone,
RPN, RoI heads, and the boxes mapped back to the input's frame. The native ops
appear in the graph as ``maskrcnn_native::*`` custom ops (their fake kernels
give the shapes), so a program loaded later needs ``import maskrcnn_native``.

What is fixed and what varies:

* Fixed at export: N, H, W, the input dtype (uint8 in 0..255, or a floating
  dtype in [0, 1]), the device, the weights and every config option
  (thresholds, test size, detections per image).
* Varies with the data: the number of detections ``D_i`` of each image
  (0 <= D_i <= ``detections_per_image``). It comes out of the NMS ops, so in
  the graph it is an unbacked symbolic size (``u0``, ``u1``, ...) bounded by
  ``torch._check``; the outputs have exactly ``D_i`` rows, no padding.

Output: a tuple with one entry per image, each a tuple of tensors

  ``(boxes [D, 4] float XYXY input pixels, scores [D] descending, labels [D] int64,
  mask_probs [D, M, M] box-local probabilities of the predicted class[,
  masks [D, H, W] bool])``

(``mask_probs`` only when the model predicts masks; ``masks`` only with
``paste=`` given: the probabilities pasted at threshold 0.5, exactly
``predict``'s masks for that ``paste`` mode). Keypoint models do not export:
the keypoint decoding resizes each detection's heatmap to a data-dependent
size of its own (``heatmaps_to_keypoints``), which has no fixed-graph form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..structures import image_to_float
from . import _ops
from .transform import scale_boxes

if TYPE_CHECKING:
    from .meta_arch.rcnn import MaskRCNN

__all__ = ["export_model", "InferenceGraph"]

_PASTE_MODES = ("aligned", "torchvision")


class InferenceGraph(nn.Module):
    """The traceable eval path of ``model`` for images ``Tensor[N, 3, H, W]``
    (see the module docstring for the output). Holds ``model`` (shared, not
    copied); ``paste``: None, "aligned" or "torchvision"."""

    def __init__(self, model: "MaskRCNN", image_size: Tuple[int, int], paste: Optional[str] = None):
        super().__init__()
        self.model = model
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.paste = paste

    def forward(self, images: Tensor) -> Tuple[Tuple[Tensor, ...], ...]:
        """images [N, 3, H, W] uint8 or float in [0, 1] -> per image (boxes, scores, labels[, mask_probs][, masks])."""
        model = self.model
        # predict's conversion: uint8 / 255 in float32, a floating image kept as it is
        batch, _, orig = model.preprocess(list(image_to_float(images).unbind(0)), None, training=False)
        feats = model.backbone(batch.tensors)
        proposals, _ = model.rpn(batch, [feats[k] for k in model.backbone.rpn_levels])
        results, _ = model.roi_heads(feats, proposals, batch.image_sizes)
        limit = int(model.config.detections_per_image)
        out: List[Tuple[Tensor, ...]] = []
        for inst, size in zip(results, orig):
            d = inst.boxes.shape[0]
            torch._check(d <= limit)  # D is data-dependent (NMS) but never above the cap
            boxes = scale_boxes(inst.boxes, inst.image_size, size)
            item: Tuple[Tensor, ...] = (boxes, inst.scores, inst.labels)
            if inst.mask_probs is not None:
                item += (inst.mask_probs,)
                if self.paste is not None:
                    item += (
                        _ops.paste_masks(
                            inst.mask_probs, boxes, list(size), mode=self.paste, threshold=0.5, output="bitmap"
                        ),
                    )
            out.append(item)
        return tuple(out)


def _check_args(model: "MaskRCNN", image_size: Sequence[int], batch_size: int, dtype: torch.dtype, paste):
    if model.config.keypoints:
        raise NotImplementedError(
            "export_model: keypoint models do not export (each detection's heatmap is resized to a "
            "data-dependent size of its own in heatmaps_to_keypoints)"
        )
    if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
        raise ValueError(f"export_model: image_size must be (H, W) with H, W >= 1, got {tuple(image_size)}")
    if int(batch_size) < 1:
        raise ValueError(f"export_model: batch_size must be >= 1, got {batch_size}")
    if dtype != torch.uint8 and not dtype.is_floating_point:
        raise TypeError(f"export_model: input_dtype must be torch.uint8 or a floating dtype, got {dtype}")
    if paste is not None and paste not in _PASTE_MODES:
        raise ValueError(f"export_model: paste must be None, 'aligned' or 'torchvision', got {paste!r}")
    if paste is not None and not model.config.masks:
        raise ValueError("export_model: paste needs a model that predicts masks")


def export_model(
    model: "MaskRCNN",
    image_size: Sequence[int],
    batch_size: int = 1,
    input_dtype: torch.dtype = torch.float32,
    paste: Optional[str] = None,
    example: Optional[Tensor] = None,
) -> torch.export.ExportedProgram:
    """Export ``model``'s inference for input ``Tensor[batch_size, 3, H, W]``.

    image_size: (H, W) of the input images (the program resizes them to the
      configured test size itself, as ``predict`` does).
    input_dtype: torch.uint8 (0..255) or a floating dtype (values in [0, 1]).
    paste: None (box-local mask probabilities only), or "aligned" /
      "torchvision" to also return the pasted bool masks [D, H, W] of
      ``predict(..., paste=paste)``.
    example: the tensor to trace with (default: random values of that shape
      and dtype on the model's device); the program does not depend on its values.
    Returns a ``torch.export.ExportedProgram``; call ``ep.module()(images)``.
    The output (one tuple of tensors per image, the number of detections D
    data-dependent) is described in the module docstring of
    ``maskrcnn_native.modeling.export``. The model is left in the mode it was in.
    """
    _check_args(model, image_size, batch_size, input_dtype, paste)
    h, w = int(image_size[0]), int(image_size[1])
    device = model.preprocess.mean.device
    if example is None:
        gen = torch.Generator().manual_seed(0)
        example = torch.rand((int(batch_size), 3, h, w), generator=gen)
        example = (example * 255).round().to(torch.uint8) if input_dtype == torch.uint8 else example.to(input_dtype)
        example = example.to(device)
    elif tuple(example.shape) != (int(batch_size), 3, h, w) or example.dtype != input_dtype:
        raise ValueError(
            f"export_model: example must be a {input_dtype} Tensor[{batch_size}, 3, {h}, {w}], "
            f"got {example.dtype} {list(example.shape)}"
        )
    graph = InferenceGraph(model, (h, w), paste)
    was_training = model.training
    model.eval()
    try:
        # no autograd while tracing: the inference layout (channels_last) and
        # the folded frozen norms, as in predict
        with torch.no_grad():
            return torch.export.export(graph, (example,))
    finally:
        model.train(was_training)
