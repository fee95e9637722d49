"""Winograd in training (modeling/winograd_train.py): the forward and all three
gradients equal F.conv2d's (checked against float64), whatever the input's
layout and which inputs need gradients; layers.conv2d takes it only for wide
3x3 stride-1 convolutions on large float32 CPU maps, outside autocast, tracing
and when switched off."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskrcnn_native.modeling import layers, winograd_train

MIN_PX = winograd_train.MIN_PIXELS
MODEL_MIN_CHANNELS = winograd_train.MIN_CHANNELS


@pytest.fixture(autouse=True)
def _narrower_convs_too(monkeypatch):
    """The test convs (128 channels) are narrower than the model's floor (256): cheaper."""
    monkeypatch.setattr(winograd_train, "MIN_CHANNELS", 128)


@pytest.fixture
def winograd_calls(monkeypatch):
    """The input shapes of every call layers.conv2d makes to winograd_conv3x3."""
    calls = []
    real = winograd_train.winograd_conv3x3

    def spy(*a, **k):
        calls.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(layers, "winograd_conv3x3", spy)
    return calls


def test_model_floor_leaves_128_channel_convs_alone():
    assert MODEL_MIN_CHANNELS == 256
    conv = nn.Conv2d(128, 128, 3, 1, 1)
    x = torch.randn(1, 128, 100, 100)
    assert winograd_train.winograd_train_applies(x, conv.weight, conv, 4)
    winograd_train.MIN_CHANNELS = MODEL_MIN_CHANNELS  # restored by the fixture
    assert not winograd_train.winograd_train_applies(x, conv.weight, conv, 4)
    wide = nn.Conv2d(256, 256, 3, 1, 1)
    assert winograd_train.winograd_train_applies(torch.randn(1, 256, 100, 100), wide.weight, wide, 4)


def _case(cin=128, cout=144, h=100, w=101, seed=0, bias=True):
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)
    nn.init.kaiming_normal_(conv.weight)
    x = torch.randn(2, cin, h, w).relu()
    g = torch.randn(2, cout, h, w)
    return conv, x, g


def _grads(fn, x, weight, bias, g):
    x = x.detach().clone().requires_grad_(x.requires_grad)
    weight = weight.detach().clone().requires_grad_(weight.requires_grad)
    bias = None if bias is None else bias.detach().clone().requires_grad_(bias.requires_grad)
    y = fn(x, weight, bias)
    y.backward(g.to(y.dtype))
    return y.detach(), [None if t is None else t.grad for t in (x, weight, bias)]


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.mark.parametrize("m", [4, 2])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_equal_conv2d(m, layout, bias):
    conv, x, g = _case(bias=bias)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
        g = g.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    conv.weight.requires_grad_(True)
    assert winograd_train.winograd_train_applies(x, conv.weight, conv, m)
    ref_y, ref_g = _grads(
        lambda a, w, b: F.conv2d(a, w, b, padding=1),
        x.double(),
        conv.weight.double(),
        None if conv.bias is None else conv.bias.double(),
        g.double(),
    )
    y, got_g = _grads(lambda a, w, b: winograd_train.winograd_conv3x3(a, w, b, m), x, conv.weight, conv.bias, g)
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    # float32 direct convolution is ~1e-6 relative here; F(4x4,3x3)'s transforms ~1e-5
    tol = 1e-4 if m == 4 else 2e-5
    assert _rel(y, ref_y) < tol
    for name, a, b in zip(("x", "weight", "bias"), got_g, ref_g):
        if b is None:
            assert a is None
        else:
            assert a is not None and a.shape == b.shape and a.dtype == torch.float32, name
            assert _rel(a, b) < tol, (name, _rel(a, b))


@pytest.mark.parametrize("need", ["x", "weight"])
def test_only_the_needed_gradients(need):
    conv, x, g = _case(h=100, w=100, seed=1)
    x.requires_grad_(need == "x")
    conv.weight.requires_grad_(need == "weight")
    conv.bias.requires_grad_(False)
    ref_y, ref_g = _grads(lambda a, w, b: F.conv2d(a, w, b, padding=1), x, conv.weight, conv.bias, g)
    y, got_g = _grads(lambda a, w, b: winograd_train.winograd_conv3x3(a, w, b, 4), x, conv.weight, conv.bias, g)
    for a, b in zip(got_g, ref_g):
        assert (a is None) == (b is None)
        if b is not None:
            assert _rel(a, b) < 1e-4
    assert got_g[2] is None


def test_layers_conv2d_takes_it_in_training_only_where_it_applies(monkeypatch, winograd_calls):
    calls = winograd_calls
    conv, x, _ = _case(cin=128, cout=128, h=100, w=100, seed=2)
    y = layers.conv_module(x, conv, relu=True)  # training (grad mode), NCHW
    assert len(calls) == 1 and y.grad_fn is not None
    torch.testing.assert_close(y, F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), rtol=1e-4, atol=1e-4)
    # the forward that reproduces training's numbers uses it too, whatever the grad mode
    with torch.no_grad():
        assert torch.equal(layers.conv2d_eager(x, conv.weight, conv.bias, conv, relu=True), y.detach())
    assert len(calls) == 2
    for conv_, x_ in [
        (nn.Conv2d(128, 128, 3, 1, 1), torch.randn(1, 128, 99, 100)),  # map below MIN_PIXELS
        (nn.Conv2d(64, 64, 3, 1, 1), torch.randn(1, 64, 100, 100)),  # narrow
        (nn.Conv2d(128, 128, 3, 2, 1), torch.randn(1, 128, 100, 100)),  # stride 2
        (nn.Conv2d(128, 128, 3, 1, 2, dilation=2), torch.randn(1, 128, 100, 100)),
        (nn.Conv2d(128, 128, 3, 1, 1).double(), torch.randn(1, 128, 100, 100, dtype=torch.float64)),
    ]:
        assert 99 * 100 < MIN_PX <= 100 * 100
        layers.conv_module(x_, conv_)
    assert len(calls) == 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layers.conv_module(x, conv).dtype == torch.bfloat16
    monkeypatch.setattr(layers, "_WINOGRAD_M", 0)  # MN_WINOGRAD=0
    layers.conv_module(x, conv)
    monkeypatch.setattr(layers, "_WINOGRAD_M", 4)
    monkeypatch.setattr(winograd_train, "ENABLED", False)  # MN_WINOGRAD_TRAIN=0
    layers.conv_module(x, conv)
    assert len(calls) == 2


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_not_under_tracing():
    conv, x, _ = _case(cin=128, cout=128, h=100, w=100, seed=3)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, t):
            return layers.conv_module(t, self.conv)

    traced = torch.jit.trace(Block(), (x,), check_trace=False)
    graph = str(traced.graph)
    assert "aten::_convolution" in graph and "prim::PythonOp" not in graph and "maskrcnn_native::" not in graph
    torch.testing.assert_close(traced(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


def test_sgd_steps_track_conv2d():
    # a few SGD steps through a two-conv net: Winograd's and F.conv2d's weights stay together
    torch.manual_seed(4)
    convs = [nn.Conv2d(128, 128, 3, 1, 1) for _ in range(2)]
    ref = [nn.Conv2d(128, 128, 3, 1, 1) for _ in range(2)]
    for a, b in zip(convs, ref):
        b.load_state_dict(a.state_dict())
    x = torch.randn(1, 128, 100, 100)
    target = torch.randn(1, 128, 100, 100)
    opts = [torch.optim.SGD([p for c in cs for p in c.parameters()], lr=1e-3) for cs in (convs, ref)]
    for _ in range(3):
        for cs, opt, fn in ((convs, opts[0], layers.conv_module), (ref, opts[1], None)):
            opt.zero_grad()
            h = x
            for c in cs:
                h = fn(h, c, relu=True) if fn else F.relu(F.conv2d(h, c.weight, c.bias, padding=1))
            F.mse_loss(h, target).backward()
            opt.step()
    for a, b in zip(convs, ref):
        assert _rel(a.weight.detach(), b.weight.detach()) < 1e-5


def _model_case(seed=5):
    import maskrcnn_native as mn

    from .tv_helpers import make_images, randomize_

    # 416 px: P2 is 104 x 104 (>= MIN_PIXELS), so the FPN's P2 output conv and the RPN conv run as Winograd
    m = randomize_(mn.Model("R18-FPN", num_classes=4, min_size=416, max_size=416), seed=seed).train()
    imgs = make_images([(416, 416), (416, 416)], seed=seed)
    g = torch.Generator().manual_seed(seed)
    targets = []
    for _ in imgs:
        xy = torch.rand(3, 2, generator=g) * 250
        wh = torch.rand(3, 2, generator=g) * 120 + 40
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(3, 416, 416, dtype=torch.uint8)
        for i, (a, b, c, d) in enumerate(boxes.long().tolist()):
            masks[i, b:d, a:c] = 1
        targets.append({"boxes": boxes, "labels": torch.randint(1, 4, (3,), generator=g), "masks": masks})
    return m, imgs, targets


def test_model_train_step_with_and_without_winograd(monkeypatch, winograd_calls):
    calls = winograd_calls
    results = {}
    for on in (False, True):
        monkeypatch.setattr(winograd_train, "ENABLED", on)
        m, imgs, targets = _model_case()
        torch.manual_seed(7)
        losses = m(imgs, targets)
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        results[on] = ({k: float(v.detach()) for k, v in losses.items()}, grads)
    assert len(calls) >= 2  # FPN P2 output conv + RPN conv (forward), in the second run only
    assert all(s[2] * s[3] >= MIN_PX for s in calls)
    (l0, g0), (l1, g1) = results[False], results[True]
    assert l0.keys() == l1.keys()
    for k in l0:
        # the RPN's samples do not depend on the features: its losses move by rounding only;
        # the proposals (top-k of scores) may swap near-ties, moving the RoI heads' losses a little
        rtol = 1e-4 if "rpn" in k or "objectness" in k else 2e-2
        assert abs(l1[k] - l0[k]) <= rtol * abs(l0[k]) + 1e-6, (k, l0[k], l1[k])
    # the gradient of the FPN's P2 output conv (Winograd's forward, input and weight gradients)
    name = next(n for n in g0 if n.endswith("fpn.layer_blocks.0.weight"))
    assert _rel(g1[name], g0[name]) < 2e-2, name
