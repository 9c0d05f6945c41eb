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

from robustrep.tasks.cli import main


def _features(n=12, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _feature_stats(feats):
    """The __dict__ of stylegan2-ada's FeatureStats after appending ``feats`` (sums in float64)."""
    x = np.asarray(feats, dtype=np.float32).astype(np.float64)
    return {"capture_all": False, "capture_mean_cov": True, "max_items": None,
            "num_items": len(x), "num_features": x.shape[1], "all_features": [],
            "raw_mean": x.sum(0), "raw_cov": x.T @ x}


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
