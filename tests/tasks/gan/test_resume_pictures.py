"""A run killed while it drew an evaluation's pictures: the resume draws them again.

The evaluation's record is logged before its pictures are drawn; a kill (or a full disk) in
between left a resumed run without that step's sample grid or with curves that miss the step,
since the resume saw the step evaluated and went on."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan import train as gan_train
from robustrep.tasks.gan.train import train

from .conftest import tiny_config

OPTIONS = dict(steps=4, ckpt_every=2, eval_every=2, final_eval=True)


class Killed(BaseException):
    """What the patched writer raises: like a kill, nothing of the trainer's runs after it."""


def _kill_at(monkeypatch, writer, step, run):
    """``writer`` (scatter2d or curves, as train.py calls them) dies during step ``step``'s
    pictures in run folder ``run``, after that step's evaluation record was logged."""
    real = getattr(gan_train, writer)

    def dying(*args, **kwargs):
        records = gan_train.RunDir(run).read_metrics()
        if records and records[-1]["step"] == step and "modes_covered" in records[-1]:
            raise Killed
        return real(*args, **kwargs)
    monkeypatch.setattr(gan_train, writer, dying)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted run, whose pictures every resumed one must redraw byte for byte."""
    run = tmp_path_factory.mktemp("pictures") / "full"
    train(tiny_config("grid-mlp", out=str(run), **OPTIONS), show_progress=False)
    return run


@pytest.mark.parametrize("writer, step", [("scatter2d", 2), ("scatter2d", 4), ("curves", 4)])
def test_pictures_a_kill_cut_short_are_drawn_again(tiny_cfg, full, tmp_path, monkeypatch, writer,
                                                   step):
    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _kill_at(patch, writer, step, killed)
        with pytest.raises(Killed):
            train(tiny_cfg("grid-mlp", out=str(killed), **OPTIONS), show_progress=False)
    assert not (killed / "samples" / f"step_{step:08d}.png").exists()
    assert main(["gan", "train", "--resume", str(killed), "--quiet"]) == 0
    for name in ("samples/step_00000002.png", "samples/step_00000004.png",
                 "plots/metrics.png", "plots/losses.png"):
        assert (killed / name).read_bytes() == (full / name).read_bytes(), name
