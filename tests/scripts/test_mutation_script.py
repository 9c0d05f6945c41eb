"""scripts/mutation.py as docs/mutation.md runs it, without mutmut (no mutants are made here)."""

import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mutation.py"


def test_report_only_without_an_earlier_run_says_so(tmp_path, capsys):
    script = runpy.run_path(str(SCRIPT))
    script["main"].__globals__["WORK"] = tmp_path / ".mutation"  # a fresh clone: no runs yet
    assert script["main"](["--report-only", "--survivors", "losses"]) == 0
    out = capsys.readouterr().out
    assert "losses" in out and "no results of an earlier run" in out, out
    assert "nan" not in out
