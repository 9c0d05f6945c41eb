"""A run killed after an evaluation past its last checkpoint: the resume moves that evaluation's
grid aside, as it moves the step files and drops the records past the checkpoint.

The grid stayed in samples/ when the resume did not draw it again (another --eval-every, a
lower --steps): a picture of a step whose record and checkpoint were gone, read as the run's."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan import train as gan_train
from robustrep.tasks.gan.train import train

OPTIONS = dict(steps=6, ckpt_every=2, eval_every=3, final_eval=False)


@pytest.fixture(autouse=True)
def _no_curves(monkeypatch):
    """The loss and metric curves are not what is checked here: not drawn, for speed."""
    monkeypatch.setattr(gan_train, "curves", lambda *args, **kwargs: None)


class Killed(BaseException):
    """What the patched writer raises: like a kill, nothing of the trainer's runs after it."""


def _kill_after_grid(monkeypatch, name):
    """The process dies just after it wrote the grid ``name``."""
    real = gan_train.scatter2d

    def dying(*args, **kwargs):
        out = real(*args, **kwargs)
        if out.name == name:
            raise Killed
        return out
    monkeypatch.setattr(gan_train, "scatter2d", dying)


def test_a_resume_moves_the_grids_past_its_checkpoint_aside(tiny_cfg, tmp_path, monkeypatch,
                                                            capsys, records):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _kill_after_grid(patch, "step_00000003.png")  # evaluated at 3, checkpointed at 2
        with pytest.raises(Killed):
            train(tiny_cfg("grid-mlp", out=str(run), **OPTIONS), show_progress=False)
    samples = run / "samples"
    stale = (samples / "step_00000003.png").read_bytes()
    (samples / "sample-step00000002-seed0-n64.png").write_bytes(b"a gan sample grid")
    capsys.readouterr()
    assert main(["gan", "train", "--resume", str(run), "--eval-every", "4", "--quiet"]) == 0
    aside = samples / "abandoned_step_00000002"
    assert sorted(p.name for p in samples.iterdir()) == [
        aside.name, "sample-step00000002-seed0-n64.png", "step_00000004.png"]
    assert (aside / "step_00000003.png").read_bytes() == stale  # moved aside, not deleted
    assert (f"note: moved step_00000003.png into {aside}: sample grids past step 2, which the "
            f"run resumes from and trains on again\n") in capsys.readouterr().err
    assert [r["step"] for r in records(run) if "modes_covered" in r] == [4]


def test_a_resume_without_grids_past_its_checkpoint_moves_nothing(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg("grid-mlp", out=str(run), **OPTIONS), show_progress=False, stop_after=3)
    capsys.readouterr()
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000003.png"]
    assert "moved" not in capsys.readouterr().err
