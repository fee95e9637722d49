"""One train step and one predict of a small model on CUDA vs the CPU run
(same weights, same inputs): losses and detections agree within tolerance.
Skipped without a GPU."""

import copy

import pytest
import torch

import maskrcnn_native as mn

pytestmark = pytest.mark.skipif(
    not (mn.cuda_available() and torch.cuda.is_available()),
    reason="needs CUDA kernels in the build, a CUDA torch and a visible GPU "
           f"(build cuda={mn.build_info()['cuda']}, devices={mn._C.cuda_device_count()}, "
           f"torch.cuda={torch.cuda.is_available()})")

SMALL = dict(min_size=64, max_size=96, num_classes=3, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=20,
             rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30, box_batch_size_per_image=16,
             score_threshold=0.0, detections_per_image=10)


def test_train_step_and_predict_cuda_match_cpu(two_box_sample):
    torch.manual_seed(0)
    cpu = mn.Model("R18-FPN", **SMALL)
    gpu = copy.deepcopy(cpu).to("cuda")
    img, t = two_box_sample(seed=0)
    tg = {k: v.to("cuda") for k, v in t.items()}
    cpu.train()
    gpu.train()
    torch.manual_seed(1)
    lc = cpu([img], [t])
    torch.manual_seed(1)  # (samplers draw on the CPU generator; the model passes device=)
    lg = gpu([img.to("cuda")], [tg])
    assert set(lc) == set(lg)
    for k in lc:
        assert lg[k].is_cuda
        torch.testing.assert_close(lg[k].detach().cpu(), lc[k].detach(), rtol=1e-3, atol=1e-4, msg=k)
    sum(lg.values()).backward()
    assert all(p.grad is None or p.grad.is_cuda for p in gpu.parameters())
    cpu.eval()
    gpu.eval()
    with torch.no_grad():
        dc = cpu.predict([img])[0]
        dg = gpu.predict([img.to("cuda")])[0]
    assert len(dc.boxes) == len(dg.boxes)
    torch.testing.assert_close(dg.boxes.cpu(), dc.boxes, rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(dg.scores.cpu(), dc.scores, rtol=1e-3, atol=1e-3)
    assert torch.equal(dg.labels.cpu(), dc.labels)
