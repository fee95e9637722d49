"""Process-group helpers for torchrun (gloo on CPU, nccl on CUDA).

``torchrun --nproc_per_node N -m maskrcnn_native train ...`` sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed`
reads them. Without them everything runs as a single process.

BatchNorm trained with batch statistics (``norm="bn"``) is synchronised
across ranks (:func:`convert_sync_batchnorm`): every rank normalises with the
mean and variance of the *global* batch, as one process holding the whole
batch would. torch's ``nn.SyncBatchNorm`` runs on GPUs only; this one works on
CPU (gloo) and CUDA alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "init_distributed",
    "shutdown_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "all_gather_object",
    "all_reduce_mean",
    "barrier",
    "SyncBatchNorm1d",
    "SyncBatchNorm2d",
    "convert_sync_batchnorm",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # True when init_distributed created the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _resolve_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        from .. import cuda_available  # CUDA only when the native ops have kernels for it

        device = "cuda" if torch.cuda.is_available() and cuda_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if device != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistInfo:
    """Joins the process group described by the torchrun environment variables
    (or reuses one that is already initialised). Single process otherwise."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local_rank, _resolve_device(device, local_rank), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, _resolve_device(device, 0), False)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    dev = _resolve_device(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, dev, True)


def shutdown_distributed(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if _active() else 0


def get_world_size() -> int:
    return dist.get_world_size() if _active() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if _active():
        dist.barrier()


def all_gather_object(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` on one process)."""
    if not _active():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (a copy; ``t`` itself is untouched)."""
    t = t.detach().clone()
    if _active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) whose backward all-reduces the gradient (every rank's
    loss depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        t = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    return _SumOverRanks.apply(t)


def _sync_bn_forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, dim: int, name: str) -> torch.Tensor:
    """Training-mode batch norm of ``x`` ([N, C] or [N, C, H, W]) with the
    statistics of the global batch over all ranks."""
    if x.dim() != dim:
        raise ValueError(f"{name}: expected a {dim}-D input, got {x.dim()}-D")
    c = x.shape[1]
    reduce_dims = (0,) if dim == 2 else (0, 2, 3)
    shape = (1, c) if dim == 2 else (1, c, 1, 1)
    count = torch.tensor([x.numel() // max(c, 1)], dtype=torch.float64, device=x.device)
    dist.all_reduce(count)
    n = float(count.item())
    if n <= 1:
        raise ValueError(f"{name}: need more than one value per channel in the global batch, got {n:g}")
    xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
    mean = _sum_over_ranks(xf.sum(reduce_dims)) / n
    centred = xf - mean.view(shape)
    var = _sum_over_ranks((centred * centred).sum(reduce_dims)) / n
    y = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    nbt, rmean, rvar = bn.num_batches_tracked, bn.running_mean, bn.running_var
    if bn.track_running_stats and nbt is not None and rmean is not None and rvar is not None:
        with torch.no_grad():
            nbt.add_(1)
            m = bn.momentum if bn.momentum is not None else 1.0 / float(nbt.item())
            rmean.mul_(1 - m).add_(mean.detach().to(rmean.dtype), alpha=m)
            unbiased = var.detach() * (n / (n - 1))
            rvar.mul_(1 - m).add_(unbiased.to(rvar.dtype), alpha=m)
    return y.to(x.dtype)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics are those of the
    global batch over all ranks (two all-reduces: the sum, then the sum of
    squared deviations from the global mean, so the variance is the same
    two-pass value one process computes). Eval mode and single-process runs
    are plain BatchNorm2d. Modules become this class in place (see
    :func:`convert_sync_batchnorm`), so references to them stay valid and
    ``isinstance(m, nn.BatchNorm2d)`` still holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _active()):
            return super().forward(x)
        return _sync_bn_forward(self, x, 4, "SyncBatchNorm2d")


class SyncBatchNorm1d(nn.BatchNorm1d):
    """:class:`SyncBatchNorm2d` for [N, C] inputs (the box head's
    ``box_head_norm="bn"``): the global batch's statistics over all ranks in
    training, plain BatchNorm1d otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _active()):
            return super().forward(x)
        return _sync_bn_forward(self, x, 2, "SyncBatchNorm1d")


def convert_sync_batchnorm(model: nn.Module) -> int:
    """Turns every ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` of ``model`` into
    :class:`SyncBatchNorm2d` / :class:`SyncBatchNorm1d` in place (same
    parameters, buffers and state_dict keys); returns how many. Call it before
    wrapping the model in DistributedDataParallel."""
    n = 0
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncBatchNorm2d
            n += 1
        elif type(m) is nn.BatchNorm1d:
            m.__class__ = SyncBatchNorm1d
            n += 1
    return n
