"""Deterministic data order for training, independent of how the global batch
is split across processes and accumulation steps.

The order is one endless stream of dataset indices: epoch ``e`` is a
permutation seeded by ``(seed, e)``, and global position ``p`` is element
``p % N`` of epoch ``p // N``'s permutation. Iteration ``i`` consumes the
positions ``[i*G, (i+1)*G)`` with ``G = batch_size * world_size * accum``,
split into ``world_size * accum`` *slots* of ``batch_size`` images; slot
``k = micro_step * world_size + rank``. So a 2-process run and a 1-process
run with 2 accumulation steps see exactly the same images in the same slots,
and resuming at iteration ``i`` needs nothing but ``i``.

Each sample also gets its own seed (from ``(seed, position)``) that seeds the
augmentation RNGs while it is loaded, so flips and scale jitter are the same
whichever worker loads the image and whether or not the run was resumed.
"""

from __future__ import annotations

import random
from typing import Any, Iterator, List, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

__all__ = ["derive_seed", "GlobalOrder", "TrainBatchSampler", "SeededDataset"]


def derive_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from a tuple of non-negative ints."""
    ss = np.random.SeedSequence([int(v) & 0xFFFFFFFFFFFFFFFF for v in values])
    a, b = ss.generate_state(2, dtype=np.uint32)
    return ((int(a) << 32) | int(b)) & 0x7FFFFFFFFFFFFFFF


_SAMPLE_STREAM = 1  # distinguishes per-sample seeds from other derived seeds
_ORDER_STREAM = 2


class GlobalOrder:
    """Position -> dataset index, epoch after epoch, seeded by (seed, epoch)."""

    def __init__(self, num_samples: int, seed: int):
        if num_samples <= 0:
            raise ValueError("the training dataset is empty")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self._epoch = -1
        self._perm: List[int] = []

    def permutation(self, epoch: int) -> List[int]:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, _ORDER_STREAM, epoch))
            self._perm = torch.randperm(self.num_samples, generator=g).tolist()
            self._epoch = epoch
        return self._perm

    def __getitem__(self, position: int) -> int:
        epoch, offset = divmod(int(position), self.num_samples)
        return self.permutation(epoch)[offset]

    def sample_seed(self, position: int) -> int:
        return derive_seed(self.seed, _SAMPLE_STREAM, int(position))


class TrainBatchSampler:
    """Yields this rank's micro-batches from ``start_iter`` to ``max_iter``:
    lists of ``(dataset_index, sample_seed)``, ``accum`` micro-batches per
    iteration (a batch sampler for ``torch.utils.data.DataLoader``)."""

    def __init__(
        self,
        order: GlobalOrder,
        batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        accum_steps: int = 1,
        start_iter: int = 0,
        max_iter: int = 1,
        start_position: int | None = None,
    ):
        if batch_size < 1 or accum_steps < 1:
            raise ValueError("batch_size and accum_steps must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world size {world_size}")
        self.order = order
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.accum_steps = accum_steps
        self.start_iter = start_iter
        self.max_iter = max_iter
        # global position of the first sample of start_iter: iteration * G
        # unless a resumed run changed the global batch size
        self.start_position = start_iter * self.global_batch if start_position is None else int(start_position)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size * self.accum_steps

    def slot(self, micro_step: int) -> int:
        return micro_step * self.world_size + self.rank

    def position_after(self, iteration: int) -> int:
        """Global position of the first sample not consumed by iterations < ``iteration``."""
        return self.start_position + (iteration - self.start_iter) * self.global_batch

    def positions(self, iteration: int, micro_step: int) -> range:
        start = self.position_after(iteration) + self.slot(micro_step) * self.batch_size
        return range(start, start + self.batch_size)

    def __len__(self) -> int:
        return max(0, self.max_iter - self.start_iter) * self.accum_steps

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        for it in range(self.start_iter, self.max_iter):
            for m in range(self.accum_steps):
                yield [(self.order[p], self.order.sample_seed(p)) for p in self.positions(it, m)]


class SeededDataset(Dataset):
    """Wraps a map-style dataset; item ``(index, seed)`` is ``dataset[index]``
    loaded with torch, numpy and python ``random`` seeded from ``seed``. In
    the main process the previous RNG states are restored afterwards, so
    loading never perturbs the training RNG streams."""

    def __init__(self, dataset: Sequence[Any]):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: Tuple[int, int]) -> Any:
        index, seed = item
        in_main = get_worker_info() is None
        if in_main:
            saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        # the CPU generator only (what a dataset's transforms draw from; the
        # state restored below is the CPU one too): torch.manual_seed would also
        # queue CUDA seeding with a formatted stack, ~0.15 ms per item
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            if in_main:
                torch.set_rng_state(saved[0])
                np.random.set_state(saved[1])
                random.setstate(saved[2])
