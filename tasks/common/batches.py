"""The order of training batches as a pure function of ``(seed, step)``: resuming needs no
sampler state, and a run resumed at step ``s`` reads the batches the uninterrupted run would.

Epoch ``e`` is a permutation drawn from a generator seeded with ``(seed, e)``; step ``s`` takes
the ``s``-th global batch of ``batch_size * world_size`` indices (the last partial batch of an
epoch is dropped), and this process keeps its ``rank``-th share. Shared by the GAN and classify
programs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from robustrep.tasks.common.errors import DataError


def epoch_permutation(size: int, seed: int, epoch: int) -> Tensor:
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def check_global_batch(size: int, batch_size: int, world_size: int = 1) -> None:
    """A training set must fill one global batch (called before a run folder is made)."""
    if size < batch_size * world_size:
        raise DataError(f"the training set has {size} samples, fewer than one global batch "
                        f"({batch_size} x {world_size} processes); lower --batch-size")


class StepBatches(Sampler):
    """Index lists of this process's share of the global batches of steps ``start .. stop - 1``
    (``stop=None``: without end). ``repeat`` replays each batch that many steps (free
    adversarial training)."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int = 0,
                 stop: int | None = None, rank: int = 0, world_size: int = 1, repeat: int = 1):
        check_global_batch(size, batch_size, world_size)
        global_batch = batch_size * world_size
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world_size
        self.repeat = repeat
        self.per_epoch = size // global_batch
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return 2 ** 62 if self.stop is None else max(0, self.stop - self.start)

    def batch(self, step: int) -> list[int]:
        epoch, pos = divmod(step // self.repeat, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, epoch_permutation(self.size, self.seed, epoch)
        lo = (pos * self.world + self.rank) * self.batch_size
        return self._perm[lo:lo + self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while self.stop is None or step < self.stop:
            yield self.batch(step)
            step += 1
