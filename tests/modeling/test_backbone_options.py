"""Backbone options: trainable norms (norm="bn" | "gn"), the training memory
layout, and the GEMM form of 1x1 convolutions / the RPN's 1x1 heads."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import maskrcnn_native as mn
from maskrcnn_native.modeling.backbone import resnet as R
from maskrcnn_native.modeling.proposal_generator.rpn import RPNHead


def _targets(n, size=96):
    masks = torch.zeros(1, size, size, dtype=torch.uint8)
    masks[0, 12:50, 10:48] = 1
    return [{"boxes": torch.tensor([[10.0, 12.0, 48.0, 50.0]]), "labels": torch.tensor([1]), "masks": masks}
            for _ in range(n)]


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_trainable_norm_trains_and_predicts(norm):
    torch.manual_seed(0)
    m = mn.Model("R18-FPN", num_classes=3, norm=norm, trainable_layers=5, min_size=96, max_size=96)
    body = m.backbone.body
    kind = nn.BatchNorm2d if norm == "bn" else nn.GroupNorm
    assert isinstance(body.bn1, kind) and isinstance(body.layer3[1].bn2, kind)
    # residual branches start at zero (last norm's scale), other scales at one
    assert float(body.layer2[0].bn2.weight.abs().sum()) == 0.0
    assert float(body.layer2[0].bn1.weight.min()) == 1.0
    m.train()
    imgs = [torch.rand(3, 96, 96) for _ in range(2)]
    losses = m(imgs, _targets(2))
    sum(losses.values()).backward()
    assert body.bn1.weight.grad is not None and body.conv1.weight.grad is not None
    if norm == "bn":
        assert body.bn1.training and int(body.bn1.num_batches_tracked) == 1
        assert not torch.equal(body.bn1.running_mean, torch.zeros(64))
    stats = [t.clone() for t in m.state_dict().values()]
    dets = m.predict(imgs)  # eval mode inside: BN uses (and keeps) its running statistics
    assert len(dets) == 2 and body.bn1.training  # predict restores the training mode
    assert all(torch.equal(a, b) for a, b in zip(stats, m.state_dict().values()))


def test_bn_frozen_stages_keep_statistics():
    m = mn.Model("R18-FPN", num_classes=3, norm="bn", trainable_layers=3, min_size=96, max_size=96)
    body = m.backbone.body
    m.train()
    assert not body.bn1.training and not body.layer1[0].bn1.training  # frozen stem and layer1
    assert body.layer2[0].bn1.training
    assert not body.bn1.weight.requires_grad and body.layer2[0].bn1.weight.requires_grad
    before = body.layer1[0].bn1.running_mean.clone()
    m(torch.rand(2, 3, 96, 96).unbind(0), _targets(2))
    assert torch.equal(body.layer1[0].bn1.running_mean, before)


def test_eval_bn_folds_into_the_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        got = R.conv_bn(x, conv, bn)
        ref = bn(conv(x))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_norm_must_be_known():
    with pytest.raises(ValueError, match="norm must be"):
        mn.ModelConfig(norm="batchnorm")


def test_training_memory_format_setting():
    try:
        for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            mn.modeling.set_training_memory_format(name)
            assert mn.modeling.training_memory_format() is fmt
            body = R.ResNet("basic", (1, 1, 1, 1), trainable_layers=3)
            out = body(torch.randn(1, 3, 64, 64))
            assert all(t.is_contiguous(memory_format=fmt) for t in out.values())
            with torch.no_grad():  # inference is channels_last whatever the training layout
                out = body(torch.randn(1, 3, 64, 64))
            assert all(t.is_contiguous(memory_format=torch.channels_last) for t in out.values())
        with pytest.raises(ValueError, match="expected 'channels_last', 'nchw' or None"):
            mn.modeling.set_training_memory_format("nhwc4")
    finally:
        mn.modeling.set_training_memory_format(None)


def test_conv1x1_gemm_path_equals_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 24, 1)
    x = torch.randn(2, 16, 100, 120, requires_grad=True)  # >= 10000 pixels: GEMM path
    g = torch.randn(2, 24, 100, 120)
    got = R.conv2d(x, conv.weight, conv.bias, conv)
    assert got.shape == (2, 24, 100, 120) and got.is_contiguous()
    gx, gw, gb = torch.autograd.grad(got, (x, conv.weight, conv.bias), g)
    ref = F.conv2d(x, conv.weight, conv.bias)
    rx, rw, rb = torch.autograd.grad(ref, (x, conv.weight, conv.bias), g)
    for a, b in ((got, ref), (gx, rx), (gw, rw), (gb, rb)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_rpn_head_gemm_equals_convs(fmt):
    torch.manual_seed(0)
    head = RPNHead(32, 3)
    for m in (head.cls_logits, head.bbox_pred):
        nn.init.normal_(m.bias)
    feats = [torch.randn(2, 32, 20, 24).contiguous(memory_format=fmt), torch.randn(2, 32, 10, 12)]
    lo, de = head(feats)
    for f, a, b in zip(feats, lo, de):
        t = F.relu(head.conv(f))
        torch.testing.assert_close(a, head.cls_logits(t), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b, head.bbox_pred(t), rtol=1e-5, atol=1e-5)
        assert a.shape == (2, 3) + f.shape[-2:] and b.shape == (2, 12) + f.shape[-2:]
