"""A ``gan eval`` record names the run it scored, and ``--out`` never replaces another run's.

Was: ``gan eval A --out B/eval.json`` replaced run B's record with A's scores, without a word:
the records named no run, so nothing told the two apart."""

import json
import os
import shutil

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan.train import train

from .conftest import tiny_config

FAST = ["--num-samples", "20", "--real", "40", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "A"
    train(tiny_config(out=str(out)), show_progress=False)
    return out


def _record(path, **fields):
    """A record as an earlier gan eval wrote it (check_replaceable reads step and reg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"step": 2, "reg": "none", "fid": 12.5, **fields}))
    return path.read_text()



def test_the_record_names_the_run_and_checkpoint_it_scored(run, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.chdir(run.parent)  # a relative RUN is recorded as its absolute path
    out = tmp_path / "scores" / "eval.json"
    assert main(["gan", "eval", run.name, *FAST, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["run"] == str(run.resolve())
    assert record["checkpoint"] == str((run / "checkpoints" / "latest.pt").resolve())
    # the same evaluation again, from anywhere: replaced without a word
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["gan", "eval", str(run), *FAST, "--out", str(out)]) == 0
    assert "replaced" not in capsys.readouterr().err
    # another one replaces the record it wrote (it names this run), and says what it held
    # (was: silently; stylegan2-ada's calc_metrics appends to its metric-*.jsonl)
    assert main(["gan", "eval", str(run), *FAST, "--out", str(out),
                 "--checkpoint", "step_00000001.pt"]) == 0
    assert f"note: {out} replaced: it held another evaluation (step 2 -> 1); give --out " \
           f"another file to keep both\n" in capsys.readouterr().err
    record = json.loads(out.read_text())
    assert record["step"] == 1 and record["run"] == str(run.resolve())
    assert record["checkpoint"] == str((run / "checkpoints" / "step_00000001.pt").resolve())


def test_another_runs_record_is_not_replaced(run, tmp_path, error_line, monkeypatch):
    other = tmp_path / "B"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("eval*.json"))
    target = other / "eval.json"
    before = _record(target, run=str(other.resolve()))
    assert main(["gan", "eval", str(run), *FAST, "--out", str(target)]) == 2
    assert error_line() == (
        f"robustrep gan eval: error: --out {target} holds the eval record of another run, "
        f"{other.resolve()}; give --out another path, or remove the file to replace it with "
        f"{run}'s")
    assert target.read_text() == before
    # anywhere else too: a shared folder of records; the line names RUN resolved (as typed,
    # "with ../A's" said nothing from the folder the user was told to look in)
    shared = _record(tmp_path / "evals" / "b.json", run=str(other.resolve()))
    monkeypatch.chdir(tmp_path / "evals")
    assert main(["gan", "eval", os.path.relpath(run), *FAST, "--out", "b.json"]) == 2
    assert error_line().endswith(f"holds the eval record of another run, {other.resolve()}; "
                                 f"give --out another path, or remove the file to replace it "
                                 f"with {run.resolve()}'s")
    assert (tmp_path / "evals" / "b.json").read_text() == shared


def test_a_record_naming_no_run_is_replaced_only_in_the_run_itself(run, tmp_path, error_line):
    """Records from before they named their run: one in another run's folder is most likely
    that run's, one elsewhere may be anyone's; one in RUN itself is RUN's."""
    other = tmp_path / "B"
    other.mkdir()
    (other / "config.json").write_text("{}")
    old = _record(other / "eval.json")
    assert main(["gan", "eval", str(run), *FAST, "--out", str(other / "eval.json")]) == 2
    assert error_line() == (
        f"robustrep gan eval: error: --out {other / 'eval.json'} holds an eval record of the run "
        f"{other} (written without its run: an older robustrep's); give --out another path, "
        f"or remove the file to replace it with {run}'s")
    assert (other / "eval.json").read_text() == old
    _record(tmp_path / "evals" / "old.json")
    assert main(["gan", "eval", str(run), *FAST, "--out", str(tmp_path / "evals" / "old.json")]) \
        == 2
    assert "holds an eval record written without its run (an older robustrep's), possibly " \
           "another run's; give --out another path" in error_line()


def test_a_record_in_the_run_itself_is_its_own(run, tmp_path):
    """An older record in RUN, or one naming the place a run was copied or moved from, is
    replaced: the run keeps its records wherever it goes."""
    copy = tmp_path / "copied"
    shutil.copytree(run, copy)
    _record(copy / "eval-old.json")
    assert main(["gan", "eval", str(copy), *FAST, "--out", str(copy / "eval-old.json")]) == 0
    _record(copy / "eval.json", run=str(run.resolve()))  # written before the copy
    assert main(["gan", "eval", str(copy), *FAST, "--out", str(copy / "eval.json")]) == 0
    for name in ("eval-old.json", "eval.json"):
        assert json.loads((copy / name).read_text())["run"] == str(copy.resolve())


@pytest.mark.parametrize("flags,name", [([], "eval.json"), (["--no-ema"], "eval-noema.json")])
def test_a_users_file_at_the_default_record_is_refused_before_any_work(
        run, tmp_path, error_line, monkeypatch, flags, name):
    """Was: ``gan eval RUN`` replaced a RUN/eval.json (eval-noema.json) no gan eval wrote, exit
    0, while ``--out RUN/eval.json`` refused it."""
    copy = tmp_path / "copied"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval*.json"))
    (copy / name).write_text("my notes\n")

    def no_work(*args, **kwargs):
        raise AssertionError("the generator was loaded")
    monkeypatch.setattr("robustrep.tasks.gan.sample.load_generator", no_work)
    assert main(["gan", "eval", str(copy), *FAST, *flags]) == 2
    assert error_line() == (
        f"robustrep gan eval: error: the default --out {copy / name} exists and is not a "
        f"readable record of gan eval; remove it or choose another path (gan eval replaces "
        f"only its own files)")
    assert (copy / name).read_text() == "my notes\n"
