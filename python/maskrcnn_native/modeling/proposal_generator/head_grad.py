"""The RPN head's backward pass on the sampled anchors only.

The RPN's losses read 256 sampled anchors per image (binary CE) and the
positive ones among them (smooth L1); every other anchor's gradient is an
exact zero. The head (3x3 conv + ReLU, then the 1x1 objectness and box convs)
keeps that sparsity through its 1x1 convolutions, so the gradient of the 3x3
conv's output is non-zero at no more than ~512 of the ~240,000 locations of a
2x800x1216 batch. A dense convolution backward still costs two full
convolutions per level there (on P2 of R50-FPN, 2x256x200x304: ~1.9 s of a
~8 s train step on a 2-core CPU).

:func:`rpn_head_level` runs the forward exactly as the dense code does (the
callables given to it are the dense code) and computes the backward from the
locations whose output gradient is non-zero: for the weights, products of the
gathered gradient rows with the gathered input patches; for the input, the
patches' gradients added back into a zero map. The terms it leaves out are
products with exact zeros, so the gradients equal the dense ones up to the
order of summation. When the gradient is not sparse (more than an eighth of
the locations: another loss, a custom model), or the convolution is not the
3x3 stride-1 "same" one, the backward is the dense one (``convolution_backward``).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ["rpn_head_level", "sparse_backward_applies"]

# above this fraction of non-zero output locations the dense backward is used
_MAX_DENSITY = 0.125
# levels with fewer locations (N * H * W) keep plain autograd: there the RPN's 256
# samples per image are dense anyway (the demo's 4 x 96 px images: P2 has 2304)
_MIN_LOCATIONS = 4096
# (dy, dx) of the 3x3 taps, in the weight's (ky, kx) order
_TAPS = [(ky - 1, kx - 1) for ky in range(3) for kx in range(3)]


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")
    except TypeError:  # torch < 2.4 spelling
        return torch.is_autocast_cpu_enabled() or torch.is_autocast_enabled()


def sparse_backward_applies(x: Tensor, conv: nn.Conv2d, *heads: nn.Conv2d) -> bool:
    """True when :func:`rpn_head_level` should be used for this level: eager
    autograd (not scripting, tracing, export, compile or autocast), a float32 or
    float64 4-d CPU input of at least ``_MIN_LOCATIONS`` locations, a 3x3 stride-1
    padding-1 ungrouped conv and 1x1 heads.
    (The code is device-neutral torch; CUDA is left out until it has been
    measured and tested on a GPU.)"""
    ws = [conv.weight] + [h.weight for h in heads]
    return (
        torch.is_grad_enabled()
        and isinstance(x, Tensor)
        and type(x) is Tensor
        and x.dim() == 4
        and x.device.type == "cpu"
        and x.shape[0] * x.shape[2] * x.shape[3] >= _MIN_LOCATIONS
        and x.dtype in (torch.float32, torch.float64)
        and all(type(w) is nn.Parameter or type(w) is Tensor for w in ws)
        and all(w.dtype == x.dtype and w.device == x.device for w in ws)
        and (x.requires_grad or any(w.requires_grad for w in ws))
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and all(h.kernel_size == (1, 1) and h.stride == (1, 1) and h.padding == (0, 0) and h.groups == 1 for h in heads)
        and not _autocast_on()
        and not torch.jit.is_scripting()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
    )


class _RPNHeadLevel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, conv3_relu, heads, x, wc, bc, w1, b1, w2, b2):  # type: ignore[override]
        t = conv3_relu(x)
        logits, deltas = heads(t)
        ctx.save_for_backward(x, t, wc, w1, w2)
        ctx.has_bias = (bc is not None, b1 is not None, b2 is not None)
        return logits, deltas

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_logits, g_deltas):  # type: ignore[override]
        x, t, wc, w1, w2 = ctx.saved_tensors
        need = ctx.needs_input_grad[2:]
        if g_logits is None:
            g_logits = torch.zeros((t.shape[0], w1.shape[0]) + t.shape[2:], dtype=t.dtype, device=t.device)
        if g_deltas is None:
            g_deltas = torch.zeros((t.shape[0], w2.shape[0]) + t.shape[2:], dtype=t.dtype, device=t.device)
        nz = (g_logits != 0).any(1) | (g_deltas != 0).any(1)  # [N, H, W]
        where = nz.nonzero()
        if where.shape[0] > _MAX_DENSITY * nz.numel():
            grads = _dense_backward(x, t, wc, w1, w2, g_logits, g_deltas, need)
        else:
            grads = _sparse_backward(x, t, wc, w1, w2, g_logits, g_deltas, where, need)
        gx, gwc, gbc, gw1, gb1, gw2, gb2 = grads
        hb = ctx.has_bias
        return (
            None,
            None,
            gx,
            gwc,
            gbc if hb[0] else None,
            gw1,
            gb1 if hb[1] else None,
            gw2,
            gb2 if hb[2] else None,
        )


def _sparse_backward(x, t, wc, w1, w2, g_logits, g_deltas, where, need):
    """The backward from the S locations ``where`` [S, 3] = (image, y, x)."""
    n, y, xx = where.unbind(1)
    h, w = x.shape[2], x.shape[3]
    c_out, c_in = wc.shape[0], wc.shape[1]
    gl = g_logits.permute(0, 2, 3, 1)[n, y, xx]  # [S, A]
    gd = g_deltas.permute(0, 2, 3, 1)[n, y, xx]  # [S, 4A]
    ts = t.permute(0, 2, 3, 1)[n, y, xx]  # [S, C]
    gw1 = (gl.t() @ ts).view_as(w1)
    gw2 = (gd.t() @ ts).view_as(w2)
    gt = gl @ w1.flatten(1) + gd @ w2.flatten(1)  # [S, C]: through the 1x1 heads
    gt = gt * (ts > 0)  # through the ReLU (torch's threshold_backward: output > 0)
    gx: Optional[Tensor] = None
    gwc: Optional[Tensor] = None
    xv = x.permute(0, 2, 3, 1)  # [N, H, W, C] view, any layout
    idx, valid = [], []
    for dy, dx in _TAPS:
        yy, xq = y + dy, xx + dx
        ok = (yy >= 0) & (yy < h) & (xq >= 0) & (xq < w)
        idx.append((yy.clamp(0, h - 1), xq.clamp(0, w - 1)))
        valid.append(ok)
    if need[1]:
        # the input patch of every location, zero outside the image: [S, C, 9]
        cols = torch.stack([xv[n, yy, xq] * ok[:, None] for (yy, xq), ok in zip(idx, valid)], dim=2)
        gwc = (gt.t() @ cols.flatten(1)).view(c_out, c_in, 3, 3)
    if need[0]:
        gcols = (gt @ wc.flatten(1)).view(-1, c_in, 9)  # [S, C_in, 9]: each tap's input gradient
        gx = torch.zeros_like(x)
        keep = torch.cat(valid)
        ni = n.repeat(9)[keep]
        yi = torch.cat([i[0] for i in idx])[keep]
        xi = torch.cat([i[1] for i in idx])[keep]
        vals = gcols.permute(2, 0, 1).reshape(-1, c_in)[keep]
        gx.permute(0, 2, 3, 1).index_put_((ni, yi, xi), vals, accumulate=True)
    return gx, gwc, gt.sum(0), gw1, gl.sum(0), gw2, gd.sum(0)


def _dense_backward(x, t, wc, w1, w2, g_logits, g_deltas, need):
    cb = torch.ops.aten.convolution_backward
    one, zero = [1, 1], [0, 0]
    if t.is_contiguous():
        # NCHW: the 1x1 heads as batched GEMMs over [C, H*W] (as RPNHead's NCHW
        # forward runs them; oneDNN's NCHW 1x1 backward with 3 or 12 outputs is slower)
        n = t.shape[0]
        a = w1.shape[0]
        g = torch.cat([g_logits, g_deltas], 1).flatten(2)  # [N, 5A, HW]
        w = torch.cat([w1, w2]).flatten(1)  # [5A, C]
        tf = t.flatten(2)
        gt12 = torch.bmm(w.t().expand(n, -1, -1), g).view_as(t)
        gw = torch.bmm(g, tf.transpose(1, 2)).sum(0)  # [5A, C]
        gb = g.sum((0, 2))
        gw1, gw2 = gw[:a].reshape_as(w1), gw[a:].reshape_as(w2)
        gb1, gb2 = gb[:a], gb[a:]
    else:
        gt1, gw1, gb1 = cb(g_logits, t, w1, [w1.shape[0]], one, zero, one, False, zero, 1, [True, True, True])
        gt2, gw2, gb2 = cb(g_deltas, t, w2, [w2.shape[0]], one, zero, one, False, zero, 1, [True, True, True])
        gt12 = gt1 + gt2
    gt = torch.ops.aten.threshold_backward(gt12, t, 0)
    gx, gwc, gbc = cb(gt, x, wc, [wc.shape[0]], one, one, one, False, zero, 1, [need[0], need[1], True])
    return gx, gwc, gbc, gw1, gb1, gw2, gb2


def rpn_head_level(
    x: Tensor,
    conv: nn.Conv2d,
    cls_logits: nn.Conv2d,
    bbox_pred: nn.Conv2d,
    conv3_relu: Callable[[Tensor], Tensor],
    heads: Callable[[Tensor], Tuple[Tensor, Tensor]],
) -> Tuple[Tensor, Tensor]:
    """One FPN level of an RPN head: ``heads(conv3_relu(x))`` -> (objectness
    logits [N, A, H, W], box deltas [N, 4A, H, W]), with the backward computed
    on the locations whose gradient is non-zero (see the module docstring).

    ``conv3_relu`` and ``heads`` are the caller's own dense forward (they must
    compute ``relu(conv(x))`` and ``(cls_logits(t), bbox_pred(t))`` with those
    modules' parameters), so the forward's numbers are the caller's. Call it
    only where :func:`sparse_backward_applies`."""
    return _RPNHeadLevel.apply(
        conv3_relu,
        heads,
        x,
        conv.weight,
        conv.bias,
        cls_logits.weight,
        cls_logits.bias,
        bbox_pred.weight,
        bbox_pred.bias,
    )
