"""Answer-for-answer parity with torchvision's Mask R-CNN / Keypoint R-CNN.

torchvision builds the reference models with seeded random weights (frozen BN
statistics and affine randomised too), score threshold 0, three images of
different sizes run as one padded batch. ``Model.from_torchvision`` +
``predict(paste="torchvision")`` must give the same detections: >= 99 % of
the 100 per image matched one to one (same label, box IoU >= 0.999), mask IoU
>= 0.99 on every match, keypoints within 0.5 px.

Tie-breaking: torchvision's NMS sorts scores with an unstable sort, so when
many scores are exactly equal (saturated sigmoid objectness) the two
implementations may legitimately keep different boxes. ``randomize_`` keeps
objectness logits to a few units so float32 scores are distinct; everything
else (features, anchors, top-k, NMS, decoding, paste) must agree.
"""

import pytest
import torch

tvd = pytest.importorskip("torchvision.models.detection")

import maskrcnn_native as mn  # noqa: E402

from .tv_helpers import make_images, mask_iou, match_detections, randomize_  # noqa: E402

SIZES = [(240, 320), (300, 420), (352, 288)]
KW = dict(min_size=320, max_size=512)


def _check_boxes(ref, dets, min_fraction=0.99, expected=100):
    stats = []
    for r, d in zip(ref, dets):
        n = r["boxes"].shape[0]
        assert n == expected, f"the reference should return {expected} detections at score threshold 0"
        assert len(d) == n
        pairs = match_detections(r["boxes"], r["labels"], d.boxes, d.labels)
        assert len(pairs) >= min_fraction * n, f"only {len(pairs)}/{n} detections matched"
        i, j = zip(*pairs)
        torch.testing.assert_close(d.scores[list(j)], r["scores"][list(i)], rtol=1e-4, atol=1e-5)
        stats.append((pairs, len(pairs) / n))
    return stats


@pytest.fixture(scope="module")
def mask_pair():
    torch.manual_seed(0)
    tv = tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0, **KW)
    randomize_(tv, seed=1).eval()
    imgs = make_images(SIZES, seed=2)
    with torch.inference_mode():
        ref = tv(imgs)
    model = mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0, **KW)
    return tv, model, imgs, ref


def test_maskrcnn_parity(mask_pair):
    tv, model, imgs, ref = mask_pair
    dets = model.predict(imgs, batch_size=3, paste="torchvision")
    stats = _check_boxes(ref, dets)
    ious = []
    for (pairs, _), r, d in zip(stats, ref, dets):
        assert d.masks.dtype == torch.bool and d.masks.shape[1:] == r["masks"].shape[2:]
        for i, j in pairs:
            ious.append(mask_iou(r["masks"][i, 0] > 0.5, d.masks[j]))
    print(f"\nmask parity: matched {[round(f * 100, 1) for _, f in stats]} %, min mask IoU {min(ious):.4f}")
    assert min(ious) >= 0.99, f"min mask IoU {min(ious):.4f}"
    # the masks are not trivially empty or full
    assert 0 < sum(int(d.masks.sum()) for d in dets) < sum(d.masks.numel() for d in dets)


def test_maskrcnn_parity_single_image_batches(mask_pair):
    """batch_size=1 pads each image alone; torchvision run per image agrees."""
    tv, model, imgs, _ = mask_pair
    with torch.inference_mode():
        ref = [tv([imgs[0]])[0]]
    dets = model.predict([imgs[0]], batch_size=1, paste="torchvision")
    _check_boxes(ref, dets)


def test_parity_detects_a_perturbation(mask_pair):
    """The check above can fail: a slightly perturbed model is rejected."""
    tv, model, imgs, ref = mask_pair
    bad = mn.Model.from_torchvision(tv.state_dict(), score_threshold=0.0, **KW)
    with torch.no_grad():
        bad.roi_heads.box_predictor.bbox_pred.bias.add_(0.5)
    dets = bad.predict([imgs[0]], paste="torchvision")
    with pytest.raises(AssertionError):
        _check_boxes(ref[:1], dets)


# The keypoint head (8 x conv3x3 512 on 14x14) costs ~3.7 GMAC per detection;
# the 100 detections per image take a few seconds on the project machine.
KP_DETS = 100


@pytest.fixture(scope="module")
def kp_pair():
    torch.manual_seed(0)
    tv = tvd.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                       box_detections_per_img=KP_DETS, min_size=320, max_size=512)
    randomize_(tv, seed=3).eval()
    imgs = make_images(SIZES, seed=4)
    with torch.inference_mode():
        ref = tv(imgs)
    model = mn.Model.from_torchvision(tv.state_dict(), arch="keypointrcnn_resnet50_fpn", score_threshold=0.0,
                                      detections_per_image=KP_DETS, min_size=320, max_size=512)
    return tv, model, imgs, ref


def test_keypointrcnn_parity(kp_pair):
    tv, model, imgs, ref = kp_pair
    assert model.config.keypoints and not model.config.masks and model.config.num_classes == 2
    dets = model.predict(imgs, batch_size=3)
    stats = _check_boxes(ref, dets, expected=KP_DETS)
    errs = []
    for (pairs, _), r, d in zip(stats, ref, dets):
        assert d.keypoints.shape == (len(d), 17, 3)
        i, j = map(list, zip(*pairs))
        errs.append((d.keypoints[j, :, :2] - r["keypoints"][i, :, :2]).abs().max())
    err = max(errs).item()
    print(f"\nkeypoint parity: matched {[round(f * 100, 1) for _, f in stats]} %, max keypoint error {err:.4f} px")
    assert err <= 0.5, f"keypoint max abs error {err:.3f} px"
