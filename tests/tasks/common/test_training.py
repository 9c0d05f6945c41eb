"""tasks/common/training.py's LossMeter: means of the global batch across processes, and the sums
a checkpoint carries so that a resumed run logs what the uninterrupted one logs."""

import pytest
import torch

from robustrep.tasks.common.training import LossMeter


def _ranks(values):
    """Two processes' meters, each fed its share of the batch's loss terms per step."""
    meters = [LossMeter(), LossMeter()]
    for step, per_rank in enumerate(values):
        for meter, v in zip(meters, per_rank):
            meter.update(step, {"d/total": torch.tensor(v)})
    return meters


def _all_reduce(meters):
    """A sum over the processes, as torch.distributed.all_reduce does (in place on rank 0's)."""
    return lambda t: t.copy_(sum(m.state[: t.shape[0]] for m in meters))


def test_a_logged_mean_is_every_processes_not_the_firsts():
    meters = _ranks([(1.0, 3.0), (2.0, 6.0)])
    means, bad = meters[0].poll(reduce=_all_reduce(meters))
    assert means == {"d/total": pytest.approx(3.0)} and bad is None  # (1 + 3 + 2 + 6) / 4
    assert meters[1].poll()[0] == {"d/total": 4.5}  # without the reduce: this process's share


def test_a_checkpoint_carries_the_global_sums_once():
    meters = _ranks([(1.0, 3.0)])
    saved = meters[0].state_dict(reduce=_all_reduce(meters))
    first, second = LossMeter(), LossMeter()
    first.load_state_dict(saved)
    second.load_state_dict(saved, keep_sums=False)  # counted once, by the first process
    for meter, v in zip((first, second), (5.0, 7.0)):
        meter.update(1, {"d/total": torch.tensor(v)})
    # the uninterrupted run's mean of steps 0 and 1: (1 + 3 + 5 + 7) / 4
    assert first.poll(reduce=_all_reduce([first, second]))[0] == {"d/total": 4.0}


def test_processes_with_other_terms_reduce_the_same_columns():
    """A term only one process logged (a plugin's, drawn per process): before the reduce every
    meter holds every term in one order, so sums pair with their own term."""
    a, b = LossMeter(), LossMeter()
    a.update(0, {"d/total": torch.tensor(1.0), "d/extra": torch.tensor(10.0)})
    b.update(0, {"d/total": torch.tensor(3.0)})
    union = list(dict.fromkeys(a.keys + b.keys))  # as TrainerBase._align_terms orders them
    for meter in (a, b):
        meter.align(union, "cpu")
    assert a.keys == b.keys == ["d/total", "d/extra"]
    means, bad = a.poll(reduce=_all_reduce([a, b]))
    assert means == {"d/total": 2.0, "d/extra": 10.0} and bad is None
    empty = LossMeter()
    empty.align(["d/total"], "cpu")  # a process that logged nothing yet
    assert empty.poll()[0] == {}


def test_the_first_non_finite_term_named_is_a_part_not_its_total():
    # was "d/total" (alphabetically first) when a plugin's d/wrongret went NaN with it
    meter = LossMeter()
    meter.update(0, {"d/real": torch.tensor(1.0), "d/total": torch.tensor(2.0)})
    nan = torch.tensor(float("nan"))
    meter.update(1, {"d/real": torch.tensor(1.0), "d/total": nan, "d/wrongret": nan})
    meter.update(2, {"d/real": nan, "d/total": nan, "d/wrongret": nan})
    assert meter.poll()[1][:2] == (1, "d/wrongret")
