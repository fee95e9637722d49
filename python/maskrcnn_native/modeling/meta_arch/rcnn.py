"""Mask R-CNN / Keypoint R-CNN meta-architecture and the public ``Model``.

``MaskRCNN`` receives its parts (backbone, RPN, RoI heads) by constructor;
``Model`` builds them from a ``ModelConfig`` or preset name and adds
``predict``, ``save``/``load`` and ``from_torchvision``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..._malloc import reuse_freed_memory
from ...structures import Detections, Instances, MaskField, image_to_float
from ...weights.state_dict import load_checked
from ...weights.torchvision import from_torchvision
from .. import _ops
from ..backbone import ResNetC4, ResNetFPN, build_backbone
from ..config import ModelConfig, build_config
from ..proposal_generator import RPN
from ..roi_heads import RoIHeads, build_roi_heads
from ..transform import Preprocessor, scale_boxes, scale_keypoints

_LOSS_KEYS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask", "loss_keypoint")


def _check_targets(targets, num_classes: int, keypoints: bool, masks: bool):
    if targets is None:
        raise ValueError("Model: targets are required in training mode (model.eval() for inference)")
    for i, t in enumerate(targets):
        b = t.get("boxes")
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[-1] != 4:
            raise ValueError(
                f"targets[{i}]['boxes']: expected Tensor[K, 4], got "
                f"{list(b.shape) if isinstance(b, Tensor) else type(b).__name__}"
            )
        lab = t.get("labels")
        if not isinstance(lab, Tensor) or lab.shape != b.shape[:1]:
            raise ValueError(f"targets[{i}]['labels']: expected Tensor[{b.shape[0]}]")
        if lab.numel() and (int(lab.min()) < 1 or int(lab.max()) >= num_classes):
            raise ValueError(
                f"targets[{i}]['labels'] must be in 1..{num_classes - 1} (0 is background), "
                f"got range [{int(lab.min())}, {int(lab.max())}]"
            )
        if b.numel() and bool(((b[:, 2:] <= b[:, :2]).any())):
            raise ValueError(f"targets[{i}]['boxes']: every box needs x2 > x1 and y2 > y1 (XYXY pixels)")
        if masks and ("masks" not in t or t["masks"].shape[0] != b.shape[0]):
            raise ValueError(f"targets[{i}]['masks']: expected [{b.shape[0]}, H, W] masks")
        if keypoints and ("keypoints" not in t or t["keypoints"].shape[0] != b.shape[0]):
            raise ValueError(f"targets[{i}]['keypoints']: expected [{b.shape[0]}, P, 3] keypoints")


class MaskRCNN(nn.Module):
    """Generalized R-CNN: preprocess -> backbone -> RPN -> RoI heads.

    The model owns its device and dtype: ``model.to(device, dtype)`` moves the
    preprocessing buffers with the weights, and inputs are converted to them.

    forward(images: list of Tensor[3, H_i, W_i] float in [0, 1], targets)
      training: targets list of dicts (boxes [K, 4] float XYXY pixels,
        labels [K] int64 in 1..num_classes-1, masks [K, H, W] uint8/bool,
        keypoints [K, P, 3]) -> dict of scalar losses.
      eval: -> list of ``Detections`` (aligned paste, bitmap masks).
    """

    def __init__(self, cfg: ModelConfig, backbone: Union[ResNetFPN, ResNetC4], rpn: RPN, roi_heads: RoIHeads):
        super().__init__()
        self._config = cfg
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.preprocess = Preprocessor(cfg)

    @property
    def config(self) -> ModelConfig:
        """The frozen ``ModelConfig`` the model was built from."""
        return self._config

    def forward(self, images: List[Tensor], targets: Optional[List[Dict[str, Tensor]]] = None):
        """See the class docstring: dict of losses in training, list of ``Detections`` in eval."""
        if isinstance(images, Tensor) and images.dim() == 3:
            images = [images]
        if self.training:
            cfg = self._config
            _check_targets(targets, cfg.num_classes, cfg.keypoints, cfg.masks)
            batch, tg, _ = self.preprocess(list(images), targets, training=True)
            feats = self.backbone(batch.tensors)
            proposals, losses = self.rpn(batch, [feats[k] for k in self.backbone.rpn_levels], tg)
            _, roi_losses = self.roi_heads(feats, proposals, batch.image_sizes, tg)
            losses.update(roi_losses)
            return losses
        with torch.inference_mode(), reuse_freed_memory():
            return self._infer(list(images))

    def _infer(
        self,
        images: List[Tensor],
        paste: str = "aligned",
        mask_format: str = "bitmap",
        size: Optional[int] = None,
        max_size: Optional[int] = None,
    ) -> List[Detections]:
        batch, _, orig = self.preprocess(images, None, training=False, size=size, max_size=max_size)
        feats = self.backbone(batch.tensors)
        proposals, _ = self.rpn(batch, [feats[k] for k in self.backbone.rpn_levels])
        results, _ = self.roi_heads(feats, proposals, batch.image_sizes)
        return [to_image_frame(r, os_, paste, mask_format) for r, os_ in zip(results, orig)]


def to_image_frame(
    inst: Instances, orig_size: Tuple[int, int], paste: str = "aligned", mask_format: str = "bitmap"
) -> Detections:
    """RoI-head ``Instances`` (resized frame, box-local ``mask_probs``) ->
    ``Detections`` in the input image's frame ``orig_size`` (H, W): boxes and
    keypoints rescaled, masks pasted at threshold 0.5 as bool Tensor[D, H, W]
    ("bitmap") or COCO RLE dicts ("rle")."""
    boxes = scale_boxes(inst.boxes, inst.image_size, orig_size)
    masks: Optional[MaskField] = None
    probs = inst.mask_probs
    if probs is not None:
        if mask_format == "rle":
            rles: Any = (
                _ops.paste_masks(probs, boxes, list(orig_size), mode=paste, threshold=0.5, output="rle")
                if probs.shape[0]
                else []
            )
            masks = [dict(r, counts=r["counts"].decode("ascii")) if isinstance(r["counts"], bytes) else r for r in rles]
        elif probs.shape[0]:
            masks = _ops.paste_masks(probs, boxes, list(orig_size), mode=paste, threshold=0.5, output="bitmap")
        else:
            masks = torch.zeros((0,) + tuple(orig_size), dtype=torch.bool, device=boxes.device)
    kps = scale_keypoints(inst.keypoints, inst.image_size, orig_size) if inst.keypoints is not None else None
    return Detections(
        boxes=boxes,
        scores=inst.scores,
        labels=inst.labels,
        masks=masks,
        keypoints=kps,
        image_size=(int(orig_size[0]), int(orig_size[1])),
        keypoint_scores=inst.keypoint_scores,
    )


def _float32(det: Detections) -> Detections:
    """``det`` with its floating fields in float32 (what an autocast predict
    returns; softmax and sigmoid keep the layers' bfloat16 under CPU autocast)."""
    upd: Dict[str, Any] = {}
    for name in ("boxes", "scores", "keypoints", "keypoint_scores", "mask_probs"):
        v = getattr(det, name)
        if isinstance(v, Tensor) and v.is_floating_point() and v.dtype != torch.float32:
            upd[name] = v.float()
    return dataclasses.replace(det, **upd) if upd else det


def _to_tensor(img: Any) -> Tensor:
    """File path / PIL image / HWC uint8 ndarray / CHW tensor -> [3, H, W]
    float in [0, 1] (uint8 divided by 255; float input kept as it is)."""
    if isinstance(img, (str, os.PathLike)):
        from PIL import Image

        with Image.open(img) as im:
            img = im.convert("RGB")
    if hasattr(img, "convert") and hasattr(img, "size") and not isinstance(img, (np.ndarray, Tensor)):
        img = np.asarray(img.convert("RGB"))
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"predict: expected an HWC array with 3 channels, got shape {img.shape}")
        a = np.ascontiguousarray(img[..., :3])
        if not a.flags.writeable:
            a = a.copy()
        return image_to_float(torch.from_numpy(a).permute(2, 0, 1), torch.float32)
    if isinstance(img, Tensor):
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f"predict: expected a CHW tensor with 3 channels, got shape {list(img.shape)}")
        return image_to_float(img)
    raise TypeError(
        f"predict: unsupported image type {type(img).__name__} "
        "(use a path, PIL image, HWC uint8 array or CHW float tensor)"
    )


class Model(MaskRCNN):
    """The public model. ``Model("R50-FPN", num_classes=81, score_threshold=0.3)``
    or ``Model(ModelConfig(...))``. See ``ModelConfig`` for every option and
    ``MaskRCNN.forward`` for the training / eval contract."""

    def __init__(self, preset_or_config: Union[str, ModelConfig, dict] = "R50-FPN", **overrides):
        cfg = build_config(preset_or_config, **overrides)
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        rpn = RPN(cfg, shapes[backbone.rpn_levels[0]].channels)
        roi_heads = build_roi_heads(cfg, {k: shapes[k] for k in backbone.pooler_levels})
        super().__init__(cfg, backbone, rpn, roi_heads)

    # ----------------------------------------------------------- inference
    def predict(
        self,
        images,
        batch_size: int = 1,
        mask_format: str = "bitmap",
        paste: str = "aligned",
        min_size: Optional[int] = None,
        max_size: Optional[int] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> List[Detections]:
        """Detect objects in one image or a list of images.

        images: a path, PIL image, HWC uint8 ndarray or CHW float tensor in
          [0, 1], or a list of those (any sizes), or a [N, 3, H, W] tensor /
          [N, H, W, 3] array batch.
        mask_format: "bitmap" (bool Tensor[D, H, W]) or "rle" (COCO RLE dicts).
        paste: "aligned" (continuous box coordinates) or "torchvision"
          (torchvision's integer-box paste, for answer-for-answer parity).
        min_size / max_size: shorter-side size and longer-side cap for this
          call instead of the configured test size (TTA passes them).
        dtype: None (the weights' dtype) or torch.bfloat16 (torch.float16 on
          CUDA): the network runs under ``torch.autocast`` in that dtype, so
          convolutions and linear layers compute in it while the RoI ops, nms
          and the box coder run in float32 (their registered autocast
          behaviour). Needs float32 weights. Boxes, scores, keypoints and any
          mask probabilities come back in float32.
        Returns one ``Detections`` per image, in the input's pixel frame.
        """
        if mask_format not in ("bitmap", "rle"):
            raise ValueError(f"predict: mask_format must be 'bitmap' or 'rle', got {mask_format!r}")
        if paste not in ("aligned", "torchvision"):
            raise ValueError(f"predict: paste must be 'aligned' or 'torchvision', got {paste!r}")
        if batch_size < 1:
            raise ValueError(f"predict: batch_size must be >= 1, got {batch_size}")
        if isinstance(images, Tensor) and images.dim() == 4:
            images = list(images.unbind(0))  # a [N, 3, H, W] batch
        elif isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)  # a [N, H, W, 3] batch
        elif not isinstance(images, (list, tuple)):
            images = [images]
        amp = self._autocast(dtype)
        was_training = self.training
        self.eval()
        try:
            out: List[Detections] = []
            with torch.inference_mode(), amp, reuse_freed_memory():
                for s in range(0, len(images), batch_size):
                    chunk = [_to_tensor(im) for im in images[s : s + batch_size]]
                    out.extend(
                        self._infer(chunk, paste=paste, mask_format=mask_format, size=min_size, max_size=max_size)
                    )
            return out if dtype is None else [_float32(d) for d in out]
        finally:
            self.train(was_training)

    def _autocast(self, dtype: Optional[torch.dtype]) -> Any:
        """The context ``predict(dtype=...)`` runs the network in."""
        weights = self.preprocess.mean
        if dtype is None or dtype == weights.dtype:
            return contextlib.nullcontext()
        device = weights.device.type
        if dtype not in (torch.bfloat16, torch.float16) or (dtype == torch.float16 and device != "cuda"):
            raise ValueError(
                f"predict: dtype must be None, the weights' dtype or torch.bfloat16 "
                f"(torch.float16 on CUDA), got {dtype}"
            )
        if weights.dtype != torch.float32:
            raise ValueError(
                f"predict: dtype={dtype} runs float32 weights under autocast; the model is {weights.dtype}"
            )
        return torch.autocast(device_type=device, dtype=dtype)

    def export(
        self,
        image_size: Tuple[int, int],
        batch_size: int = 1,
        input_dtype: torch.dtype = torch.float32,
        paste: Optional[str] = None,
    ) -> "torch.export.ExportedProgram":
        """``predict`` as a ``torch.export.ExportedProgram`` for input
        ``Tensor[batch_size, 3, H, W]`` of ``input_dtype`` (uint8, or float in
        [0, 1]). ``ep.module()(images)`` returns per image ``(boxes [D, 4],
        scores [D], labels [D], mask_probs [D, M, M])`` (plus bool ``masks``
        [D, H, W] with ``paste="aligned"`` / ``"torchvision"``); D is
        data-dependent. See ``maskrcnn_native.modeling.export.export_model``."""
        from ..export import export_model

        return export_model(self, image_size, batch_size, input_dtype=input_dtype, paste=paste)

    # ----------------------------------------------------------- persistence
    def save(self, path: Union[str, Path]) -> None:
        """Write weights to ``path`` (safetensors; the config JSON is embedded in
        its metadata under "config") and the same config to ``path.with_suffix('.json')``."""
        from safetensors.torch import save_file

        path = Path(path)
        sd = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        cfg_json = self._config.to_json()
        save_file(sd, str(path), metadata={"config": cfg_json, "format": "maskrcnn_native"})
        path.with_suffix(".json").write_text(cfg_json)

    @classmethod
    def load(cls, path: Union[str, Path], **overrides) -> "Model":
        """Restore a model written by ``save``. The config comes from the
        safetensors metadata (or the .json next to it); overrides that do not
        change parameter shapes (e.g. score_threshold) may be given."""
        from ... import _io

        path = Path(path)
        tensors, meta = _io.read_safetensors(path, "Model.load")
        if "config" in meta:
            src = f"{path} (embedded config)"
            cfg = _io.parse_config_json(meta["config"], src, "Model.load")
        elif path.with_suffix(".json").exists():
            src = str(path.with_suffix(".json"))
            cfg = _io.parse_config_json(path.with_suffix(".json").read_bytes(), src, "Model.load")
        else:
            raise ValueError(
                f"Model.load: {path} carries no config metadata and {path.with_suffix('.json')} does not exist"
            )
        model = cls(_io.build_config(ModelConfig.from_dict, cfg, src, "Model.load"), **overrides)
        load_checked(model, tensors)
        model.eval()
        return model

    @classmethod
    def from_torchvision(
        cls, state_dict_or_path, arch: str = "maskrcnn_resnet50_fpn", reinit_heads: bool = False, **overrides
    ) -> "Model":
        """Build a model from a torchvision detection checkpoint (see
        ``maskrcnn_native.weights.torchvision``)."""
        return from_torchvision(cls, state_dict_or_path, arch=arch, reinit_heads=reinit_heads, **overrides)
