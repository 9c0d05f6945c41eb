"""FID statistics, Fréchet distance and KID against scipy/numpy and naive references."""

import numpy as np
import pytest
import scipy.linalg
import torch

from robustrep.metrics import FeatureStats, frechet_distance, kid, polynomial_mmd2
from robustrep.metrics.fid import _subset_indices


def _random_spd(d, rng):
    a = rng.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d) + 0.05 * np.eye(d)


def _scipy_fid(mu1, s1, mu2, s2):
    # pytorch-fid's formula: trace of scipy's matrix square root of the product.
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real


def test_frechet_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.5
    s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
    expected = _scipy_fid(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    got_torch = frechet_distance(*(torch.from_numpy(v) for v in (mu1, s1, mu2, s2)))
    assert got_torch == pytest.approx(expected, rel=1e-6)
    # float32 inputs are promoted to float64 before the eigendecompositions
    got_f32 = frechet_distance(*(torch.from_numpy(v).float() for v in (mu1, s1, mu2, s2)))
    assert got_f32 == pytest.approx(expected, rel=1e-4)


def test_frechet_identical_stats_is_zero_and_symmetric():
    rng = np.random.default_rng(1)
    mu, s = rng.standard_normal(32), _random_spd(32, rng)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9 * np.trace(s)
    mu2, s2 = rng.standard_normal(32), _random_spd(32, rng)
    assert frechet_distance(mu, s, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu, s),
                                                             rel=1e-9)


def test_frechet_diagonal_singular_closed_form():
    # Diagonal covariances: d^2 = |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2, also with a zero
    # variance (a singular covariance, where eigenvalues must be clamped, not NaN).
    a = np.array([0.0, 1.0, 4.0, 9.0])
    b = np.array([1.0, 1.0, 1.0, 16.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_rank_deficient_covariances_match_scipy():
    # Fewer samples than dimensions (FID on 1,000 samples of 2048-d features): Cholesky fails and
    # the symmetric square root takes over; the value is still scipy's.
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((20, 48)), rng.standard_normal((20, 48)) * 1.5
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_scipy_fid(mu1, s1, mu2, s2),
                                                               rel=1e-6)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(TypeError, match="mu1"):
        frechet_distance([0.0, 0.0], np.eye(2), np.zeros(2), np.eye(2))


def test_feature_stats_streaming_matches_numpy_cov():
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((103, 7)) * 3.0 + 5.0
    stats = FeatureStats()
    start = 0
    for size in (1, 50, 2, 50):  # uneven batches
        stats.update(torch.from_numpy(feats[start:start + size]).float())
        start += size
    assert stats.num == 103
    mu, sigma = stats.mean_cov()
    f32 = feats.astype(np.float32).astype(np.float64)  # what the float32 batches carried
    np.testing.assert_allclose(mu.numpy(), f32.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(f32, rowvar=False), rtol=1e-10, atol=1e-10)
    _, biased = stats.mean_cov(unbiased=False)
    np.testing.assert_allclose(biased.numpy(), np.cov(f32, rowvar=False, bias=True),
                               rtol=1e-10, atol=1e-10)
    assert mu.dtype == sigma.dtype == torch.float64


def test_feature_stats_merge_from_sums_and_state_dict():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(60, 5, generator=gen)
    whole = FeatureStats().update(x)
    part_a, part_b = FeatureStats().update(x[:17]), FeatureStats(dim=5).update(x[17:])
    merged = part_a.merge(part_b)
    rebuilt = FeatureStats.from_sums(torch.tensor(60), whole.sum, whole.sum_outer)
    restored = FeatureStats().load_state_dict(whole.state_dict())
    for other in (merged, rebuilt, restored):
        assert other.num == 60
        for got, want in zip(other.mean_cov(), whole.mean_cov()):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert FeatureStats().merge(whole).num == 60


def test_feature_stats_rejects_bad_input():
    stats = FeatureStats().update(torch.randn(4, 3))
    with pytest.raises(ValueError, match="3 features"):
        stats.update(torch.randn(4, 2))
    with pytest.raises(TypeError, match="floating"):
        stats.update(torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats().update(torch.randn(1, 3)).mean_cov()


def _naive_mmd2(x, y, degree=3, gamma=None, coef0=1.0):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k = lambda u, v: (gamma * float(np.dot(u, v)) + coef0) ** degree  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_polynomial_mmd2_matches_double_loop():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 3, generator=gen, dtype=torch.float64) + 0.5
    for kwargs in ({}, {"degree": 2, "gamma": 0.7, "coef0": 0.5}):
        got = polynomial_mmd2(x, y, **kwargs)
        assert float(got) == pytest.approx(_naive_mmd2(x, y, **kwargs), rel=1e-12)
    # batched: one estimate per leading entry
    xb, yb = torch.stack([x, x + 1]), torch.stack([y, y])
    got = polynomial_mmd2(xb, yb)
    assert got.shape == (2,)
    assert float(got[1]) == pytest.approx(_naive_mmd2(x + 1, y), rel=1e-12)


def test_kid_matches_naive_with_fixed_subsets():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(8, 4, generator=gen, dtype=torch.float64) * 1.5
    mean, std = kid(a, b, num_subsets=7, subset_size=5, generator=torch.Generator().manual_seed(9),
                    max_chunk_elements=1)  # one subset per chunk
    ref_gen = torch.Generator().manual_seed(9)
    idx_a = _subset_indices(9, 5, 7, ref_gen, a.device)
    idx_b = _subset_indices(8, 5, 7, ref_gen, a.device)
    for row in idx_a:
        assert len(set(row.tolist())) == 5  # without replacement
    mmds = [_naive_mmd2(a[ia].numpy(), b[ib].numpy()) for ia, ib in zip(idx_a, idx_b)]
    assert mean == pytest.approx(np.mean(mmds), rel=1e-10)
    assert std == pytest.approx(np.std(mmds), rel=1e-8)
    # chunking does not change the result
    again = kid(a, b, num_subsets=7, subset_size=5, generator=torch.Generator().manual_seed(9))
    assert again == pytest.approx((mean, std), rel=1e-12)


def test_kid_full_subsets_equal_full_set_estimate():
    gen = torch.Generator().manual_seed(6)
    a, b = torch.randn(6, 3, generator=gen), torch.randn(7, 3, generator=gen) + 1
    # subset_size = the set size: a's subsets are permutations of a, so with b also of size 6
    # every estimate is the full-set one.
    mean, std = kid(a, b[:6], num_subsets=5, subset_size=6, generator=gen)
    assert mean == pytest.approx(_naive_mmd2(a.numpy(), b[:6].numpy()), rel=1e-6)
    assert std < 1e-9


def test_kid_same_distribution_near_zero_shifted_positive():
    gen = torch.Generator().manual_seed(7)
    a, b = torch.randn(400, 16, generator=gen), torch.randn(400, 16, generator=gen)
    same, same_std = kid(a, b, num_subsets=20, subset_size=200, generator=gen)
    shifted, _ = kid(a, b + 0.5, num_subsets=20, subset_size=200, generator=gen)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.1
    assert shifted > 20 * abs(same)


def test_kid_rejects_mismatched_dims():
    with pytest.raises(ValueError, match="feature dimension"):
        kid(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="subset_size >= 2"):
        kid(torch.randn(1, 3), torch.randn(10, 3), subset_size=1)


def test_kid_refuses_subset_larger_than_either_set():
    # torch-fidelity and torchmetrics refuse; a silently shrunk subset would mislabel the KID.
    a, b = torch.randn(6, 3), torch.randn(7, 3)
    msg = r"subset_size 7 is larger than a feature set \(feats_a has 6 rows, feats_b 7\)"
    with pytest.raises(ValueError, match=msg):
        kid(a, b, subset_size=7)
    with pytest.raises(ValueError, match="feats_a has 7 rows, feats_b 6"):
        kid(b, a)  # the default subset_size 1000
    kid(a, b, num_subsets=2, subset_size=6)  # the largest legal size is accepted


def test_fid_and_kid_equal_torch_fidelity():
    fid_ref = pytest.importorskip("torch_fidelity.metric_fid")
    kid_ref = pytest.importorskip("torch_fidelity.metric_kid")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    b = 1.2 * torch.randn(300, 16, generator=gen, dtype=torch.float64) + 0.3
    want = fid_ref.fid_statistics_to_metric(fid_ref.fid_features_to_statistics(a),
                                            fid_ref.fid_features_to_statistics(b), False)
    got = frechet_distance(*FeatureStats().update(a).mean_cov(),
                           *FeatureStats().update(b).mean_cov())
    assert got == pytest.approx(want["frechet_inception_distance"], rel=1e-12)  # measured 3e-15
    # subsets as large as the sets are permutations of them, so the random draws do not matter
    want = kid_ref.kid_features_to_metric(a, b, kid_subsets=4, kid_subset_size=300,
                                          verbose=False)
    mean, std = kid(a, b, num_subsets=4, subset_size=300)
    assert mean == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-12)
    assert std < 1e-12 and want["kernel_inception_distance_std"] < 1e-12
