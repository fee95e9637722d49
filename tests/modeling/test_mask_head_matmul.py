"""MaskHeadFCN's deconv -> ReLU -> 1x1 predictor as two matrix products
(heads.deconv2x2_relu_conv1x1) against the modules it replaces: values and
gradients, every layout and dtype the model runs in, empty RoI sets."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskrcnn_native.modeling.roi_heads.heads import MaskHeadFCN, deconv2x2_relu_conv1x1


def _modules(c, d, k, dtype, seed=0):
    torch.manual_seed(seed)
    deconv = nn.ConvTranspose2d(c, d, 2, 2).to(dtype)
    pred = nn.Conv2d(d, k, 1).to(dtype)
    with torch.no_grad():  # non-zero biases, so a misplaced bias shows
        deconv.bias.uniform_(-0.5, 0.5)
        pred.bias.uniform_(-0.5, 0.5)
    return deconv, pred


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("r,c,d,k,s", [(5, 8, 6, 3, 7), (3, 16, 16, 1, 14), (2, 4, 5, 2, 1)])
def test_values_and_gradients_equal_the_modules(r, c, d, k, s, dtype, tol, channels_last):
    deconv, pred = _modules(c, d, k, dtype)
    x = torch.randn(r, c, s, s, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    ref = pred(F.relu(deconv(xa)))
    out = deconv2x2_relu_conv1x1(xb, deconv, pred)
    assert out.shape == ref.shape == (r, k, 2 * s, 2 * s) and out.dtype == dtype
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [xa, deconv.weight, deconv.bias, pred.weight, pred.bias], g)
    out_grads = torch.autograd.grad(out, [xb, deconv.weight, deconv.bias, pred.weight, pred.bias], g)
    for a, b in zip(out_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=tol * 10, atol=tol * 10)


def test_empty_rois():
    deconv, pred = _modules(8, 6, 2, torch.float32)
    x = torch.zeros(0, 8, 14, 14, requires_grad=True)
    out = deconv2x2_relu_conv1x1(x, deconv, pred)
    assert out.shape == (0, 2, 28, 28)
    out.sum().backward()
    assert x.grad.shape == x.shape and deconv.weight.grad.abs().sum() == 0


def test_bfloat16_under_autocast_close_to_float32():
    deconv, pred = _modules(16, 16, 1, torch.float32)
    x = torch.randn(4, 16, 14, 14)
    ref = pred(F.relu(deconv(x)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = deconv2x2_relu_conv1x1(x, deconv, pred)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_head_forward_is_the_paper_head():
    # the whole head against its modules applied one after another
    torch.manual_seed(1)
    head = MaskHeadFCN(8, 3, num_convs=2, dim=6).eval()
    x = torch.randn(4, 8, 14, 14)
    ref = x
    for conv in head.convs:
        ref = F.relu(conv(ref))
    ref = head.mask_fcn_logits(F.relu(head.conv5_mask(ref)))
    with torch.no_grad():
        torch.testing.assert_close(head(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_labels_select_each_rois_class(dtype, tol, channels_last):
    r, c, d, k, s = 6, 8, 5, 4, 7
    deconv, pred = _modules(c, d, k, dtype)
    x = torch.randn(r, c, s, s, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    labels = torch.tensor([3, 0, 1, 3, 2, 1])
    full = deconv2x2_relu_conv1x1(x.requires_grad_(), deconv, pred)
    want = full[torch.arange(r), labels][:, None]
    g = torch.randn_like(want)
    ref = torch.autograd.grad(want, [x, deconv.weight, deconv.bias, pred.weight, pred.bias], g)
    got_out = deconv2x2_relu_conv1x1(x, deconv, pred, labels)
    assert got_out.shape == (r, 1, 2 * s, 2 * s)
    torch.testing.assert_close(got_out, want, rtol=tol, atol=tol)
    got = torch.autograd.grad(got_out, [x, deconv.weight, deconv.bias, pred.weight, pred.bias], g)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    # no RoIs
    empty = deconv2x2_relu_conv1x1(x[:0], deconv, pred, labels[:0])
    assert empty.shape == (0, 1, 2 * s, 2 * s)


def test_model_reads_only_the_labelled_mask(small_model):
    # the inference and the loss paths agree with the all-classes head on a real model
    head = small_model.roi_heads.mask_head
    x = torch.randn(3, head.convs[0].in_channels, 14, 14)
    labels = torch.tensor([1, 2, 1])
    with torch.no_grad():
        full = head(x)
        sel = head(x, labels)
    torch.testing.assert_close(sel[:, 0], full[torch.arange(3), labels], rtol=1e-5, atol=1e-5)
