"""A resumable, distributed epoch sampler.

Like :class:`torch.utils.data.DistributedSampler` (shuffle with ``seed + epoch``, pad to a
multiple of the world size, rank ``r`` takes every ``world``-th index starting at ``r``) but it
also yields the epoch with each index and can start part-way through an epoch, which is what
makes ``--resume`` bit-exact without replaying the data pipeline.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs for one rank.

    Args:
        size: number of scans in the dataset.
        shuffle: shuffle each epoch with a generator seeded ``seed + epoch``.
        rank, world_size: this process's share (every ``world_size``-th index from ``rank``).
        pad: pad to a multiple of ``world_size`` by repeating indices (False for evaluation, so no
            scan is counted twice).
    """

    def __init__(self, size, *, shuffle=True, seed=0, rank=0, world_size=1, pad=True):
        self.size, self.shuffle, self.seed = int(size), bool(shuffle), int(seed)
        self.rank, self.world_size, self.pad = int(rank), int(world_size), bool(pad)
        self.epoch = 0
        self.start = 0  # samples of this rank already consumed in this epoch

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch (reshuffles) and skip its first ``start`` samples of this rank."""
        self.epoch, self.start = int(epoch), int(start)

    def rank_indices(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=gen).tolist()
        else:
            order = list(range(self.size))
        if self.pad and self.size % self.world_size:
            extra = self.world_size - self.size % self.world_size
            order += (order * (extra // max(len(order), 1) + 1))[:extra]
        return order[self.rank :: self.world_size]

    def __iter__(self):
        for index in self.rank_indices()[self.start :]:
            yield (self.epoch, index)

    def __len__(self) -> int:
        return max(0, len(self.rank_indices()) - self.start)
