"""visualize: draw, save_grid, plot_losses (Pillow only)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from maskrcnn_native import visualize as V


def _det(h=40, w=50):
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 5:15, 5:20] = True
    masks[1, 25:35, 30:45] = True
    return {
        "boxes": torch.tensor([[5.0, 5.0, 20.0, 15.0], [30.0, 25.0, 45.0, 35.0]]),
        "scores": torch.tensor([0.9, 0.3]),
        "labels": torch.tensor([1, 2]),
        "masks": masks,
        "keypoints": torch.tensor([[[6.0, 6.0, 2.0], [18.0, 6.0, 2.0], [12.0, 14.0, 0.0]],
                                   [[31.0, 26.0, 2.0], [44.0, 26.0, 2.0], [38.0, 34.0, 2.0]]]),
    }


def test_draw_masks_boxes_and_threshold():
    img = torch.zeros(3, 40, 50)
    out = V.draw(img, _det(), class_names=["bg", "cat", "dog"], score_threshold=0.5, show_labels=False,
                 show_keypoints=False)
    a = np.asarray(out)
    assert out.size == (50, 40) and out.mode == "RGB"
    # inside the kept instance's mask: tinted; inside the low-score one: untouched
    assert a[10, 12].sum() > 0
    assert a[30, 37].sum() == 0
    # box edge drawn in the instance colour
    assert tuple(a[5, 12]) == V.color_for(0)
    # the input image was not modified
    assert float(img.abs().sum()) == 0.0


def test_draw_labels_and_scores_change_pixels():
    img = np.full((40, 50, 3), 128, np.uint8)
    with_text = np.asarray(V.draw(img, _det(), class_names=["bg", "cat", "dog"], show_masks=False))
    without = np.asarray(V.draw(img, _det(), show_masks=False, show_labels=False))
    assert (with_text != without).any()


def test_draw_keypoints_and_skeleton():
    img = np.zeros((40, 50, 3), np.uint8)
    det = _det()
    no_sk = np.asarray(V.draw(img, det, show_masks=False, show_boxes=False, show_labels=False))
    sk = np.asarray(V.draw(img, det, show_masks=False, show_boxes=False, show_labels=False, skeleton=[(0, 1)]))
    # keypoint dots are white, the skeleton line between kp0 and kp1 at y=6 is coloured
    assert tuple(no_sk[6, 6]) == (255, 255, 255)
    assert no_sk[6, 12].sum() == 0 and sk[6, 12].sum() > 0
    # the invisible keypoint (v=0) is not drawn
    assert no_sk[14, 12].sum() == 0


def test_draw_accepts_rle_masks_ground_truth_and_paths(tmp_path):
    det = _det()
    rles = [mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8))) for m in det["masks"]]
    gt = {"boxes": det["boxes"], "labels": det["labels"], "masks": rles}  # no scores: all drawn
    p = tmp_path / "im.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(p)
    a = np.asarray(V.draw(str(p), gt, show_labels=False))
    assert a[10, 12].sum() > 0 and a[30, 37].sum() > 0


def test_draw_errors():
    det = _det()
    det["masks"] = det["masks"][:1]
    with pytest.raises(ValueError, match="1 masks for 2 boxes"):
        V.draw(torch.zeros(3, 40, 50), det)
    with pytest.raises(ValueError, match="color_by must be"):
        V.draw(torch.zeros(3, 40, 50), _det(), color_by="x")
    with pytest.raises(ValueError, match="expected an image"):
        V.to_pil(np.zeros((4, 4, 5)))


def test_save_grid(tmp_path):
    imgs = [torch.rand(3, 40, 50), torch.rand(3, 30, 20), torch.rand(3, 40, 50)]
    path = tmp_path / "sub" / "predictions.png"
    grid = V.save_grid(imgs, [_det(), None, _det()], str(path), ncols=2, pad=4)
    assert path.exists()
    with Image.open(path) as back:
        assert back.size == grid.size == (2 * 50 + 3 * 4, 2 * 40 + 3 * 4)
    with pytest.raises(ValueError, match="3 images but 1 detection lists"):
        V.save_grid(imgs, [_det()], None)


def test_plot_losses_from_jsonl(tmp_path):
    p = tmp_path / "metrics.jsonl"
    with open(p, "w") as f:
        for i in range(20):
            f.write(json.dumps({"iter": i * 10, "loss": 2.0 / (i + 1), "loss_mask": 0.5, "lr": 0.01}) + "\n")
        f.write(json.dumps({"iter": 200, "loss": float("nan")}) + "\n")  # skipped, not plotted
    out = tmp_path / "loss.png"
    img = V.plot_losses(str(p), str(out), size=(400, 300))
    assert out.exists() and img.size == (400, 300)
    a = np.asarray(img)
    # two curves in two different colours are drawn in the plot area
    plot = a[34:256, 64:230].reshape(-1, 3)
    for k in range(2):
        assert (plot == np.array(V.color_for(k))).all(axis=1).any()
    empty = V.plot_losses([], None)
    assert empty.size == (800, 500)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    with pytest.raises(ValueError, match="bad.jsonl:1 is not valid JSON"):
        V.plot_losses(str(bad))


def _gt(h=40, w=50):
    d = _det(h, w)
    return {"boxes": d["boxes"], "labels": d["labels"], "masks": d["masks"]}


def test_save_comparison_layout_upscaled_gt_beside_prediction(tmp_path):
    img = torch.full((3, 40, 50), 0.5)
    det = _det()
    path = tmp_path / "cmp.png"
    pic, caps = V.save_comparison([img, img, img], [_gt()] * 3, [det] * 3, str(path), class_names=["bg", "cat", "dog"],
                                  score_threshold=0.5, scale=4, pairs_per_row=2, pad=6)
    assert path.exists()
    with Image.open(path) as back:
        assert back.size == pic.size
    # two pairs a row, two rows: panels 4x the tile, caption strips and title above them
    pw, ph = 4 * 50, 4 * 40
    assert pic.width == 2 * (2 * pw + 6) + 4 * 6 + 2 * 6
    assert pic.height > 2 * ph + 4 * 6 and pic.height < 2 * ph + 4 * 6 + 200
    assert caps[0] == ("ground truth: 2 objects (1 cat, 1 dog)", "prediction: 1 >= 0.50 (best 0.90)")
    a = np.asarray(pic).astype(int)
    # the third pair (second row, first column) ends pad above the bottom: ground
    # truth panel at x=6, prediction panel at x=6+pw+6
    y0 = pic.height - 6 - ph
    gt = a[y0 : y0 + ph, 6 : 6 + pw]
    pr = a[y0 : y0 + ph, 12 + pw : 12 + 2 * pw]
    raw = 128
    # mask 0 (score 0.9) covers rows 5..15, cols 5..20 of the tile: both panels tint it
    assert np.abs(gt[4 * 10, 4 * 12] - raw).sum() > 30 and np.abs(pr[4 * 10, 4 * 12] - raw).sum() > 30
    # mask 1 (score 0.3, under the threshold) is ground truth only
    assert np.abs(gt[4 * 30, 4 * 37] - raw).sum() > 30
    assert (pr[4 * 30, 4 * 37] == raw).all()
    # background far from objects is the raw grey in both panels
    assert (gt[4 * 20, 4 * 48] == raw).all() and (pr[4 * 20, 4 * 48] == raw).all()


def test_save_comparison_says_when_nothing_passes(monkeypatch):
    texts = []
    orig = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):
        texts.append(text)
        return orig(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    weak = dict(_det(), scores=torch.tensor([0.31, 0.2]))
    none = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    img = torch.rand(3, 40, 50)
    _, caps = V.save_comparison([img, img], [_gt(), _gt()], [weak, none], score_threshold=0.5)
    assert caps[0][1] == "no detection >= 0.50; best 0.31"
    assert caps[1][1] == "prediction: no detection at all"
    assert "no detection >= 0.50; best 0.31" in texts
    assert any("score >= 0.50" in t for t in texts)  # the title states the threshold
    # ground-truth labels are class numbers without a score, the weak prediction draws nothing
    assert "1" in texts and not any(t.startswith("1 0.") for t in texts)


def test_save_comparison_default_scale_and_errors():
    img = torch.rand(3, 96, 96)
    pic, _ = V.save_comparison([img], [_gt(96, 96)], [_det(96, 96)])
    assert pic.width >= 2 * 4 * 96  # 96 px tiles are drawn 4x
    with pytest.raises(ValueError, match="1 images, 2 targets and 1 detection lists"):
        V.save_comparison([img], [_gt(), _gt()], [_det()])
    with pytest.raises(ValueError, match="resample must be"):
        V.save_comparison([img], [_gt(96, 96)], [_det(96, 96)], resample="cubic")
