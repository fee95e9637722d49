"""ModelConfig.box_head_norm: a BatchNorm / GroupNorm between each fc layer of
the FPN box head and its ReLU ("none" is the paper's and torchvision's head)."""

import pytest
import torch
from torch import nn

import maskrcnn_native as mn
from maskrcnn_native.modeling.config import build_config
from maskrcnn_native.modeling.roi_heads.heads import TwoMLPHead


def _reference(head: TwoMLPHead, x: torch.Tensor) -> torch.Tensor:
    """fc -> norm -> ReLU twice, written out with torch.nn.functional."""
    y = x.flatten(1)
    for fc, norm in ((head.fc6, head.bn6), (head.fc7, head.bn7)):
        y = torch.relu(norm(torch.nn.functional.linear(y, fc.weight, fc.bias)))
    return y


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_head_is_fc_norm_relu(norm):
    torch.manual_seed(0)
    head = TwoMLPHead(8 * 7 * 7, 64, norm=norm).double()
    assert head.fc6.bias is None and head.fc7.bias is None  # the norm's shift replaces the bias
    assert isinstance(head.bn6, nn.BatchNorm1d if norm == "bn" else nn.GroupNorm)
    with torch.no_grad():
        for m in (head.bn6, head.bn7):
            m.weight.uniform_(0.5, 2)
            m.bias.uniform_(-1, 1)
    x = torch.randn(10, 8, 7, 7, dtype=torch.float64)
    ref = TwoMLPHead(8 * 7 * 7, 64, norm=norm).double()
    ref.load_state_dict(head.state_dict())
    head.train(), ref.train()
    torch.testing.assert_close(head(x), _reference(ref, x), rtol=1e-12, atol=1e-12)
    if norm == "bn":  # training moved the running statistics the same way
        torch.testing.assert_close(head.bn6.running_mean, ref.bn6.running_mean)
        assert int(head.bn6.num_batches_tracked) == 1
    head.eval(), ref.eval()
    torch.testing.assert_close(head(x), _reference(ref, x), rtol=1e-12, atol=1e-12)


def test_none_is_the_plain_head():
    head = TwoMLPHead(8 * 7 * 7, 32)
    assert head.bn6 is None and head.bn7 is None and head.fc6.bias is not None
    assert sorted(head.state_dict()) == ["fc6.bias", "fc6.weight", "fc7.bias", "fc7.weight"]


def test_batchnorm_with_one_roi_uses_running_statistics():
    torch.manual_seed(0)
    head = TwoMLPHead(4 * 7 * 7, 16, norm="bn").train()
    with torch.no_grad():
        head.bn6.running_mean.uniform_(-1, 1)
        head.bn6.running_var.uniform_(0.5, 2)
    before = head.bn6.running_mean.clone(), int(head.bn6.num_batches_tracked)
    x = torch.randn(1, 4, 7, 7)
    y = head(x)
    assert y.shape == (1, 16) and torch.isfinite(y).all()
    assert torch.equal(head.bn6.running_mean, before[0]) and int(head.bn6.num_batches_tracked) == before[1]
    ev = TwoMLPHead(4 * 7 * 7, 16, norm="bn")
    ev.load_state_dict(head.state_dict())
    torch.testing.assert_close(y, ev.eval()(x))
    assert head(torch.randn(0, 4, 7, 7)).shape == (0, 16)
    y.sum().backward()
    assert head.fc6.weight.grad is not None


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_model_trains_predicts_and_round_trips(norm, tmp_path):
    masks = torch.zeros(2, 96, 96, dtype=torch.uint8)
    masks[0, 10:40, 10:40] = 1
    masks[1, 50:80, 45:90] = 1
    tg = {"boxes": torch.tensor([[10.0, 10, 40, 40], [45, 50, 90, 80]]), "labels": torch.tensor([1, 2]),
          "masks": masks}
    torch.manual_seed(0)
    m = mn.Model("R18-FPN", num_classes=3, min_size=96, max_size=96, box_batch_size_per_image=32,
                 box_head_norm=norm, backbone_channels=16, fpn_channels=32, box_head_dim=64,
                 mask_head_dim=16).train()
    assert m.config.box_head_norm == norm
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01)
    images = [torch.rand(3, 96, 96), torch.rand(3, 96, 96)]
    losses = m(images, [dict(tg), dict(tg)])
    sum(losses.values()).backward()
    assert m.roi_heads.box_head.bn6.weight.grad is not None
    opt.step()
    m.eval()
    with torch.no_grad():
        out = m.predict(images)
    m.save(tmp_path / "m.safetensors")
    back = mn.Model.load(tmp_path / "m.safetensors").eval()
    assert back.config.box_head_norm == norm
    with torch.no_grad():
        again = back.predict(images)
    for a, b in zip(out, again):
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)


def test_config_checks():
    with pytest.raises(ValueError, match="box_head_norm"):
        mn.Model("R18-FPN", num_classes=3, box_head_norm="frozen_bn")
    with pytest.raises(ValueError, match="C4"):
        build_config("R50-C4", num_classes=3, box_head_norm="bn")


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_export_matches_predict(norm, monkeypatch):
    """torch.export of a model with a normalised box head gives predict's answers
    (BatchNorm: running statistics, set to non-trivial values), though the number
    of RoIs is data-dependent in the exported graph."""
    from maskrcnn_native.modeling import layers

    monkeypatch.setattr(layers, "_FUSED", False)  # the exported graph holds F.conv2d: same path, same bits
    torch.manual_seed(0)
    m = mn.Model("R18-FPN", num_classes=3, min_size=64, max_size=96, rpn_pre_nms_top_n_test=100,
                 rpn_post_nms_top_n_test=20, score_threshold=0.0, detections_per_image=10,
                 box_head_norm=norm).eval()
    with torch.no_grad():
        for bn in (m.roi_heads.box_head.bn6, m.roi_heads.box_head.bn7):
            if norm == "bn":
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    ep = m.export((80, 96), paste="aligned")
    g = torch.Generator().manual_seed(3)
    x = torch.rand((1, 3, 80, 96), generator=g)
    with torch.inference_mode():
        boxes, scores, labels, _, masks = ep.module()(x)[0]
    want = m.predict(x, paste="aligned")[0]
    assert len(want) > 0
    assert torch.equal(boxes, want.boxes) and torch.equal(scores, want.scores) and torch.equal(labels, want.labels)
    assert torch.equal(masks, want.masks)


@pytest.mark.parametrize("norm", ["none", "bn", "gn"])
@pytest.mark.parametrize("rois", [0, 1, 37])
def test_channels_last_inference_flattens_in_place(norm, rois):
    """At inference a channels_last [R, C, S, S] input is read as [R, S*S*C] rows against
    fc6's weight reordered to (S, S, C): the same function as flattening an NCHW copy
    (float64: equal to rounding; float32: within the summation-order difference)."""
    from maskrcnn_native.modeling.roi_heads import heads

    torch.manual_seed(1)
    # float32: a 784-term dot product summed in another order (~1e-6 relative),
    # which GroupNorm over 2-channel groups amplifies up to ~5e-5
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-4)):
        head = TwoMLPHead(16 * 7 * 7, 64, norm=norm).to(dtype).eval()  # GN: 2 channels a group
        x = torch.randn(rois, 16, 7, 7, dtype=dtype)
        xcl = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            if rois > 1:
                assert heads._channels_last_inference(xcl)
            want = _flatten_reference(head, x)
            got = head(xcl)
            assert got.shape == (rois, 64)
            torch.testing.assert_close(got, want, rtol=tol, atol=tol)
            head.fc6.weight.mul_(-1)  # an in-place update must not reuse the reordered copy
            torch.testing.assert_close(head(xcl), _flatten_reference(head, x), rtol=tol, atol=tol)


def _flatten_reference(head: TwoMLPHead, x: torch.Tensor) -> torch.Tensor:
    """fc -> (norm) -> ReLU twice on the NCHW flattening, norms in eval mode."""
    y = x.contiguous().flatten(1)
    for fc, norm in ((head.fc6, head.bn6), (head.fc7, head.bn7)):
        y = torch.nn.functional.linear(y, fc.weight, fc.bias)
        y = torch.relu(y if norm is None else norm(y))
    return y


def test_channels_last_flatten_only_without_autograd():
    """Training (autograd on) flattens as before, so gradients and the training
    trajectory are unchanged; NCHW inputs at inference too."""
    from maskrcnn_native.modeling.roi_heads import heads

    xcl = torch.randn(4, 8, 7, 7).contiguous(memory_format=torch.channels_last)
    assert not heads._channels_last_inference(xcl)  # grad mode is on here
    with torch.no_grad():
        assert heads._channels_last_inference(xcl)
        assert not heads._channels_last_inference(xcl.contiguous())


@pytest.mark.parametrize("dim", [2, 16, 32, 64, 1024])
def test_group_norm_head_keeps_two_channels_a_group(dim):
    """GroupNorm on [R, dim] has no spatial extent: a group of one channel would
    normalise one number to zero (the head's output would not depend on its input)
    and refuse a single RoI. Groups keep at least 2 channels; 32 groups from dim 64 up."""
    from maskrcnn_native.modeling.roi_heads.heads import make_head_norm

    gn = make_head_norm("gn", dim)
    assert isinstance(gn, nn.GroupNorm)
    assert dim % gn.num_groups == 0 and dim // gn.num_groups >= 2
    if dim >= 64:
        assert gn.num_groups == 32
    torch.manual_seed(0)
    head = TwoMLPHead(4 * 7 * 7, dim, norm="gn").eval()
    with torch.no_grad():
        a, b = head(torch.randn(1, 4, 7, 7)), head(torch.randn(1, 4, 7, 7))
    assert a.shape == (1, dim)
    if dim >= 16:  # (with 2 outputs a random pair can share its sign pattern)
        assert not torch.equal(a, b)
