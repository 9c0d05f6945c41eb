"""Statistics in a ``.pkl`` are named as statistics, never as a "network pickle"
(tasks/gan/stats_files.py; gan sample's refusal: robustrep/stylegan2_pickle.py).

Was: ``gan fid`` read any ``.pkl`` that was not whole stylegan2-ada statistics as a network
pickle, and said "network pickle S.pkl: is not a stylegan2-ada network pickle (needs ('G', 'D',
'G_ema'))" of a dict of mu and sigma, of stylegan2-ada statistics lacking a sum, of a truncated
statistics file ("network pickle S.pkl: cannot be read as a pickle"); ``gan sample S.pkl`` too.
The pickles here are built as ``FeatureStats.save`` writes them (a pickle of its ``__dict__``)."""

import pickle
import re

import numpy as np
import pytest
import torch

from robustrep.metrics import frechet_distance, precision_recall
from robustrep.tasks.cli import build_parser, main
from robustrep.tasks.gan import feature_nets
from robustrep.tasks.gan.fid import compare


def _features(n=12, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _feature_stats(feats, capture_all=False):
    """The __dict__ of stylegan2-ada's FeatureStats after appending ``feats`` (sums in float64):
    FID's cache (``capture_mean_cov``), or with ``capture_all`` KID's and precision/recall's,
    which keeps the float32 features batch by batch and leaves the sums at zero."""
    x = np.asarray(feats, dtype=np.float32).astype(np.float64)
    return {"capture_all": capture_all, "capture_mean_cov": not capture_all, "max_items": None,
            "num_items": len(x), "num_features": x.shape[1],
            "all_features": [f.astype(np.float32) for f in np.array_split(x, 3)] if capture_all
            else [], "raw_mean": 0 * x[0] if capture_all else x.sum(0),
            "raw_cov": 0 * x.T @ x if capture_all else x.T @ x}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "error: network pickle " not in err, err  # the file named as what it is not
    return err.strip()


def _fid(out: str) -> float:
    return float(re.search(r"^fid\s+(\S+)", out, re.M)[1])


@pytest.fixture
def ref(tmp_path):
    path = tmp_path / "ref.npz"
    feats = _features(seed=1)
    np.savez(path, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    return path


def test_a_pickle_of_mu_and_sigma_is_read_as_statistics(tmp_path, ref, capsys):
    feats = _features()
    stats = {"mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False)}
    np.savez(tmp_path / "a.npz", **stats)
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(stats))
    assert main(["gan", "fid", str(tmp_path / "a.npz"), str(ref)]) == 0
    want = _fid(capsys.readouterr().out)
    assert main(["gan", "fid", str(tmp_path / "a.pkl"), str(ref)]) == 0
    out = capsys.readouterr().out
    assert f"statistics {tmp_path / 'a.pkl'} (4-d)" in out and _fid(out) == want > 0
    # nothing to draw from, as with any statistics
    assert main(["gan", "fid", str(tmp_path / "a.pkl"), str(ref), "--num", "50"]) == 2
    assert "--num 50 sets the samples drawn" in _one_line(capsys)
    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"mu": stats["mu"]}))
    assert main(["gan", "fid", str(tmp_path / "a.pkl"), str(ref)]) == 2
    assert _one_line(capsys) == (f"robustrep gan fid: error: {tmp_path / 'a.pkl'}: a statistics "
                                 f"file needs both 'mu' and 'sigma'; found ['mu']")


def test_stylegan2_ada_statistics_without_a_sum_are_named_as_statistics(tmp_path, ref, capsys):
    path = tmp_path / "cifar10-inception-2015-12-05-0123.pkl"
    stats = _feature_stats(_features())
    del stats["raw_cov"]
    path.write_bytes(pickle.dumps(stats))
    assert main(["gan", "fid", str(path), str(ref)]) == 2
    assert _one_line(capsys) == (
        f"robustrep gan fid: error: {path}: stylegan2-ada statistics without raw_cov "
        f"(FeatureStats.save writes num_items, raw_mean, raw_cov); compute them again")


def test_a_truncated_statistics_pickle_is_named_damaged(tmp_path, ref, capsys):
    path = tmp_path / "stats.pkl"
    path.write_bytes(pickle.dumps(_feature_stats(_features()))[:60])
    want = (f"robustrep gan fid: error: {path} cannot be read as a pickle (UnpicklingError: "
            f"pickle data was truncated); it may be truncated or corrupt: copy or write it again")
    assert main(["gan", "fid", str(path), str(ref)]) == 2
    assert _one_line(capsys) == want
    # with --num, the damage is said (it was: "--num sets the samples drawn ... drop it")
    assert main(["gan", "fid", str(path), str(ref), "--num", "50"]) == 2
    assert _one_line(capsys) == want


def test_a_pickle_of_other_values_names_what_a_pkl_may_be(tmp_path, ref, capsys):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"features": _features(), "labels": [0, 1]}))
    assert main(["gan", "fid", str(path), str(ref), "--num", "50"]) == 2
    assert _one_line(capsys) == (
        f"robustrep gan fid: error: {path} holds a dict of features, labels, neither network nor "
        f"statistics; a .pkl must be a stylegan2-ada network pickle (G, D, G_ema), "
        f"stylegan2-ada's cached statistics (FeatureStats.save: num_items, raw_mean, raw_cov) or "
        f"a dict of mu and sigma")


@pytest.mark.parametrize("kind", ["feature-stats", "mu-sigma", "feature-stats-no-cov"])
def test_gan_sample_of_statistics_says_they_are_no_network(kind, tmp_path, capsys):
    path = tmp_path / "stats.pkl"
    feats = _features()
    stats = {"feature-stats": _feature_stats(feats),
             "mu-sigma": {"mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False)},
             "feature-stats-no-cov": {**_feature_stats(feats), "raw_cov": None}}[kind]
    path.write_bytes(pickle.dumps(stats))
    assert main(["gan", "sample", str(path), "--num", "4", "--grid",
                 str(tmp_path / "g.png")]) == 2
    held = "mu and sigma" if kind == "mu-sigma" else "stylegan2-ada's cached FeatureStats"
    assert _one_line(capsys) == (
        f"robustrep gan sample: error: RUN {path}: holds FID statistics ({held}), "
        f"not the networks ('G', 'D', 'G_ema') of a stylegan2-ada network pickle")
    assert not (tmp_path / "g.png").exists()


def _record(*argv):
    """The record ``robustrep gan fid ARGV`` prints, as a dict."""
    args = build_parser("gan").parse_args(["gan", "fid", *map(str, argv), "--quiet"])
    args.torch_device = torch.device("cpu")
    return compare(args)


def _unbiased_mmd(x, y):
    """KID's unbiased MMD^2 (cubic kernel, gamma 1/D, coef0 1) of the whole sets, in NumPy."""
    kernel = lambda u, v: (u @ v.T / x.shape[1] + 1) ** 3  # noqa: E731
    off = lambda k: (k.sum() - np.trace(k)) / (len(k) * (len(k) - 1))  # noqa: E731
    return off(kernel(x, x)) + off(kernel(y, y)) - 2 * kernel(x, y).mean()


def test_a_cache_that_kept_the_features_gives_kid_and_precision_from_them(tmp_path):
    """Was: stylegan2-ada's KID/precision cache (capture_all: all_features kept) was reduced to
    a mean and covariance, and gan fid printed "kid n/a (a side is statistics only)". Sets of
    30 give subsets of 30: KID is then the MMD of the whole sets, whatever subsets are drawn."""
    a, b = (_features(n=30, d=5, seed=s).astype(np.float32) for s in (0, 1))
    for name, feats in (("a", a), ("b", b)):
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(_feature_stats(feats, True)))
    record = _record(tmp_path / "a.pkl", tmp_path / "b.pkl")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert record["kid_subset_size"] == 30 and record["pr_samples"] == 30
    assert record["kid"] == pytest.approx(_unbiased_mmd(b64, a64), rel=1e-9)
    want = precision_recall(torch.from_numpy(b), torch.from_numpy(a), k=3)  # B is the reference
    assert (record["precision"], record["recall"]) == (want["precision"], want["recall"])
    assert 0 < want["recall"] <= 1 and 0 < want["precision"] <= 1
    fid = frechet_distance(a64.mean(0), np.cov(a64, rowvar=False), b64.mean(0),
                           np.cov(b64, rowvar=False))
    assert record["fid"] == pytest.approx(fid, rel=1e-9) and (record["num_a"], record["num_b"]) \
        == (30, 30)
    # FID's cache (sums only) stays statistics: the same FID, no KID
    (tmp_path / "a_sums.pkl").write_bytes(pickle.dumps(_feature_stats(a)))
    sums = _record(tmp_path / "a_sums.pkl", tmp_path / "b.pkl")
    assert sums["kid"] == "n/a (a side is statistics only)" and "precision" not in sums
    assert sums["fid"] == pytest.approx(fid, rel=1e-9)


def test_kept_features_score_as_the_images_they_are_features_of(tmp_path):
    """A cache of the digits features of images A scores against images B as A itself does:
    the features are streamed as a network's are (float64 statistics, the same kept subset)."""
    from robustrep.data import digits
    x = (digits(16, 1, train=None).images[:80] * 255).round().to(torch.uint8)
    np.save(tmp_path / "a.npy", x[:40, 0].numpy())
    np.save(tmp_path / "b.npy", x[40:, 0].numpy())
    net, _ = feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"))
    with torch.no_grad():
        feats = net(x[:40].float() / 255).numpy()
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(_feature_stats(feats, True)))
    want = _record(tmp_path / "a.npy", tmp_path / "b.npy", "--fid-features", "digits")
    got = _record(tmp_path / "a.pkl", tmp_path / "b.npy", "--fid-features", "digits")
    for key in ("fid", "kid", "kid_std", "precision", "recall", "num_a", "num_b"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert want["fid"] > 0 and isinstance(want["kid"], float) and want["precision"] > 0


@pytest.mark.parametrize("change, expect", [
    (lambda s: {**s, "num_items": 13}, "kept features (all_features) hold 12 rows but num_items "
                                       "says 13; the file is damaged or edited: compute it "
                                       "again"),
    (lambda s: {**s, "all_features": [np.full((12, 4), np.nan, np.float32)]},
     "kept features (all_features) hold NaN or inf in 12 of 12 rows; they cannot be compared"),
], ids=["count", "nan"])
def test_kept_features_that_are_not_the_count_or_finite_are_one_line(change, expect, tmp_path,
                                                                     ref, capsys):
    path = tmp_path / "kid.pkl"
    path.write_bytes(pickle.dumps(change(_feature_stats(_features(), True))))
    assert main(["gan", "fid", str(path), str(ref)]) == 2
    assert _one_line(capsys) == (f"robustrep gan fid: error: {path}: stylegan2-ada statistics "
                                 f"whose {expect}")
