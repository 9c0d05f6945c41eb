"""``report`` given the folders a user gets wrong: --collect without --out, a classify eval's
folder, a run copied into another run's place, an eval record without its summary, and a
--dry-run into a folder the report refuses. The child processes are the fake of
test_report_runs (each writes what its real command writes, where it matters)."""

import json
import shutil

import pytest

from robustrep.tasks import cli
from robustrep.tasks.report import records, runs

from .test_report_runs import _fake_child

ARGV = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--classify-regs", "none"]


@pytest.fixture
def children(monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "run_robustrep", _fake_child(calls))
    return calls


def test_collect_without_out_asks_for_the_folder(tmp_path, monkeypatch, capsys):
    """Was: "--out /…/runs/report-20261207-053440 is not a folder", a path the user never
    typed (the default of a new report, where no runs can be)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--collect"]) == 2
    assert capsys.readouterr().err == ("robustrep report: error: --collect reads the runs of "
                                       "an earlier report: give its folder as --out DIR\n")
    assert list(tmp_path.iterdir()) == []


def test_a_classify_eval_folder_is_named_and_its_record_kept(tmp_path, capsys, children):
    """Was: "--out EVAL/report.json exists and is not a readable record of report; remove it
    or choose another path": advice to delete the eval's results."""
    folder = tmp_path / "eval"
    folder.mkdir()
    record = json.dumps({"clean": {"acc": 0.9}, "summary": {"clean_acc": 0.9}})
    (folder / "report.json").write_text(record)
    for extra in ([], ["--collect"], ["--dry-run"]):
        assert cli.main([*ARGV, "--out", str(folder), *extra]) == 2
        assert capsys.readouterr().err == (
            f"robustrep report: error: --out {folder} is the folder of a classify eval (its "
            f"report.json holds an eval's summary); report writes only into a folder of its "
            f"own: a new folder, or an earlier report's (its finished runs are read)\n")
    assert (folder / "report.json").read_text() == record and not children
    assert sorted(p.name for p in folder.iterdir()) == ["report.json"]


def test_dry_run_refuses_the_folder_the_run_refuses_and_makes_nothing(tmp_path, capsys,
                                                                      children):
    """Was: --dry-run printed the plan into an ood score's folder, which the run then refused."""
    ood = tmp_path / "ood"
    ood.mkdir()
    (ood / "results.json").write_text('{"results": []}')
    assert cli.main([*ARGV, "--out", str(ood), "--dry-run"]) == 2
    assert "is the folder of an ood score" in capsys.readouterr().err
    new = tmp_path / "new"
    assert cli.main([*ARGV, "--out", str(new), "--dry-run"]) == 0
    assert "robustrep gan train" in capsys.readouterr().out and not new.exists()
    assert not children


def test_a_classifier_run_in_a_gan_runs_place_is_named_as_another_run(tmp_path, capsys,
                                                                      children):
    """Was: "trained at another size (80 steps, this report's 300); give the options it was
    made with": no options would read a classifier's run as the GAN baseline."""
    out = tmp_path / "r"
    assert cli.main([*ARGV, "--out", str(out)]) == 0
    gan = out / "runs" / "gan" / "none-seed0"
    shutil.rmtree(gan)
    shutil.copytree(out / "runs" / "classify" / "none-seed0", gan)
    capsys.readouterr()
    assert cli.main([*ARGV, "--out", str(out), "--collect"]) == 1
    err = capsys.readouterr().err
    assert (f"warning: gan/none/seed0: {gan} holds another run (preset 'digits-ood' in its "
            f"config.json, this report's 'digits-dcgan'); left out (copied or moved?)") in err
    assert records.OTHER_SIZE not in err


@pytest.mark.parametrize("record", ['{}', '{"summary": {}}', '{"summary": [1]}',
                                    '{"summary": {"clean_acc": true}}'])
def test_an_eval_record_without_its_summary_is_a_line_not_blank_cells(tmp_path, capsys,
                                                                      children, record):
    """Was: the classifier's cells all "–", exit 0 and not a word of why (one seed), or a
    mean over fewer seeds than ran."""
    out = tmp_path / "r"
    assert cli.main([*ARGV, "--out", str(out)]) == 0
    path = out / "runs" / "classify" / "none-seed0" / "eval" / "report.json"
    path.write_text(record)
    capsys.readouterr()
    assert cli.main([*ARGV, "--out", str(out), "--collect"]) == 1
    line = (f"classify/none/seed0: {path} holds no clean_acc in its summary (damaged, or not a "
            f"classify eval's); left out of the classifier cells (remove the folder "
            f"{path.parent} and run the report again (without --collect): only the command "
            f"that writes it runs again)")
    assert f"warning: {line}\n" in capsys.readouterr().err
    assert f"- {line}" in (out / "report.md").read_text()  # the page says so too
