"""ModelConfig.mask_batch_size_per_image: at most that many positive RoIs per
image train the mask head, drawn at random (seeded), the rest unchanged."""

import pytest
import torch

import maskrcnn_native as mn
from maskrcnn_native.modeling.roi_heads.roi_heads import SampledRoIs, _positives


def _sample(labels):
    n = len(labels)
    return SampledRoIs(
        boxes=torch.arange(4 * n, dtype=torch.float32).view(n, 4),
        labels=torch.tensor(labels),
        matched=torch.arange(n),
        gt_boxes=torch.zeros(n, 4),
    )


def test_positives_limit_keeps_a_seeded_ordered_subset():
    samples = [_sample([1, 0, 2, 2, 0, 1, 3, 1]), _sample([0, 1, 0]), _sample([0, 0])]
    boxes, matched, rows = _positives(samples)
    assert [b.shape[0] for b in boxes] == [6, 1, 0]
    torch.manual_seed(0)
    b3, m3, r3 = _positives(samples, limit=3)
    assert [b.shape[0] for b in b3] == [3, 1, 0]
    assert set(r3[:3].tolist()) <= set(rows[:6].tolist())  # positives of image 0 only
    assert r3[:3].tolist() == sorted(r3[:3].tolist())
    assert torch.equal(b3[0], samples[0].boxes[r3[:3]]) and torch.equal(m3[0], samples[0].matched[r3[:3]])
    assert r3[3].item() == 8 + 1  # image 1's single positive, offset by image 0's 8 rows
    torch.manual_seed(0)
    assert torch.equal(_positives(samples, limit=3)[2], r3)  # same seed, same draw
    picks = set()
    for seed in range(20):
        torch.manual_seed(seed)
        picks.add(tuple(_positives(samples, limit=3)[2][:3].tolist()))
    assert len(picks) > 1  # a random subset, not always the first three


def test_mask_head_sees_at_most_the_limit():
    masks = torch.zeros(3, 96, 96, dtype=torch.uint8)
    masks[:, 10:40, 10:40] = 1
    tg = {"boxes": torch.tensor([[10.0, 10, 40, 40], [12, 12, 42, 44], [50, 50, 90, 80]]),
          "labels": torch.tensor([1, 2, 1]), "masks": masks}
    seen = []
    for cap in (None, 2):
        torch.manual_seed(0)
        m = mn.Model("R18-FPN", num_classes=3, min_size=96, max_size=96, box_batch_size_per_image=64,
                     mask_batch_size_per_image=cap).train()
        hook = m.roi_heads.mask_head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
        torch.manual_seed(1)
        losses = m([torch.rand(3, 96, 96), torch.rand(3, 96, 96)], [dict(tg), dict(tg)])
        hook.remove()
        assert torch.isfinite(losses["loss_mask"])
        losses["loss_mask"].backward()
        assert m.roi_heads.mask_head.convs[0].weight.grad is not None
    assert seen[0] > 4 and seen[1] == 4  # 2 images x at most 2


def test_mask_batch_size_is_validated():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="mask_batch_size_per_image"):
            mn.Model("R18-FPN", num_classes=3, mask_batch_size_per_image=bad)
