"""How gan names the feature network of a FID (tasks/gan/feature_nets.py)."""

import json
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


def test_a_run_scored_on_a_relative_classify_run_resumes_from_another_folder(tmp_path,
                                                                             monkeypatch):
    """config.json holds run:DIR absolute, the checkpoint as given: a resume compared the two
    as options and refused (fid_features 'run:cls' (config.json: 'run:/abs/cls'))."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["classify", "train", "--preset", "smoke", "--image-size", "16", "--out", "cls",
                 "--device", "cpu", "--quiet"]) == 0
    tiny = ["--image-size", "16", "--g-width", "4", "--d-width", "4", "--z-dim", "8",
            "--batch-size", "4", "--steps", "2", "--eval-every", "2", "--eval-samples", "8",
            "--ckpt-every", "1", "--device", "cpu", "--quiet"]
    assert main(["gan", "train", *tiny, "--fid-features", "run:cls", "--out", "g",
                 "--stop-after", "1"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["gan", "train", "--resume", "work/g"]) == 0
    last = [json.loads(line) for line in (tmp_path / "work/g/metrics.jsonl").open()][-1]
    assert last["step"] == 2 and last["fid_features"] == f"run:{tmp_path / 'work/cls'}"
    assert not (tmp_path / "work/g/resumes.json").exists() or \
        json.loads((tmp_path / "work/g/resumes.json").read_text())[-1]["changed"] == {}


def test_gan_fid_reads_the_relative_run_an_earlier_version_recorded(tmp_path, monkeypatch,
                                                                   capsys):
    """Statistics files written before run:DIR was saved absolute name it as typed: the same
    name typed again (or its absolute form) is the same network, not another one."""
    monkeypatch.chdir(tmp_path)
    for name, shift in (("a.npz", 0.0), ("b.npz", 2.0)):
        np.savez(tmp_path / name, mu=np.full(3, shift), sigma=np.eye(3),
                 fid_features=np.array("run:cls"),
                 fid_convention=np.array("pre-logit features of classify run cls"))
    for flag in ("run:cls", f"run:{tmp_path / 'cls'}"):
        assert main(["gan", "fid", "a.npz", "b.npz", "--fid-features", flag]) == 0
        assert "12.0" in capsys.readouterr().out
    # its convention text names the run too: as this version's, or the same network differs
    from robustrep.tasks.gan.stats_files import _absolute_run
    assert _absolute_run("run:cls", "pre-logit features of classify run cls (m, 16x16); x") == (
        f"run:{tmp_path / 'cls'}", f"pre-logit features of classify run {tmp_path / 'cls'} "
        f"(m, 16x16); x")
