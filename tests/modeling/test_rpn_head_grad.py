"""The RPN head's backward on the sampled anchors (``proposal_generator.head_grad``):
the same gradients as the dense backward, the dense path where the gradient is
not sparse, and the same forward."""

import contextlib
from unittest import mock

import pytest
import torch
from torch import nn

import maskrcnn_native as mn
from maskrcnn_native.modeling.proposal_generator import head_grad
from maskrcnn_native.modeling.proposal_generator import rpn as rpn_mod
from maskrcnn_native.modeling.proposal_generator.rpn import RPNHead


MODEL_MIN_LOCATIONS = head_grad._MIN_LOCATIONS


@pytest.fixture(autouse=True)
def _small_levels_too(monkeypatch):
    """The test maps are smaller than the size the model uses the sparse backward from."""
    monkeypatch.setattr(head_grad, "_MIN_LOCATIONS", 0)


def _head(c=8, a=3, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    head = RPNHead(c, a).to(dtype)
    for m in head.modules():
        if isinstance(m, nn.Conv2d):  # larger than the init's std 0.01, and non-zero biases
            nn.init.normal_(m.weight, std=0.3)
            nn.init.normal_(m.bias, std=0.1)
    return head


def _feats(c=8, dtype=torch.float64, channels_last=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    fs = [torch.randn(2, c, h, h + 3, generator=g, dtype=dtype) for h in (16, 8, 6)]
    if channels_last:
        fs = [f.contiguous(memory_format=torch.channels_last) for f in fs]
    return [f.requires_grad_() for f in fs]


def _sparse_loss(logits, deltas, k=6):
    """A loss on k drawn anchors per level plus the first and last location
    (image borders), like the RPN's sampled losses: exact zeros elsewhere."""
    tot = 0
    for lvl, (lo, de) in enumerate(zip(logits, deltas)):
        fl, fd = lo.flatten(), de.flatten()
        i = torch.randint(0, fl.numel(), (k,), generator=torch.Generator().manual_seed(lvl))
        tot = tot + torch.nn.functional.softplus(fl[i]).sum() + (fd[(4 * i) % fd.numel()] ** 2).sum()
        tot = tot + fl[0] + fd[-1] ** 3
    return tot


def _dense_only(sparse=False):
    """Within the block the RPN head runs plain autograd (unless ``sparse``)."""
    if sparse:
        return contextlib.nullcontext()
    return mock.patch.object(rpn_mod, "sparse_backward_applies", lambda *a, **k: False)


def _grads(head, feats, loss_fn, sparse, monkeypatch):
    for p in list(head.parameters()) + feats:
        p.grad = None
    with _dense_only(sparse):
        logits, deltas = head(feats)
        loss_fn(logits, deltas).backward()
    ps = list(head.parameters()) + feats
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in ps], logits, deltas


def _count_calls(monkeypatch, name):
    calls = []
    fn = getattr(head_grad, name)
    monkeypatch.setattr(head_grad, name, lambda *a: calls.append(1) or fn(*a))
    return calls


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_sparse_backward_equals_dense_float64(channels_last, monkeypatch):
    head, feats = _head(), _feats(channels_last=channels_last)
    ref, lo_ref, de_ref = _grads(head, feats, _sparse_loss, sparse=False, monkeypatch=monkeypatch)
    calls = _count_calls(monkeypatch, "_sparse_backward")
    got, lo, de = _grads(head, feats, _sparse_loss, sparse=True, monkeypatch=monkeypatch)
    assert len(calls) == 3  # one per level: every level took the sparse path
    for a, b in zip(lo + de, lo_ref + de_ref):
        assert torch.equal(a, b)  # the forward is the dense code's
    names = [n for n, _ in head.named_parameters()] + ["x0", "x1", "x2"]
    for name, a, b in zip(names, got, ref):
        assert a.abs().sum() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    for a, f in zip(got[-3:], feats):
        assert a.stride() == f.stride()  # the input's layout


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_dense_gradient_takes_the_dense_path(channels_last, monkeypatch):
    head, feats = _head(), _feats(channels_last=channels_last)

    def dense_loss(logits, deltas):
        return sum((lo.sin() ** 2).sum() + de.cos().sum() for lo, de in zip(logits, deltas))

    ref, _, _ = _grads(head, feats, dense_loss, sparse=False, monkeypatch=monkeypatch)
    dense = _count_calls(monkeypatch, "_dense_backward")
    got, _, _ = _grads(head, feats, dense_loss, sparse=True, monkeypatch=monkeypatch)
    assert len(dense) == 3
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_level_without_gradient_gives_zeros(monkeypatch):
    head, feats = _head(), _feats()

    def first_level_only(logits, deltas):
        return _sparse_loss(logits[:1], deltas[:1])

    ref, _, _ = _grads(head, feats, first_level_only, sparse=False, monkeypatch=monkeypatch)
    got, _, _ = _grads(head, feats, first_level_only, sparse=True, monkeypatch=monkeypatch)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not got[-1].any() and got[-3].any()


def test_gradcheck_through_a_sampled_loss():
    head = _head(c=4, a=2)
    names = [n for n, _ in head.named_parameters()]
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    ps = [p.detach().clone().requires_grad_() for p in head.parameters()]
    idx = torch.tensor([0, 7, 29, 59])  # corners and inside

    def f(x, *ps):
        lo, de = torch.func.functional_call(head, dict(zip(names, ps)), ([x],))
        return lo[0].flatten()[idx], de[0].flatten()[idx * 3]

    # gradcheck's upstream vectors reach only the selected anchors: the sparse path
    assert head_grad.sparse_backward_applies(x, head.conv, head.cls_logits, head.bbox_pred)
    assert torch.autograd.gradcheck(f, (x, *ps))


def test_not_used_on_small_maps(monkeypatch):
    monkeypatch.setattr(head_grad, "_MIN_LOCATIONS", MODEL_MIN_LOCATIONS)
    assert MODEL_MIN_LOCATIONS == 4096
    head = _head(dtype=torch.float32)
    small, large = torch.randn(4, 8, 24, 24), torch.randn(1, 8, 64, 64)  # 2304 / 4096 locations
    assert not head_grad.sparse_backward_applies(small, head.conv, head.cls_logits, head.bbox_pred)
    assert head_grad.sparse_backward_applies(large, head.conv, head.cls_logits, head.bbox_pred)


def test_not_used_without_autograd_or_in_half():
    head = _head(dtype=torch.float32)
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        assert not head_grad.sparse_backward_applies(x, head.conv, head.cls_logits, head.bbox_pred)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not head_grad.sparse_backward_applies(x, head.conv, head.cls_logits, head.bbox_pred)
    assert not head_grad.sparse_backward_applies(x.bfloat16(), head.conv, head.cls_logits, head.bbox_pred)
    assert head_grad.sparse_backward_applies(x, head.conv, head.cls_logits, head.bbox_pred)


def test_model_train_step_gradients_match_dense(small_config, two_box_sample, monkeypatch):
    torch.manual_seed(0)
    # 16 sampled anchors per image: sparse on the finer levels of these small images
    model = mn.Model("R18-FPN", **dict(small_config, rpn_batch_size_per_image=16)).train()
    samples = [two_box_sample(seed=s) for s in (1, 2)]
    imgs, tgts = [s[0] for s in samples], [s[1] for s in samples]

    def grads(sparse):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        with _dense_only(sparse):
            losses = model(imgs, [dict(t) for t in tgts])
            sum(losses.values()).backward()
        return {k: v.detach() for k, v in losses.items()}, {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    l_ref, g_ref = grads(False)
    sparse = _count_calls(monkeypatch, "_sparse_backward")
    l_got, g_got = grads(True)
    assert sparse  # at least P2 took the sparse path
    assert all(torch.equal(l_got[k], l_ref[k]) for k in l_ref)  # same forward
    assert set(g_got) == set(g_ref) and any(n.startswith("rpn.head.conv") for n in g_got)
    for n in g_ref:
        scale = g_ref[n].abs().max().clamp_min(1e-12)
        assert ((g_got[n] - g_ref[n]).abs().max() / scale) < 1e-4, n
