"""FID statistics, Fréchet distance and KID against scipy/numpy and naive references."""

import re

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


def test_kid_tells_its_progress_per_chunk_of_subsets_without_changing_the_values():
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(30, 4, generator=gen), torch.randn(40, 4, generator=gen)
    told = []
    # a chunk of 3 subsets: 2 * 10 * 4 + 3 * 10 * 10 = 380 values a subset
    told_values = kid(a, b, num_subsets=7, subset_size=10, max_chunk_elements=3 * 380,
                      generator=torch.Generator().manual_seed(1), progress=told.append)
    assert told == [3, 6, 7]
    assert told_values == kid(a, b, num_subsets=7, subset_size=10, max_chunk_elements=3 * 380,
                              generator=torch.Generator().manual_seed(1))


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


# --- what mutation testing found unpinned: argument names, boundaries, dtypes and devices ---

_STATS = (np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3))


@pytest.mark.parametrize("position, name", list(enumerate(["mu1", "sigma1", "mu2", "sigma2"])))
def test_frechet_names_each_argument_that_is_no_tensor_or_not_finite(position, name):
    args = list(_STATS)
    args[position] = args[position].tolist()
    with pytest.raises(TypeError, match=f"^{name} must be a torch.Tensor, got list$"):
        frechet_distance(*args)
    args = [a.copy() for a in _STATS]
    args[position][0] = np.nan
    with pytest.raises(ValueError, match=f"^{name} must be finite; it holds NaN or inf"):
        frechet_distance(*args)


@pytest.mark.parametrize("position, name, bad, message", [
    (2, "mu2", np.zeros((3, 3)), r"^mu2 must have rank 1, got rank 2 with shape \(3, 3\)$"),
    (0, "mu1", np.zeros((3, 3)), r"^mu1 must have rank 1, got rank 2"),
    (1, "sigma1", np.zeros(3), r"^sigma1 must have rank 2, got rank 1 with shape \(3,\)$"),
    (3, "sigma2", np.zeros(3), r"^sigma2 must have rank 2, got rank 1"),
    (2, "mu2", np.zeros(4), r"^mu2 must have shape \(3,\) to match mu1 of shape \(3,\), "
                            r"got \(4,\)$"),
    (1, "sigma1", np.eye(4), r"^sigma1 must have shape \(3, 3\) to match mu1 of shape \(3,\)"),
    (3, "sigma2", np.eye(2), r"^sigma2 must have shape \(3, 3\) to match mu1"),
])
def test_frechet_names_the_argument_of_a_wrong_rank_or_shape(position, name, bad, message):
    args = list(_STATS)
    args[position] = bad
    with pytest.raises(ValueError, match=message):
        frechet_distance(*args)


def test_frechet_empty_message_and_devices():
    with pytest.raises(ValueError, match=r"^mu1 is empty \(shape \(0,\)\); the statistics need "
                                         r"at least one feature$"):
        frechet_distance(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))
    args = [torch.from_numpy(a) for a in _STATS]
    args[3] = args[3].to("meta")  # stands in for an accelerator
    with pytest.raises(ValueError, match=r"^tensors must be on the same device, got mu1 on cpu, "
                                         r"sigma1 on cpu, mu2 on cpu, sigma2 on meta$"):
        frechet_distance(*args)


def test_frechet_computes_integer_and_float32_inputs_in_float64():
    # d^2 = |0 - 1|^2 * 2 + 2 * (1 - 2)^2 on diagonal covariances
    assert frechet_distance(np.zeros(2, int), np.eye(2, dtype=int), np.ones(2, int),
                            4 * np.eye(2, dtype=int)) == 4.0
    rng = np.random.default_rng(8)
    stats = [rng.standard_normal(16), _random_spd(16, rng), rng.standard_normal(16),
             _random_spd(16, rng)]
    f32 = [torch.from_numpy(v).float() for v in stats]
    # the float32 values, computed in float64: equal to the last bits, not just to 1e-4
    assert frechet_distance(*f32) == pytest.approx(frechet_distance(*(t.double() for t in f32)),
                                                   rel=1e-13)


def test_frechet_negative_eigenvalue_tolerance_is_relative_and_inclusive():
    # -1e-4 of the largest magnitude (here 4) is rounding of a PSD matrix; just past it is not
    mu = np.zeros(2)
    at_bound = frechet_distance(mu, np.diag([4.0, -4e-4]), mu, np.eye(2))
    assert at_bound == pytest.approx(4.0 - 4e-4 + 2.0 - 2 * 2.0, rel=1e-12)  # clamped to 0
    with pytest.raises(ValueError, match=r"^sigma1 is not a covariance matrix: it has the "
                                         r"negative eigenvalue -0.000401 \(largest magnitude 4\)$"):
        frechet_distance(mu, np.diag([4.0, -4.01e-4]), mu, np.eye(2))


def test_feature_stats_dim_device_and_empty_state():
    stats = FeatureStats(dim=3, device="meta")
    assert stats.dim == 3 and stats.sum.device.type == stats.sum_outer.device.type == "meta"
    assert stats.sum.dtype == stats.sum_outer.dtype == torch.float64
    assert stats.sum_outer.shape == (3, 3)
    assert FeatureStats().state_dict() == {"num": 0, "sum": None, "sum_outer": None}
    assert FeatureStats().dim is None
    with pytest.raises(TypeError, match="^dim must be a positive int, got float$"):
        FeatureStats(dim=3.0)
    with pytest.raises(ValueError, match="^dim must be > 0, got 0$"):
        FeatureStats(dim=0)


def test_feature_stats_update_keeps_sums_on_the_features_device():
    stats = FeatureStats().update(torch.ones(2, 3, device="meta"))
    assert stats.sum.device.type == stats.sum_outer.device.type == "meta"
    assert stats.sum_outer.shape == (3, 3) and stats.num == 2
    with pytest.raises(ValueError, match=r"^tensors must be on the same device, got feats on cpu, "
                                         r"sums on meta$"):
        FeatureStats(dim=3, device="meta").update(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"^feats must have rank 2, got rank 3"):
        FeatureStats().update(torch.ones(2, 3, 1))
    with pytest.raises(TypeError, match="^feats must be a floating-point tensor"):
        FeatureStats().update(torch.ones(2, 3, dtype=torch.long))


def test_feature_stats_from_sums_checks_and_converts():
    with pytest.raises(ValueError, match=r"^sum must have rank 1, got rank 2"):
        FeatureStats.from_sums(2, torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"^sum_outer must have rank 2, got rank 1"):
        FeatureStats.from_sums(2, torch.zeros(3), torch.zeros(9))
    with pytest.raises(ValueError, match=r"^sum_outer must have shape \(3, 3\) to match sum, "
                                         r"got \(3, 4\)$"):
        FeatureStats.from_sums(2, torch.zeros(3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="^num must be >= 0, got -1$"):
        FeatureStats.from_sums(-1, torch.zeros(3), torch.zeros(3, 3))
    empty = FeatureStats.from_sums(0, torch.zeros(3), torch.zeros(3, 3))  # a rank with no batch
    assert empty.num == 0 and empty.dim == 3
    # float32 sums (an all_reduce in float32) become float64, sum_outer on sum's device
    stats = FeatureStats.from_sums(2, torch.zeros(3, device="meta"), torch.zeros(3, 3))
    assert stats.sum.dtype == stats.sum_outer.dtype == torch.float64
    assert stats.sum_outer.device.type == "meta"


def test_feature_stats_mean_cov_needs_two_vectors_unbiased_one_biased():
    one = FeatureStats().update(torch.tensor([[1.0, 2.0]]))
    mu, cov = one.mean_cov(unbiased=False)  # one vector: zero spread, as stylegan2-ada gives
    assert mu.tolist() == [1.0, 2.0] and cov.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="^mean_cov needs at least 2 feature vectors, got 1$"):
        one.mean_cov()
    with pytest.raises(ValueError, match="^mean_cov needs at least 1 feature vectors, got 0$"):
        FeatureStats(dim=2).mean_cov(unbiased=False)
    two = one.update(torch.tensor([[3.0, 2.0]]))
    assert two.mean_cov()[1].tolist() == [[2.0, 0.0], [0.0, 0.0]]  # np.cov of the two rows


def test_feature_stats_merge_messages():
    stats = FeatureStats(dim=3)
    with pytest.raises(TypeError, match="^other must be a FeatureStats, got int$"):
        stats.merge(3)
    with pytest.raises(ValueError, match="^cannot merge statistics of dimension 4 into 3$"):
        stats.merge(FeatureStats(dim=4))


def test_polynomial_mmd2_checks_name_each_input():
    x = torch.randn(4, 3)
    for name, args in (("x", (x.long(), x)), ("y", (x, x.long()))):
        with pytest.raises(TypeError, match=f"^{name} must be a floating-point tensor, got dtype "
                                            "torch.int64$"):
            polynomial_mmd2(*args)
        with pytest.raises(TypeError, match=f"^{name} must be a torch.Tensor, got list$"):
            polynomial_mmd2(*[a.tolist() if a.dtype == torch.long else a for a in args])
    for args in ((x[0], x), (x, x[0]), (x, torch.randn(4, 2))):  # one D, but a set is 1-D
        shapes = f"{tuple(args[0].shape)} and {tuple(args[1].shape)}"
        with pytest.raises(ValueError, match="^" + re.escape(
                f"x and y must be [..., m, D] and [..., n, D] with one D, got {shapes}") + "$"):
            polynomial_mmd2(*args)


def test_polynomial_mmd2_needs_two_samples_per_set_and_accepts_two():
    x, y = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    assert float(polynomial_mmd2(x, y)) == pytest.approx(_naive_mmd2(x, y), rel=1e-12)
    for args, got in (((x[:1], y), "1 and 2"), ((x, y[:1]), "2 and 1")):
        with pytest.raises(ValueError, match=f"^the unbiased MMD needs at least 2 samples per "
                                             f"set, got {got}$"):
            polynomial_mmd2(*args)


def test_kid_defaults_are_torch_fidelitys():
    import inspect
    defaults = pytest.importorskip("torch_fidelity.defaults").DEFAULTS
    params = inspect.signature(kid).parameters
    assert params["num_subsets"].default == defaults["kid_subsets"] == 100
    assert params["subset_size"].default == defaults["kid_subset_size"] == 1000
    assert params["degree"].default == defaults["kid_kernel_poly_degree"]
    assert params["gamma"].default is defaults["kid_kernel_poly_gamma"] is None
    assert params["coef0"].default == defaults["kid_kernel_poly_coef0"]


def test_kid_passes_gamma_and_coef0_and_accepts_subsets_of_two():
    gen = torch.Generator().manual_seed(10)
    a = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(5, 3, generator=gen, dtype=torch.float64) + 1
    # subsets as large as the sets: every estimate is the full-set one
    mean, _ = kid(a, b, num_subsets=2, subset_size=5, degree=2, gamma=0.7, coef0=0.5)
    assert mean == pytest.approx(_naive_mmd2(a, b, degree=2, gamma=0.7, coef0=0.5), rel=1e-12)
    mean, _ = kid(a[:2], b[:2], num_subsets=2, subset_size=2)
    assert mean == pytest.approx(_naive_mmd2(a[:2], b[:2]), rel=1e-12)


@pytest.mark.parametrize("name", ["num_subsets", "subset_size", "degree", "max_chunk_elements"])
def test_kid_names_a_count_that_is_not_a_positive_int(name):
    a = torch.randn(4, 2)
    with pytest.raises(ValueError, match=f"^{name} must be > 0, got 0$"):
        kid(a, a, **{name: 0})
    with pytest.raises(TypeError, match=f"^{name} must be a positive int, got float$"):
        kid(a, a, **{name: 2.0})


def test_kid_names_its_feature_sets_and_checks_the_generator():
    a = torch.randn(4, 2)
    with pytest.raises(TypeError, match="^feats_a must be a floating-point tensor"):
        kid(a.long(), a)
    with pytest.raises(TypeError, match="^feats_b must be a floating-point tensor"):
        kid(a, a.long())
    with pytest.raises(TypeError, match="^generator must be a torch.Generator or None, got int$"):
        kid(a, a, subset_size=2, generator=5)
    meta = a.to("meta")
    with pytest.raises(ValueError, match="^generator is on cpu but the tensors are on meta"):
        kid(meta, meta, subset_size=2, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"^subset_size 5 is larger than a feature set \(feats_a "
                                         r"has 4 rows, feats_b 4\); pass a subset_size of at most "
                                         r"the smaller set$"):
        kid(a, a, subset_size=5)


def test_kid_draws_its_subsets_on_the_features_device():
    # Under another default device (here meta) the subsets are still drawn beside the features,
    # as a generator on the features' device requires.
    assert _subset_indices(5, 3, 2, None, torch.device("meta")).device.type == "meta"
    a = torch.randn(6, 2, generator=torch.Generator().manual_seed(11))
    want = kid(a, a + 1, num_subsets=3, subset_size=4, generator=torch.Generator().manual_seed(3))
    with torch.device("meta"):
        got = kid(a, a + 1, num_subsets=3, subset_size=4,
                  generator=torch.Generator(device="cpu").manual_seed(3))
    assert got == want and want[0] > 0


def test_kid_default_subsets_are_100_of_1000():
    a = torch.randn(6, 2, generator=torch.Generator().manual_seed(12))
    with pytest.raises(ValueError, match="^subset_size 1000 is larger than a feature set"):
        kid(a, a)
    got = kid(a, a + 1, subset_size=3, generator=torch.Generator().manual_seed(4))
    want = kid(a, a + 1, num_subsets=100, subset_size=3, generator=torch.Generator().manual_seed(4))
    assert got == want
    assert got != kid(a, a + 1, num_subsets=101, subset_size=3,
                      generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize("collapsed", ["sigma1", "sigma2"])
def test_frechet_of_identical_features_is_the_mean_distance_plus_the_other_trace(collapsed):
    # A collapsed G (or blank images) gives one feature vector n times: its covariance is
    # rounding of E[xx^T] - mu mu^T alone, with negative eigenvalues as large as its positive
    # ones. It is a covariance of zero, not "no covariance": FID is |mu1 - mu2|^2 + tr(other),
    # as pytorch-fid computes it (this raised ValueError and killed gan train's evaluation).
    from pytorch_fid.fid_score import calculate_frechet_distance
    rng = np.random.default_rng(3)
    same = torch.from_numpy(np.repeat(rng.uniform(0, 5, (1, 64)), 50, axis=0))
    spread = torch.from_numpy(rng.uniform(0, 5, (200, 64)))
    one, other = (FeatureStats().update(f).mean_cov() for f in (same, spread))
    assert float(torch.linalg.eigvalsh(one[1]).min()) < 0  # the rounding the check must allow
    stats = [*one, *other] if collapsed == "sigma1" else [*other, *one]
    got = frechet_distance(*stats)
    mu_gap = float(((one[0] - other[0]) ** 2).sum())
    assert got == pytest.approx(mu_gap + float(other[1].trace()), rel=1e-6)  # sqrt of rounding
    assert got == pytest.approx(calculate_frechet_distance(*(t.numpy() for t in stats)), rel=1e-6)
