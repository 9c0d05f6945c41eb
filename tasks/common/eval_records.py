"""The records an evaluation keeps in its output folder, and whose run they are.

``gan eval``, ``classify eval``, ``ood score``, ``ood bench`` and ``report`` write their record
(an eval record, ``results.json``, ``bench.json``, ``report.json``) into a folder that may
already hold one. Before any work: a folder keeps one kind of record, as a run folder keeps one
run (:func:`check_own_kind`), and no training run starts in such a folder
(:func:`check_no_output`); an earlier record is replaced or joined only by the run it scored
(:func:`check_same_run`, :func:`as_own_run`), and what differs from it is said
(:func:`setting_changes`). These judge records, not how files are written (``runfiles``).

This module imports neither torch nor numpy: ``report`` and ``ood bench`` check without them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import RunFolderError


# Every record a robustrep command keeps in its output folder: the commands that write it, and
# for a record that marks a kind of folder, what that folder is. One kind per folder, as one run
# per folder (check_own_kind): ood score, ood bench and report wrote their files into any of them
# (a classify run's folder got results.json beside its config.json, or a bench's runs/ and
# tables). A report's options and a bench's training log are there before its first result; a
# bench's bare runs/ (made a moment before runs/train.log) is no record, as it may be a user's
# own (the default output root of every command). A training run started in another command's
# folder made it a run's folder (config.json), which that command then refused as not its own
# (check_no_output). gan eval writes a file where --out names it: no folder of its own.
RUN_RECORD = "config.json"
RECORDS = {RUN_RECORD: (("gan train", "classify train"), "the folder of a robustrep run"),
           "results.json": (("ood score",), "the folder of an ood score"),
           "bench.json": (("ood bench",), "the folder of an ood bench"),
           "runs/train.log": (("ood bench",), "the folder of an ood bench"),
           "report_options.json": (("report",), "the folder of a robustrep report"),
           "report.json": (("report", "classify eval"),
                           "the folder of a report (robustrep report or classify eval)"),
           "eval.json": (("gan eval",), None), "eval-noema.json": (("gan eval",), None)}


# The keys by which a report.json is told as classify eval's or report's (both name it so).
EVAL_REPORT_KEYS, REPORT_KEYS = ("clean", "summary"), ("info", "runs")
CLASSIFY_EVAL = "robustrep classify eval"


def check_no_output(folder: Path, option: str) -> None:
    """Refuse to start a new run in ``folder`` (``option``'s, holding no run's config.json) when
    it holds the output of another robustrep command (:data:`RECORDS`), before any work."""
    folder = Path(folder).expanduser()
    found = next((name for name in RECORDS
                  if name != RUN_RECORD and (folder / name).is_file()), None)
    if found is None:
        return
    command = "robustrep " + " or ".join(RECORDS[found][0])
    if found == "report.json":
        command = report_writer(folder / found) or command
    raise RunFolderError(f"{option} {folder} holds the output of {command} ({found}); give "
                         f"{option} a new folder")


def report_writer(path: Path) -> str | None:
    """Which command wrote the report.json at ``path``, told by its keys (None: not told)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = record.keys() if isinstance(record, dict) else set()
    if set(EVAL_REPORT_KEYS) <= keys:
        return CLASSIFY_EVAL
    return "robustrep report" if set(REPORT_KEYS) <= keys else None


def check_own_kind(folder: Path, option: str, program: str, accepted: str) -> None:
    """Refuse ``folder`` when it holds the record of another kind of folder than ``program``'s
    (every record ``program`` writes is its own, as a stopped report's report_options.json),
    before any work; ``accepted`` says which folders it takes."""
    folder = Path(folder).expanduser()
    found = next((name for name, (writers, kind) in RECORDS.items()
                  if kind is not None and program not in writers
                  and (folder / name).is_file()), None)
    if found is not None:
        raise RunFolderError(f"{option} {folder} is {RECORDS[found][1]} (it holds {found}); "
                             f"{program} writes only into a folder of its own: {accepted}")


def setting_changes(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """``"key old -> new"`` for each of ``keys`` in which two records of one command differ (one
    kept in a folder, one about to replace or join it). A run folder, or a model's weights file
    (given without a run; "pretrained" is no file), is compared by where it is: ``RUN``,
    ``./RUN`` and its absolute path are one run."""
    def key(name: str, record: dict[str, Any]) -> Any:
        value = record.get(name)
        path = name == "run" or (name == "weights" and record.get("run") is None
                                 and value != "pretrained")
        return os.path.abspath(value) if path and isinstance(value, str) else value
    return [f"{k} {old[k]!r} -> {new.get(k)!r}" for k in keys
            if k in old and key(k, old) != key(k, new)]


def run_holding(folder: Path) -> Path | None:
    """The run folder (one holding config.json) that ``folder`` is, or lies in."""
    return next((f for f in (folder, *folder.parents) if (f / "config.json").is_file()), None)


def check_same_run(old: dict[str, Any] | None, out: Path, run: str | Path | None,
                   noun: str, model: str | None = None, folder: bool = True) -> None:
    """A record ``old`` of an earlier evaluation in ``out`` (``--out``: a folder, or the record's
    file when not ``folder``) is replaced, or joined, only when it scored ``run``: ``gan eval A
    --out B/eval.json``, ``classify eval A --out B/eval`` and ``ood score A --out B/ood``
    replaced run B's results. A record of a model from elsewhere (``run`` null) is the
    command's to judge (its note says what differs). A record inside RUN is RUN's whatever
    path it names (a run copied or moved keeps its records); one elsewhere naming no run, or a
    relative path (an older robustrep recorded RUN as typed, relative to a working folder it
    did not record), may be any run's, and is refused too. ``noun``: what the record is ("an
    eval record", "results"); ``model``: what a call without ``run`` scores, as its flag names
    it (``--model resnet18``); the line names ``run`` resolved."""
    if old is None or ("run" in old and old["run"] is None):  # none, or a --model's
        return
    scored = old.get("run")
    named = isinstance(scored, str) and Path(scored).is_absolute()
    holder = run_holding((out if folder else out.parent).resolve())
    here = Path(run).resolve() if run is not None else None
    # a relative path (an older record) that names this run from here: the same command again
    same = isinstance(scored, str) and here is not None and Path(scored).resolve() == here
    if here is not None and (holder == here or same):
        return
    how = ("written without its run" if not isinstance(scored, str) else
           f"written with its run relative to an unrecorded folder, {scored!r}")
    the = "the " + noun.removeprefix("an ").removeprefix("a ")
    whose = (f"{the} of another run, {scored}" if named else
             f"{noun} of the run {holder} ({how}: an older robustrep's)" if holder is not None
             else f"{noun} {how} (an older robustrep's), possibly another run's")
    remove = (f"another folder, or remove {out} to replace its files" if folder else
              "another path, or remove the file to replace it")
    subject = str(here) if here is not None else model
    raise RunFolderError(f"--out {out} holds {whose}; give --out {remove} with {subject}'s")


def as_own_run(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A run's earlier record (not a --model's, run null) that :func:`check_same_run` let
    through as this run's (copied or moved with it, or naming it as an older robustrep did, or
    not at all), naming this run: its settings are compared as the same run's."""
    if isinstance(new.get("run"), str) and old.get("run", "") is not None:
        return {**old, "run": new["run"]}
    return old
