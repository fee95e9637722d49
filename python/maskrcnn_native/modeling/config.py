"""Model configuration: one frozen dataclass, named presets, no string registries.

``ModelConfig`` holds every switch of the paper's Table 2 ablations plus the
usual detector hyper-parameters. Presets are plain ``ModelConfig`` instances;
``build_config("R50-FPN", num_classes=5, score_threshold=0.0)`` returns a copy
with overrides applied (unknown keys raise ``TypeError``).

Class counting follows torchvision: ``num_classes`` includes the background
class 0, so COCO is 91 (torchvision's ids) or 81 (contiguous ids).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

_BACKBONES = {
    # name -> (block, layers, groups, width_per_group)
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), 32, 8),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Every option of the model. Frozen: use ``dataclasses.replace`` or
    ``cfg.replace(**kw)`` to derive a variant.

    Architecture
      backbone: one of resnet18/34/50/101, resnext101_32x8d.
      arch: "fpn" (P2-P5 + P6 max-pool for the RPN) or "c4" (res2-res4 trunk,
        res5 as the RoI head, single stride-16 feature map).
      trainable_layers: how many ResNet stages are trained (0-5, torchvision's
        convention: 3 = layer2..layer4).
      norm: the trunk's normalisation. "frozen_bn" (default; fixed statistics,
        for pretrained / torchvision weights), "bn" (BatchNorm trained with
        batch statistics, folded into the convs at inference; for training
        from scratch) or "gn" (GroupNorm). Norms of frozen stages stay fixed.
      backbone_channels: width of the stem and of res2's 3x3 convs; each later
        stage doubles it (64 = the paper's ResNets and torchvision's weights;
        32 = a quarter of the trunk's arithmetic, for small data on a CPU).
      pretrained_backbone: accepted for API compatibility; must be False because
        this package never downloads anything (load weights with
        ``Model.from_torchvision`` instead).

    Input
      min_size: shorter-side target in pixels. A tuple means multi-scale
        training (one size sampled per image, like torchvision); inference uses
        the last entry.
      max_size: cap on the longer side.
      image_mean / image_std: per-channel normalisation of [0, 1] RGB input.
      size_divisible: padded batch size is a multiple of this.

    RPN
      anchor_sizes: one tuple per feature level (FPN: 5 levels; C4: one level
        holding all sizes). anchor_aspect_ratios: h/w ratios.
      rpn_pre_nms_top_n_train/test: per level top-k before NMS.
      rpn_post_nms_top_n_train/test: proposals kept per image after NMS.
      rpn_nms_threshold, rpn_fg_iou, rpn_bg_iou, rpn_batch_size_per_image,
      rpn_positive_fraction, rpn_min_box_size.

    RoI heads (Table 2 switches)
      pooler: "roi_align" | "roi_pool" | "roi_warp".
      pooler_aligned: half-pixel correction of RoIAlign (False = torchvision's
        Mask R-CNN, and required for torchvision weights parity).
      pooler_sampling_ratio: samples per bin axis (<= 0: adaptive).
      box_batch_size_per_image: sampled RoIs per image (FPN 512, C4 64).
      box_positive_fraction: 0.25 (1:3). box_fg_iou / box_bg_iou: 0.5.
      box_reg_weights: (10, 10, 5, 5).
      box_head_dim: width of the FPN box head's two fc layers (the paper's 1024).
      box_head_norm: "none" (the paper's and torchvision's head) | "bn" |
        "gn": a normalisation between each fc layer of the FPN box head and
        its ReLU (BatchNorm over the step's sampled RoIs, or GroupNorm). For
        training from scratch: the demo's R18-FPN reaches a higher box and
        mask AP in the same iterations with "bn". C4 (res5 head) has no fc
        layers and needs "none".
      mask_head: "fcn" (4 x conv3x3 + deconv) | "mlp" (fc1024-fc1024-fc m^2).
      mask_head_dim: width of the mask head (conv channels / fc units);
        None = the paper's (FCN 256, MLP 1024).
      class_agnostic_masks: predict one mask instead of one per class.
      mask_loss: "sigmoid" (per-pixel BCE on the GT class, the paper's choice)
        | "softmax" (per-pixel multinomial over classes).
      mask_resolution: output m of the mask head (FPN 28; C4 14).
      mask_batch_size_per_image: at most this many positive RoIs per image
        train the mask and keypoint heads, drawn at random from the box
        head's positives (None = all of them, the paper). Once a model
        detects well almost every sampled positive is kept, and on a CPU the
        mask head on ~30 RoIs per image then costs more than the rest of the
        step.

    Inference
      score_threshold, nms_threshold (per class), detections_per_image.

    Keypoints
      keypoints: add the keypoint head. num_keypoints: 17 for COCO.
      keypoint_head_dim: channels of its 8 convolutions (the paper's 512).
    """

    backbone: str = "resnet50"
    arch: str = "fpn"
    num_classes: int = 91
    trainable_layers: int = 3
    norm: str = "frozen_bn"
    backbone_channels: int = 64
    pretrained_backbone: bool = False
    fpn_channels: int = 256

    min_size: Union[int, Tuple[int, ...]] = 800
    max_size: int = 1333
    image_mean: Tuple[float, float, float] = IMAGENET_MEAN
    image_std: Tuple[float, float, float] = IMAGENET_STD
    size_divisible: int = 32

    anchor_sizes: Tuple[Tuple[int, ...], ...] = ((32,), (64,), (128,), (256,), (512,))
    anchor_aspect_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_threshold: float = 0.7
    rpn_fg_iou: float = 0.7
    rpn_bg_iou: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_min_box_size: float = 1e-3
    rpn_score_threshold: float = 0.0

    pooler: str = "roi_align"
    pooler_aligned: bool = False
    pooler_sampling_ratio: int = 2
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_fg_iou: float = 0.5
    box_bg_iou: float = 0.5
    box_reg_weights: Tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_head_dim: int = 1024
    box_head_norm: str = "none"

    masks: bool = True
    mask_head: str = "fcn"
    mask_head_dim: Optional[int] = None
    class_agnostic_masks: bool = False
    mask_loss: str = "sigmoid"
    mask_resolution: int = 28
    mask_batch_size_per_image: Optional[int] = None

    score_threshold: float = 0.05
    nms_threshold: float = 0.5
    detections_per_image: int = 100

    keypoints: bool = False
    num_keypoints: int = 17
    keypoint_head_dim: int = 512

    def __post_init__(self):
        if self.backbone not in _BACKBONES:
            raise ValueError(f"ModelConfig: backbone must be one of {sorted(_BACKBONES)}, got {self.backbone!r}")
        mb = self.mask_batch_size_per_image
        if mb is not None and (isinstance(mb, bool) or not isinstance(mb, int) or mb < 1):
            raise ValueError(f"ModelConfig: mask_batch_size_per_image must be None or an int >= 1, got {mb!r}")
        bc = self.backbone_channels
        if isinstance(bc, bool) or not isinstance(bc, int) or bc < 8:
            raise ValueError(f"ModelConfig: backbone_channels must be an int >= 8, got {bc!r}")
        if self.norm == "gn" and bc % 32:
            raise ValueError(f"ModelConfig: norm='gn' (32 groups) needs backbone_channels divisible by 32, got {bc}")
        if self.norm not in ("frozen_bn", "bn", "gn"):
            raise ValueError(f"ModelConfig: norm must be 'frozen_bn', 'bn' or 'gn', got {self.norm!r}")
        if self.arch not in ("fpn", "c4"):
            raise ValueError(f"ModelConfig: arch must be 'fpn' or 'c4', got {self.arch!r}")
        if self.pooler not in ("roi_align", "roi_pool", "roi_warp"):
            raise ValueError(f"ModelConfig: pooler must be 'roi_align', 'roi_pool' or 'roi_warp', got {self.pooler!r}")
        if self.box_head_norm not in ("none", "bn", "gn"):
            raise ValueError(f"ModelConfig: box_head_norm must be 'none', 'bn' or 'gn', got {self.box_head_norm!r}")
        if self.arch == "c4" and self.box_head_norm != "none":
            raise ValueError(
                "ModelConfig: box_head_norm applies to the FPN box head's fc layers; C4's res5 head takes cfg.norm"
            )
        if self.mask_head not in ("fcn", "mlp"):
            raise ValueError(f"ModelConfig: mask_head must be 'fcn' or 'mlp', got {self.mask_head!r}")
        if int(self.keypoint_head_dim) < 1:
            raise ValueError(f"ModelConfig: keypoint_head_dim must be a positive int, got {self.keypoint_head_dim}")
        if self.mask_head_dim is not None and int(self.mask_head_dim) < 1:
            raise ValueError(f"ModelConfig: mask_head_dim must be a positive int or None, got {self.mask_head_dim}")
        if self.mask_loss not in ("sigmoid", "softmax"):
            raise ValueError(f"ModelConfig: mask_loss must be 'sigmoid' or 'softmax', got {self.mask_loss!r}")
        if self.mask_loss == "softmax" and self.class_agnostic_masks:
            raise ValueError("ModelConfig: mask_loss='softmax' needs per-class masks (class_agnostic_masks=False)")
        if int(self.num_classes) < 2:
            raise ValueError(f"ModelConfig: num_classes counts the background and must be >= 2, got {self.num_classes}")
        if self.pretrained_backbone:
            raise ValueError(
                "ModelConfig: pretrained_backbone=True is not supported (this package never downloads); "
                "load weights with Model.from_torchvision(...) instead"
            )
        if not 0 <= self.trainable_layers <= 5:
            raise ValueError(f"ModelConfig: trainable_layers must be in 0..5, got {self.trainable_layers}")
        if self.arch == "fpn" and len(self.anchor_sizes) != 5:
            raise ValueError("ModelConfig: FPN needs one anchor size tuple per level P2-P6 (5 tuples)")
        if self.arch == "c4" and len(self.anchor_sizes) != 1:
            raise ValueError("ModelConfig: C4 has one feature map, anchor_sizes must hold one tuple")
        ms = self.min_size
        if isinstance(ms, list):
            object.__setattr__(self, "min_size", tuple(int(s) for s in ms))
        # JSON round trips turn tuples into lists; normalise nested tuples.
        for name in ("image_mean", "image_std", "anchor_aspect_ratios", "box_reg_weights"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "anchor_sizes", tuple(tuple(int(s) for s in lv) for lv in self.anchor_sizes))

    @property
    def block(self) -> str:
        """ "bottleneck" or "basic", from the preset's depth."""
        return _BACKBONES[self.backbone][0]

    @property
    def stage_depths(self) -> Tuple[int, int, int, int]:
        """Blocks per ResNet stage (res2..res5)."""
        return _BACKBONES[self.backbone][1]

    @property
    def groups(self) -> int:
        """Convolution groups of the 3x3 convs (ResNeXt cardinality; 1 for ResNet)."""
        return _BACKBONES[self.backbone][2]

    @property
    def width_per_group(self) -> int:
        """Channels per group of the 3x3 convs (64 for ResNet)."""
        return _BACKBONES[self.backbone][3]

    @property
    def test_min_size(self) -> int:
        """The shorter-side size used at inference (the last of ``min_size``)."""
        return self.min_size[-1] if isinstance(self.min_size, tuple) else int(self.min_size)

    def replace(self, **overrides) -> "ModelConfig":
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict of every field (JSON-compatible)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as a JSON string (saved with the weights)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        """The config a ``to_dict``/JSON dict describes (unknown keys raise ValueError)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TypeError(f"ModelConfig: unknown fields {unknown}")
        return cls(**d)


_FPN = ModelConfig()
_C4 = ModelConfig(
    arch="c4",
    anchor_sizes=((32, 64, 128, 256, 512),),
    rpn_pre_nms_top_n_train=12000,
    rpn_pre_nms_top_n_test=6000,
    rpn_post_nms_top_n_train=2000,
    rpn_post_nms_top_n_test=300,
    box_batch_size_per_image=64,
    pooler_sampling_ratio=0,
    mask_resolution=14,
)

PRESETS: Dict[str, ModelConfig] = {
    "R18-FPN": _FPN.replace(backbone="resnet18"),
    "R50-FPN": _FPN,
    "R101-FPN": _FPN.replace(backbone="resnet101"),
    "X101-FPN": _FPN.replace(backbone="resnext101_32x8d"),
    "R50-C4": _C4,
    "R101-C4": _C4.replace(backbone="resnet101"),
}
for _name in list(PRESETS):
    # Keypoint R-CNN variants: person + background, masks off as torchvision's
    # keypointrcnn_resnet50_fpn, multi-scale training sizes.
    PRESETS[_name + "-KP"] = PRESETS[_name].replace(
        keypoints=True, masks=False, num_classes=2, min_size=(640, 672, 704, 736, 768, 800)
    )


def build_config(
    preset_or_config: Union[str, ModelConfig, Dict[str, Any], None] = "R50-FPN", **overrides
) -> ModelConfig:
    """Resolve a preset name, a ``ModelConfig`` or a dict, then apply overrides."""
    if preset_or_config is None:
        base = PRESETS["R50-FPN"]
    elif isinstance(preset_or_config, ModelConfig):
        base = preset_or_config
    elif isinstance(preset_or_config, dict):
        base = ModelConfig.from_dict(preset_or_config)
    elif isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}; choose one of {sorted(PRESETS)}")
        base = PRESETS[preset_or_config]
    else:
        raise TypeError(f"expected a preset name, ModelConfig or dict, got {type(preset_or_config).__name__}")
    if not overrides:
        return base
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown ModelConfig fields {unknown}")
    return dataclasses.replace(base, **overrides)
