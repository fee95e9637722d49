"""Trains the toy model with mn.train; run as a script (plain or under torchrun)
by the engine tests so that runs can be killed and restarted."""

import argparse

import torch

# A script's own folder heads sys.path (Python's rule for `python path/to/run_toy.py`),
# so toy.py beside it imports as `toy`; maskrcnn_native comes from the caller's PYTHONPATH.
from toy import ToyDataset, ToyDetector

from maskrcnn_native.engine import TrainConfig, apply_overrides, train


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
