"""ShapesDataset: determinism, exact masks, occlusion, keypoints, COCO round trip."""

import pytest
import torch

from maskrcnn_native.data import CocoDataset, ShapesDataset, write_coco
from maskrcnn_native.data.shapes import SHAPE_CLASSES


def test_deterministic_per_seed_and_index():
    a = ShapesDataset(6, image_size=64, seed=3, keypoints=True)
    b = ShapesDataset(6, image_size=64, seed=3, keypoints=True)
    # access order does not matter: image i depends only on (seed, i)
    for i in [5, 0, 3]:
        ia, ta = a[i]
        ib, tb = b[i]
        assert torch.equal(ia, ib)
        for k in ("boxes", "labels", "masks", "keypoints"):
            assert torch.equal(ta[k], tb[k])
    other = ShapesDataset(6, image_size=64, seed=4)
    assert not torch.equal(a[0][0], other[0][0])
    assert not torch.equal(a[0][0], a[1][0])
    # keypoints on/off does not change the images
    assert torch.equal(ShapesDataset(6, image_size=64, seed=3)[2][0], a[2][0])


def test_independent_of_dataloader_workers():
    ds = ShapesDataset(4, image_size=48, seed=1)
    from maskrcnn_native.data import collate

    for workers in (0, 2):
        order = list(torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate, num_workers=workers))
        imgs = [im for batch in order for im in batch[0]]
        for i in range(4):
            assert torch.equal(imgs[i], ds[i][0])


def test_item_format_and_exact_masks():
    ds = ShapesDataset(12, image_size=(64, 80), seed=0, keypoints=True, classes=SHAPE_CLASSES)
    n_inst = 0
    for i in range(len(ds)):
        img, t = ds[i]
        assert img.shape == (3, 64, 80) and img.dtype == torch.float32
        K = len(t["labels"])
        n_inst += K
        assert t["image_id"] == i + 1 and t["orig_size"] == (64, 80)
        assert t["masks"].shape == (K, 64, 80) and t["masks"].dtype == torch.uint8
        assert t["keypoints"].shape == (K, 4, 3)
        assert ((t["labels"] >= 1) & (t["labels"] <= len(SHAPE_CLASSES))).all()
        # instance masks are disjoint (later shapes cover earlier ones)
        assert int(t["masks"].sum(0).max()) <= 1
        for k in range(K):
            m = t["masks"][k].bool()
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert t["boxes"][k].tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1,
                                              ys.max().item() + 1]
            assert t["area"][k] == m.sum()
            kp = t["keypoints"][k]
            assert ((kp[:, 2] == 1) | (kp[:, 2] == 2)).all()
            # top keypoint is above bottom, left is left of right
            assert kp[0, 1] < kp[2, 1] and kp[3, 0] < kp[1, 0]
    assert n_inst >= 12


def test_overlapping_instances_occur_and_stay_visible():
    ds = ShapesDataset(30, image_size=64, seed=7, min_shapes=4, max_shapes=6, size_range=(0.2, 0.3),
                       min_visible=0.6)
    touching = 0
    for i in range(len(ds)):
        _, t = ds[i]
        m = t["masks"].bool()
        assert len(m) >= 1 and (m.flatten(1).sum(1) >= 20).all()
        # a later shape covering an earlier one leaves the two masks adjacent
        grown = m.clone()
        grown[:, 1:] |= m[:, :-1]
        grown[:, :, 1:] |= m[:, :, :-1]
        for a in range(len(m)):
            for b in range(len(m)):
                if a != b and (grown[a] & m[b]).any():
                    touching += 1
    assert touching > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown shape class 'blob'"):
        ShapesDataset(1, classes=("circle", "blob"))
    with pytest.raises(ValueError, match="image_size must be >= 16"):
        ShapesDataset(1, image_size=8)
    with pytest.raises(ValueError, match="min_shapes <= max_shapes"):
        ShapesDataset(1, min_shapes=3, max_shapes=2)
    with pytest.raises(IndexError, match="out of range"):
        ShapesDataset(2)[2]


def test_metadata():
    ds = ShapesDataset(1, keypoints=True)
    assert ds.class_names == ["__background__", "circle", "square", "triangle"]
    assert ds.num_classes == 4
    assert ds.keypoint_flip_map == [0, 3, 2, 1]
    assert ds.keypoint_names[1] == "right" and ds.keypoint_names[3] == "left"
    assert all(ds.label_to_category_id[l] == c for c, l in ds.category_id_to_label.items())


def test_write_coco_round_trip(tmp_path):
    ds = ShapesDataset(5, image_size=48, seed=2, keypoints=True)
    image_dir, json_path = write_coco(ds, tmp_path / "shapes")
    back = CocoDataset(image_dir, json_path)
    assert len(back) == 5
    assert back.class_names == ds.class_names
    assert back.keypoint_flip_map == ds.keypoint_flip_map
    assert back.skeleton == ds.skeleton
    for i in range(5):
        ia, ta = ds[i]
        ib, tb = back[i]
        assert torch.equal(ia, ib)  # images are 8-bit quantised, PNG is lossless
        assert torch.equal(ta["masks"], tb["masks"])
        assert torch.equal(ta["labels"], tb["labels"])
        assert torch.allclose(ta["boxes"], tb["boxes"])
        assert torch.allclose(ta["keypoints"], tb["keypoints"], atol=1e-3)
        assert ta["image_id"] == tb["image_id"]
