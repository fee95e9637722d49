"""Trains the demo model (R18-FPN, norm="bn") with mn.train on a dataset
whose images share one object layout but differ in every pixel; run as a
script, plain or under torchrun, by test_two_process_real_model.py.

Why the shared layout and the exhaustive sampling (set by the test): the
model normalises its losses per process batch (torchvision's convention)
and samples anchors/RoIs with a per-slot RNG, so a 2x2 run and a 1x4 run
could only agree statistically. With every image matching the same anchors
and ground truth, all anchors and RoIs taken and the RoI heads trained on
the ground-truth boxes (no random proposals), each process's normalisers
equal the global ones and no randomness is left: what remains different is
the split of the batch over processes, which SyncBatchNorm must undo."""

import argparse
import sys

import torch


class SharedLayout(torch.utils.data.Dataset):
    def __init__(self, n, size):
        from maskrcnn_native.data import ShapesDataset

        self.base_image, self.target = ShapesDataset(1, image_size=size, seed=5).raw(0)
        self.n = n
        self.num_classes = 4
        self.class_names = ["__background__", "a", "b", "c"]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 + i)
        a = 0.4 + 0.8 * torch.rand((3, 1, 1), generator=g)
        b = 0.3 * torch.rand((3, 1, 1), generator=g)
        noise = 0.15 * torch.randn(self.base_image.shape, generator=g)
        image = (self.base_image.float() * a + b + noise).clamp(0, 1)
        return image, {k: (v.clone() if torch.is_tensor(v) else v) for k, v in self.target.items()}


def main():
    from maskrcnn_native.cli import demo_config
    from maskrcnn_native.engine import apply_overrides, train

    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--no-sync-bn", action="store_true", help="plain per-process BatchNorm (the control)")
    a = p.parse_args()
    if a.no_sync_bn:
        import maskrcnn_native.engine.trainer as trainer

        trainer.convert_sync_batchnorm = lambda model: 0
    import os

    import maskrcnn_native as mn

    threads = int(os.environ.get("MN_TEST_THREADS", "1"))
    torch.set_num_threads(threads)
    mn.set_num_threads(threads)
    cfg = demo_config(a.out, iters=4, train_images=8, eval_images=0)
    cfg = apply_overrides(cfg, {"progress": False, "eval_at_end": False, "device": "cpu", "log_period": 1,
                                "checkpoint_period": 1000})
    cfg = apply_overrides(cfg, a.set)
    train(cfg, train_dataset=SharedLayout(8, cfg.data.image_size))


if __name__ == "__main__":
    sys.exit(main())
