"""COCO evaluation: GT-as-predictions gives AP 1, empty predictions, crowd, mapping, errors."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from maskrcnn_native.data import CocoDataset, ShapesDataset, build_transforms, write_coco
from maskrcnn_native.evaluation import (
    detections_to_coco,
    evaluate,
    evaluate_detections,
    format_per_class_table,
    merge_predictions,
    predict_dataset,
    shard_indices,
    to_coco_api,
)


def _gt_as_predictions(ds, with_kp=False):
    preds = {}
    for i in range(len(ds)):
        _, t = ds[i]
        d = {"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])), "labels": t["labels"],
             "masks": t["masks"].bool()}
        if with_kp:
            d["keypoints"] = t["keypoints"]
        preds[t["image_id"]] = d
    return preds


def test_ground_truth_as_predictions_gives_ap_one(shapes):
    r = evaluate_detections(_gt_as_predictions(shapes, True), shapes, ("bbox", "segm", "keypoints"))
    for t in ("bbox", "segm", "keypoints"):
        assert r[f"{t}_AP"] == pytest.approx(1.0)
        assert r[f"{t}_AP50"] == pytest.approx(1.0)
        assert r[f"{t}_AP75"] == pytest.approx(1.0)
    assert set(r.per_class["segm"]) == {"circle", "square", "triangle"}
    assert all(v == pytest.approx(1.0) for v in r.per_class["bbox"].values())
    assert "circle" in r.table and "segm AP" in r.table
    assert r.num_images == 6


def test_detections_objects_are_accepted(shapes):
    from maskrcnn_native import Detections

    preds = []
    for i in range(len(shapes)):
        _, t = shapes[i]
        preds.append((t["image_id"], Detections(boxes=t["boxes"], scores=torch.ones(len(t["labels"])),
                                                labels=t["labels"], masks=t["masks"].bool(),
                                                image_size=tuple(t["size"]))))
    r = evaluate_detections(preds, shapes)
    assert r["bbox_AP"] == pytest.approx(1.0) and r["segm_AP"] == pytest.approx(1.0)


def test_degraded_predictions_lower_ap(shapes):
    preds = _gt_as_predictions(shapes)
    # drop every circle and shift every box: segm stays perfect for the rest, bbox drops
    for iid, d in preds.items():
        keep = d["labels"] != 1
        preds[iid] = {k: v[keep] for k, v in d.items()}
        preds[iid]["boxes"] = preds[iid]["boxes"] + 4.0
    r = evaluate_detections(preds, shapes)
    assert r.per_class["segm"]["circle"] == 0.0
    assert r.per_class["segm"]["square"] == pytest.approx(1.0)
    assert r["segm_AP"] < 1.0 and r["bbox_AP"] < r["segm_AP"]


def test_empty_predictions_give_zero(shapes):
    for empty in ([], {}, {1: {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                              "labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 64, 64)}}):
        r = evaluate_detections(empty, shapes, ("bbox", "segm", "keypoints"))
        assert r["bbox_AP"] == 0.0 and r["segm_AP"] == 0.0 and r["keypoints_AP"] == 0.0
        assert r.num_predictions == 0


def test_nan_for_undefined_area_and_strict_json(shapes, tmp_path):
    r = evaluate_detections(_gt_as_predictions(shapes), shapes)
    assert math.isnan(r["bbox_APl"])  # 64 px images have no large objects
    text = r.to_json(str(tmp_path / "m.json"))
    back = json.loads((tmp_path / "m.json").read_text())
    assert back["bbox_APl"] is None and back["bbox_AP"] == pytest.approx(1.0)
    assert back["per_class_AP"]["segm"]["circle"] == pytest.approx(1.0)
    assert json.loads(text) == back


def test_results_json_written(shapes, tmp_path):
    p = tmp_path / "res.json"
    evaluate_detections(_gt_as_predictions(shapes), shapes, results_json=str(p))
    res = json.loads(p.read_text())
    assert res and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(res[0])
    # the file is valid COCO results: pycocotools loads it and the masks decode
    gt = to_coco_api(shapes)
    dt = gt.loadRes(str(p))
    ann = dt.loadAnns(dt.getAnnIds())[0]
    assert mask_utils.decode(ann["segmentation"]).sum() > 0


def test_errors(shapes):
    preds = _gt_as_predictions(shapes)
    with pytest.raises(ValueError, match="unknown iou type 'mask'"):
        evaluate_detections(preds, shapes, ("mask",))
    with pytest.raises(ValueError, match="image ids not in the ground truth: \\[999\\]"):
        evaluate_detections({999: preds[1]}, shapes)
    bad = dict(preds[1])
    bad["labels"] = torch.full_like(bad["labels"], 9)
    with pytest.raises(ValueError, match="label 9 has no category id"):
        evaluate_detections({1: bad}, shapes)
    with pytest.raises(ValueError, match="must have the same length"):
        detections_to_coco({"boxes": torch.zeros(2, 4), "scores": torch.zeros(1), "labels": torch.zeros(2)}, 1)
    with pytest.raises(TypeError, match="predictions must be COCO result dicts"):
        evaluate_detections([1, 2], shapes)


def test_missing_masks_skip_segm_with_warning(shapes):
    preds = _gt_as_predictions(shapes)
    for d in preds.values():
        del d["masks"]
    with pytest.warns(UserWarning, match="no masks; segm skipped"):
        r = evaluate_detections(preds, shapes)
    assert r["bbox_AP"] == pytest.approx(1.0) and "segm_AP" not in r


def _coco_with_crowd(tmp_path):
    h, w = 32, 40
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "b.png")
    m1 = np.zeros((h, w), np.uint8)
    m1[2:12, 3:15] = 1
    m2 = np.zeros((h, w), np.uint8)
    m2[15:30, 20:38] = 1
    crowd = np.zeros((h, w), np.uint8)
    crowd[20:30, 0:12] = 1

    def rle(m):
        r = mask_utils.encode(np.asfortranarray(m))
        return {"size": [h, w], "counts": r["counts"].decode("ascii")}

    data = {
        "images": [{"id": 100, "file_name": "a.png", "height": h, "width": w},
                   {"id": 200, "file_name": "b.png", "height": h, "width": w}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 5, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 100, "category_id": 18, "bbox": [3, 2, 12, 10], "area": 120,
             "segmentation": rle(m1), "iscrowd": 0},
            {"id": 2, "image_id": 100, "category_id": 5, "bbox": [20, 15, 18, 15], "area": 270,
             "segmentation": rle(m2), "iscrowd": 0},
            {"id": 3, "image_id": 100, "category_id": 5, "bbox": [0, 20, 12, 10], "area": 120,
             "segmentation": rle(crowd), "iscrowd": 1},
        ],
    }
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    return CocoDataset(tmp_path, str(p)), crowd


def test_coco_dataset_mapping_and_crowd(tmp_path):
    ds, crowd = _coco_with_crowd(tmp_path)
    preds = _gt_as_predictions(ds)
    assert preds[100]["labels"].tolist() == [2, 1]  # dog (18) -> 2, car (5) -> 1
    r = evaluate_detections(preds, ds)
    assert r["bbox_AP"] == pytest.approx(1.0) and r["segm_AP"] == pytest.approx(1.0)
    # a confident detection on the crowd region is ignored, not a false positive
    p = preds[100]
    with_crowd = {
        "boxes": torch.cat([p["boxes"], torch.tensor([[0.0, 20.0, 12.0, 30.0]])]),
        "scores": torch.tensor([0.5, 0.5, 0.99]),
        "labels": torch.cat([p["labels"], torch.tensor([1])]),
        "masks": torch.cat([p["masks"], torch.from_numpy(crowd).bool()[None]]),
    }
    r2 = evaluate_detections({100: with_crowd, 200: preds[200]}, ds)
    assert r2["segm_AP"] == pytest.approx(1.0) and r2["bbox_AP"] == pytest.approx(1.0)
    # the same detection away from the crowd region is a false positive
    moved = dict(with_crowd)
    moved["boxes"] = with_crowd["boxes"].clone()
    moved["boxes"][2] = torch.tensor([28.0, 0.0, 40.0, 10.0])
    r3 = evaluate_detections({100: moved, 200: preds[200]}, ds, ("bbox",))
    assert r3["bbox_AP"] < 1.0


class _Oracle:
    """Fake model: predicts the ground truth of the exact image it is given."""

    def __init__(self, ds):
        self.table = {}
        for i in range(len(ds)):
            im, t = ds[i]
            self.table[im.numpy().tobytes()] = t
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        out = []
        for im in images:
            t = self.table[im.numpy().tobytes()]
            d = {"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])), "labels": t["labels"],
                 "masks": t["masks"].bool()}
            if "keypoints" in t:
                d["keypoints"] = t["keypoints"]
            out.append(d)
        return out


def test_evaluate_model_end_to_end(shapes, tmp_path):
    model = _Oracle(shapes)
    r = evaluate(model, shapes, batch_size=4, out_dir=str(tmp_path), progress=False, iou_types=("bbox", "segm"))
    assert model.calls == 2
    assert r["bbox_AP"] == pytest.approx(1.0) and r["segm_AP"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "metrics.json").read_text())["segm_AP"] == pytest.approx(1.0)
    assert "triangle" in (tmp_path / "per_class_AP.txt").read_text()
    assert len(json.loads((tmp_path / "coco_results.json").read_text())) == r.num_predictions > 0


def test_evaluate_maps_resized_predictions_back():
    # the dataset yields 2x upscaled images; predictions in that frame are mapped back to orig_size
    ds = ShapesDataset(4, image_size=48, seed=5, transforms=build_transforms(False, min_size=96, max_size=1000))
    r = evaluate(_Oracle(ds), ds, progress=False)
    assert r["bbox_AP"] == pytest.approx(1.0) and r["segm_AP"] == pytest.approx(1.0)


def test_evaluate_subset_max_images(shapes):
    r = evaluate(_Oracle(shapes), shapes, progress=False, max_images=2, iou_types=("bbox",))
    assert r.num_images == 2 and r["bbox_AP"] == pytest.approx(1.0)


def test_sharded_predictions_merge_to_the_same_result(shapes):
    model = _Oracle(shapes)
    full = evaluate_detections(predict_dataset(model, shapes, progress=False), shapes)
    per_rank = [predict_dataset(model, shapes, indices=shard_indices(len(shapes), r, 2), progress=False)
                for r in range(2)]
    # a padded sampler repeats image 0 on rank 1: it must not be counted twice
    per_rank[1] = per_rank[1] + [dict(x) for x in per_rank[0] if x["image_id"] == 1]
    merged = merge_predictions(per_rank)
    assert len(merged) == sum(len(p) for p in per_rank) - sum(1 for x in per_rank[0] if x["image_id"] == 1)
    assert [m["image_id"] for m in merged] == sorted(m["image_id"] for m in merged)
    assert evaluate_detections(merged, shapes).to_json() == full.to_json()
    assert shard_indices(5, 1, 2) == [1, 3]
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        shard_indices(5, 2, 2)


def test_round_trip_through_files_evaluates_the_same(shapes, tmp_path):
    image_dir, json_path = write_coco(shapes, tmp_path / "d")
    ds = CocoDataset(image_dir, json_path)
    r = evaluate(_Oracle(ds), ds, progress=False)
    assert r["segm_AP"] == pytest.approx(1.0) and r["keypoints_AP"] == pytest.approx(1.0)
    direct = evaluate(_Oracle(shapes), shapes, progress=False)
    assert r.to_json() == direct.to_json()


def test_detections_to_coco_formats():
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 1:4, 2:6] = True
    masks[1, 5:9, 0:3] = True
    det = {"boxes": torch.tensor([[2.0, 1.0, 6.0, 4.0], [0.0, 5.0, 3.0, 9.0]]), "scores": torch.tensor([0.9, 0.4]),
           "labels": torch.tensor([1, 2]), "masks": masks}
    res = detections_to_coco(det, 7, {1: 10, 2: 20})
    assert [r["category_id"] for r in res] == [10, 20]
    assert res[0]["bbox"] == [2.0, 1.0, 4.0, 3.0]
    assert mask_utils.area(dict(res[1]["segmentation"], counts=res[1]["segmentation"]["counts"].encode())) == 12
    # RLE list and float probabilities [D, 1, H, W] give the same encoding
    rles = [r["segmentation"] for r in res]
    res2 = detections_to_coco(dict(det, masks=rles), 7, {1: 10, 2: 20})
    res3 = detections_to_coco(dict(det, masks=masks.float()[:, None] * 0.9), 7, {1: 10, 2: 20})
    assert [r["segmentation"] for r in res2] == rles == [r["segmentation"] for r in res3]
    # rescaling to the original frame
    res4 = detections_to_coco(det, 7, image_size=(10, 12), orig_size=(20, 24))
    assert res4[0]["bbox"] == [4.0, 2.0, 8.0, 6.0] and res4[0]["segmentation"]["size"] == [20, 24]


def test_format_per_class_table():
    text = format_per_class_table({"bbox": {"a": 0.5, "bb": float("nan")}, "segm": {"a": 0.25}})
    lines = text.splitlines()
    assert "bbox AP" in lines[0] and "segm AP" in lines[0]
    assert "0.500" in lines[2] and "0.250" in lines[2]
    assert "n/a" in lines[3]
