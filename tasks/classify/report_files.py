"""The files of a ``classify eval`` report folder: ``report.json`` and its diagrams
(:func:`write_report`, the report first), and the earlier report they replace.

A report names the run it evaluated (``run``, its resolved path; null for a model from
elsewhere), and ``--out`` never replaces another run's report (:func:`check_report_run`);
an earlier report of another model, checkpoint or data, or measured otherwise, replaced in the
same folder is said (:func:`replaced_note`), and a diagram this report does not draw is
removed with it. Apart from the measuring (:mod:`.eval_metrics`): the command
(:mod:`.evaluate`) calls these before any work and again under the folder's lock.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from robustrep.tasks.common.eval_records import EVAL_REPORT_KEYS, check_same_run
from robustrep.tasks.common.plots import bar_table, reliability_diagram
from robustrep.tasks.common.rundir import jsonable
from robustrep.tasks.common.runfiles import write_text_atomic


def write_report(report: dict[str, Any], out: Path, model: str) -> dict[str, str]:
    """``report.json`` and its diagrams in ``out``; the files, by name. The report first: a
    diagram without it is taken for a user's file (check_replaceable), and a stop between the
    writes left RUN/eval refused to the next ``classify eval RUN``."""
    b = report["clean"]["bins"]
    files = {"report": str(out / "report.json"), "reliability": str(out / "reliability.png")}
    if report["corruptions"]:
        files["corruptions"] = str(out / "corruptions.png")
    write_text_atomic(files["report"], json.dumps(jsonable({**report, "files": files}),
                                                  indent=2) + "\n")
    reliability_diagram(b["confidence"], b["accuracy"], b["count"], files["reliability"],
                        report["clean"]["ece"], title=model)
    if report["corruptions"]:
        rows = {name: {f"s{s}": (v, 0.0) for s, v in per.items()}
                for name, per in report["corruptions"].items()}
        bar_table(rows, files["corruptions"], title="accuracy under corruptions")
    return files


def _measured(report: dict[str, Any]) -> str:
    summary = report.get("summary")
    accs = sorted(k for k, v in (summary if isinstance(summary, dict) else {}).items()
                  if k.endswith("_acc") and k not in ("clean_acc", "robust_acc")
                  and isinstance(v, (int, float)) and math.isfinite(v))  # robust_acc: a repeat
    if not accs:
        return f"clean accuracy only on {report.get('n')} samples"
    n, n_attack = report.get("n"), report.get("n_attack", report.get("n"))
    attacked = {f"{a}_acc" for a in (report.get("robust") or {})}  # on the first n_attack
    groups = ([(accs, n)] if n_attack == n else
              [([a for a in accs if a in attacked], n_attack),
               ([a for a in accs if a not in attacked], n)])
    return ", ".join(f"{', '.join(names)} on {k} samples" for names, k in groups if names)


# What a report evaluated: an earlier report of another model, checkpoint or data replaced in
# the same folder is said, with what differs (as ood score says of the rows it replaces).
_SUBJECT = ("run", "model", "weights", "ema", "step", "dataset", "split")


def earlier_report(path: Path) -> dict[str, Any] | None:
    """The report an earlier ``classify eval`` wrote at ``path`` (check_replaceable has made
    sure one there is ours), or None: none, or not one (any more)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none, or damaged: nothing to compare
        return None
    return old if isinstance(old, dict) and set(EVAL_REPORT_KEYS) <= old.keys() else None


def replaced_note(path: Path, report: dict[str, Any],
                  old: dict[str, Any] | None) -> str | None:
    """What the earlier report ``old`` at ``path`` held, when this one evaluates another model
    or data, or measures otherwise: a reader of the folder (``robustrep report --collect``)
    would mix the two without a word."""
    if old is None:
        return None
    from robustrep.tasks.common.eval_records import as_own_run, setting_changes
    diff = setting_changes(as_own_run(old, report), report, _SUBJECT)
    if diff:
        return (f"{path} replaced: it held the report of another evaluation ({'; '.join(diff)}); "
                f"give --out a new folder to keep both")
    if _measured(old) == _measured(report):
        return None
    return f"{path} replaced: it held {_measured(old)}; this one holds {_measured(report)}"


def check_report_run(path: Path, run: str | Path | None,
                     foreign: dict[str, Any] | None) -> None:
    """The earlier report at ``path`` is replaced only when it evaluated ``run`` (or a model from
    elsewhere: :func:`replaced_note` says which) (:func:`eval_records.check_same_run`)."""
    flag = foreign and f"--{'robustbench' if 'robustbench' in foreign else 'model'}"
    check_same_run(earlier_report(path), path.parent, run, "an eval report",
                   foreign and f"{flag} {foreign['name']}")


def remove_stale_diagrams(out: Path, old: dict[str, Any] | None, files: dict[str, str]) -> None:
    """Remove an earlier report's ``corruptions.png`` when this report draws none (evaluated
    without corruptions): left there, it was read as this report's. Any earlier report of
    this folder, not only one that lists it: a call stopped between its report.json and its
    diagrams (a second Ctrl-C, a full disk) left a report without it beside the diagram, and
    every later call kept it."""
    if old is not None and "corruptions" not in files:
        (out / "corruptions.png").unlink(missing_ok=True)
