"""mn.compat.use_in_torchvision(): unmodified torchvision detectors, built by
torchvision's own constructors with seeded random weights, give the same
detections (and the same training losses and gradients) on the native kernels."""

import subprocess
import sys

import pytest
import torch

import maskrcnn_native as mn

tv = pytest.importorskip("torchvision")
from torchvision.models import detection as det  # noqa: E402

# Small images and proposal counts keep the three R50-FPN models quick on a
# shared 2-core machine; the constructors and modules are torchvision's own.
SIZE = dict(min_size=128, max_size=176, rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
            rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150, box_batch_size_per_image=64,
            box_detections_per_img=40)


def _build(name):
    torch.manual_seed(0)
    kw = dict(weights=None, weights_backbone=None, box_score_thresh=0.0, **SIZE)
    if name == "maskrcnn":
        return det.maskrcnn_resnet50_fpn(num_classes=5, **kw)
    if name == "fasterrcnn":
        return det.fasterrcnn_resnet50_fpn(num_classes=5, **kw)
    return det.keypointrcnn_resnet50_fpn(num_classes=2, num_keypoints=5, **kw)


def _images():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(3, 120, 160, generator=g), torch.rand(3, 130, 110, generator=g)]


def _targets(name):
    g = torch.Generator().manual_seed(2)
    out = []
    for h, w in ((120, 160), (130, 110)):
        xy = torch.rand(3, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5])
        boxes = torch.cat([xy, xy + torch.rand(3, 2, generator=g) * 40 + 15], 1)
        t = {"boxes": boxes, "labels": torch.tensor([1, 1, 1] if name == "keypointrcnn" else [1, 2, 4])}
        if name == "maskrcnn":
            t["masks"] = (torch.rand(3, h, w, generator=g) > 0.5).to(torch.uint8)
        if name == "keypointrcnn":
            kp = boxes[:, None, :2] + torch.rand(3, 5, 2, generator=g) * 20
            t["keypoints"] = torch.cat([kp, torch.ones(3, 5, 1)], 2)
        out.append(t)
    return out


MODELS = ["maskrcnn", "fasterrcnn", "keypointrcnn"]


@pytest.fixture(autouse=True)
def _always_restore():
    yield
    mn.compat.restore_torchvision()


# Tolerances of a partner detection: (score, box px, mask / keypoint values).
# "keep": only the routed ops differ from torchvision. "auto" (the default)
# also runs the convolutions channels_last at inference, another summation
# order: measured up to 1.7e-4 in score, 0.0074 px, 0.0023 in mask probability.
TOL = {"keep": (1e-5, 2e-3, 2e-3), "auto": (1e-3, 0.05, 1e-2)}


def _assert_same_detections(a, b, layout="keep"):
    """One for one: every detection has a partner with the same label, score and
    box (within float rounding). Random weights give many exactly tied scores,
    whose order (torch.topk / sort among equals) may differ, so the partner is
    looked up rather than taken at the same position."""
    score_tol, box_tol, val_tol = TOL[layout]
    assert len(a) == len(b)
    for da, db in zip(a, b):
        assert set(da) == set(db)
        n = da["boxes"].shape[0]
        assert n > 0 and db["boxes"].shape[0] == n
        used = torch.zeros(n, dtype=torch.bool)
        box_d = (da["boxes"][:, None] - db["boxes"][None]).abs().amax(2)
        ok = ((da["labels"][:, None] == db["labels"][None])
              & ((da["scores"][:, None] - db["scores"][None]).abs() <= score_tol) & (box_d <= box_tol))
        for i in range(n):
            cand = (ok[i] & ~used).nonzero().flatten()
            assert cand.numel() > 0, f"detection {i} has no partner: {da['boxes'][i].tolist()}"
            j = int(cand[0])
            used[j] = True
            for k in ("masks", "keypoints", "keypoints_scores"):
                if k in da:
                    torch.testing.assert_close(db[k][j], da[k][i], rtol=0, atol=val_tol)
        exact = (box_d.diagonal() <= box_tol).float().mean()
        assert exact >= 0.9  # and nearly all are at the same position anyway


@pytest.mark.parametrize("layout", ["auto", "keep"])
@pytest.mark.parametrize("name", MODELS)
def test_eval_same_detections(name, layout):
    m = _build(name).eval()
    imgs = _images()
    with torch.no_grad():
        ref = m(imgs)
        with mn.compat.use_in_torchvision(layout=layout):
            got = m(imgs)
    _assert_same_detections(ref, got, layout)


def test_layout_channels_last_at_inference_only():
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    t = GeneralizedRCNNTransform(64, 96, [0.5] * 3, [0.2] * 3)
    imgs = [torch.rand(3, 50, 60), torch.rand(3, 40, 70)]
    ref = t.batch_images(imgs)
    cl = torch.channels_last
    with mn.compat.use_in_torchvision():
        with torch.no_grad():
            got = t.batch_images(imgs)
        assert got.is_contiguous(memory_format=cl) and not ref.is_contiguous(memory_format=cl)
        assert torch.equal(got, ref)
        assert t.batch_images(imgs).is_contiguous()  # autograd on: torchvision's layout
    with mn.compat.use_in_torchvision(layout="keep"), torch.no_grad():
        assert t.batch_images(imgs).is_contiguous()
    with pytest.raises(ValueError, match="layout must be one of"):
        mn.compat.use_in_torchvision(layout="nhwc")
    assert not mn.compat.is_active()


@pytest.mark.parametrize("name", MODELS)
def test_train_step_same_losses_and_gradients(name):
    m = _build(name).train()
    imgs, tg = _images(), _targets(name)

    def step():
        m.zero_grad()
        torch.manual_seed(3)  # the samplers draw from torch's RNG
        losses = m(imgs, tg)
        sum(losses.values()).backward()
        return {k: v.detach() for k, v in losses.items()}, [
            p.grad.clone() for p in m.parameters() if p.grad is not None]

    ref_l, ref_g = step()
    with mn.compat.use_in_torchvision():
        got_l, got_g = step()
    assert set(ref_l) == set(got_l)
    for k in ref_l:
        torch.testing.assert_close(got_l[k], ref_l[k], rtol=1e-4, atol=1e-5)
    assert len(ref_g) == len(got_g)
    # Randomly initialised ResNets amplify float rounding on the way back to the
    # stem, so gradients are compared as whole tensors (relative L2 error).
    for a, b in zip(ref_g, got_g):
        assert (b - a).norm() <= 1e-3 * a.norm() + 1e-7


def test_train_step_rpn_head_backward_on_sampled_anchors(monkeypatch):
    from maskrcnn_native.modeling.proposal_generator import head_grad

    monkeypatch.setattr(head_grad, "_MIN_LOCATIONS", 0)  # these small images' levels too
    torch.manual_seed(0)
    # float64: the sparse and the dense backward sum the same products in another
    # order; in float32 that alone moved a backbone gradient by 1.2e-4 relative with
    # oneDNN's AVX2 kernels (AMD EPYC Zen 4, AVX2-held), over the 1e-4 bound
    m = det.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5, rpn_batch_size_per_image=32,
                                  **SIZE).train().double()
    imgs = [im.double() for im in _images()]
    tg = [{k: (v.double() if k == "boxes" else v) for k, v in t.items()} for t in _targets("maskrcnn")]
    params = [p for p in m.rpn.head.parameters()] + [p for p in m.backbone.parameters() if p.requires_grad]

    def step():
        m.zero_grad()
        torch.manual_seed(3)
        losses = m(imgs, tg)
        sum(losses.values()).backward()
        return {k: v.detach() for k, v in losses.items()}, [p.grad.clone() for p in params]

    ref_l, ref_g = step()
    calls = []
    sparse = head_grad._sparse_backward
    monkeypatch.setattr(head_grad, "_sparse_backward", lambda *a: calls.append(1) or sparse(*a))
    with mn.compat.use_in_torchvision():
        got_l, got_g = step()
    assert len(calls) >= 3  # 32 samples per image: sparse on P2-P4 at least
    for k in ("loss_objectness", "loss_rpn_box_reg"):
        assert torch.equal(got_l[k], ref_l[k])  # the forward is torchvision's own
    for a, b in zip(ref_g, got_g):
        assert (b - a).norm() <= 1e-10 * a.norm() + 1e-15


@pytest.mark.parametrize("block", ["bottleneck", "basic"])
def test_resnet_blocks_fold_their_norms_at_inference_only(block, monkeypatch):
    from torchvision.models import resnet
    from torchvision.ops.misc import FrozenBatchNorm2d

    from maskrcnn_native.modeling import layers

    torch.manual_seed(0)
    down = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2, bias=False), FrozenBatchNorm2d(16))
    if block == "bottleneck":
        m = resnet.Bottleneck(8, 4, stride=2, downsample=down, norm_layer=FrozenBatchNorm2d)
    else:
        m = resnet.BasicBlock(8, 16, stride=2, downsample=down, norm_layer=FrozenBatchNorm2d)
    for bn in m.modules():
        if isinstance(bn, FrozenBatchNorm2d):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 8, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = m(x)
    calls = []
    conv_bn = layers.conv_bn
    monkeypatch.setattr(layers, "conv_bn", lambda *a, **k: calls.append(1) or conv_bn(*a, **k))
    with mn.compat.use_in_torchvision():
        with torch.no_grad():
            got = m(x)
        assert len(calls) == (4 if block == "bottleneck" else 3)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)  # folded: another rounding
        calls.clear()
        xg = x.clone().requires_grad_()
        assert torch.equal(m(xg), m.forward.__wrapped__(m, xg)) and not calls  # training: torchvision's code
        with mn.compat.use_in_torchvision(layout="keep"), torch.no_grad():
            assert torch.equal(m(x), ref) and not calls


def test_conv_norm_act_runs_as_mn_model_at_inference_only(monkeypatch):
    from torchvision.ops.misc import Conv2dNormActivation, FrozenBatchNorm2d

    from maskrcnn_native.modeling import layers

    torch.manual_seed(0)
    plain = Conv2dNormActivation(128, 128, 3, norm_layer=None)  # FPN / RPN / mask head convs
    normed = Conv2dNormActivation(128, 64, 3, norm_layer=FrozenBatchNorm2d)
    bare = Conv2dNormActivation(128, 64, 1, norm_layer=None, activation_layer=None)  # FPN inner blocks
    silu = Conv2dNormActivation(128, 64, 3, norm_layer=None, activation_layer=torch.nn.SiLU)
    normed[1].running_var.uniform_(0.5, 2.0)
    normed[1].bias.normal_()
    x = torch.randn(2, 128, 13, 17).contiguous(memory_format=torch.channels_last)
    calls = []
    for name in ("conv_bn", "conv_module"):
        f = getattr(layers, name)
        monkeypatch.setattr(layers, name, lambda *a, _f=f, **k: calls.append(1) or _f(*a, **k))
    with torch.no_grad():
        refs = [m(x) for m in (plain, normed, bare, silu)]
        ref_nchw = plain(x.contiguous())
        with mn.compat.use_in_torchvision():
            got = [m(x) for m in (plain, normed, bare, silu)]
            assert len(calls) == 3  # SiLU is not ReLU: torchvision's Sequential
            assert getattr(plain[0], "_mn_winograd", None) is not None  # 3x3, 128 -> 128: Winograd
            for g, r in zip(got, refs):
                torch.testing.assert_close(g, r, rtol=1e-4, atol=2e-4)
            calls.clear()
            assert torch.equal(plain(x.contiguous()), ref_nchw) and not calls  # NCHW map: torchvision's code
        with mn.compat.use_in_torchvision(layout="keep"):
            assert torch.equal(plain(x), refs[0]) and not calls
    with mn.compat.use_in_torchvision():
        assert torch.equal(plain(x), refs[0]) and not calls  # autograd on: torchvision's code


def _sites():
    import torchvision.models.detection._utils as du
    import torchvision.models.detection.anchor_utils as au
    import torchvision.models.detection.roi_heads as rh
    import torchvision.models.detection.rpn as rp
    import torchvision.models.detection.transform as tr
    import torchvision.models.resnet as rn
    import torchvision.ops.boxes as bo
    import torchvision.ops.poolers as po

    rmod = sys.modules["torchvision.ops.roi_align"]
    pmod = sys.modules["torchvision.ops.roi_pool"]
    return [tv.ops.roi_align, rmod.roi_align, po.roi_align, rh.roi_align, tv.ops.roi_pool, pmod.roi_pool,
            tv.ops.nms, bo.nms, tv.ops.batched_nms, bo.batched_nms, tv.ops.box_iou, bo.box_iou,
            rh.paste_masks_in_image, tr.paste_masks_in_image, au.AnchorGenerator.forward,
            du.BoxCoder.decode_single, du.BoxCoder.encode_single, tr.GeneralizedRCNNTransform.batch_images,
            rp.RPNHead.forward, rn.Bottleneck.forward, rn.BasicBlock.forward,
            tv.ops.misc.Conv2dNormActivation.forward]


def test_every_site_patched_and_restored():
    before = _sites()
    assert not mn.compat.is_active()
    mn.compat.use_in_torchvision()
    during = _sites()
    assert mn.compat.is_active()
    assert all(a is not b for a, b in zip(before, during))
    assert all(getattr(b, "__wrapped__", None) is a for a, b in zip(before, during))
    mn.compat.use_in_torchvision()  # idempotent
    assert _sites() == during
    mn.compat.restore_torchvision()
    assert all(a is b for a, b in zip(before, _sites()))
    assert "forward" not in tv.ops.misc.Conv2dNormActivation.__dict__  # inherited again, not shadowed
    mn.compat.restore_torchvision()  # no-op
    with mn.compat.use_in_torchvision() as sw:
        assert sw is not None and mn.compat.is_active()
        with mn.compat.use_in_torchvision():  # nested: the outer block owns the switch
            pass
        assert mn.compat.is_active()
    assert all(a is b for a, b in zip(before, _sites()))


def test_ops_through_the_switch():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 20, 24, generator=g)
    xy = torch.rand(30, 2, generator=g) * 60
    b = torch.cat([xy, xy + torch.rand(30, 2, generator=g) * 30 + 1], 1)
    s = torch.rand(30, generator=g)
    rois = torch.cat([torch.randint(0, 2, (30, 1), generator=g).float(), b], 1)
    ref = (tv.ops.roi_align(x, rois, 3, 0.25, 2, True), tv.ops.roi_pool(x, rois, 3, 0.25),
           tv.ops.nms(b, s, 0.5), tv.ops.batched_nms(b, s, torch.arange(30) % 3, 0.5), tv.ops.box_iou(b, b),
           tv.ops.box_iou(b, b, fmt="cxcywh"))
    with mn.compat.use_in_torchvision():
        got = (tv.ops.roi_align(x, rois, 3, 0.25, 2, True), tv.ops.roi_pool(x, rois, 3, 0.25),
               tv.ops.nms(b, s, 0.5), tv.ops.batched_nms(b, s, torch.arange(30) % 3, 0.5), tv.ops.box_iou(b, b),
               tv.ops.box_iou(b, b, fmt="cxcywh"))
        assert torch.equal(got[0], mn.ops.roi_align(x, rois, 3, 0.25, 2, True))
        layer = tv.ops.RoIAlign(3, 0.25, 2, aligned=True)
        assert torch.equal(layer(x, rois), got[0])
        empty = tv.ops.batched_nms(torch.empty(0, 4), torch.empty(0), torch.empty(0, dtype=torch.int64), 0.5)
        assert empty.dtype == torch.int64 and empty.numel() == 0
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-5)
    for a, c in zip(ref[1:], got[1:]):
        torch.testing.assert_close(c, a, rtol=0, atol=0)


def test_paste_and_coder_bits_equal_torchvision():
    from torchvision.models.detection import _utils as du
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    g = torch.Generator().manual_seed(5)
    masks = torch.rand(20, 1, 28, 28, generator=g)
    xy = torch.rand(20, 2, generator=g) * 100 - 10
    boxes = torch.cat([xy, xy + torch.rand(20, 2, generator=g) * 80 + 1], 1)
    coder = du.BoxCoder((10.0, 10.0, 5.0, 5.0))
    codes = torch.randn(20, 8, generator=g)
    ref = (paste_masks_in_image(masks, boxes, (90, 110)), coder.decode_single(codes, boxes),
           coder.encode_single(boxes, boxes.flip(0) + 3))
    with mn.compat.use_in_torchvision():
        import torchvision.models.detection.roi_heads as rh

        got = (rh.paste_masks_in_image(masks, boxes, (90, 110)), coder.decode_single(codes, boxes),
               coder.encode_single(boxes, boxes.flip(0) + 3))
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-6, atol=1e-5)


def test_import_does_not_import_torchvision():
    code = ("import sys, maskrcnn_native as mn, maskrcnn_native.ops, maskrcnn_native.compat; "
            "assert 'torchvision' not in sys.modules, 'imported torchvision'; "
            "mn.compat.use_in_torchvision(); assert 'torchvision' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
