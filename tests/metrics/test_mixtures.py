"""Mode coverage / sample quality on constructed samples with exactly known counts."""

import math

import pytest
import torch

from robustrep.metrics import mode_stats


def _grid_centers():
    # 3x3 grid with spacing 10: modes never compete for a sample within 3 std (std = 1)
    xs = torch.tensor([-10.0, 0.0, 10.0], dtype=torch.float64)
    return torch.cartesian_prod(xs, xs)


def test_known_counts():
    centers = _grid_centers()  # mode 0 = (-10, -10), mode 4 = (0, 0), mode 8 = (10, 10)
    samples = torch.tensor([
        [-10.0, -10.0], [-9.5, -10.0], [-10.0, -8.0], [-11.0, -11.0],  # 4 near mode 0
        [0.0, 2.9], [0.1, -0.1],                                          # 2 near mode 4
        [10.0, 13.0],        # exactly 3 std from mode 8: not high quality (strict, as PacGAN)
        [5.0, 5.0], [-5.0, 0.0], [10.0, 5.0],                             # between modes
    ], dtype=torch.float64)
    out = mode_stats(samples, centers, std=1.0)
    expected_counts = [4, 0, 0, 0, 2, 0, 0, 0, 0]
    assert out["counts"].tolist() == expected_counts
    assert out["modes_covered"] == 2
    assert out["high_quality"] == pytest.approx(6 / 10)
    p = torch.tensor([4 / 6, 2 / 6], dtype=torch.float64)
    assert out["kl_uniform"] == pytest.approx(float((p * torch.log(p * 9)).sum()), rel=1e-12)
    assert mode_stats(samples, centers, std=1.0, min_count=3)["modes_covered"] == 1
    assert mode_stats(samples, centers, std=1.0, threshold=3.5)["counts"][8] == 1


def test_uniform_coverage_and_collapse():
    centers = _grid_centers()
    even = centers.repeat(5, 1) + 0.1
    out = mode_stats(even, centers, std=1.0)
    assert out["modes_covered"] == 9 and out["high_quality"] == 1.0
    assert out["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    collapsed = mode_stats(centers[:1].repeat(20, 1).float(), centers.float(), std=1.0)
    assert collapsed["modes_covered"] == 1
    assert collapsed["kl_uniform"] == pytest.approx(math.log(9))


def test_per_mode_std_and_no_high_quality():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.0, 2.0], [10.0, 2.0]])
    # 2 away from each mode: within 3 std of mode 0 (std 1), not of mode 1 (std 0.5)
    out = mode_stats(samples, centers, std=torch.tensor([1.0, 0.5]))
    assert out["counts"].tolist() == [1, 0]
    far = mode_stats(torch.full((4, 2), 100.0), centers, std=1.0)
    assert far["modes_covered"] == 0 and far["high_quality"] == 0.0
    assert math.isnan(far["kl_uniform"])


def test_rejects_bad_input():
    centers = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="std"):
        mode_stats(torch.zeros(4, 2), centers, std=-1.0)
    with pytest.raises(ValueError, match="one value per mode"):
        mode_stats(torch.zeros(4, 2), centers, std=torch.ones(2))
    with pytest.raises(ValueError, match="same dimension"):
        mode_stats(torch.zeros(4, 3), centers, std=1.0)
