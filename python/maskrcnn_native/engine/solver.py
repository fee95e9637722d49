"""SGD with momentum and the paper's schedule: linear warmup, step decay."""

from __future__ import annotations

import bisect
from typing import Any, Dict, Sequence

import torch

__all__ = ["build_optimizer", "WarmupMultiStepLR"]


def build_optimizer(model: torch.nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD over the trainable parameters (frozen BatchNorm and frozen stages
    have ``requires_grad=False`` and are left out)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    # foreach: one C++ call per update instead of ~3 Python-dispatched ops per
    # parameter (torch only defaults to it on CUDA); the same arithmetic.
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)


class WarmupMultiStepLR:
    """lr(i) = base_lr * warmup(i) * gamma ** (number of steps <= i), with
    warmup(i) = warmup_factor * (1 - i / warmup_iters) + i / warmup_iters for
    i < warmup_iters and 1 afterwards. ``apply(i)`` writes lr(i) into every
    parameter group before update i (0-based)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        base_lr: float,
        warmup_iters: int = 0,
        warmup_factor: float = 0.001,
        steps: Sequence[int] = (),
        gamma: float = 0.1,
    ):
        if list(steps) != sorted(steps):
            raise ValueError(f"solver.steps must be increasing, got {list(steps)}")
        self.optimizer = optimizer
        self.base_lr = float(base_lr)
        self.warmup_iters = int(warmup_iters)
        self.warmup_factor = float(warmup_factor)
        self.steps = [int(s) for s in steps]
        self.gamma = float(gamma)
        self.last_iter = -1

    def lr_at(self, iteration: int) -> float:
        factor = 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            factor = self.warmup_factor * (1.0 - alpha) + alpha
        return self.base_lr * factor * self.gamma ** bisect.bisect_right(self.steps, iteration)

    def apply(self, iteration: int) -> float:
        lr = self.lr_at(iteration)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.last_iter = iteration
        return lr

    def state_dict(self) -> Dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "warmup_iters": self.warmup_iters,
            "warmup_factor": self.warmup_factor,
            "steps": list(self.steps),
            "gamma": self.gamma,
            "last_iter": self.last_iter,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.last_iter = int(state["last_iter"])
