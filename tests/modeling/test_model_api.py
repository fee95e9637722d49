"""Public Model API: every preset trains and predicts on a small image, Table 2
switches, empty targets, input types, save/load, from_torchvision errors."""

import numpy as np
import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.modeling.config import PRESETS

# conftest.SMALL_MODEL; the shared `small_model` fixture is built from the same values
SMALL = dict(min_size=64, max_size=96, num_classes=3, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=20,
             rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, box_batch_size_per_image=16,
             score_threshold=0.0, detections_per_image=10)


def _sample(h=60, w=80, n=2, keypoints=False, num_classes=3):
    img = torch.rand(3, h, w)
    boxes = torch.tensor([[5.0, 6.0, 40.0, 50.0], [30.0, 10.0, 75.0, 40.0]])[:n]
    masks = torch.zeros((n, h, w), dtype=torch.uint8)
    for i, (a, b, c, d) in enumerate(boxes.long().tolist()):
        masks[i, b + 2:d - 2, a + 2:c - 2] = 1
    t = {"boxes": boxes, "labels": torch.arange(1, n + 1).clamp(max=num_classes - 1), "masks": masks}
    if keypoints:
        kx = boxes[:, None, 0] + torch.rand(n, 17) * (boxes[:, None, 2] - boxes[:, None, 0])
        ky = boxes[:, None, 1] + torch.rand(n, 17) * (boxes[:, None, 3] - boxes[:, None, 1])
        t["keypoints"] = torch.stack([kx, ky, torch.full((n, 17), 2.0)], 2)
    return img, t


def _empty(h=50, w=70, keypoints=False):
    t = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64),
         "masks": torch.zeros((0, h, w), dtype=torch.uint8)}
    if keypoints:
        t["keypoints"] = torch.zeros((0, 17, 3))
    return torch.rand(3, h, w), t


def _train_and_eval(model):
    kp = model.config.keypoints
    img, t = _sample(keypoints=kp, num_classes=model.config.num_classes)
    img2, t2 = _empty(keypoints=kp)
    model.train()
    losses = model([img, img2], [t, t2])
    expected = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    if model.config.masks:
        expected.add("loss_mask")
    if kp:
        expected.add("loss_keypoint")
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.roi_heads.box_predictor.parameters()]
    assert all(g is not None for g in grads)
    model.eval()
    dets = model([img, img2])
    assert len(dets) == 2
    for d, im in zip(dets, (img, img2)):
        assert isinstance(d, mn.Detections)
        assert d.boxes.shape[1] == 4 and d.boxes.dtype == torch.float32
        assert d.image_size == tuple(im.shape[-2:])
        assert len(d) <= 10 and d.scores.shape == (len(d),) and d.labels.dtype == torch.int64
        if len(d):
            assert int(d.labels.min()) >= 1 and int(d.labels.max()) < model.config.num_classes
            assert float(d.boxes[:, 2].max().detach()) <= im.shape[-1]
            assert float(d.boxes[:, 3].max().detach()) <= im.shape[-2]
        if model.config.masks:
            assert d.masks.shape == (len(d),) + tuple(im.shape[-2:]) and d.masks.dtype == torch.bool
        if kp:
            assert d.keypoints.shape == (len(d), 17, 3)
    return dets


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_and_predicts(preset):
    torch.manual_seed(0)
    kw = dict(SMALL)
    if PRESETS[preset].keypoints:
        kw.update(num_classes=2, detections_per_image=3)  # the 8 x conv512 head is heavy
    model = mn.Model(preset, **kw)
    assert model.config.backbone == PRESETS[preset].backbone
    _train_and_eval(model)


@pytest.mark.parametrize("switch", [
    dict(pooler="roi_pool"), dict(pooler="roi_warp"), dict(class_agnostic_masks=True),
    dict(mask_loss="softmax"), dict(mask_head="mlp"), dict(pooler_aligned=True),
])
def test_table2_switches(switch):
    torch.manual_seed(0)
    model = mn.Model("R18-FPN", **SMALL, **switch)
    _train_and_eval(model)
    if switch.get("class_agnostic_masks"):
        assert model.roi_heads.mask_head.mask_fcn_logits.out_channels == 1
    if switch.get("mask_head") == "mlp":
        assert type(model.roi_heads.mask_head).__name__ == "MaskHeadMLP"


def test_c4_switches():
    torch.manual_seed(0)
    _train_and_eval(mn.Model("R50-C4", **SMALL, mask_head="mlp", mask_resolution=14))


def test_only_empty_images_train():
    torch.manual_seed(0)
    model = mn.Model("R18-FPN", **SMALL).train()
    a, ta = _empty()
    b, tb = _empty(40, 64)
    losses = model([a, b], [ta, tb])
    assert float(losses["loss_box_reg"].detach()) == 0.0 and float(losses["loss_mask"].detach()) == 0.0
    sum(losses.values()).backward()


def test_bad_targets_raise():
    model = mn.Model("R18-FPN", **SMALL).train()
    img, t = _sample()
    with pytest.raises(ValueError, match="labels"):
        model([img], [dict(t, labels=torch.tensor([0, 1]))])
    with pytest.raises(ValueError, match="boxes"):
        model([img], [dict(t, boxes=torch.zeros(2, 5))])
    with pytest.raises(ValueError, match="targets are required"):
        model([img])


def test_predict_input_types(small_model, tmp_path):
    from PIL import Image

    arr = (np.random.RandomState(0).rand(50, 70, 3) * 255).astype(np.uint8)
    path = tmp_path / "im.png"
    Image.fromarray(arr).save(path)
    t = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    outs = small_model.predict([str(path), Image.fromarray(arr), arr, t], batch_size=2)
    assert len(outs) == 4
    for d in outs[1:]:
        torch.testing.assert_close(d.boxes, outs[0].boxes)
        assert torch.equal(d.masks, outs[0].masks)
    single = small_model.predict(arr)
    assert len(single) == 1 and single[0].image_size == (50, 70)
    with pytest.raises(TypeError, match="unsupported image type"):
        small_model.predict([42])
    with pytest.raises(ValueError, match="mask_format"):
        small_model.predict(arr, mask_format="png")


def test_rle_output_and_to_coco(small_model):
    from pycocotools import mask as mask_utils

    arr = (np.random.RandomState(1).rand(50, 70, 3) * 255).astype(np.uint8)
    bitmap = small_model.predict(arr)[0]
    rle = small_model.predict(arr, mask_format="rle")[0]
    assert len(rle.masks) == len(bitmap)
    for r, m in zip(rle.masks, bitmap.masks):
        assert isinstance(r["counts"], str)
        dec = mask_utils.decode(dict(r, counts=r["counts"].encode()))
        assert np.array_equal(dec.astype(bool), m.numpy())
    coco = bitmap.to_coco(image_id=7, category_ids=[0, 11, 22])
    assert len(coco) == len(bitmap)
    c = coco[0]
    x1, y1, x2, y2 = bitmap.boxes[0].tolist()
    assert c["image_id"] == 7 and c["category_id"] in (11, 22)
    assert c["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-4)
    assert isinstance(c["segmentation"]["counts"], str) and c["segmentation"]["size"] == [50, 70]


def test_paste_modes_differ_but_agree_mostly(small_model):
    arr = (np.random.RandomState(2).rand(50, 70, 3) * 255).astype(np.uint8)
    a = small_model.predict(arr, paste="aligned")[0]
    b = small_model.predict(arr, paste="torchvision")[0]
    torch.testing.assert_close(a.boxes, b.boxes)
    assert a.masks.shape == b.masks.shape


def test_save_load_round_trip(small_model, tmp_path):
    p = tmp_path / "model.safetensors"
    small_model.save(p)
    assert p.exists() and p.with_suffix(".json").exists()
    m2 = mn.Model.load(p)
    assert m2.config == small_model.config
    for (k, v), (k2, v2) in zip(small_model.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    arr = (np.random.RandomState(3).rand(50, 70, 3) * 255).astype(np.uint8)
    d1, d2 = small_model.predict(arr)[0], m2.predict(arr)[0]
    assert torch.equal(d1.boxes, d2.boxes) and torch.equal(d1.masks, d2.masks)


def test_load_checked_reports_keys(small_model):
    from maskrcnn_native.weights import load_checked

    sd = dict(small_model.state_dict())
    sd.pop("rpn.head.conv.weight")
    sd["extra.weight"] = torch.zeros(1)
    sd["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(7, 1024)
    with pytest.raises(ValueError) as e:
        load_checked(mn.Model("R18-FPN", **SMALL), sd)
    msg = str(e.value)
    assert "rpn.head.conv.weight" in msg and "extra.weight" in msg
    assert "roi_heads.box_predictor.cls_score.weight: checkpoint [7, 1024] vs model [3, 1024]" in msg
