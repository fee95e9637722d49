"""``Model.export``: predict's inference as a ``torch.export.ExportedProgram``
for a fixed input size gives predict's boxes, scores, labels, masks and the
RoI heads' mask probabilities, on images other than the one it was traced
with, including images with zero detections (the count is data-dependent)."""

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.modeling import layers
from maskrcnn_native.modeling.export import export_model
from maskrcnn_native.structures import image_to_float

H, W = 128, 160
SMALL = dict(min_size=64, max_size=96, num_classes=3, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=20,
             rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, box_batch_size_per_image=16,
             score_threshold=0.0, detections_per_image=10)


@pytest.fixture(autouse=True)
def _portable_convs(monkeypatch):
    """The exported graph holds the portable F.conv2d path; eager predict would
    otherwise use the fused oneDNN convolutions (layers.conv2d), which agree
    only to float32 rounding. Bit-for-bit comparisons need the same path."""
    monkeypatch.setattr(layers, "_FUSED", False)


def _images(seed, n=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, H, W), generator=g)
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x


def _eager_mask_probs(model, images):
    """The RoI heads' box-local mask probabilities of ``predict``'s eval path, per image."""
    with torch.inference_mode():
        batch, _, _ = model.preprocess(list(image_to_float(images).unbind(0)), None)
        feats = model.backbone(batch.tensors)
        props, _ = model.rpn(batch, [feats[k] for k in model.backbone.rpn_levels])
        results, _ = model.roi_heads(feats, props, batch.image_sizes)
    return [r.mask_probs for r in results]


def _check_equal(ep, model, images, paste):
    with torch.inference_mode():
        got = ep.module()(images)
    want = model.predict(images, batch_size=images.shape[0], paste=paste)
    probs = _eager_mask_probs(model, images)
    assert len(got) == len(want) == images.shape[0]
    for (boxes, scores, labels, mask_probs, masks), d, p in zip(got, want, probs):
        assert boxes.dtype == d.boxes.dtype and labels.dtype == torch.int64 and masks.dtype == torch.bool
        assert torch.equal(boxes, d.boxes)
        assert torch.equal(scores, d.scores)
        assert torch.equal(labels, d.labels)
        assert torch.equal(masks, d.masks)
        assert masks.shape == (len(d), H, W)
        assert mask_probs.shape == (len(d), 28, 28)
        torch.testing.assert_close(mask_probs, p, rtol=0, atol=1e-5)
    return got


@pytest.fixture(scope="module")
def exported(small_model):
    """small_model exported for one float image of H x W, with the aligned paste."""
    return small_model.export((H, W), paste="aligned")


@pytest.mark.slow
def test_exported_program_gives_predicts_answers(exported, small_model):
    a = _check_equal(exported, small_model, _images(1), "aligned")
    b = _check_equal(exported, small_model, _images(2), "aligned")
    assert len(a[0][0]) > 0 and len(b[0][0]) > 0
    # a second image gets its own answers, not the traced (or the first) image's
    assert not torch.equal(a[0][0], b[0][0])


@pytest.mark.slow
def test_number_of_detections_is_symbolic(exported):
    outs = [n for n in exported.graph.nodes if n.op == "output"][0].args[0]
    boxes = outs[0].meta["val"]
    assert isinstance(boxes.shape[0], torch.SymInt)  # D: data-dependent, not the traced image's count
    assert boxes.shape[1] == 4
    assert tuple(outs[4].meta["val"].shape[1:]) == (H, W)


@pytest.fixture(scope="module")
def mixed():
    """A model whose 0.4 score threshold keeps detections on a black image and
    none on noise (seeded random weights score ~0.44 and ~0.39 there),
    exported for a uint8 batch of two."""
    torch.manual_seed(0)
    model = mn.Model("R18-FPN", **dict(SMALL, score_threshold=0.4)).eval()
    return model, model.export((H, W), batch_size=2, input_dtype=torch.uint8, paste="torchvision")


@pytest.mark.slow
def test_zero_detections_and_a_uint8_batch(mixed):
    model, ep = mixed
    noise = _images(3, dtype=torch.uint8)
    black = torch.zeros_like(noise)
    want = model.predict(torch.cat([black, noise]), batch_size=2)
    assert len(want[0]) > 0 and len(want[1]) == 0  # the premise: one image with, one without detections
    got = _check_equal(ep, model, torch.cat([black, noise]), "torchvision")
    assert all(t.shape[0] == 0 for t in got[1])
    _check_equal(ep, model, torch.cat([noise, black]), "torchvision")


@pytest.mark.slow
def test_saved_program_loads_and_answers(exported, small_model, tmp_path):
    # the ops come back as maskrcnn_native::* custom ops (registered by `import maskrcnn_native`)
    path = tmp_path / "model.pt2"
    torch.export.save(exported, str(path))
    loaded = torch.export.load(str(path))
    _check_equal(loaded, small_model, _images(5), "aligned")


def test_export_argument_errors(small_model):
    with pytest.raises(ValueError, match="image_size must be"):
        small_model.export((0, W))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        small_model.export((H, W), batch_size=0)
    with pytest.raises(TypeError, match="input_dtype must be"):
        small_model.export((H, W), input_dtype=torch.int32)
    with pytest.raises(ValueError, match="paste must be"):
        small_model.export((H, W), paste="bilinear")
    with pytest.raises(ValueError, match="example must be"):
        export_model(small_model, (H, W), example=torch.rand(1, 3, H, W + 1))


def test_keypoint_models_refuse_to_export():
    torch.manual_seed(0)
    model = mn.Model("R18-FPN", **dict(SMALL, keypoints=True, masks=False, num_classes=2))
    with pytest.raises(NotImplementedError, match="heatmaps_to_keypoints"):
        model.export((H, W))
