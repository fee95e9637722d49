"""The faulty-data table (README "Reliability"): a COCO dataset written by
``write_coco`` (what ``maskrcnn-native make-shapes`` writes) with one fault
at a time. Each fault gives one error naming the file (and the annotation or
image id), or with ``skip_invalid=True`` a counted skip; never an error from
inside PIL or pycocotools, never a silently wrong sample."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskrcnn_native.data import CocoDataset, ShapesDataset, write_coco
from maskrcnn_native.data.coco import DatasetError, InvalidAnnotationError, UnreadableImageError

N = 4


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    image_dir, json_path = write_coco(ShapesDataset(N, image_size=48, seed=3), str(root))
    data = json.loads(Path(json_path).read_text())
    assert len(data["images"]) == N and len(data["annotations"]) >= N
    return root, image_dir, data


def _setup(clean, tmp_path, edit=None, files=None):
    """Copies the clean dataset to tmp_path, applies ``edit(data)`` to the json
    and ``files(image_dir, data)`` to the images; returns (image_dir, json path)."""
    _, image_dir, data = clean
    d = tmp_path / "images"
    shutil.copytree(image_dir, d)
    data = copy.deepcopy(data)
    if edit is not None:
        edit(data)
    if files is not None:
        files(d, data)
    p = tmp_path / "annotations.json"
    p.write_text(json.dumps(data))
    return str(d), str(p)


def _first_ann(data):
    return data["annotations"][0]


def _set_ann(**kv):
    def edit(data):
        _first_ann(data).update(kv)
    return edit


def _truncated_jpeg(d, data):
    img = data["images"][1]
    src = d / img["file_name"]
    jpg = src.with_suffix(".jpg")
    with Image.open(src) as im:
        im.convert("RGB").save(jpg, quality=95)
    raw = jpg.read_bytes()
    jpg.write_bytes(raw[: len(raw) // 2])
    img["file_name"] = jpg.name


def _zero_byte_png(d, data):
    (d / data["images"][1]["file_name"]).write_bytes(b"")


def _missing_file(d, data):
    (d / data["images"][1]["file_name"]).unlink()


def _text_as_jpg(d, data):
    img = data["images"][1]
    (d / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    img["file_name"] = "notes.jpg"


def _dup_image_id(data):
    data["images"][1]["id"] = data["images"][0]["id"]


def _non_numeric_height(data):
    data["images"][1]["height"] = "forty-eight"


def _bad_uncompressed_rle(data):
    a = _first_ann(data)
    h, w = a["segmentation"]["size"]
    a["segmentation"] = {"size": [h, w], "counts": [5, 10, 3]}  # 18 of h*w pixels


def _garbage_compressed_rle(data):
    a = _first_ann(data)
    a["segmentation"] = {"size": a["segmentation"]["size"], "counts": "\x7f~garbage~\x01"}


# fault -> (edit of the json, edit of the files, error class, message, where the
# error comes: "build" or "load", skipped counter key)
FAULTS = {
    "truncated JPEG": (None, _truncated_jpeg, UnreadableImageError, r"cannot read image .*\.jpg", "load",
                       "unreadable_images"),
    "zero-byte PNG": (None, _zero_byte_png, UnreadableImageError, r"cannot read image .*\.png", "load",
                      "unreadable_images"),
    "missing file": (None, _missing_file, UnreadableImageError, r"image file not found: .*\.png", "build",
                     "missing_images"),
    "text file named .jpg": (None, _text_as_jpg, UnreadableImageError, r"cannot read image .*notes\.jpg", "load",
                             "unreadable_images"),
    "negative bbox": (_set_ann(bbox=[2.0, 2.0, -5.0, 4.0]), None, InvalidAnnotationError,
                      "bbox width and height must be >= 0", "build", "invalid_annotations"),
    "NaN bbox": (_set_ann(bbox=[2.0, float("nan"), 5.0, 4.0]), None, InvalidAnnotationError,
                 "bbox must be 4 finite numbers", "build", "invalid_annotations"),
    "bbox not 4 numbers": (_set_ann(bbox=[1, 2, 3]), None, InvalidAnnotationError,
                           "bbox must be 4 finite numbers", "build", "invalid_annotations"),
    "segmentation of the wrong type": (_set_ann(segmentation="a string"), None, InvalidAnnotationError,
                                       "segmentation must be a polygon list or an RLE dict", "build",
                                       "invalid_annotations"),
    "polygon with an odd coordinate count": (_set_ann(segmentation=[[1, 2, 3, 4, 5]]), None,
                                             InvalidAnnotationError, "odd number of coordinates", "build",
                                             "invalid_annotations"),
    "unknown category id": (_set_ann(category_id=12345), None, InvalidAnnotationError,
                            "unknown category_id 12345", "build", "invalid_annotations"),
    "duplicate image ids": (_dup_image_id, None, InvalidAnnotationError, "duplicate image id", "build",
                            "duplicate_image_ids"),
    "non-numeric height": (_non_numeric_height, None, InvalidAnnotationError,
                           "'height' must be a positive integer, got 'forty-eight'", "build", "invalid_images"),
    "uncompressed RLE not covering h*w": (_bad_uncompressed_rle, None, InvalidAnnotationError,
                                          "RLE runs sum to 18 pixels", "build", "invalid_annotations"),
    "garbage compressed RLE": (_garbage_compressed_rle, None, InvalidAnnotationError,
                               "not a valid compressed RLE string", "build", "invalid_annotations"),
}


def _load_all(ds):
    return [ds[i] for i in range(len(ds))]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_raises_one_named_error_or_is_counted(clean, tmp_path, fault):
    edit, files, cls, message, when, key = FAULTS[fault]
    image_dir, json_path = _setup(clean, tmp_path, edit, files)
    _, _, clean_data = clean

    with pytest.raises(cls, match=message) as ei:
        ds = CocoDataset(image_dir, json_path)
        assert when == "load", "expected the error when the dataset is built"
        _load_all(ds)
    err = ei.value
    assert isinstance(err, DatasetError)
    text = str(err)
    assert "\n" not in text  # one line
    if cls is InvalidAnnotationError:
        assert json_path in text
        if key == "invalid_annotations":
            assert f"annotation id {_first_ann(clean_data)['id']}" in text
        else:
            assert f"image id {clean_data['images'][1]['id']}" in text or "duplicate image id" in text
    else:
        assert image_dir in text and f"image id {clean_data['images'][1]['id']}" in text
    # the message is ours, not a library's traceback text bubbling up
    assert err.__class__.__module__ == "maskrcnn_native.data.coco"

    # skip_invalid: skipped and counted, every remaining sample loads and is right
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = CocoDataset(image_dir, json_path, skip_invalid=True)
        items = _load_all(ds)
    assert ds.skipped[key] >= 1, dict(ds.skipped)
    good = CocoDataset(*_setup(clean, tmp_path / "clean"))
    by_id = {good[i][1]["image_id"]: good[i] for i in range(len(good))}
    for image, target in items:
        ref_image, ref_target = by_id[target["image_id"]]
        if key in ("unreadable_images",):
            pass  # the substitute is a whole other (readable) image, compared below
        assert np.array_equal(image.numpy(), ref_image.numpy())
        if key == "invalid_annotations" and target["image_id"] == _first_ann(clean_data)["image_id"]:
            assert len(target["labels"]) == len(ref_target["labels"]) - 1
        else:
            assert np.array_equal(target["masks"].numpy(), ref_target["masks"].numpy())
            assert np.array_equal(target["boxes"].numpy(), ref_target["boxes"].numpy())


def test_duplicate_image_ids_never_mix_annotations(clean, tmp_path):
    """Both images that share an id are dropped with skip_invalid (which
    annotations belong to which is unknowable), with their annotations."""
    _, _, data = clean
    image_dir, json_path = _setup(clean, tmp_path, _dup_image_id)
    ds = CocoDataset(image_dir, json_path, skip_invalid=True)
    assert len(ds) == N - 2 and ds.skipped["duplicate_image_ids"] == 2
    dup = data["images"][0]["id"]
    assert dup not in ds.ids and ds.to_coco_api().getAnnIds(imgIds=[dup]) == []


def test_degenerate_geometry_is_a_counted_drop(clean, tmp_path):
    """Zero-size boxes and polygons of fewer than 3 points occur in real COCO
    files: they are dropped and counted, never trained on, never an error."""
    def edit(data):
        a, b = data["annotations"][0], data["annotations"][1]
        a["bbox"] = [3.0, 3.0, 0.0, 5.0]
        b["segmentation"] = [[1.0, 1.0, 6.0, 6.0]]
    image_dir, json_path = _setup(clean, tmp_path, edit)
    ds = CocoDataset(image_dir, json_path)
    _load_all(ds)
    assert ds.skipped["degenerate_boxes"] >= 1 and ds.skipped["degenerate_polygons"] == 1


def test_invalid_json_names_the_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"images": [')
    with pytest.raises(InvalidAnnotationError, match=r"broken\.json: not valid JSON"):
        CocoDataset(tmp_path, str(p))


def _cli(*args, timeout=300):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import maskrcnn_native as mn

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(mn.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "maskrcnn_native", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_train_prints_one_line_or_skips_with_skip_invalid(clean, tmp_path):
    """``maskrcnn-native train`` on a dataset with an unreadable image: one
    line on stderr naming the file and exit status 2; with
    ``data.skip_invalid=true`` it trains on the rest."""
    image_dir, json_path = _setup(clean, tmp_path, None, _text_as_jpg)
    common = ["train", "--no-eval", "--threads", "1", "--set", "data.source=coco",
              "--set", f"data.image_dir={image_dir}", "--set", f"data.annotation_json={json_path}",
              "--set", "solver.max_iter=1", "--set", "solver.batch_size=4", "--set", "progress=false",
              "--set", "model.fpn_channels=16", "--set", "model.box_head_dim=32", "--set", "model.mask_head_dim=8",
              "--set", "model.min_size=48", "--set", "model.max_size=48", "--set", "data.horizontal_flip=false"]
    r = _cli(*common, "--output-dir", str(tmp_path / "out1"))
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr[-3000:]
    assert "data error" in lines[0] and "notes.jpg" in lines[0] and "image id" in lines[0]
    r = _cli(*common, "--output-dir", str(tmp_path / "out2"), "--set", "data.skip_invalid=true")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out2" / "model.safetensors").exists()
