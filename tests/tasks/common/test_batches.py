"""The batch order both training programs use is a function of (seed, step) alone."""

from itertools import islice

import pytest
import torch

from robustrep.tasks.common.batches import StepBatches, epoch_permutation
from robustrep.tasks.common.errors import DataError


def test_batch_order_is_a_function_of_the_step():
    full = StepBatches(100, 8, 3, 0, 30)
    later = StepBatches(100, 8, 3, 17, 30)
    assert list(full)[17:] == list(later)
    # without a stop it goes on through the epochs (12 batches of 8 per epoch of 100)
    endless = list(islice(iter(StepBatches(100, 8, 3, start=10)), 20))
    assert endless == list(StepBatches(100, 8, 3, 10, 30))
    assert len(StepBatches(100, 8, 3, 10, 30)) == 20


def test_each_epoch_is_its_permutation_in_global_batches_shared_by_rank():
    perm = epoch_permutation(100, 3, 1)
    ranks = [StepBatches(100, 4, 3, rank=r, world_size=2) for r in range(2)]
    # step 12 is epoch 1's first global batch of 8: rank 0 the first half, rank 1 the second
    assert ranks[0].batch(12) == perm[:4].tolist() and ranks[1].batch(12) == perm[4:8].tolist()
    assert not set(ranks[0].batch(5)) & set(ranks[1].batch(5))
    # the global batch does not depend on how it is split between processes
    assert StepBatches(100, 8, 3).batch(13) == ranks[0].batch(13) + ranks[1].batch(13)


def test_repeat_replays_each_batch():
    batches = StepBatches(100, 8, 3, repeat=3)
    assert batches.batch(0) == batches.batch(2) != batches.batch(3)


def test_fewer_samples_than_a_global_batch_is_a_data_error():
    with pytest.raises(DataError, match="fewer than one global batch"):
        StepBatches(7, 4, 0, world_size=2)
    assert torch.equal(epoch_permutation(10, 1, 0), epoch_permutation(10, 1, 0))
