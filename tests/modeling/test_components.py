"""Per-component tests on hand-built cases (no torchvision needed)."""

import math

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.modeling.backbone import FrozenBatchNorm2d, conv_bn
from maskrcnn_native.modeling.box_coder import BoxCoder
from maskrcnn_native.modeling.config import PRESETS, ModelConfig, build_config
from maskrcnn_native.modeling.matcher import Matcher
from maskrcnn_native.modeling.proposal_generator import AnchorGenerator
from maskrcnn_native.modeling.roi_heads import (KeypointHead, MaskHeadFCN, MaskHeadMLP, MultiScalePooler,
                                                 assign_levels, heatmaps_to_keypoints, keypoint_targets,
                                                 mask_targets)
from maskrcnn_native.modeling.sampler import BalancedSampler


# ----------------------------------------------------------------- matcher
def test_matcher_thresholds_and_low_quality():
    # 2 GT x 5 predictions
    iou = torch.tensor([[0.9, 0.5, 0.1, 0.2, 0.0],
                        [0.1, 0.6, 0.25, 0.65, 0.0]])
    m = Matcher(0.7, 0.3, allow_low_quality_matches=False)(iou)
    assert m.tolist() == [0, -2, -1, -2, -1]
    m = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    # GT 1's best prediction (index 3, IoU 0.65) becomes positive
    assert m.tolist() == [0, -2, -1, 1, -1]


def test_matcher_low_quality_keeps_ties_and_uses_best_gt():
    iou = torch.tensor([[0.4, 0.4, 0.1],
                        [0.5, 0.2, 0.1]])
    m = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    # pred 0 is GT1's best (0.5) and GT0's best (tie with pred 1): matched to its own argmax (GT1)
    # pred 1 is tied best of GT0 -> GT0
    assert m.tolist() == [1, 0, -1]


def test_matcher_no_gt():
    m = Matcher(0.5, 0.5)(torch.zeros((0, 4)))
    assert m.tolist() == [-1, -1, -1, -1]


# ----------------------------------------------------------------- sampler
def test_sampler_ratio_and_limits():
    torch.manual_seed(0)
    labels = torch.cat([torch.ones(300, dtype=torch.int64) * 2, torch.zeros(1000, dtype=torch.int64),
                        -torch.ones(50, dtype=torch.int64)])
    pos, neg = BalancedSampler(256, 0.5)([labels])
    assert int(pos[0].sum()) == 128 and int(neg[0].sum()) == 128
    assert bool((labels[pos[0]] >= 1).all()) and bool((labels[neg[0]] == 0).all())
    # few positives: negatives fill up to the batch size
    labels = torch.cat([torch.ones(10, dtype=torch.int64), torch.zeros(1000, dtype=torch.int64)])
    pos, neg = BalancedSampler(512, 0.25)([labels])
    assert int(pos[0].sum()) == 10 and int(neg[0].sum()) == 502
    # ignored (-1) are never sampled
    labels = -torch.ones(20, dtype=torch.int64)
    pos, neg = BalancedSampler(8, 0.5)([labels])
    assert not pos[0].any() and not neg[0].any()


# ----------------------------------------------------------------- box coding
def test_box_coder_round_trip_and_known_values():
    bc = BoxCoder((10.0, 10.0, 5.0, 5.0))
    props = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 15.0, 9.0]])
    gt = torch.tensor([[1.0, 2.0, 11.0, 22.0], [4.0, 4.0, 24.0, 12.0]])
    codes = bc.encode(gt, props)
    # by hand: box 0 centre moves (1, 2), same size -> dx = 10*1/10, dy = 10*2/20
    torch.testing.assert_close(codes[0], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(codes[1, 2:], torch.tensor([5 * math.log(2.0), 5 * math.log(2.0)]))
    dec = bc.decode(codes, props)
    assert dec.shape == (2, 1, 4)
    torch.testing.assert_close(dec[:, 0], gt, rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------- level mapping
def test_fpn_level_mapping():
    # k = floor(4 + log2(sqrt(wh) / 224)) clamped to [2, 5], relative to k_min = 2
    sides = [10, 56, 111, 112, 223, 224, 447, 448, 1000]
    boxes = torch.tensor([[0.0, 0.0, s, s] for s in sides])
    lv = assign_levels(boxes, 2, 5)
    expect = [min(max(math.floor(4 + math.log2(s / 224) + 1e-6), 2), 5) - 2 for s in sides]
    assert lv.tolist() == expect
    assert lv.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]


def test_pooler_routes_boxes_to_their_level():
    feats = [torch.full((1, 2, 64 // s, 64 // s), float(i)) for i, s in enumerate((4, 8, 16, 32))]
    pooler = MultiScalePooler(7, (4, 8, 16, 32), 2)
    boxes = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 60.0, 60.0]])]
    out = pooler(feats, boxes)
    assert out.shape == (2, 2, 7, 7)
    assert torch.all(out[0] == 0.0) and torch.all(out[1] == 0.0)  # both small boxes -> P2
    feats = [torch.full((1, 2, 1024 // s, 1024 // s), float(i)) for i, s in enumerate((4, 8, 16, 32))]
    boxes = [torch.tensor([[0.0, 0.0, 230.0, 230.0], [0.0, 0.0, 900.0, 900.0]])]
    out = pooler(feats, boxes)
    torch.testing.assert_close(out[0], torch.full((2, 7, 7), 2.0))
    torch.testing.assert_close(out[1], torch.full((2, 7, 7), 3.0))


# ----------------------------------------------------------------- anchors
def test_anchor_generator_layout():
    ag = AnchorGenerator(((32,),), (0.5, 1.0, 2.0))
    a = ag((64, 96), [(2, 3)])[0]
    assert a.shape == (2 * 3 * 3, 4)
    # location-major: the first 3 anchors share the centre (0, 0), the next 3 are shifted by stride 32 in x
    centres = (a[:, :2] + a[:, 2:]) / 2
    torch.testing.assert_close(centres[:3], torch.zeros(3, 2))
    torch.testing.assert_close(centres[3:6], torch.tensor([[32.0, 0.0]] * 3))
    torch.testing.assert_close(centres[9:12], torch.tensor([[0.0, 32.0]] * 3))
    # area ~ 32^2 for every ratio, h/w = ratio
    wh = a[:3, 2:] - a[:3, :2]
    assert torch.allclose(wh[:, 1] / wh[:, 0], torch.tensor([0.5, 1.0, 2.0]), atol=0.1)


# ----------------------------------------------------------------- mask targets
def test_mask_targets_use_roialign_on_gt_masks():
    gt = torch.zeros((1, 32, 32), dtype=torch.uint8)
    gt[0, 8:24, 8:16] = 1  # left half of the box [8, 8, 24, 24] is foreground
    t = mask_targets(gt, torch.tensor([[8.0, 8.0, 24.0, 24.0]]), torch.tensor([0]), 4)
    assert t.shape == (1, 4, 4)
    # torchvision's (aligned=False) RoIAlign: 4 samples per bin at x = 8.5, 9.5, ...; pixel values
    # sit at integer coordinates, so the sample at 15.5 is half foreground: bin mean 3.5 / 4
    rows = torch.tensor([1.0, 1.0, 1.0, 0.875])
    cols = torch.tensor([1.0, 0.875, 0.0, 0.0])
    torch.testing.assert_close(t[0], rows[:, None] * cols[None, :])
    # a box not on pixel boundaries gives fractional (resampled) targets, not a quantised crop
    t = mask_targets(gt, torch.tensor([[10.5, 8.0, 18.5, 16.0]]), torch.tensor([0]), 4)
    assert 0 < float(t[0, 0, 2]) < 1


def test_keypoint_targets_discretisation():
    rois = torch.tensor([[0.0, 0.0, 56.0, 56.0]])
    kps = torch.tensor([[[10.2, 20.9, 2.0], [56.0, 56.0, 1.0], [30.0, 30.0, 0.0], [-1.0, 5.0, 2.0]]])
    hm, valid = keypoint_targets(kps, rois, 56)
    assert valid.tolist() == [[True, True, False, False]]
    assert hm[0, 0].item() == 20 * 56 + 10
    assert hm[0, 1].item() == 55 * 56 + 55  # right/bottom edge maps to the last cell


def test_heatmaps_to_keypoints_peak():
    maps = torch.zeros((1, 2, 56, 56))
    maps[0, 0, 10, 40] = 10.0
    maps[0, 1, 50, 3] = 10.0
    xy, sc = heatmaps_to_keypoints(maps, torch.tensor([[100.0, 200.0, 156.0, 256.0]]))
    # box is 56 px: heatmap cell (i) -> pixel i + 0.5 + offset
    torch.testing.assert_close(xy[0, :, :2], torch.tensor([[140.5, 210.5], [103.5, 250.5]]), atol=1.01, rtol=0)
    assert sc.shape == (1, 2)


# ----------------------------------------------------------------- heads
def test_head_shapes():
    x = torch.randn(3, 256, 14, 14)
    assert MaskHeadFCN(256, 5)(x).shape == (3, 5, 28, 28)
    assert MaskHeadFCN(256, 1)(x).shape == (3, 1, 28, 28)
    assert MaskHeadMLP(256 * 14 * 14, 4, 28, dim=64)(x).shape == (3, 4, 28, 28)
    assert KeypointHead(256, 17, dim=32)(x).shape == (3, 17, 56, 56)
    assert MaskHeadFCN(2048, 5, num_convs=0)(torch.randn(2, 2048, 7, 7)).shape == (2, 5, 14, 14)


# ----------------------------------------------------------------- frozen BN folding
def test_conv_bn_fold_equals_conv_then_bn():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    bn = FrozenBatchNorm2d(6)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3)
    x = torch.randn(2, 4, 9, 9)
    ref = bn(conv(x))
    with torch.no_grad():
        torch.testing.assert_close(conv_bn(x, conv, bn), ref, rtol=1e-5, atol=1e-5)
        # the cache follows in-place parameter changes
        bn.running_var.mul_(4)
        torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)), rtol=1e-5, atol=1e-5)
    out = conv_bn(x, conv, bn)  # training path: differentiable w.r.t. the conv weight
    out.sum().backward()
    assert conv.weight.grad is not None


# ----------------------------------------------------------------- config
def test_config_presets_and_errors():
    assert set(PRESETS) >= {"R18-FPN", "R50-FPN", "R101-FPN", "X101-FPN", "R50-C4", "R101-C4",
                            "R50-FPN-KP", "R50-C4-KP"}
    cfg = build_config("R50-C4", num_classes=3)
    assert cfg.arch == "c4" and cfg.rpn_post_nms_top_n_test == 300 and cfg.box_batch_size_per_image == 64
    assert build_config("R50-FPN").rpn_post_nms_top_n_train == 2000
    with pytest.raises(ValueError, match="unknown preset"):
        build_config("R51-FPN")
    with pytest.raises(TypeError, match="unknown ModelConfig fields"):
        build_config("R50-FPN", nms_thresh=0.3)
    with pytest.raises(ValueError, match="pooler"):
        ModelConfig(pooler="roi_magic")
    with pytest.raises(ValueError, match="pretrained_backbone"):
        ModelConfig(pretrained_backbone=True)
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(num_classes=1)
    with pytest.raises(dataclasses_error()):
        cfg.num_classes = 4
    assert ModelConfig.from_dict(__import__("json").loads(cfg.to_json())) == cfg


def dataclasses_error():
    import dataclasses

    return dataclasses.FrozenInstanceError
