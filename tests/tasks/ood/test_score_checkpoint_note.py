"""`ood score --model M --checkpoint RUN/checkpoints/latest.pt`: a classify run's checkpoint
scored on other data than it trained on is noted (tasks/ood/score.py `_load_classifier`)."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main

SCORE = ["--ood", "gaussian", "--detectors", "MaxSoftmax", "--max-samples", "8", "--no-plots",
         "--quiet", "--device", "cpu"]


@pytest.fixture
def run_checkpoint(fake_run):
    """fake_run's checkpoint with the ``config`` a classify run keeps in it (trained at 16 on
    digits 0-2)."""
    path = fake_run / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    state["config"] = json.loads((fake_run / "config.json").read_text())
    torch.save(state, path)
    return path


def _score(ckpt, *argv):
    return main(["ood", "score", "--model", "test_resnet", "--checkpoint", str(ckpt),
                 "--classes", "0", "1", "2", *argv, *SCORE])


def test_a_runs_checkpoint_scored_on_other_data_is_noted(run_checkpoint, fake_run, tmp_path,
                                                          monkeypatch, capsys):
    # was: scored at the default --image-size 32 without a word (a run trained at 8: ID
    # accuracy 34%, where `ood score RUN` gives 98%)
    monkeypatch.chdir(tmp_path)
    assert _score(run_checkpoint, "--out", "a") == 0
    assert (f"note: {run_checkpoint} is a classify run's checkpoint, scored here on other data "
            f"than it was trained on: --image-size 32 (the run's: 16); `robustrep ood score "
            f"{fake_run}` scores it as trained") in capsys.readouterr().err
    shutil.copy(run_checkpoint, "lone.pt")  # out of its run folder: the values to give
    assert _score("lone.pt", "--out", "b") == 0
    assert ("note: lone.pt is a classify run's checkpoint, scored here on other data than it "
            "was trained on: --image-size 32 (the run's: 16); give the run's values"
            ) in capsys.readouterr().err
    assert _score(run_checkpoint, "--image-size", "16", "--out", "c") == 0
    assert "other data" not in capsys.readouterr().err  # the run's own data: nothing to say


def test_a_checkpoint_no_run_wrote_has_no_note(fake_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # fake_run's checkpoint keeps no config: nothing to compare
    assert _score(fake_run / "checkpoints" / "latest.pt", "--out", "a") == 0
    assert "other data" not in capsys.readouterr().err


def test_ood_score_reads_the_checkpoint_once(run_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    reads, load = [], torch.load

    def counting_load(f, *args, **kwargs):
        reads.append(Path(f).resolve() if isinstance(f, (str, Path)) else f)
        return load(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", counting_load)
    assert _score(run_checkpoint, "--out", "a") == 0
    assert reads.count(run_checkpoint.resolve()) == 1
    assert "other data" in capsys.readouterr().err  # the note came from that read
