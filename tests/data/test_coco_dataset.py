"""CocoDataset: formats, errors, EXIF, colour modes, crowd, empty images, categories."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from maskrcnn_native.data import (
    CocoDataset,
    InvalidAnnotationError,
    UnreadableImageError,
    flip_map_from_names,
    load_image,
)

H, W = 24, 32


def _save_rgb(path, h=H, w=W, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(path)
    return arr


def _rect_mask(x0, y0, x1, y1, h=H, w=W):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _write(tmp_path, data, name="ann.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def _base(tmp_path, n_images=1):
    images = []
    for i in range(n_images):
        _save_rgb(tmp_path / f"im{i}.png", seed=i)
        images.append({"id": 10 + i, "file_name": f"im{i}.png", "height": H, "width": W})
    cats = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 42, "name": "bird"}]
    return {"images": images, "annotations": [], "categories": cats}


def test_polygon_rle_uncompressed_and_compressed(tmp_path):
    data = _base(tmp_path)
    m_unc = _rect_mask(10, 2, 20, 8)
    m_cmp = _rect_mask(1, 12, 9, 22)
    unc = mask_utils.encode(np.asfortranarray(m_unc))
    # uncompressed RLE: column-major run lengths starting with zeros
    flat = m_unc.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    cmp_ = mask_utils.encode(np.asfortranarray(m_cmp))
    data["annotations"] = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 2, 4, 4], "iscrowd": 0,
         "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [10, 2, 10, 6], "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": runs}},
        {"id": 3, "image_id": 10, "category_id": 42, "bbox": [1, 12, 8, 10], "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": cmp_["counts"].decode("ascii")}},
    ]
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    img, t = ds[0]
    assert img.shape == (3, H, W) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert t["image_id"] == 10 and t["orig_size"] == (H, W)
    assert t["masks"].shape == (3, H, W) and t["masks"].dtype == torch.uint8
    poly = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([[2, 2, 6, 2, 6, 6, 2, 6]], H, W)))
    assert np.array_equal(t["masks"][0].numpy(), poly)
    assert np.array_equal(t["masks"][1].numpy(), m_unc)
    assert np.array_equal(t["masks"][2].numpy(), m_cmp)
    # labels: category ids sorted (3, 7, 42) -> 1, 2, 3
    assert t["labels"].tolist() == [2, 1, 3]
    assert torch.allclose(t["boxes"][1], torch.tensor([10.0, 2.0, 20.0, 8.0]))
    assert t["area"].tolist() == [float(poly.sum()), float(m_unc.sum()), float(m_cmp.sum())]


def test_category_mapping_round_trip(tmp_path):
    data = _base(tmp_path)
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    assert ds.category_id_to_label == {3: 1, 7: 2, 42: 3}
    assert ds.class_names == ["__background__", "dog", "cat", "bird"]
    assert ds.num_classes == 4
    for cid, label in ds.category_id_to_label.items():
        assert ds.label_to_category_id[label] == cid


def test_crowd_excluded_from_training_but_kept_for_eval(tmp_path):
    data = _base(tmp_path)
    crowd_rle = mask_utils.encode(np.asfortranarray(_rect_mask(0, 0, 8, 8)))
    data["annotations"] = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [10, 10, 5, 5], "iscrowd": 0,
         "segmentation": [[10, 10, 15, 10, 15, 15, 10, 15]]},
        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [0, 0, 8, 8], "iscrowd": 1,
         "segmentation": {"size": [H, W], "counts": crowd_rle["counts"].decode("ascii")}},
    ]
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    _, t = ds[0]
    assert len(t["labels"]) == 1 and t["masks"].shape[0] == 1
    assert t["iscrowd"].tolist() == [0]
    assert t["crowd_boxes"].tolist() == [[0.0, 0.0, 8.0, 8.0]]
    gt = ds.to_coco_api()
    assert {a["id"]: a["iscrowd"] for a in gt.loadAnns(gt.getAnnIds(imgIds=[10]))} == {1: 0, 2: 1}


def test_image_without_annotations(tmp_path):
    data = _base(tmp_path, n_images=2)
    data["annotations"] = [{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 4, 4],
                            "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]], "iscrowd": 0}]
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    assert len(ds) == 2
    _, t = ds[1]
    assert t["image_id"] == 11
    assert t["boxes"].shape == (0, 4) and t["labels"].shape == (0,)
    assert t["masks"].shape == (0, H, W)


def test_degenerate_geometry_dropped_and_counted(tmp_path):
    data = _base(tmp_path)
    data["annotations"] = [
        {"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 0, 4], "iscrowd": 0,
         "segmentation": [[1, 1, 1, 5, 1, 3]]},  # zero-area box
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [1, 1, 4, 4], "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1]]},  # polygon with 2 points
        {"id": 3, "image_id": 10, "category_id": 3, "bbox": [1, 1, 4, 4], "iscrowd": 0,
         "segmentation": [[1, 1, 3, 3, 5, 5]]},  # collinear: zero area
        {"id": 4, "image_id": 10, "category_id": 3, "bbox": [8, 8, 4, 4], "iscrowd": 0,
         "segmentation": [[8, 8, 12, 8, 12, 12, 8, 12], [1, 1, 2, 2]]},  # one usable part
    ]
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    _, t = ds[0]
    assert len(t["labels"]) == 1
    assert t["boxes"].tolist() == [[8.0, 8.0, 12.0, 12.0]]
    assert ds.skipped["degenerate_boxes"] == 1
    assert ds.skipped["degenerate_polygons"] == 2


@pytest.mark.parametrize(
    "ann, message",
    [
        ({"bbox": [1, 2, 3]}, "bbox must be 4 finite numbers"),
        ({"bbox": [1, 2, float("nan"), 3]}, "bbox must be 4 finite numbers"),
        ({"category_id": 999}, "unknown category_id 999"),
        ({"segmentation": "oops"}, "segmentation must be a polygon list or an RLE dict"),
        ({"segmentation": [[1, 2, 3]]}, "odd number of coordinates"),
        ({"segmentation": {"counts": [1, 2]}}, "needs 'size'"),
        ({"segmentation": {"counts": [1, 2], "size": [5, 5]}}, "does not match the image size"),
    ],
)
def test_malformed_annotation_raises_naming_file_and_id(tmp_path, ann, message):
    data = _base(tmp_path)
    a = {"id": 77, "image_id": 10, "category_id": 3, "bbox": [1, 1, 4, 4], "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}
    a.update(ann)
    data["annotations"] = [a]
    path = _write(tmp_path, data)
    with pytest.raises(InvalidAnnotationError, match=message) as ei:
        CocoDataset(tmp_path, path)
    assert "annotation id 77" in str(ei.value) and path in str(ei.value)
    assert isinstance(ei.value, ValueError)
    # with skip_invalid the annotation is dropped and counted
    ds = CocoDataset(tmp_path, path, skip_invalid=True)
    assert ds.skipped["invalid_annotations"] == 1
    assert len(ds[0][1]["labels"]) == 0
    assert ds.to_coco_api().getAnnIds() == []  # nor is it in the evaluation ground truth


def test_annotation_for_unknown_image(tmp_path):
    data = _base(tmp_path)
    data["annotations"] = [{"id": 5, "image_id": 999, "category_id": 3, "bbox": [1, 1, 4, 4]}]
    with pytest.raises(InvalidAnnotationError, match="annotation id 5 .*image id not in 'images'"):
        CocoDataset(tmp_path, _write(tmp_path, data))


def test_not_a_coco_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(InvalidAnnotationError, match="not valid JSON"):
        CocoDataset(tmp_path, str(p))
    p.write_text(json.dumps([1, 2]))
    with pytest.raises(InvalidAnnotationError, match="'images' list"):
        CocoDataset(tmp_path, str(p))


def test_unreadable_image_raises_or_is_skipped(tmp_path):
    data = _base(tmp_path, n_images=2)
    (tmp_path / "im0.png").write_bytes(b"this is not a png")
    path = _write(tmp_path, data)
    ds = CocoDataset(tmp_path, path)
    with pytest.raises(UnreadableImageError, match=r"im0\.png.*image id 10") as ei:
        ds[0]
    assert isinstance(ei.value, OSError)
    ds = CocoDataset(tmp_path, path, skip_invalid=True)
    with pytest.warns(UserWarning, match="im0.png"):
        _, t = ds[0]
    assert t["image_id"] == 11  # substituted by the next readable image
    assert ds.skipped["unreadable_images"] == 1


def test_missing_image(tmp_path):
    data = _base(tmp_path, n_images=2)
    (tmp_path / "im1.png").unlink()
    path = _write(tmp_path, data)
    with pytest.raises(UnreadableImageError, match=r"not found: .*im1\.png"):
        CocoDataset(tmp_path, path)[1]
    ds = CocoDataset(tmp_path, path, skip_invalid=True)
    assert len(ds) == 1 and ds.skipped["missing_images"] == 1


def test_size_mismatch_is_an_error(tmp_path):
    data = _base(tmp_path)
    data["images"][0]["height"] = H + 1
    with pytest.raises(UnreadableImageError, match="annotation file says"):
        CocoDataset(tmp_path, _write(tmp_path, data))[0]


def test_exif_orientation_applied(tmp_path):
    # stored 4 wide x 2 tall; orientation 6 = display rotated 90 degrees clockwise
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = (255, 0, 0)  # top-left red
    im = Image.fromarray(arr, "RGB")
    exif = im.getexif()
    exif[0x0112] = 6
    p = tmp_path / "rot.png"
    im.save(p, exif=exif)
    out = load_image(str(p))
    assert out.size == (2, 4)  # (w, h) after rotation
    a = np.asarray(out)
    assert tuple(a[0, 1]) == (255, 0, 0)  # the old top-left is now top-right
    assert a[0, 0].sum() == 0
    data = {"images": [{"id": 1, "file_name": "rot.png", "height": 4, "width": 2}],
            "annotations": [], "categories": [{"id": 1, "name": "x"}]}
    img, _ = CocoDataset(tmp_path, _write(tmp_path, data))[0]
    assert img.shape == (3, 4, 2) and float(img[0, 0, 1]) == 1.0


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "1"])
def test_colour_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5, "L")
    if mode == "I;16":
        im = Image.fromarray(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000)
    else:
        im = base.convert(mode)
    p = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    im.save(p)
    out = load_image(str(p))
    assert out.mode == "RGB" and out.size == (8, 6)
    a = np.asarray(out).astype(int)
    if mode in ("L", "RGBA", "P"):
        # grey values survive in all three channels
        assert np.array_equal(a[..., 0], np.asarray(base)) and np.array_equal(a[..., 0], a[..., 2])
    if mode == "I;16":
        assert a[0, 0, 0] == 0 and abs(a[-1, -1, 0] - 47000 * 255 / 65535) <= 1  # rescaled from 16 bits


def test_keypoints_and_flip_map(tmp_path):
    data = _base(tmp_path)
    data["categories"] = [{"id": 1, "name": "person", "keypoints": ["nose", "left_eye", "right_eye"],
                           "skeleton": [[1, 2], [1, 3]]}]
    data["annotations"] = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 0,
         "segmentation": [[1, 1, 11, 1, 11, 11, 1, 11]], "keypoints": [5, 5, 2, 3, 3, 1, 99, 99, 0],
         "num_keypoints": 2}]
    ds = CocoDataset(tmp_path, _write(tmp_path, data))
    assert ds.with_keypoints and ds.keypoint_names == ["nose", "left_eye", "right_eye"]
    assert ds.keypoint_flip_map == [0, 2, 1]
    assert ds.skeleton == [(0, 1), (0, 2)]
    _, t = ds[0]
    assert t["keypoints"].shape == (1, 3, 3)
    assert t["keypoints"][0].tolist() == [[5, 5, 2], [3, 3, 1], [0, 0, 0]]  # invisible zeroed
    assert "keypoints" not in CocoDataset(tmp_path, _write(tmp_path, data), keypoints=False)[0][1]
    data["annotations"][0]["keypoints"] = [1, 2]
    with pytest.raises(InvalidAnnotationError, match="annotation id 1 .*keypoints must be 9 numbers"):
        CocoDataset(tmp_path, _write(tmp_path, data))


def test_keypoints_required_but_absent(tmp_path):
    with pytest.raises(InvalidAnnotationError, match="keypoints=True but no category"):
        CocoDataset(tmp_path, _write(tmp_path, _base(tmp_path)), keypoints=True)


def test_flip_map_from_names():
    assert flip_map_from_names(["nose", "left_eye", "right_eye", "Left_Ear", "Right_Ear", "l_hand", "r_hand"]) \
        == [0, 2, 1, 4, 3, 6, 5]
    assert flip_map_from_names(["a", "left_x"]) == [0, 1]  # no counterpart: maps to itself


def test_index_errors(tmp_path):
    ds = CocoDataset(tmp_path, _write(tmp_path, _base(tmp_path)))
    with pytest.raises(IndexError, match="out of range"):
        ds[5]
    assert ds[-1][1]["image_id"] == 10
