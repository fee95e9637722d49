"""Transforms: resize, scale jitter, horizontal flip with keypoint flip map, collate."""

import pytest
import torch

from maskrcnn_native.data import (
    Compose,
    RandomHorizontalFlip,
    ResizeShortestSide,
    ScaleJitter,
    ShapesDataset,
    build_transforms,
    collate,
    hflip,
    resize,
)
from maskrcnn_native.data.transforms import resized_shape


def _sample(h=20, w=30):
    img = torch.rand(3, h, w)
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 2:6, 3:9] = 1
    masks[1, 10:18, 20:28] = 1
    t = {
        "boxes": torch.tensor([[3.0, 2.0, 9.0, 6.0], [20.0, 10.0, 28.0, 18.0]]),
        "labels": torch.tensor([1, 2]),
        "masks": masks,
        "area": masks.flatten(1).sum(1).float(),
        "keypoints": torch.tensor([[[4.0, 3.0, 2.0], [8.0, 3.0, 1.0], [5.0, 5.0, 0.0]],
                                   [[21.0, 11.0, 2.0], [27.0, 11.0, 2.0], [24.0, 17.0, 2.0]]]),
        "crowd_boxes": torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        "image_id": 1,
        "orig_size": (h, w),
        "size": (h, w),
    }
    return img, t


def test_hflip_boxes_masks_image():
    img, t = _sample()
    before = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in t.items()}
    out, ft = hflip(img, t, flip_map=[0, 1, 2])
    assert torch.equal(out, img.flip(-1))
    assert ft["boxes"].tolist() == [[21.0, 2.0, 27.0, 6.0], [2.0, 10.0, 10.0, 18.0]]
    assert ft["crowd_boxes"].tolist() == [[28.0, 0.0, 30.0, 2.0]]
    assert torch.equal(ft["masks"], t["masks"].flip(-1))
    # boxes still enclose the flipped masks exactly
    ys, xs = torch.nonzero(ft["masks"][0], as_tuple=True)
    assert [xs.min().item(), xs.max().item() + 1] == ft["boxes"][0, [0, 2]].tolist()
    # inputs untouched
    for k, v in before.items():
        assert (torch.equal(v, t[k]) if torch.is_tensor(v) else v == t[k])
    # flipping twice is the identity
    back_img, back = hflip(out, ft, flip_map=[0, 1, 2])
    assert torch.equal(back_img, img) and torch.equal(back["boxes"], t["boxes"])
    assert torch.equal(back["keypoints"], torch.where(t["keypoints"][..., 2:] > 0, t["keypoints"], 0.0))


def test_hflip_keypoints_swap_with_flip_map():
    img, t = _sample()
    _, ft = hflip(img, t, flip_map=[1, 0, 2])  # keypoints 0 and 1 are a left/right pair
    kp = ft["keypoints"]
    W = 30
    # old keypoint 0 (x=4, v=2) is now keypoint 1 at W - 4
    assert kp[0, 1].tolist() == [W - 4.0, 3.0, 2.0]
    assert kp[0, 0].tolist() == [W - 8.0, 3.0, 1.0]
    assert kp[0, 2].tolist() == [0.0, 0.0, 0.0]  # invisible stays zero
    assert kp[1, 2].tolist() == [W - 24.0, 17.0, 2.0]


def test_hflip_keypoint_errors():
    img, t = _sample()
    with pytest.raises(ValueError, match="no flip_map was given"):
        hflip(img, t)
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        hflip(img, t, flip_map=[0, 0, 1])


def test_shapes_flip_swaps_left_and_right():
    ds = ShapesDataset(3, image_size=64, seed=0, keypoints=True)
    img, t = ds[0]
    _, ft = hflip(img, t, ds.keypoint_flip_map)
    # after the flip, the "left" keypoint is still left of the "right" one
    assert (ft["keypoints"][:, 3, 0] < ft["keypoints"][:, 1, 0]).all()
    assert torch.allclose(ft["keypoints"][:, 3, 0], 64 - t["keypoints"][:, 1, 0])


def test_resize_scales_everything():
    img, t = _sample(20, 30)
    out, rt = resize(img, t, (40, 45))
    assert out.shape == (3, 40, 45)
    assert torch.allclose(rt["boxes"][0], torch.tensor([3 * 1.5, 2 * 2.0, 9 * 1.5, 6 * 2.0]))
    assert rt["masks"].shape == (2, 40, 45) and rt["masks"].dtype == torch.uint8
    assert rt["size"] == (40, 45) and rt["orig_size"] == (20, 30)
    assert torch.allclose(rt["keypoints"][1, 1, :2], torch.tensor([27 * 1.5, 11 * 2.0]))
    assert rt["area"][0] == rt["masks"][0].sum()


def test_resize_shortest_side_and_max_size():
    assert resized_shape(100, 200, 50, None) == (50, 100)
    assert resized_shape(100, 400, 50, 150) == (38, 150)
    img, t = _sample(20, 30)
    out, rt = ResizeShortestSide(40, max_size=1000)(img, t)
    assert out.shape[-2:] == (40, 60)
    out, _ = ResizeShortestSide(40, max_size=45)(img, t)
    assert out.shape[-2:] == (30, 45)


def test_scale_jitter_samples_range_reproducibly():
    img, t = _sample(20, 30)
    g = torch.Generator().manual_seed(0)
    tr = ScaleJitter(24, 32, max_size=None, generator=g)
    shorts = {tr(img, t)[0].shape[-2] for _ in range(60)}
    assert shorts <= set(range(24, 33)) and len(shorts) >= 5
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = [ScaleJitter(24, 32, None, generator=g1).sample_short() for _ in range(10)]
    b = [ScaleJitter(24, 32, None, generator=g2).sample_short() for _ in range(10)]
    assert a == b
    with pytest.raises(ValueError, match="sampling='range' needs \\(low, high\\)"):
        ResizeShortestSide((5, 1), sampling="range")
    with pytest.raises(ValueError, match="sizes must be positive"):
        ResizeShortestSide(0)


def test_random_flip_probability_and_generator():
    img, t = _sample()
    g = torch.Generator().manual_seed(1)
    flips = sum(torch.equal(RandomHorizontalFlip(0.5, [0, 1, 2], generator=g)(img, t)[0], img.flip(-1))
                for _ in range(200))
    assert 60 < flips < 140
    assert torch.equal(RandomHorizontalFlip(0.0)(img, t)[0], img)
    assert torch.equal(RandomHorizontalFlip(1.0, [0, 1, 2])(img, t)[0], img.flip(-1))
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\]"):
        RandomHorizontalFlip(1.5)


def test_build_transforms_and_collate():
    ds = ShapesDataset(4, image_size=64, seed=0, keypoints=True,
                       transforms=build_transforms(True, min_size=(80, 96), max_size=200,
                                                   flip_map=[0, 3, 2, 1]))
    images, targets = collate([ds[i] for i in range(4)])
    assert len(images) == 4 and len(targets) == 4
    for im, t in zip(images, targets):
        assert im.shape[-2] in (80, 96) and t["size"] == tuple(im.shape[-2:])
        assert t["masks"].shape[-2:] == im.shape[-2:]
    test_tr = build_transforms(False, min_size=(80, 96), max_size=200)
    assert test_tr(torch.rand(3, 64, 64))[0].shape[-2:] == (96, 96)
    assert isinstance(test_tr, Compose)
