"""Inference convolutions fused in oneDNN (layers.conv2d: pre-reordered weight,
bias + residual add + ReLU as post-ops) give the eager chain's answers, follow
weight changes, and stay out of training, autocast and tracing; and the trunk
width option ``backbone_channels``."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import maskrcnn_native as mn
from maskrcnn_native.modeling import layers

from .tv_helpers import make_images, match_detections, randomize_


def _eager(x, conv, relu, add):
    y = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    if add is not None:
        y = y + add
    return torch.relu(y) if relu else y


@pytest.mark.parametrize(
    "cin,cout,k,stride,groups",
    [(16, 32, 3, 1, 1), (16, 32, 3, 2, 1), (32, 64, 1, 1, 1), (32, 32, 1, 2, 1), (64, 64, 3, 1, 32), (3, 16, 7, 2, 1)],
)
@pytest.mark.parametrize("relu,residual", [(False, False), (True, False), (True, True), (False, True)])
def test_fused_conv_equals_eager_chain(cin, cout, k, stride, groups, relu, residual):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=True)
    x = torch.randn(2, cin, 23, 30).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = _eager(x, conv, relu, None)
        add = torch.randn_like(ref).contiguous(memory_format=torch.channels_last) if residual else None
        ref = _eager(x, conv, relu, add)
        got = layers.conv_module(x, conv, relu=relu, add=add)
    assert getattr(conv, "_mn_packed", None) is not None, "the fused path was not taken"
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    # a second call with another input size reuses the cached weight and is still right
    x2 = torch.randn(1, cin, 17, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref2 = _eager(x2, conv, relu, None)
        add2 = torch.randn_like(ref2).contiguous(memory_format=torch.channels_last) if residual else None
        torch.testing.assert_close(
            layers.conv_module(x2, conv, relu=relu, add=add2), _eager(x2, conv, relu, add2), rtol=1e-5, atol=1e-5
        )


def test_fused_weight_cache_follows_weight_changes():
    torch.manual_seed(1)
    conv = nn.Conv2d(8, 8, 3, 1, 1)
    x = torch.randn(1, 8, 12, 12).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        first = layers.conv_module(x, conv, relu=True)
        conv.weight.mul_(-1.0)  # in-place edit bumps the version: the packed copy is stale
        second = layers.conv_module(x, conv, relu=True)
        torch.testing.assert_close(second, _eager(x, conv, True, None), rtol=1e-5, atol=1e-5)
        conv.load_state_dict({"weight": torch.randn(8, 8, 3, 3), "bias": torch.zeros(8)})
        third = layers.conv_module(x, conv, relu=True)
        torch.testing.assert_close(third, _eager(x, conv, True, None), rtol=1e-5, atol=1e-5)
    assert not torch.equal(first, second) and not torch.equal(second, third)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_fused_path_not_taken_in_training_autocast_or_nchw():
    conv = nn.Conv2d(8, 8, 3, 1, 1)
    x = torch.randn(1, 8, 12, 12).contiguous(memory_format=torch.channels_last)
    y = layers.conv_module(x, conv, relu=True)  # grad enabled: autograd must see F.conv2d
    assert y.grad_fn is not None and getattr(conv, "_mn_packed", None) is None
    with torch.no_grad():
        layers.conv_module(x.contiguous(), conv, relu=True)  # NCHW input
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layers.conv_module(x, conv, relu=True)
    assert out.dtype == torch.bfloat16 and getattr(conv, "_mn_packed", None) is None

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, t):
            return layers.conv_module(t, self.conv, relu=True)

    with torch.no_grad():
        traced = torch.jit.trace(Block(), (x,), check_trace=False)
    assert "mkldnn::_convolution_pointwise" not in str(traced.graph)
    assert getattr(conv, "_mn_packed", None) is None


def test_model_predict_same_with_and_without_fusion(monkeypatch):
    # seeded non-trivial weights, BN statistics included (folding is not a no-op)
    m = randomize_(mn.Model("R50-FPN", num_classes=5, score_threshold=0.0, min_size=256, max_size=320), seed=3)
    m.eval()
    imgs = make_images([(240, 320), (300, 256)], seed=4)
    x = torch.randn(1, 3, 256, 320).contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(layers, "_FUSED", False)
    with torch.no_grad():
        ref_feats = m.backbone(x)
    ref = m.predict(imgs)
    monkeypatch.setattr(layers, "_FUSED", True)
    with torch.no_grad():
        feats = m.backbone(x)
    got = m.predict(imgs)
    assert getattr(m.backbone.body.layer1[0].conv3, "_mn_packed", None) is not None
    # the wide 3x3 convolutions (FPN outputs, RPN, mask head) ran as Winograd
    assert sum(getattr(mod, "_mn_winograd", None) is not None for mod in m.modules()) >= 10
    # oneDNN may choose another kernel (summation order) for a pre-reordered
    # weight: features agree to float32 rounding, detections one for one
    for k in ref_feats:
        err = (feats[k] - ref_feats[k]).abs().max() / ref_feats[k].abs().max()
        assert err < 1e-5, (k, float(err))
    for a, b in zip(ref, got):
        assert len(a) == len(b) == 100
        pairs = match_detections(a.boxes, a.labels, b.boxes, b.labels, iou_thr=0.99)
        assert len(pairs) >= 95
        i, j = torch.tensor(pairs).T
        torch.testing.assert_close(b.scores[j], a.scores[i], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("relu,residual", [(False, False), (True, True)])
def test_wide_3x3_convs_run_as_winograd(monkeypatch, relu, residual):
    torch.manual_seed(2)
    conv = nn.Conv2d(128, 160, 3, 1, 1)
    nn.init.kaiming_normal_(conv.weight)
    x = torch.randn(2, 128, 19, 26).relu().contiguous(memory_format=torch.channels_last)
    add = torch.randn(2, 160, 19, 26).contiguous(memory_format=torch.channels_last) if residual else None
    with torch.no_grad():
        ref = _eager(x.double(), conv.double(), relu, None if add is None else add.double()).float()
        conv.float()
        got = layers.conv_module(x, conv, relu=relu, add=add)
        assert getattr(conv, "_mn_winograd", None) is not None and getattr(conv, "_mn_packed", None) is None
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=2e-4)
        conv.weight.mul_(-1.0)  # the transformed weight follows in-place edits
        torch.testing.assert_close(
            layers.conv_module(x, conv, relu=relu, add=add),
            _eager(x.double(), conv.double(), relu, None if add is None else add.double()).float(),
            rtol=1e-4,
            atol=2e-4,
        )
        conv.float()
        monkeypatch.setattr(layers, "_WINOGRAD_M", 0)  # MN_WINOGRAD=0: oneDNN's direct convolution
        layers.conv_module(x, conv, relu=relu, add=add)
        assert getattr(conv, "_mn_packed", None) is not None


def test_winograd_only_for_wide_stride_1_3x3():
    with torch.no_grad():
        for conv, cin in [
            (nn.Conv2d(128, 128, 3, 2, 1), 128),  # stride 2
            (nn.Conv2d(64, 64, 3, 1, 1), 64),  # narrow: oneDNN ties there
            (nn.Conv2d(128, 128, 1), 128),
            (nn.Conv2d(128, 128, 3, 1, 2, dilation=2), 128),
        ]:
            x = torch.randn(1, cin, 12, 12).contiguous(memory_format=torch.channels_last)
            layers.conv_module(x, conv)
            assert getattr(conv, "_mn_winograd", None) is None, conv
        conv = nn.Conv2d(128, 128, 3, 1, 1)
        layers.conv_module(torch.randn(1, 128, 12, 12).contiguous(memory_format=torch.channels_last), conv)
        assert getattr(conv, "_mn_winograd", None) is not None
    y = layers.conv_module(torch.randn(1, 128, 12, 12).contiguous(memory_format=torch.channels_last), conv)
    assert y.grad_fn is not None  # under autograd: F.conv2d, never the Winograd op


def test_backbone_channels_sets_the_trunk_width():
    m = mn.Model("R18-FPN", num_classes=3, backbone_channels=32, min_size=96, max_size=96)
    body = m.backbone.body
    assert body.conv1.out_channels == 32
    assert [body.out_channels[f"res{i}"] for i in range(2, 6)] == [32, 64, 128, 256]
    c4 = mn.Model("R50-C4", num_classes=3, backbone_channels=16, min_size=96, max_size=96)
    assert c4.backbone.out_channels == 16 * 4 * 4  # res4 of a bottleneck trunk: 4 x (4 x width)
    assert sum(1 for _ in c4.predict([torch.rand(3, 96, 96)])) == 1
    default = mn.Model("R18-FPN", num_classes=3)
    assert default.backbone.body.conv1.out_channels == 64  # torchvision's width, for its weights
    with pytest.raises(ValueError, match="backbone_channels"):
        mn.Model("R18-FPN", num_classes=3, backbone_channels=4)
    with pytest.raises(ValueError, match="divisible by 32"):
        mn.Model("R18-FPN", num_classes=3, backbone_channels=48, norm="gn")
