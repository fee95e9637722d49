"""Import of torchvision checkpoints: file loading, key mapping, errors, fine-tuning."""

import pytest
import torch

tvd = pytest.importorskip("torchvision.models.detection")

import maskrcnn_native as mn  # noqa: E402
from maskrcnn_native.weights import convert_torchvision_state_dict  # noqa: E402


@pytest.fixture(scope="module")
def tv_sd():
    torch.manual_seed(0)
    return tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()


def test_load_from_file_maps_every_key(tv_sd, tmp_path):
    p = tmp_path / "tv.pth"
    torch.save(tv_sd, p)
    model = mn.Model.from_torchvision(p)
    assert model.config.num_classes == 91 and not model.training
    own = model.state_dict()
    conv = convert_torchvision_state_dict(tv_sd)
    assert set(conv) == set(own)
    for k in ("backbone.fpn.inner_blocks.2.weight", "rpn.head.conv.weight", "roi_heads.mask_head.convs.3.bias",
              "roi_heads.mask_head.conv5_mask.weight", "backbone.body.layer3.5.bn2.running_var"):
        assert torch.equal(own[k], conv[k])
    assert torch.equal(own["roi_heads.mask_head.convs.0.weight"], tv_sd["roi_heads.mask_head.0.0.weight"])


def test_num_classes_mismatch_error_and_reinit(tv_sd):
    with pytest.raises(ValueError) as e:
        mn.Model.from_torchvision(tv_sd, num_classes=5)
    msg = str(e.value)
    assert "roi_heads.box_predictor.cls_score.weight: checkpoint [91, 1024] vs model [5, 1024]" in msg
    assert "roi_heads.mask_head.mask_fcn_logits.weight" in msg and "reinit_heads=True" in msg
    model = mn.Model.from_torchvision(tv_sd, num_classes=5, reinit_heads=True)
    sd = model.state_dict()
    assert sd["roi_heads.box_predictor.cls_score.weight"].shape == (5, 1024)
    assert sd["roi_heads.mask_head.mask_fcn_logits.weight"].shape == (5, 256, 1, 1)
    assert torch.equal(sd["roi_heads.box_head.fc6.weight"], tv_sd["roi_heads.box_head.fc6.weight"])
    assert torch.equal(sd["backbone.body.conv1.weight"], tv_sd["backbone.body.conv1.weight"])


def test_unexpected_and_missing_keys(tv_sd):
    sd = dict(tv_sd)
    sd["roi_heads.foo.weight"] = torch.zeros(3)
    del sd["rpn.head.cls_logits.bias"]
    with pytest.raises(ValueError) as e:
        mn.Model.from_torchvision(sd)
    assert "unexpected keys (1): ['roi_heads.foo.weight']" in str(e.value)
    assert "missing keys (1): ['rpn.head.cls_logits.bias']" in str(e.value)


def test_bad_arch_and_type():
    with pytest.raises(ValueError, match="arch must be one of"):
        mn.Model.from_torchvision({}, arch="fasterrcnn_mobilenet")
    with pytest.raises(TypeError, match="state dict"):
        mn.Model.from_torchvision(torch.zeros(3))
