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
    assert float(body.layer2[0].bn2.weight.detach().abs().sum()) == 0.0
    assert float(body.layer2[0].bn1.weight.detach().min()) == 1.0
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


@pytest.mark.parametrize("name,fmt", [("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)])
def test_explicit_training_format_reaches_the_frozen_stem(name, fmt, monkeypatch):
    """An explicit layout is honoured by the frozen stem and layer1 too (the
    automatic policy runs them channels_last): an NCHW run must sum in the same
    order as an NCHW reference model, which the loss parity tests rely on."""
    seen = []
    conv_bn = R.conv_bn

    def spy(x, *args, **kwargs):
        seen.append(x.is_contiguous(memory_format=fmt))
        return conv_bn(x, *args, **kwargs)

    monkeypatch.setattr(R, "conv_bn", spy)
    body = R.ResNet("basic", (1, 1, 1, 1), trainable_layers=3)
    try:
        mn.modeling.set_training_memory_format(name)
        body.train()
        body(torch.randn(2, 3, 64, 64))
    finally:
        mn.modeling.set_training_memory_format(None)
    assert len(seen) >= 3 and all(seen), seen  # stem, layer1's convs and on
