"""A tiny detector-shaped model and dataset for engine tests: the same
interface as mn.Model in training mode (``model(images, targets)`` -> dict of
scalar losses) and as the detection datasets (``(image, target)`` items), but
small enough that a training iteration takes milliseconds. The model draws
from torch's global RNG (like the RoI sampler) and the dataset flips with the
global RNG (like the transforms), so seeding and resume are exercised."""

import time

import torch
import torch.nn.functional as F
from torch import nn


class ToyDataset(torch.utils.data.Dataset):
    num_classes = 3

    def __init__(self, n=12, size=24, seed=0):
        self.n, self.size, self.seed = n, size, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 1000 + i)
        s = self.size
        image = torch.rand(3, s, s, generator=g)
        x1, y1 = torch.randint(0, s // 2, (2,), generator=g).tolist()
        box = torch.tensor([[x1, y1, x1 + s // 3, y1 + s // 4]], dtype=torch.float32)
        label = torch.randint(1, self.num_classes, (1,), generator=g)
        mask = torch.zeros(1, s, s, dtype=torch.uint8)
        mask[0, y1 : y1 + s // 4, x1 : x1 + s // 3] = 1
        image[:, y1 : y1 + s // 4, x1 : x1 + s // 3] += 0.5 * label.float()
        target = {"boxes": box, "labels": label, "masks": mask, "image_id": i}
        if torch.rand(()) < 0.5:  # augmentation from the global RNG
            image = image.flip(-1)
            b = target["boxes"]
            target["boxes"] = torch.stack([s - b[:, 2], b[:, 1], s - b[:, 0], b[:, 3]], 1)
            target["masks"] = mask.flip(-1)
        return image, target


class ToyDetector(nn.Module):
    def __init__(self, num_classes=3, sleep=0.0, nan_at_call=None):
        super().__init__()
        torch.manual_seed(1234)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.box = nn.Linear(8, 4)
        self.cls = nn.Linear(8, num_classes)
        self.register_buffer("frozen_scale", torch.ones(8))
        self.sleep = sleep
        self.nan_at_call = nan_at_call
        self.calls = 0

    def forward(self, images, targets=None):
        self.calls += 1
        if self.sleep:
            time.sleep(self.sleep)
        box_losses, cls_losses = [], []
        for im, t in zip(images, targets):
            feat = F.relu(self.conv(im[None])) * self.frozen_scale[None, :, None, None]
            flat = feat.flatten(2)
            idx = torch.randperm(flat.shape[-1])[:32]  # random sampling, like the RoI sampler
            pooled = flat[..., idx].mean(-1)
            h = im.shape[-1]
            box_losses.append(F.smooth_l1_loss(self.box(pooled), t["boxes"][:1] / h))
            cls_losses.append(F.cross_entropy(self.cls(pooled), t["labels"][:1]))
        losses = {
            "loss_box_reg": torch.stack(box_losses).mean(),
            "loss_classifier": torch.stack(cls_losses).mean(),
        }
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            losses["loss_mask"] = losses["loss_box_reg"] * float("nan")
        else:
            losses["loss_mask"] = losses["loss_box_reg"] * 0.0
        return losses
