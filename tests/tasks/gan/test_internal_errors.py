"""A ValueError or TypeError that is no user's mistake (a bug in robustrep or in a library it
calls) keeps its traceback: ``gan eval`` and ``gan fid`` once turned every ValueError met
anywhere in the command into the one-line user error, exit 2, so a bug read as a wrong option.
The user's mistakes are UserErrors where they are found (test_user_error_lines.py,
test_fid.py, test_eval.py, ...)."""

import numpy as np
import pytest

from robustrep.tasks.cli import main


def _broken(kind):
    def broken(*args, **kwargs):
        raise kind("boom")
    return broken


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """A 2-step run on the 2-D grid: gan eval scores it by its modes, no feature network."""
    from robustrep.tasks.gan.train import train

    from .conftest import tiny_config
    run = tmp_path_factory.mktemp("internal") / "grid"
    train(tiny_config("grid-mlp", out=str(run)), show_progress=False)
    return run


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_in_gan_evals_metric_is_a_traceback_not_a_user_error(kind, grid_run, tmp_path,
                                                                   monkeypatch, capsys):
    from robustrep.tasks.gan import evaluate
    monkeypatch.setattr(evaluate, "mode_stats", _broken(kind))  # G loaded, its samples drawn
    with pytest.raises(kind, match="^boom$"):
        main(["gan", "eval", str(grid_run), "--num-samples", "64", "--out",
              str(tmp_path / "eval.json"), "--device", "cpu", "--quiet"])
    assert "error: boom" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_in_gan_fids_metric_is_a_traceback_not_a_user_error(kind, tmp_path, monkeypatch,
                                                                  capsys):
    from robustrep.tasks.gan import fid
    for name, seed in (("a", 0), ("b", 1)):  # two statistics files: both sides read and checked
        rng = np.random.default_rng(seed)
        np.savez(tmp_path / f"{name}.npz", mu=rng.normal(size=4), sigma=np.eye(4))
    monkeypatch.setattr(fid, "frechet_distance", _broken(kind))
    with pytest.raises(kind, match="^boom$"):
        main(["gan", "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--device", "cpu",
              "--quiet"])
    assert "error: boom" not in capsys.readouterr().err
