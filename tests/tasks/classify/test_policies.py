"""``--aa`` and ``--reprob``: timm's augmentation baselines really transform the training batch."""

import random

import numpy as np
import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.classify import train as train_mod
from robustrep.tasks.classify.policies import BatchPolicies
from robustrep.tasks.common.config import ConfigError

from .conftest import tiny_config


def test_reprob_one_erases_a_region_to_the_mean_colour():
    x = torch.full((6, 3, 16, 16), 0.9)
    out = BatchPolicies(None, 1.0, 16, (0.4, 0.5, 0.6), (0.2, 0.2, 0.2))(
        x, torch.Generator().manual_seed(0))
    erased = (out - x).abs().amax(1) > 1e-6  # [B, H, W]
    assert erased.flatten(1).any(1).all()  # every image lost a region
    assert (~erased).flatten(1).any(1).all()  # and kept the rest
    mean = torch.tensor([0.4, 0.5, 0.6]).view(3, 1)
    fill = out.permute(1, 0, 2, 3)[:, erased]
    torch.testing.assert_close(fill, mean.expand(3, int(erased.sum())))
    untouched = BatchPolicies(None, 0.0, 16, (0.5,) * 3, (0.2,) * 3).eraser
    assert untouched is None


@pytest.mark.parametrize("aa", ["rand-m9-mstd0.5", "augmix", "original", "trivialaugment"])
def test_aa_changes_images_and_follows_the_run_generator(aa):
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    policies = BatchPolicies(aa, 0.0, 16, (0.5,) * 3, (0.25,) * 3)
    a = policies(x, torch.Generator().manual_seed(2))
    b = policies(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)  # the same generator state, the same batch (exact resume)
    changed = (a - x).abs().flatten(1).amax(1) > 1 / 255
    assert changed.float().mean() >= 0.5


@pytest.mark.parametrize("aa", ["rand-m9-mstd0.5", "augmix", None])
def test_policies_leave_the_global_random_streams_alone(aa):
    """The policies draw from Python's and NumPy's global RNGs seeded per batch; the caller's
    streams continue afterwards exactly as if no batch had been augmented."""
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    policies = BatchPolicies(aa, 1.0, 16, (0.5,) * 3, (0.25,) * 3)
    policies(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
             torch.Generator().manual_seed(3))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_policies_do_not_reseed_the_gpu_streams(monkeypatch):
    """torch.manual_seed would reseed every CUDA device's global generator (dropout on the GPU)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", calls.append)
    BatchPolicies("rand-m9-mstd0.5", 0.0, 16, (0.5,) * 3, (0.25,) * 3)(
        torch.rand(2, 3, 16, 16), torch.Generator().manual_seed(3))
    assert calls == []


def test_train_step_applies_the_policies(monkeypatch, tmp_path):
    seen = []
    original = BatchPolicies.__call__

    def spy(self, x, generator):
        out = original(self, x, generator)
        seen.append(((out - x).abs().amax().item(), self.eraser is not None))
        return out

    monkeypatch.setattr(train_mod.BatchPolicies, "__call__", spy)
    train_mod.train(tiny_config(aa="rand-m9-mstd0.5", reprob=1.0, steps=2), tmp_path / "run",
                    quiet=True)
    assert len(seen) == 2 and all(diff > 0 and erasing for diff, erasing in seen)


def test_bad_policy_is_one_line_error():
    with pytest.raises(ConfigError, match="--aa: unknown policy 'nonsense'"):
        tiny_config(aa="nonsense")
    assert main(["classify", "train", "--aa", "nonsense", "--dry-run"]) == 2
