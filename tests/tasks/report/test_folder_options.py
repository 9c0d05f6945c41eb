"""A report folder's options (``report_options.json``): recorded before the first run, so that a
stopped report is read and finished as it was started, and a rerun with options that would
leave the folder's runs off the page is refused before any run. The child processes are the
fake of test_report_runs (each writes what its real command writes, where it matters)."""

import json
import signal

import pytest

from robustrep.tasks import cli
from robustrep.tasks.common.errors import Interrupted
from robustrep.tasks.report import runs

from .test_report_runs import _fake_child

QUICK_ONE = ["report", "--quick", "--seeds", "5", "--gan-regs", "none", "--classify-regs",
             "none"]


@pytest.fixture
def children(monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "run_robustrep", _fake_child(calls))
    return calls


def test_a_stopped_report_is_read_and_finished_with_the_options_it_started_with(
        tmp_path, capsys, monkeypatch):
    """Was: `--collect --out DIR` of a report stopped before its page planned the default full
    report (`gan/none/seed0: not started ...; left out (run without --collect to train it)`,
    a seed the folder never had), and the plain rerun it advised planned 90 commands."""
    def stopped(argv, log, threads=1):
        raise Interrupted(signal.SIGINT, "stopped by SIGINT")  # as launch's, at the first run

    monkeypatch.setattr(runs, "run_robustrep", stopped)
    out = tmp_path / "rep3"
    assert cli.main([*QUICK_ONE, "--out", str(out)]) == 130
    assert not (out / "report.json").exists()  # the page is written at the end
    capsys.readouterr()
    assert cli.main(["report", "--collect", "--out", str(out)]) == 2
    finish = (f"robustrep report --quick --seeds 5 --gan-regs none --classify-regs none --out "
              f"{out}")
    assert capsys.readouterr().err == (
        f"robustrep report: error: gan/none/seed5: not started: no {out}/runs/gan/none-seed5; "
        f"left out (to train it: {finish})\n")
    assert cli.main(["report", "--out", str(out), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # 2 runs: gan train; classify x 3
    calls = []
    monkeypatch.setattr(runs, "run_robustrep", _fake_child(calls))
    assert cli.main(["report", "--out", str(out)]) == 0 and len(calls) == 4
    assert "Quick report: 2 runs, seed 5;" in (out / "report.md").read_text()


def test_collect_of_a_folder_with_no_record_asks_for_the_options(tmp_path, capsys, children):
    """A folder a report of an earlier version left before its page: nothing tells its
    options, and the line named a run of the default report ("run without --collect")."""
    out = tmp_path / "old"
    (out / "runs").mkdir(parents=True)
    assert cli.main(["report", "--collect", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep report: error: {out} holds no finished run of this report and no record of "
        f"the options it was started with (report_options.json: a report of an earlier version "
        f"was stopped before its page?); give --collect those options (--quick, --seeds, "
        f"--gan-regs, --classify-regs)\n")
    assert not children


def test_a_rerun_that_would_leave_the_folders_runs_out_is_refused(tmp_path, capsys, children):
    """Was: a default-size rerun into a quick report's folder left every run out ("trained at
    another size") and replaced report.md, report.html and report.json with a page of none of
    them. Now the folder's options stand for those not given, and options given that would
    leave its runs out are refused before any run; seeds added to its own continue it."""
    out = tmp_path / "rep6"
    assert cli.main([*QUICK_ONE, "--out", str(out)]) == 0
    capsys.readouterr()
    trained = len(children)
    # the finding's command, without --quick: the quick report continued (nothing to train)
    assert cli.main(["report", "--seeds", "5", "--gan-regs", "none", "--classify-regs", "none",
                     "--out", str(out)]) == 0 and len(children) == trained
    assert "continued with its options for those not given" in capsys.readouterr().err
    assert "Quick report: 2 runs, seed 5;" in (out / "report.md").read_text()
    kept = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    own = f"robustrep report --quick --seeds 5 --gan-regs none --classify-regs none --out {out}"
    assert cli.main(["report", "--seeds", "6", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep report: error: --out {out} holds a report that `{own}` continues; --seeds 6 "
        f"would leave out its runs of 5 and replace its page; `robustrep report --quick --seeds "
        f"5 6 --gan-regs none --classify-regs none --out {out}` adds yours to it; give another "
        f"--out for a different report\n")
    assert cli.main(["report", "--gan-regs", "mixup", "--out", str(out), "--dry-run"]) == 2
    assert "--gan-regs mixup would leave out its runs of none and" in capsys.readouterr().err
    assert len(children) == trained  # the page and the records as they were
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == kept
    assert cli.main(["report", "--seeds", "5", "6", "--out", str(out)]) == 0  # seed 6 added
    assert len(children) == trained * 2  # its two runs only
    assert json.loads((out / "report_options.json").read_text())["settings"]["seeds"] == [5, 6]
    assert "Quick report: 4 runs, seeds 5, 6;" in (out / "report.md").read_text()


def test_quick_over_a_default_report_is_refused_and_its_page_kept(tmp_path, capsys, children):
    out = tmp_path / "full"
    argv = ["report", "--seeds", "5", "--gan-regs", "none", "--classify-regs", "none"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    kept = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    trained = len(children)
    assert cli.main([*argv, "--quick", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep report: error: --out {out} holds a report that `robustrep report --seeds 5 "
        f"--gan-regs none --classify-regs none --out {out}` continues; --quick would leave out "
        f"every run of it (trained at the default size) and replace its page; give another "
        f"--out for a different report\n")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == kept
    assert len(children) == trained
