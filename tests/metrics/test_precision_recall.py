"""Improved precision/recall against a brute-force numpy reference."""

import numpy as np
import pytest
import torch

from robustrep.metrics import knn_radii, manifold_coverage, precision_recall


def _brute_force(real, fake, k):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

    def radii(x):
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    def covered(query, ref, r):
        d = np.sqrt(((query[:, None, :] - ref[None, :, :]) ** 2).sum(-1))
        return (d <= r[None, :]).any(axis=1)

    r_real, r_fake = radii(real), radii(fake)
    return covered(fake, real, r_real).mean(), covered(real, fake, r_fake).mean(), r_real


def test_identical_sets_give_one():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone()) == {"precision": 1.0, "recall": 1.0}


def test_disjoint_far_sets_give_zero():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(40, 8, generator=gen)
    fake = torch.randn(30, 8, generator=gen) + 100.0
    assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force_across_chunkings(k):
    gen = torch.Generator().manual_seed(2)
    real = torch.randn(45, 5, generator=gen, dtype=torch.float64)
    # a narrower, shifted fake set: precision and recall strictly between 0 and 1
    fake = 0.6 * torch.randn(37, 5, generator=gen, dtype=torch.float64) + 0.8
    precision, recall, r_real = _brute_force(real.numpy(), fake.numpy(), k)
    assert 0 < precision < 1 and 0 < recall < 1
    for chunk in (4, 7, 1000):
        got = precision_recall(real, fake, k=k, chunk_size=chunk)
        assert got["precision"] == pytest.approx(precision, abs=1e-12)
        assert got["recall"] == pytest.approx(recall, abs=1e-12)
        np.testing.assert_allclose(knn_radii(real, k, chunk).numpy(), r_real, rtol=1e-12)


def test_coverage_is_inclusive_at_the_radius():
    ref = torch.tensor([[0.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    radii = torch.tensor([1.0, 0.5], dtype=torch.float64)
    query = torch.tensor([[1.0, 0.0], [1.01, 0.0], [3.0, 0.5], [3.0, 0.6]], dtype=torch.float64)
    got = manifold_coverage(query, ref, radii, chunk_size=1)
    assert got.tolist() == [True, False, True, False]


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="more than k=3"):
        knn_radii(torch.randn(3, 2))
    with pytest.raises(ValueError, match="feature dimension"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(TypeError, match="floating"):
        precision_recall(torch.ones(10, 2, dtype=torch.long), torch.randn(10, 2))


def test_matches_torch_fidelity_prc():
    prc = pytest.importorskip("torch_fidelity.metric_prc")
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(300, 16, generator=gen)
    fake = 1.2 * torch.randn(300, 16, generator=gen) + 0.3
    # torch-fidelity's order is (generated, real)
    want = prc.prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000,
                                      save_cpu_ram=False, verbose=False)
    got = precision_recall(real, fake, k=3)
    assert 0.2 < got["precision"] < 0.8  # a case where the value means something
    assert got["precision"] == pytest.approx(want["precision"], abs=1e-6)  # float32 means
    assert got["recall"] == pytest.approx(want["recall"], abs=1e-6)


def test_non_finite_features_are_refused():
    # Was: {"precision": 0.0, "recall": 0.0} for NaN features (NaN distances compare false)
    good = torch.randn(10, 4)
    for bad in (torch.full((10, 4), float("nan")), good.clone().index_fill_(0, torch.tensor([3]),
                                                                              float("inf"))):
        with pytest.raises(ValueError, match="fake_feats holds NaN or inf"):
            precision_recall(good, bad)
