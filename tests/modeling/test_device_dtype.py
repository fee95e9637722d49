"""The model owns its device and dtype: ``model.to(float64)`` trains and
predicts like float32, ``model.to(device)`` moves every tensor it holds."""

import pytest
import torch

import maskrcnn_native as mn

NARROW = dict(fpn_channels=32, box_head_dim=64, mask_head_dim=32)


def _kp(preset):
    return {"keypoint_head_dim": 32} if preset.endswith("KP") else {}


def _pair(small, preset, **kw):
    torch.manual_seed(0)
    m32 = mn.Model(preset, **small, **NARROW, **kw)
    m64 = mn.Model(preset, **small, **NARROW, **kw)
    m64.load_state_dict(m32.state_dict())
    return m32, m64.to(torch.float64)


@pytest.mark.parametrize("preset", ["R18-FPN", "R18-FPN-KP"])
def test_float64_model_trains_like_float32(preset, small_config, two_box_sample):
    m32, m64 = _pair(small_config, preset, **_kp(preset))
    assert m64.preprocess.mean.dtype == torch.float64 and m64.preprocess.std.dtype == torch.float64
    img, t = two_box_sample(seed=3, keypoints=preset.endswith("KP"))
    m32.train()
    m64.train()
    torch.manual_seed(5)
    l32 = m32([img], [t])
    torch.manual_seed(5)
    l64 = m64([img], [t])
    assert set(l32) == set(l64)
    for k in l32:
        assert l64[k].dtype == torch.float64, k
        torch.testing.assert_close(l64[k].float(), l32[k], rtol=1e-3, atol=1e-5, msg=k)
    sum(l64.values()).backward()
    grads = [p.grad for p in m64.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float64 for g in grads)


@pytest.mark.parametrize("preset", ["R18-FPN", "R18-FPN-KP"])
def test_float64_model_predicts_like_float32(preset, small_config, two_box_sample):
    m32, m64 = _pair(small_config, preset, **_kp(preset))
    img, _ = two_box_sample(seed=3, keypoints=preset.endswith("KP"))
    d32 = m32.predict(img)[0]
    d64 = m64.predict(img)[0]
    assert d64.boxes.dtype == torch.float64 and len(d64) == len(d32) > 0
    torch.testing.assert_close(d64.scores.float(), d32.scores, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(d64.boxes.float(), d32.boxes, rtol=1e-4, atol=1e-3)
    assert torch.equal(d64.labels, d32.labels)
    assert (d64.masks is None) == (d32.masks is None)
    if d32.masks is not None:  # pasted masks differ at most where a probability sits at the 0.5 threshold
        assert (d64.masks != d32.masks).float().mean() < 1e-3
    if preset.endswith("KP"):
        torch.testing.assert_close(d64.keypoints[..., :2].float(), d32.keypoints[..., :2], rtol=1e-4, atol=1e-2)


def test_to_moves_every_tensor_including_preprocessing(small_config):
    model = mn.Model("R18-FPN-KP", **small_config, keypoint_head_dim=32)
    model.to("meta")
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    assert any(n.startswith("preprocess.") for n, _ in model.named_buffers())
    off = [n for n, t in tensors if t.device.type != "meta"]
    assert off == []


def test_preprocessing_buffers_stay_out_of_the_state_dict(small_model):
    model = small_model
    assert not any(k.startswith("preprocess.") for k in model.state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_predicts_on_the_device(small_config, two_box_sample):
    model = mn.Model("R18-FPN", **small_config).cuda().eval()
    det = model.predict(two_box_sample(seed=3)[0])[0]
    assert det.boxes.device.type == "cuda" and det.masks.device.type == "cuda"
