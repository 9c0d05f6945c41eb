"""A ``classify eval`` report names the run it evaluated (its resolved path), and ``--out`` never
replaces another run's report (tasks/classify/report_files.py ``check_report_run``).

Was: ``classify eval A --out B/eval`` evaluated A, then replaced run B's report.json with a note
saying so (B's result lost); and ``run`` was recorded as typed, so a relative RUN written from
one working folder was compared from another."""

import json
import shutil

import pytest

from robustrep.tasks.classify import evaluate
from robustrep.tasks.cli import main

FAST = ["--attacks", "none", "--corruptions", "--max-samples", "8", "--quiet"]


@pytest.fixture
def runs(trained_run, tmp_path):
    """Two runs, A and B (copies of the session's tiny run, each without reports)."""
    copies = []
    for name in ("A", "B"):
        shutil.copytree(trained_run, tmp_path / name, ignore=shutil.ignore_patterns("eval"))
        copies.append(tmp_path / name)
    return copies


def _eval(run, *extra):
    return main(["classify", "eval", str(run), *FAST, *extra])



def _no_work(monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(evaluate, "_load", no_load)


def _record(path, **fields):
    """An earlier report as an older classify eval wrote it (check_replaceable reads clean and
    summary); ``run`` absent unless given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"clean": {"acc": 0.5}, "summary": {"clean_acc": 0.5}, "n": 8,
                                "model": "test_resnet", "weights": "ema", "step": 4,
                                "dataset": "digits", "split": "test", **fields}))
    return path.read_text()


def test_the_report_names_its_run_resolved_and_a_rerun_from_anywhere_replaces_it(
        runs, tmp_path, monkeypatch, capsys, undrawn_diagrams):
    a, _ = runs
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "scores"
    assert _eval("A", "--out", "scores") == 0  # RUN as typed, relative
    assert json.loads((out / "report.json").read_text())["run"] == str(a.resolve())
    capsys.readouterr()
    monkeypatch.chdir(a)  # the same run from another working folder, as "."
    assert _eval(".", "--out", str(out), "--max-samples", "16") == 0
    err = capsys.readouterr().err
    assert "another evaluation" not in err and "error" not in err, err
    assert json.loads((out / "report.json").read_text())["n"] == 16


def test_another_runs_report_is_refused_before_any_work(runs, tmp_path, monkeypatch, capsys,
                                                        error_line, undrawn_diagrams):
    a, b = runs
    assert _eval(b) == 0  # B/eval, B's own
    assert _eval(b, "--out", str(tmp_path / "shared")) == 0
    kept = {p: p.read_text() for p in (b / "eval" / "report.json",
                                        tmp_path / "shared" / "report.json")}
    _no_work(monkeypatch)
    capsys.readouterr()
    assert _eval(a, "--out", str(b / "eval")) == 2
    assert error_line() == (
        f"robustrep classify eval: error: --out {b / 'eval'} holds the eval report of another "
        f"run, {b.resolve()}; give --out another folder, or remove {b / 'eval'} to replace its "
        f"files with {a.resolve()}'s")
    assert _eval(a, "--out", str(tmp_path / "shared")) == 2  # a shared folder of reports
    assert f"holds the eval report of another run, {b.resolve()}; give --out" in error_line()
    # a model from elsewhere (here A's checkpoint) is not run B either
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint",
                 str(a / "checkpoints" / "latest.pt"), "--classes", "0", "1", "2",
                 "--image-size", "16", *FAST, "--out", str(b / "eval")]) == 2
    assert error_line().endswith("to replace its files with --model test_resnet's")
    assert {p: p.read_text() for p in kept} == kept


@pytest.mark.parametrize("run_field, words", [
    ({}, "written without its run"),
    ({"run": "runs/B"}, "written with its run relative to an unrecorded folder, 'runs/B'"),
])
def test_an_older_report_naming_no_run_or_a_relative_one_is_refused_outside_the_run(
        run_field, words, runs, tmp_path, monkeypatch, error_line):
    """Older reports named no run, or RUN as typed: relative to a working folder they did not
    record. One in another run's folder is most likely that run's, one elsewhere anyone's."""
    a, b = runs
    old = _record(b / "eval" / "report.json", **run_field)
    _no_work(monkeypatch)
    assert _eval(a, "--out", str(b / "eval")) == 2
    assert error_line() == (
        f"robustrep classify eval: error: --out {b / 'eval'} holds an eval report of the run "
        f"{b.resolve()} ({words}: an older robustrep's); give --out another folder, or "
        f"remove {b / 'eval'} to replace its files with {a.resolve()}'s")
    assert (b / "eval" / "report.json").read_text() == old
    _record(tmp_path / "evals" / "report.json", **run_field)
    assert _eval(a, "--out", str(tmp_path / "evals")) == 2
    assert (f"holds an eval report {words} (an older robustrep's), possibly another "
            f"run's; give --out another folder") in error_line()


@pytest.mark.parametrize("run_field", [{}, {"run": "runs/B"}, {"run": "/elsewhere/B"}])
def test_a_report_inside_the_run_is_its_own(run_field, runs, monkeypatch, capsys):
    """An older report in RUN, or one naming the place a run was copied or moved from, is
    replaced (exit 0): the run keeps its reports wherever it goes, said of no other run."""
    _, b = runs
    _record(b / "eval" / "report.json", **run_field)
    monkeypatch.chdir(b.parent)
    assert _eval("B", "--out", str(b / "eval")) == 0
    assert "another evaluation" not in capsys.readouterr().err
    assert json.loads((b / "eval" / "report.json").read_text())["run"] == str(b.resolve())


def test_another_runs_report_written_during_the_work_is_kept(runs, monkeypatch, capsys):
    """Two evals into one --out at once: the one finishing second is refused under the
    folder's lock, and the first one's report is kept."""
    a, b = runs
    out = a.parent / "shared"
    original, inner = evaluate.evaluate_model, []

    def another_eval_meanwhile(*args, **kwargs):
        if not inner:
            inner.append("running")
            inner[0] = _eval(b, "--out", str(out))
        return original(*args, **kwargs)
    monkeypatch.setattr(evaluate, "evaluate_model", another_eval_meanwhile)
    assert _eval(a, "--out", str(out)) == 2 and inner == [0]
    assert f"holds the eval report of another run, {b.resolve()}" in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["run"] == str(b.resolve())


def test_an_older_report_naming_this_run_relative_from_here_is_its_own(runs, tmp_path,
                                                                        monkeypatch, capsys):
    """An older robustrep recorded RUN as typed: the same command again, from the same folder,
    replaces its report (it was refused as possibly another run's)."""
    a, _ = runs
    monkeypatch.chdir(tmp_path)
    _record(tmp_path / "evals" / "report.json", run="A")
    assert _eval("A", "--out", "evals") == 0
    assert json.loads((tmp_path / "evals" / "report.json").read_text())["run"] == str(
        a.resolve())


def test_a_run_folder_or_another_commands_is_refused_before_any_work(runs, tmp_path,
                                                                     monkeypatch, error_line):
    """Was: ``classify eval A --out B`` (a run's root: another classify run's, a GAN run's, A's
    own) wrote report.json and reliability.png beside B's config.json, exit 0; ood score, ood
    bench and report refused a run's folder."""
    a, b = runs
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "config.json").write_text('{"preset": "digits-dcgan"}')
    scored = tmp_path / "scored"
    scored.mkdir()
    (scored / "results.json").write_text('{"detectors": [], "results": []}')
    _no_work(monkeypatch)
    accepted = "RUN/eval without --out, a new folder, or an earlier classify eval's"
    for out, what in ((b, "the folder of a robustrep run (it holds config.json)"),
                      (gan, "the folder of a robustrep run (it holds config.json)"),
                      (a, "the folder of a robustrep run (it holds config.json)"),
                      (scored, "the folder of an ood score (it holds results.json)")):
        before = sorted(out.rglob("*"))
        assert _eval(a, "--out", str(out)) == 2
        assert error_line() == (f"robustrep classify eval: error: --out {out} is {what}; "
                                f"classify eval writes only into a folder of its own: "
                                f"{accepted}")
        assert sorted(out.rglob("*")) == before
    (a / "eval").mkdir()  # a run trained into RUN/eval
    (a / "eval" / "config.json").write_text("{}")
    assert _eval(a) == 2
    assert error_line() == (f"robustrep classify eval: error: the run's report folder "
                            f"{a / 'eval'} is the folder of a robustrep run (it holds "
                            f"config.json); classify eval writes only into a folder of its "
                            f"own: a new --out, or an earlier classify eval's")
    assert sorted(p.name for p in (a / "eval").iterdir()) == ["config.json"]
