"""Trains the toy model with mn.train; run as a script (plain or under torchrun)
by the engine tests so that runs can be killed and restarted."""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy import ToyDataset, ToyDetector  # noqa: E402

from maskrcnn_native.engine import TrainConfig, apply_overrides, train  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cfg = apply_overrides(TrainConfig(output_dir=a.out, progress=False, eval_at_end=False, device="cpu"), a.set)
    train(cfg, model=ToyDetector(sleep=a.sleep), train_dataset=ToyDataset())


if __name__ == "__main__":
    main()
