"""Improved precision/recall against a brute-force numpy reference."""

import re

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


# --- what mutation testing found unpinned: chunking, defaults, names, dtypes, devices ---

@pytest.fixture
def cdist_blocks(monkeypatch):
    """The shapes of the distance blocks computed (each is one chunk of rows by columns)."""
    blocks, cdist = [], torch.cdist

    def spy(a, b, *args, **kwargs):
        blocks.append((a.shape[0], b.shape[0]))
        return cdist(a, b, *args, **kwargs)
    monkeypatch.setattr(torch, "cdist", spy)
    return blocks


def _sets(seed=2):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(45, 5, generator=gen, dtype=torch.float64)
    return real, 0.6 * torch.randn(37, 5, generator=gen, dtype=torch.float64) + 0.8


def test_memory_is_bounded_by_chunk_size_squared(cdist_blocks):
    # the module's promise: blocks of at most chunk_size x chunk_size, whatever the set sizes
    real, fake = _sets()
    got = precision_recall(real, fake, chunk_size=8)
    assert max(max(b) for b in cdist_blocks) == 8
    # knn radii: 6 x 6 blocks of real, 5 x 5 of fake; coverage: 5 x 6 and 6 x 5
    assert len(cdist_blocks) == 36 + 25 + 30 + 30
    precision, recall, _ = _brute_force(real.numpy(), fake.numpy(), 3)  # k = 3 by default
    assert got == {"precision": pytest.approx(precision, abs=1e-12),
                   "recall": pytest.approx(recall, abs=1e-12)}


def test_default_chunk_is_2048_rows(cdist_blocks):
    feats = torch.randn(2049, 2, generator=torch.Generator().manual_seed(3))
    radii = knn_radii(feats[:, :1].contiguous(), k=1)
    assert sorted(set(cdist_blocks)) == [(1, 1), (1, 2048), (2048, 1), (2048, 2048)]
    cdist_blocks.clear()
    manifold_coverage(feats[:3, :1], feats[:, :1], radii)
    assert cdist_blocks == [(3, 2048), (3, 1)]
    cdist_blocks.clear()
    precision_recall(feats, feats[:4] + 0.1, k=1)
    assert max(max(b) for b in cdist_blocks) == 2048


def test_half_features_are_measured_in_float32():
    gen = torch.Generator().manual_seed(4)
    real, fake = torch.randn(20, 3, generator=gen).half(), torch.randn(15, 3, generator=gen).half()
    assert knn_radii(real).dtype == torch.float32
    torch.testing.assert_close(knn_radii(real), knn_radii(real.float()), rtol=0, atol=0)
    assert precision_recall(real, fake) == precision_recall(real.float(), fake.float())


def test_coverage_promotes_mixed_dtypes():
    real, fake = _sets(5)
    radii = knn_radii(real)
    want = manifold_coverage(fake, real, radii)
    for query, ref in ((fake.float(), real), (fake, real.float())):
        got = manifold_coverage(query, ref, radii)
        assert (got == manifold_coverage(query.double(), ref.double(), radii)).all()
    assert 0 < int(want.sum()) < len(fake)


def test_results_do_not_depend_on_the_default_device():
    real, fake = _sets(6)
    want = knn_radii(real, k=2, chunk_size=10), precision_recall(real, fake, chunk_size=10)
    with torch.device("meta"):  # the ids and flags are made beside the features
        got = knn_radii(real, k=2, chunk_size=10), precision_recall(real, fake, chunk_size=10)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    assert got[1] == want[1]


@pytest.mark.parametrize("call, name", [
    (lambda x, y: knn_radii(x), "feats"),
    (lambda x, y: manifold_coverage(x, y, torch.ones(5)), "query"),
    (lambda x, y: manifold_coverage(y, x, torch.ones(5)), "ref"),
    (lambda x, y: precision_recall(x, y), "real_feats"),
    (lambda x, y: precision_recall(y, x), "fake_feats"),
])
def test_each_feature_argument_is_named(call, name):
    good = torch.randn(5, 2)
    with pytest.raises(TypeError, match=f"^{name} must be a floating-point tensor, got dtype "
                                        "torch.int64$"):
        call(good.long(), good)
    with pytest.raises(ValueError, match=rf"^{name} must have rank 2, got rank 1 with shape "
                                         r"\(5,\)$"):
        call(good[:, 0], good)
    with pytest.raises(ValueError, match=f"^{name} holds NaN or inf values; precision/recall "
                                         "need finite features$"):
        call(torch.full((5, 2), float("nan")), good)


@pytest.mark.parametrize("call, name", [
    (lambda **kw: knn_radii(torch.randn(6, 2), **kw), "k"),
    (lambda **kw: knn_radii(torch.randn(6, 2), **kw), "chunk_size"),
    (lambda **kw: manifold_coverage(torch.randn(3, 2), torch.randn(4, 2), torch.ones(4), **kw),
     "chunk_size"),
])
def test_counts_must_be_positive_ints(call, name):
    with pytest.raises(ValueError, match=f"^{name} must be > 0, got 0$"):
        call(**{name: 0})
    with pytest.raises(TypeError, match=f"^{name} must be a positive int, got float$"):
        call(**{name: 2.0})


def test_coverage_checks_radii_shapes_and_devices():
    query, ref = torch.randn(3, 2), torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"^radii must have rank 1, got rank 2"):
        manifold_coverage(query, ref, torch.ones(4, 1))
    with pytest.raises(TypeError, match="^radii must be a torch.Tensor, got list$"):
        manifold_coverage(query, ref, [1.0] * 4)
    for args, shapes in (((torch.randn(3, 5), ref, torch.ones(4)), "(3, 5), (4, 2) and (4,)"),
                         ((query, ref, torch.ones(3)), "(3, 2), (4, 2) and (3,)")):
        with pytest.raises(ValueError, match=r"^query \[Nq, D\], ref \[Nr, D\] and radii \[Nr\] "
                                             r"must agree, got " + re.escape(shapes) + "$"):
            manifold_coverage(*args)
    # (meta features cannot be checked for NaN; meta radii stand in for an accelerator)
    with pytest.raises(ValueError, match="^tensors must be on the same device, got query on cpu, "
                                         "ref on cpu, radii on meta$"):
        manifold_coverage(query, ref, torch.ones(4, device="meta"))


def test_feature_sets_of_two_dimensions_are_named():
    with pytest.raises(ValueError, match=r"^real_feats and fake_feats must have the same dimension "
                                         r"D \(the feature dimension\), got \(10, 2\) and "
                                         r"\(10, 3\)$"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 3))
