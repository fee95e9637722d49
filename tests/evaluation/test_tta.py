"""Test-time augmentation: frames mapped back, flips undone (with keypoint flip map), merging."""

import pytest
import torch

from maskrcnn_native.evaluation import predict_tta
from maskrcnn_native.evaluation.tta import merge_detections


def _image(h=40, w=60):
    img = torch.zeros(3, h, w)
    img[:, 10:30, 8:28] = 1.0  # one bright square, left of centre
    return img


class _Finder:
    """Fake model: the bright region is the object; keypoints = its top-left and top-right corners
    (named "left" and "right", so a flip must swap them)."""

    def __init__(self):
        self.sizes = []

    def predict(self, images):
        out = []
        for im in images:
            self.sizes.append(tuple(im.shape[-2:]))
            m = im[0] > 0.5
            ys, xs = torch.nonzero(m, as_tuple=True)
            x1, y1, x2, y2 = xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1
            out.append({"boxes": torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32),
                        "scores": torch.tensor([0.9]), "labels": torch.tensor([1]), "masks": m[None],
                        "keypoints": torch.tensor([[[x1, y1, 1.0], [x2, y1, 1.0]]])})
        return out


def test_tta_maps_every_augmentation_back():
    model = _Finder()
    img = _image()
    (det,) = predict_tta(model, [img], scales=(20, 40, 80), flip=True, flip_map=[1, 0], max_size=None)
    # the model saw 3 scales x 2 flips, at the requested shorter sides
    assert sorted(s[0] for s in model.sizes) == [20, 20, 40, 40, 80, 80]
    assert len(det) == 1 and det.labels.tolist() == [1]
    assert torch.allclose(det.boxes[0], torch.tensor([8.0, 10.0, 28.0, 30.0]), atol=1.0)
    assert det.masks.shape == (1, 40, 60) and det.masks.dtype == torch.bool
    truth = _image()[0] > 0.5
    assert (det.masks[0] ^ truth).sum() <= 10
    # keypoint 0 stays the left corner after un-flipping with the flip map
    kp = det.keypoints[0]
    assert abs(kp[0, 0] - 8.0) <= 1.0 and abs(kp[1, 0] - 28.0) <= 1.0
    assert det.image_size == (40, 60)


def test_tta_wrong_flip_map_is_visible():
    (det,) = predict_tta(_Finder(), [_image()], scales=(40,), flip=True, flip_map=[0, 1], max_size=None)
    # without the swap, averaging the unflipped and flipped passes mixes left and right corners
    assert abs(det.keypoints[0, 0, 0] - 8.0) > 5.0


def test_tta_keypoints_need_flip_map():
    with pytest.raises(ValueError, match="pass flip_map"):
        predict_tta(_Finder(), [_image()], scales=(40,), flip=True)


class _WithSizes(_Finder):
    """A model that resizes internally and takes the size per call (as mn.Model)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def predict(self, images, min_size=None, max_size=None):
        self.seen.append((min_size, max_size))
        return super().predict(images)


def test_tta_passes_sizes_to_a_model_that_takes_them():
    model = _WithSizes()
    (det,) = predict_tta(model, [_image()], scales=(300, 500), flip=False, max_size=900)
    assert model.seen == [(300, 900), (500, 900)]
    assert model.sizes == [(40, 60), (40, 60)]  # the image itself was not resized
    assert torch.allclose(det.boxes[0], torch.tensor([8.0, 10.0, 28.0, 30.0]))


def test_tta_leaves_the_model_unchanged():
    import maskrcnn_native as mn

    model = mn.Model("R18-FPN", num_classes=3, min_size=64, max_size=96, fpn_channels=32, box_head_dim=64).eval()
    before = (model.preprocess.min_size, model.preprocess.max_size)
    (det,) = predict_tta(model, [_image()], scales=(48, 80), flip=True)
    assert (model.preprocess.min_size, model.preprocess.max_size) == before
    assert det.image_size == (40, 60) and det.masks is not None and det.masks.shape[-2:] == (40, 60)


def test_merge_votes_masks_and_keeps_classes_apart():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 11.0], [1.0, 0.0, 10.0, 10.0],
                          [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([1, 1, 1, 2])
    masks = torch.zeros(4, 4, 4, dtype=torch.uint8)
    masks[0, 0, :] = 1          # row 0 in candidate 0
    masks[1, 0, :2] = 1         # row 0 (left half) in 1
    masks[1, 1, :] = 1          # row 1 only in 1
    masks[2, 0, :2] = 1
    masks[3, 3, :] = 1          # other class
    kps = torch.tensor([[[0.0, 0.0, 1.0]], [[3.0, 0.0, 2.0]], [[6.0, 0.0, 1.0]], [[50.0, 50.0, 1.0]]])
    out = merge_detections(boxes, scores, labels, masks, kps, nms_threshold=0.5, match_iou=0.5)
    assert out.labels.tolist() == [1, 2]
    assert out.scores.tolist() == pytest.approx([0.9, 0.6])
    m = out.masks[0]
    # pixel in all 3 -> kept; in 1 of 3 -> dropped; row 0 right half in 1 of 3 -> dropped
    assert m[0, :2].all() and not m[0, 2:].any() and not m[1].any()
    assert out.masks[1][3].all() and out.masks[1].sum() == 4
    assert out.keypoints[0, 0].tolist() == pytest.approx([3.0, 0.0, 2.0])
    assert out.keypoints[1, 0, :2].tolist() == [50.0, 50.0]


def test_merge_empty():
    out = merge_detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                           torch.zeros(0, 5, 6), None)
    assert out.boxes.shape == (0, 4) and out.masks.shape == (0, 5, 6)
