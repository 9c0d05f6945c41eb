"""How gan names the feature network of a FID (tasks/gan/feature_nets.py)."""

from types import SimpleNamespace

import numpy as np

from robustrep.tasks.cli import main
from robustrep.tasks.gan.feature_nets import fid_features_choice


def test_a_classify_run_named_relative_is_the_same_run_as_named_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = SimpleNamespace(fid_features=None, dataset=None)
    assert fid_features_choice(cfg, "run:cls") == f"run:{tmp_path / 'cls'}"
    assert fid_features_choice(cfg, "run:./cls") == f"run:{tmp_path / 'cls'}"
    assert fid_features_choice(cfg, "inception") == "inception"


def test_gan_fid_takes_a_relative_run_for_statistics_that_name_it_absolute(tmp_path,
                                                                           monkeypatch, capsys):
    # statistics saved with --fid-features run:cls name the run absolute, as a run records it
    monkeypatch.chdir(tmp_path)
    for name, shift in (("a.npz", 0.0), ("b.npz", 1.0)):
        np.savez(tmp_path / name, mu=np.full(3, shift), sigma=np.eye(3),
                 fid_features=np.array(f"run:{tmp_path / 'cls'}"),
                 fid_convention=np.array("pre-logit features of classify run cls"))
    assert main(["gan", "fid", "a.npz", "b.npz", "--fid-features", "run:./cls"]) == 0
    assert "3.0" in capsys.readouterr().out  # |mu_a - mu_b|^2, equal covariances
