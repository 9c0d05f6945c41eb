"""Mode coverage / sample quality on constructed samples with exactly known counts."""

import math
import re

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


# --- what mutation testing found unpinned: boundaries, names, the exact distance, a bug ---

@pytest.mark.parametrize("std, shown", [
    (torch.tensor(-1.0), "[-1, -1]"),
    (torch.tensor([1.0, 0.0]), "[0, 1]"),
    (torch.tensor([1.0, math.inf]), "[1, inf]"),
    (torch.tensor([math.nan, 1.0]), "[nan, nan]"),
])
def test_a_std_tensor_must_be_positive_and_finite(std, shown):
    # Was: a negative std made every distance negative, so every sample was "high quality" and
    # went to its *farthest* mode; a float std was checked, a tensor one was not.
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[50.0, 50.0], [10.0, 0.5]])
    with pytest.raises(ValueError, match=r"^std must be > 0 and finite, got values in "
                                         + re.escape(shown) + "$"):
        mode_stats(samples, centers, std=std)


def test_coverage_boundaries_one_sample_and_a_scalar_tensor_std():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.0, 1.0], [0.0, -1.0], [10.0, 1.0]])
    # a mode with exactly min_count samples is covered; the default min_count is PacGAN's 1
    assert mode_stats(samples, centers, std=1.0)["modes_covered"] == 2
    assert mode_stats(samples, centers, std=1.0, min_count=2)["modes_covered"] == 1
    assert mode_stats(samples, centers, std=torch.tensor(1.0))["counts"].tolist() == [2, 1]
    assert mode_stats(samples[:1], centers, std=1.0)["high_quality"] == 1.0


def test_distances_are_exact_at_the_threshold_for_many_samples():
    # Past 25 rows cdist's default takes the matmul expansion, which (on this machine's BLAS)
    # puts 8 of these samples exactly 3 std from (357.21, 702.22) just inside 3; the direct
    # differences keep them at 3, which is not "< 3" (PacGAN's test).
    centers = torch.tensor([[357.21, 702.22], [857.21, 702.22]], dtype=torch.float64)
    offsets = torch.tensor([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, -3.0]] * 8,
                           dtype=torch.float64)
    samples = torch.cat([centers[0] + offsets, centers[0] + offsets[:8] / 6])  # 40 samples
    assert mode_stats(samples, centers, std=1.0)["counts"].tolist() == [8, 0]


def test_arguments_are_named():
    samples, centers = torch.zeros(4, 2), torch.zeros(3, 2)
    with pytest.raises(TypeError, match="^samples must be a floating-point tensor"):
        mode_stats(samples.long(), centers, std=1.0)
    with pytest.raises(TypeError, match="^centers must be a floating-point tensor"):
        mode_stats(samples, centers.long(), std=1.0)
    with pytest.raises(ValueError, match="^threshold must be > 0, got 0$"):
        mode_stats(samples, centers, std=1.0, threshold=0)
    with pytest.raises(ValueError, match="^min_count must be > 0, got 0$"):
        mode_stats(samples, centers, std=1.0, min_count=0)
    with pytest.raises(TypeError, match="^min_count must be a positive int, got float$"):
        mode_stats(samples, centers, std=1.0, min_count=1.0)
    with pytest.raises(ValueError, match="^std must be > 0, got -1.0$"):
        mode_stats(samples, centers, std=-1.0)
    with pytest.raises(ValueError, match=r"^std must have rank 0 or 1, got rank 2 with shape "
                                         r"\(3, 1\)$"):
        mode_stats(samples, centers, std=torch.ones(3, 1))
    with pytest.raises(ValueError, match=r"^std must be a number or one value per mode \(3\), got "
                                         r"shape \(2,\)$"):
        mode_stats(samples, centers, std=torch.ones(2))
