"""Process-group helpers for torchrun (gloo on CPU, nccl on CUDA).

``torchrun --nproc_per_node N -m maskrcnn_native train ...`` sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed`
reads them. Without them everything runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.distributed as dist

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
