"""visualize: draw, save_grid, plot_losses (Pillow only)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
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
