"""``ood score`` results name the run they scored (its resolved path), one results file holds one
run's rows, and ``--out`` holding another run's results is refused before any work
(tasks/ood/outputs.py ``check_same_run``).

Was: ``ood score A --out B/ood`` scored A, then replaced every row of run B with a note; and
``run`` was recorded as typed, so the same run named relative from another working folder was
taken for another run, and its earlier rows replaced."""

import json
import shutil

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.ood import score

FAST = ["--ood", "gaussian", "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]


@pytest.fixture
def runs(fake_run, tmp_path):
    """Two runs, A (fake_run) and B (a copy of it)."""
    shutil.copytree(fake_run, tmp_path / "B")
    return fake_run, tmp_path / "B"


def _score(run, detectors, *extra):
    return main(["ood", "score", str(run), "--detectors", detectors, *FAST, *extra])


def _rows(folder):
    data = json.loads((folder / "results.json").read_text())
    return data, sorted((r["detector"], r["ood"]) for r in data["results"])



def _no_work(monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(score, "_load_classifier", no_load)


def _record(folder, **fields):
    """Results as an older ood score wrote them (one row); ``run`` absent unless given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({
        "model": "test_resnet", "weights": "model", "step": 0, "id": "digits", "image_size": 16,
        "seed": 0, "ood": ["uniform"], "detectors": {"Entropy": {"error": None}},
        "results": [{"detector": "Entropy", "ood": "uniform", "AUROC": 0.5, "error": None}],
        **fields}))
    return (folder / "results.json").read_text()


def test_results_name_their_run_resolved_and_a_second_call_from_anywhere_keeps_them(
        runs, tmp_path, monkeypatch, capsys):
    a, _ = runs
    monkeypatch.chdir(a.parent)
    assert _score(a.name, "MaxSoftmax", "--out", "scores") == 0  # RUN as typed, relative
    out = a.parent / "scores"
    assert json.loads((out / "results.json").read_text())["run"] == str(a.resolve())
    capsys.readouterr()
    monkeypatch.chdir(a)  # the same run from another working folder, as "."
    assert _score(".", "Entropy", "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "replaced all" not in err and "kept 1 rows of the earlier" in err, err
    assert _rows(out)[1] == [("Entropy", "gaussian"), ("MaxSoftmax", "gaussian")]


def test_another_runs_results_are_refused_before_any_work(runs, tmp_path, monkeypatch, capsys,
                                                          error_line):
    """One results file holds one run's rows (its record names one run, its rows only the
    detector and OOD set): another run's are kept, never replaced nor mixed in."""
    a, b = runs
    assert _score(b, "MaxSoftmax") == 0  # B/ood, B's own
    assert _score(b, "MaxSoftmax", "--out", str(tmp_path / "shared")) == 0
    kept = {p: p.read_text() for p in (b / "ood" / "results.json",
                                        tmp_path / "shared" / "results.json")}
    _no_work(monkeypatch)
    capsys.readouterr()
    assert _score(a, "Entropy", "--out", str(b / "ood")) == 2
    assert error_line() == (
        f"robustrep ood score: error: --out {b / 'ood'} holds the results of another run, "
        f"{b.resolve()}; give --out another folder, or remove {b / 'ood'} to replace its files "
        f"with {a.resolve()}'s")
    assert _score(a, "Entropy", "--out", str(tmp_path / "shared")) == 2
    assert f"holds the results of another run, {b.resolve()}; give --out" in error_line()
    # a model from elsewhere (here A's checkpoint) is not run B either
    assert main(["ood", "score", "--model", "test_resnet", "--checkpoint",
                 str(a / "checkpoints" / "latest.pt"), "--classes", "0", "1", "2",
                 "--image-size", "16", "--detectors", "Entropy", *FAST,
                 "--out", str(b / "ood")]) == 2
    assert error_line().endswith("to replace its files with --model test_resnet's")
    assert {p: p.read_text() for p in kept} == kept


@pytest.mark.parametrize("run_field, words", [
    ({}, "written without its run"),
    ({"run": "runs/B"}, "written with its run relative to an unrecorded folder, 'runs/B'"),
])
def test_older_results_naming_no_run_or_a_relative_one_are_refused_outside_the_run(
        run_field, words, runs, tmp_path, monkeypatch, error_line):
    a, b = runs
    old = _record(b / "ood", **run_field)
    _no_work(monkeypatch)
    assert _score(a, "MaxSoftmax", "--out", str(b / "ood")) == 2
    assert error_line() == (
        f"robustrep ood score: error: --out {b / 'ood'} holds results of the run {b.resolve()} "
        f"({words}: an older robustrep's); give --out another folder, or remove "
        f"{b / 'ood'} to replace its files with {a.resolve()}'s")
    assert (b / "ood" / "results.json").read_text() == old
    _record(tmp_path / "older", **run_field)
    assert _score(a, "MaxSoftmax", "--out", str(tmp_path / "older")) == 2
    assert (f"holds results {words} (an older robustrep's), possibly another "
            f"run's; give --out another folder") in error_line()


@pytest.mark.parametrize("run_field", [{}, {"run": "runs/B"}, {"run": "/elsewhere/B"}])
def test_results_inside_the_run_are_its_own_and_keep_their_rows(run_field, runs, capsys):
    """Older results in RUN/ood, or results naming the place a run was copied or moved from:
    the run's own; a second call with other detectors keeps their rows."""
    _, b = runs
    _record(b / "ood", **run_field)
    assert _score(b, "MaxSoftmax") == 0
    err = capsys.readouterr().err
    assert "replaced all" not in err and "kept 1 rows of the earlier" in err, err
    data, rows = _rows(b / "ood")
    assert rows == [("Entropy", "uniform"), ("MaxSoftmax", "gaussian")]
    assert data["run"] == str(b.resolve())


def test_another_runs_results_written_during_the_work_are_kept(runs, tmp_path, monkeypatch,
                                                                capsys):
    """Two calls into one --out at once: the one finishing second is refused under the
    folder's lock, and the first one's rows are kept."""
    a, b = runs
    out = tmp_path / "shared"
    original, inner = score.score_model, []

    def another_call_meanwhile(*args, **kwargs):
        if not inner:
            inner.append("running")
            inner[0] = _score(b, "EnergyBased", "--out", str(out))
        return original(*args, **kwargs)
    monkeypatch.setattr(score, "score_model", another_call_meanwhile)
    assert _score(a, "MaxSoftmax", "--out", str(out)) == 2 and inner == [0]
    assert f"holds the results of another run, {b.resolve()}" in capsys.readouterr().err
    data, rows = _rows(out)
    assert data["run"] == str(b.resolve()) and rows == [("EnergyBased", "gaussian")]
