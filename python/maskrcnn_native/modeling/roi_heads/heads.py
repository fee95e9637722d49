"""Box, mask and keypoint head networks (feature -> prediction), no sampling
or post-processing here (see ``roi_heads.py``).

Module names follow torchvision where a torchvision counterpart exists
(``fc6``/``fc7``, ``cls_score``/``bbox_pred``, ``conv5_mask``/``mask_fcn_logits``,
``kps_score_lowres``) so the weight import is a rename table.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backbone.resnet import make_stage
from ..layers import activation_format, conv_module

HEAD_NORMS = ("none", "bn", "gn")


def make_head_norm(norm: str, dim: int) -> Optional[nn.Module]:
    """The normalisation after each fc layer of the box head ([R, dim] input):
    None for "none", ``nn.BatchNorm1d`` for "bn" (statistics over the step's
    sampled RoIs in training, running statistics at inference; synchronised
    across ranks by ``engine.distributed.convert_sync_batchnorm``), and
    ``nn.GroupNorm`` with 32 groups (fewer when ``dim`` is small) for "gn", at
    least 2 channels a group: the input has no spatial extent, so a group of one
    channel would normalise a single number (the output would be the shift
    alone, whatever the input, and a batch of one RoI would raise)."""
    if norm == "none":
        return None
    if norm == "bn":
        return nn.BatchNorm1d(dim)
    if norm == "gn":
        groups = 32
        while groups > 1 and (dim % groups or dim // groups < 2):
            groups //= 2
        return nn.GroupNorm(groups, dim)
    raise ValueError(f"box head norm must be one of {HEAD_NORMS}, got {norm!r}")


def _fc_norm_relu(x: Tensor, fc: nn.Linear, norm: Optional[nn.Module]) -> Tensor:
    return _norm_relu(fc(x), norm)


def _norm_relu(y: Tensor, norm: Optional[nn.Module]) -> Tensor:
    if norm is None:
        return F.relu_(y)
    if isinstance(norm, nn.BatchNorm1d) and (not norm.training or y.shape[0] < 2):
        # running statistics: at inference, and in a training step with fewer
        # than the two RoIs batch statistics need (an image without proposals,
        # a tiny batch), which then leaves them as they are instead of failing.
        # As a per-channel affine: BatchNorm's kernel guards on the RoI count,
        # which torch.export cannot do for a data-dependent count.
        assert norm.running_mean is not None and norm.running_var is not None
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        y = (y - norm.running_mean) * scale
        if norm.bias is not None:
            y = y + norm.bias
    else:
        y = norm(y)
    return F.relu_(y)


class TwoMLPHead(nn.Module):
    """FPN box head: flatten [R, C, S, S] -> fc6 (1024) -> ReLU -> fc7 (1024) -> ReLU -> [R, 1024].

    ``norm`` ("none", "bn", "gn"; see :func:`make_head_norm`) puts a
    normalisation (``bn6`` / ``bn7``) between each fc layer and its ReLU; the fc
    layers then have no bias (the norm's shift replaces it). Training from
    scratch converges much faster with it (He et al., "Rethinking ImageNet
    Pre-training", 2019, normalise the heads too; torchvision's v2 Mask R-CNN
    uses BatchNorm in its heads). "none" is the paper's head and torchvision's
    ``TwoMLPHead``."""

    def __init__(self, in_features: int, dim: int = 1024, norm: str = "none"):
        super().__init__()
        bn6, bn7 = make_head_norm(norm, dim), make_head_norm(norm, dim)
        self.fc6 = nn.Linear(in_features, dim, bias=bn6 is None)
        self.fc7 = nn.Linear(dim, dim, bias=bn7 is None)
        self.bn6, self.bn7 = bn6, bn7
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[R, C, S, S] -> Tensor[R, dim]."""
        if _channels_last_inference(x):
            # flatten channels_last RoI features as they lie, [R, S*S*C], against
            # fc6's weight reordered to (S, S, C) once: no [R, C*S*S] copy of the
            # pooled features (R50 at inference: 1000 x 12544 floats, ~25 ms);
            # the same products, summed in another order
            rows = x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[1] * x.shape[2] * x.shape[3])
            y = F.linear(rows, _hwc_weight(self.fc6, x), self.fc6.bias)
            return _fc_norm_relu(_norm_relu(y, self.bn6), self.fc7, self.bn7)
        return _fc_norm_relu(_fc_norm_relu(x.flatten(1), self.fc6, self.bn6), self.fc7, self.bn7)


def _channels_last_inference(x: Tensor) -> bool:
    """Inference (no autograd) on a 4-d channels_last tensor, told from its strides
    (static under torch.export even where the RoI count is data-dependent), so eager
    predict and an exported graph take the same path."""
    if torch.is_grad_enabled() or x.dim() != 4 or torch.jit.is_scripting():
        return False
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    # stride(0) is not checked: permute(0, 2, 3, 1) then walks each RoI's (h, w, c)
    # with unit stride, and reshape views (or copies where it must)
    return c > 1 and h * w > 1 and x.stride(1) == 1 and x.stride(3) == c and x.stride(2) == w * c


def _hwc_weight(fc: nn.Linear, x: Tensor) -> Tensor:
    """``fc.weight`` [D, C*S*S] with its columns in (S, S, C) order for input x [R, C, S, S];
    cached on ``fc`` until the weight changes (data pointer, version) or the shape does.
    Traced (fake) weights have no data pointer: torch.export / torch.compile reorder
    in the graph, with the same result."""
    c, s1, s2 = x.shape[1], x.shape[2], x.shape[3]
    w = fc.weight

    def reorder() -> Tensor:
        return w.detach().view(w.shape[0], c, s1, s2).permute(0, 2, 3, 1).reshape(w.shape[0], -1).contiguous()

    if torch.compiler.is_compiling():
        return reorder()
    key = (w.data_ptr(), w._version, w.dtype, c, s1, s2)
    cache = getattr(fc, "_mn_hwc", None)
    if cache is None or cache[0] != key:
        cache = (key, reorder())
        object.__setattr__(fc, "_mn_hwc", cache)  # plain attribute: never saved
    return cache[1]


class Res5Head(nn.Module):
    """C4 RoI head: ResNet res5 (stride 2) on [R, C4, 14, 14] -> [R, 2048, 7, 7]
    (``res5_features``), then global average pool -> [R, 2048] (``forward``)."""

    def __init__(self, cfg, in_channels: int):
        super().__init__()
        d = cfg.stage_depths[3]
        planes = 8 * cfg.backbone_channels  # res5 = the stem's width doubled three times
        self.layer4 = make_stage(cfg.block, d, in_channels, planes, 2, cfg.groups, cfg.width_per_group, cfg.norm)
        self.out_channels = planes * (4 if cfg.block == "bottleneck" else 1)
        self.out_dim = self.out_channels

    def res5_features(self, x: Tensor) -> Tensor:
        """x Tensor[R, C4, 14, 14] -> res5 output Tensor[R, 2048, 7, 7] (activation layout)."""
        return self.layer4(x.contiguous(memory_format=activation_format()))

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[R, C4, 14, 14] pooled C4 features -> Tensor[R, 2048] pooled res5 features."""
        return self.res5_features(x).mean(dim=(2, 3))


class BoxPredictor(nn.Module):
    """[R, D] -> class logits [R, num_classes], box deltas [R, num_classes * 4]."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(in_dim, num_classes)
        self.bbox_pred = nn.Linear(in_dim, num_classes * 4)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x Tensor[R, D] -> (class logits Tensor[R, K], box codes Tensor[R, 4K])."""
        return self.cls_score(x), self.bbox_pred(x)


class MaskHeadFCN(nn.Module):
    """The paper's FCN mask head. FPN: [R, 256, 14, 14] -> 4 x (conv3x3 256, ReLU)
    -> deconv 2x2 s2 (256) + ReLU -> conv1x1 -> [R, K, 28, 28] logits.
    C4 (``num_convs=0``): [R, 2048, 7, 7] res5 features -> deconv -> [R, K, 14, 14].
    K = num_classes, or 1 with class-agnostic masks."""

    def __init__(self, in_channels: int, num_outputs: int, num_convs: int = 4, dim: int = 256):
        super().__init__()
        convs = []
        c = in_channels
        for _ in range(num_convs):
            convs.append(nn.Conv2d(c, dim, 3, padding=1))
            c = dim
        self.convs = nn.ModuleList(convs)
        self.conv5_mask = nn.ConvTranspose2d(c, dim, 2, 2)
        self.mask_fcn_logits = nn.Conv2d(dim, num_outputs, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """x Tensor[R, C, S, S] -> mask logits Tensor[R, K, 2S, 2S]; with ``labels``
        (Tensor[R] int64) only each RoI's class: Tensor[R, 1, 2S, 2S]."""
        for conv in self.convs:
            x = conv_module(x, conv, relu=True)
        return deconv2x2_relu_conv1x1(x, self.conv5_mask, self.mask_fcn_logits, labels)


def deconv2x2_relu_conv1x1(
    x: Tensor, deconv: nn.ConvTranspose2d, predictor: nn.Conv2d, labels: Optional[Tensor] = None
) -> Tensor:
    """``predictor(relu(deconv(x)))`` for a 2x2 stride-2 ``deconv`` and a 1x1 ``predictor``,
    as two matrix products: x Tensor[R, C, S, S] -> Tensor[R, K, 2S, 2S]. With ``labels``
    (Tensor[R] int64) only output channel ``labels[r]`` of RoI r is computed:
    Tensor[R, 1, 2S, 2S] (the paper's loss and inference read no other class's mask, so
    the other K - 1 channels, their product and their reorder are skipped; the gradient
    of the unused predictor rows is the exact zero it would be anyway).

    The outputs of a 2x2 stride-2 transposed convolution do not overlap, so it is one
    product per input pixel, [R*S*S, C] @ [C, 2*2*D], and the 1x1 convolution after it is
    [R*S*S*4, D] @ [D, K]; only the final [R, S, S, 2, 2, K] -> [R, K, 2S, 2S] reorder
    touches memory in a new layout. Same parameters and the same function as the two
    modules, to float rounding. oneDNN's transposed convolution and its 1x1 convolution
    with K = 1 output channel are slow on NCHW tensors, forward and backward (the demo's
    mask head, 128 RoIs x 64 channels on the 2-core AVX-512 machine: 107 ms for the two
    modules against 35 ms here; channels_last 42 vs 38 ms; see benchmarks/README.md).
    """
    r, c, s, s2 = x.shape
    d = deconv.out_channels
    k = predictor.out_channels
    # weight [C, D, 2, 2] -> [C, (a, b, D)]: column (a*2 + b)*D + o is output pixel (2i+a, 2j+b), channel o
    w1 = deconv.weight.permute(0, 2, 3, 1).reshape(c, 4 * d)
    xr = x.permute(0, 2, 3, 1).reshape(r * s * s2, c)
    y = (xr @ w1).view(-1, d)
    if deconv.bias is not None:
        # ReLU in place on the sum (a fresh tensor whose creator does not need it);
        # not on the product's view: in-place ops on a view make autograd's
        # backward rebuild the base (measured: the demo's step 0.23 -> 0.26 s)
        y = F.relu_(y + deconv.bias)
    else:
        y = F.relu(y)
    if labels is not None:
        # per RoI: [4*S*S, D] @ [D, 1] with that RoI's class row of the predictor
        w_sel = predictor.weight.view(k, d)[labels][:, :, None]
        yr = y.view(r, 4 * s * s2, d)
        if predictor.bias is None:
            z = torch.bmm(yr, w_sel)
        else:
            z = torch.baddbmm(predictor.bias[labels][:, None, None], yr, w_sel)
        k = 1
    else:
        w2 = predictor.weight.view(k, d).t()
        z = y @ w2 if predictor.bias is None else torch.addmm(predictor.bias, y, w2)
    # rows are (R, i, j, a, b): reorder to [R, K, i, a, j, b] = [R, K, 2S, 2S]
    return z.view(r, s, s2, 2, 2, k).permute(0, 5, 1, 3, 2, 4).reshape(r, k, 2 * s, 2 * s2)


class MaskHeadMLP(nn.Module):
    """Table 2e ablation: [R, C, S, S] -> fc 1024 -> fc 1024 -> fc K*m*m -> [R, K, m, m]."""

    def __init__(self, in_features: int, num_outputs: int, resolution: int, dim: int = 1024):
        super().__init__()
        self.fc1 = nn.Linear(in_features, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.fc_logits = nn.Linear(dim, num_outputs * resolution * resolution)
        self.num_outputs = num_outputs
        self.resolution = resolution

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[R, C, S, S] -> mask logits Tensor[R, K, m, m]."""
        x = F.relu_(self.fc2(F.relu_(self.fc1(x.flatten(1)))))
        m = self.resolution
        return self.fc_logits(x).view(-1, self.num_outputs, m, m)


class KeypointHead(nn.Module):
    """Keypoint R-CNN head: [R, 256, 14, 14] -> 8 x (conv3x3 512, ReLU) ->
    deconv 4x4 s2 -> [R, P, 28, 28] -> 2x bilinear -> [R, P, 56, 56] logits."""

    def __init__(self, in_channels: int, num_keypoints: int, num_convs: int = 8, dim: int = 512):
        super().__init__()
        convs = []
        c = in_channels
        for _ in range(num_convs):
            convs.append(nn.Conv2d(c, dim, 3, padding=1))
            c = dim
        self.convs = nn.ModuleList(convs)
        self.kps_score_lowres = nn.ConvTranspose2d(dim, num_keypoints, 4, stride=2, padding=1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        """x Tensor[R, C, 14, 14] -> heatmap logits Tensor[R, P, 56, 56]."""
        for conv in self.convs:
            x = conv_module(x, conv, relu=True)
        x = self.kps_score_lowres(x)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False, recompute_scale_factor=False)
