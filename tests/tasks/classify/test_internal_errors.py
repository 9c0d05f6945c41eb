"""A ValueError or TypeError that is no user's mistake (a bug in robustrep or in a library it
calls) keeps its traceback: ``classify train`` (its run and its ``--dry-run``) and ``classify
eval`` once turned every ValueError met anywhere in the command into the one-line user error,
exit 2, so a bug read as a wrong option. The user's mistakes are UserErrors where they are found
(test_user_error_lines.py, test_option_checks.py, ...)."""

import pytest

from robustrep.tasks.cli import main

TINY = ["--model", "test_resnet", "--image-size", "16", "--batch-size", "8", "--classes", "0",
        "1", "2", "--eval-every", "0", "--device", "cpu", "--quiet"]


def _broken(kind):
    def broken(*args, **kwargs):
        raise kind("boom")
    return broken


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_in_the_training_step_is_a_traceback_not_a_user_error(kind, tmp_path, monkeypatch,
                                                                    capsys):
    from robustrep.tasks.classify.train import Trainer
    monkeypatch.setattr(Trainer, "train_step", _broken(kind))  # after every check, at step 1
    with pytest.raises(kind, match="^boom$"):
        main(["classify", "train", *TINY, "--steps", "2", "--out", str(tmp_path / "run")])
    assert "error: boom" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_in_the_dry_runs_model_build_is_a_traceback_not_a_user_error(kind, monkeypatch,
                                                                           capsys):
    import timm
    monkeypatch.setattr(timm, "create_model", _broken(kind))  # timm's, once the name is known
    with pytest.raises(kind, match="^boom$"):
        main(["classify", "train", *TINY, "--steps", "2", "--dry-run"])
    assert "error: boom" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_in_an_eval_metric_is_a_traceback_not_a_user_error(kind, trained_run, tmp_path,
                                                                 monkeypatch, capsys):
    from robustrep.tasks.classify import eval_metrics
    monkeypatch.setattr(eval_metrics, "expected_calibration_error", _broken(kind))  # the model read
    with pytest.raises(kind, match="^boom$"):
        main(["classify", "eval", str(trained_run), "--attacks", "none", "--corruptions", "none",
              "--out", str(tmp_path / "e"), "--device", "cpu", "--quiet"])
    assert "error: boom" not in capsys.readouterr().err
