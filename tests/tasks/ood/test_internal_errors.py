"""A ValueError or TypeError that is no user's mistake (a bug in robustrep or a library it
calls) keeps its traceback: ``ood score`` and ``ood bench`` once turned every one into the
one-line user error, exit 2, so a bug read as a wrong option. The user's mistakes are
UserErrors where they are found (tests/tasks/test_user_errors*.py, test_cli.py, ...)."""

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_deep_in_ood_score_is_a_traceback_not_a_user_error(kind, fake_run, tmp_path,
                                                                 monkeypatch, capsys):
    from robustrep.data import builtin

    def broken(*args, **kwargs):  # the library's built-in OOD sets, after every option check
        raise kind("boom")
    monkeypatch.setattr(builtin, "builtin_ood", broken)
    with pytest.raises(kind, match="^boom$"):
        main(["ood", "score", str(fake_run), "--ood", "gaussian", "--detectors", "MaxSoftmax",
              "--out", str(tmp_path / "o"), "--quiet"])
    assert "error: boom" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", [ValueError, TypeError])
def test_a_bug_deep_in_ood_bench_is_a_traceback_not_a_user_error(kind, tmp_path, monkeypatch,
                                                                 capsys):
    from robustrep.tasks.ood import bench

    def broken(*args, **kwargs):  # the settings' dry runs, after the options are checked
        raise kind("boom")
    monkeypatch.setattr(bench, "check_settings", broken)
    with pytest.raises(kind, match="^boom$"):
        main(["ood", "bench", "--regs", "none", "--seeds", "0", "--detectors", "MaxSoftmax",
              "--ood", "gaussian", "--out", str(tmp_path / "b"), "--quiet", "--device", "cpu"])
    assert "error: boom" not in capsys.readouterr().err
