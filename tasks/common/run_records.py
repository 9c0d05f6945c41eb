"""Runs read back in one schema, and the runs this process opened and finished.

:func:`read_run` gives every program's run in one schema, :class:`RunSummary`, whatever program
wrote it and whichever names an older version used (its files are read through ``runfiles``: a
damaged one is one ``RunFolderError`` naming it):

* ``step`` — the step of a record; ``train_s`` — training seconds so far, without evaluation
  (``gan`` wrote ``train_s`` from the start; ``classify`` runs written before it did have only
  ``time``, the wall-clock seconds of :meth:`RunDir.log`, which is read in its place);
* a run is **finished** when ``finished.json`` (written last, atomically, after the final
  checkpoint and evaluation) is there; runs written before the marker existed count as finished
  when their last record reached the configured ``steps`` and carries an evaluation.

The error boundary of every program (``tasks.common.cli``) asks which run folders this process
opened (:func:`opened_runs`) and whose ``finished.json`` it wrote or saw written
(:func:`finished_runs`): both lists are kept in this module alone.

This module imports neither torch nor numpy: ``report`` and ``ood bench`` read runs without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustrep.tasks.common.runfiles import RESTORE, read_json, read_jsonl, write_json

FINISHED = "finished.json"

# What a record's training time was called: the current name first, then older ones.
TRAIN_SECONDS_KEYS = ("train_s", "time")
# Keys of a record that are bookkeeping, not metrics.


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def train_seconds(record: dict[str, Any], key: str | None = None) -> float | None:
    """A record's training seconds: ``key``, or the first of the current and older names."""
    for name in (key,) if key else TRAIN_SECONDS_KEYS:
        if _number(record.get(name)):
            return float(record[name])
    return None


def clock_key(records: list[dict[str, Any]]) -> str:
    """The name a run's training time is logged under (``time`` only in older classify runs,
    whose evaluation records would otherwise mix wall-clock into ``train_s``)."""
    return next((k for k in TRAIN_SECONDS_KEYS if any(_number(r.get(k)) for r in records)),
                TRAIN_SECONDS_KEYS[0])


@dataclass
class RunSummary:
    """One run of any program, in one schema (see the module docstring)."""

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    finished: bool = False

    @property
    def steps(self) -> int:
        """The last step logged (0 before the first log)."""
        return max((int(r["step"]) for r in self.records if isinstance(r.get("step"), int)),
                   default=0)

    @property
    def train_seconds(self) -> float | None:
        key = clock_key(self.records)
        times = [t for t in (train_seconds(r, key) for r in self.records) if t is not None]
        return times[-1] if times else None

    @property
    def step_seconds(self) -> float | None:
        """Training seconds per step between the first and the last timed record."""
        key = clock_key(self.records)
        timed = [(r["step"], train_seconds(r, key)) for r in self.records
                 if isinstance(r.get("step"), int) and train_seconds(r, key) is not None]
        if len(timed) < 2 or timed[-1][0] <= timed[0][0]:
            return None
        return (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])

    def last(self, *keys: str) -> dict[str, Any]:
        """The last record holding any of ``keys`` (the final evaluation), or ``{}``."""
        return next((r for r in reversed(self.records) if any(k in r for k in keys)), {})

    def curve(self, key: str) -> list[tuple[int, int, float]]:
        """``(step, images seen, value)`` of every record holding ``key`` and ``kimg`` (a GAN
        run's evaluations), in step order; a step recorded twice keeps its last record."""
        by_step = {r["step"]: (r["step"], round(r["kimg"] * 1000), float(r[key]))
                   for r in self.records if isinstance(r.get("step"), int)
                   and _number(r.get("kimg")) and _number(r.get(key))}
        return [by_step[s] for s in sorted(by_step)]

    def metrics(self, *keys: str) -> dict[str, float]:
        """The numeric ``keys`` of the last record that holds any of them."""
        final = self.last(*keys)
        return {k: final[k] for k in keys if _number(final.get(k))}


def read_run(path: str | Path, eval_keys: tuple[str, ...] = (),
             advice: Callable[[Path], str] | None = None) -> RunSummary:
    """Read run folder ``path``: its config, its records and whether it finished.

    ``eval_keys`` are the metrics of a final evaluation, used only to tell whether a run from
    before ``finished.json`` existed finished. ``advice(file)`` ends the line of a damaged
    ``config.json`` or ``finished.json`` (default: :data:`runfiles.RESTORE`).
    """
    path = Path(path)
    advice = advice or (lambda file: RESTORE)
    # "not a run folder" only when it is missing: a damaged one's folder is a run's
    missing = "" if (path / "config.json").exists() else "; it is not a robustrep run folder"
    config = read_json(path / "config.json", dict, missing, advice(path / "config.json"))
    lines = read_jsonl(path / "metrics.jsonl")
    run = RunSummary(path, config, lines.records, lines.dropped)
    if (path / FINISHED).is_file():
        # a damaged marker is named, not trusted
        read_json(path / FINISHED, dict, advice=advice(path / FINISHED))
        run.finished = True
    elif eval_keys:  # a run from before the marker: the last step, evaluated
        steps = config.get("steps")
        final = run.last(*eval_keys)
        run.finished = isinstance(steps, int) and final.get("step") == steps
    return run


_OPENED: list[Path] = []  # the run folders runopen.open_run locked in this process, in order


def note_opened(path: Path) -> None:
    _OPENED.append(Path(path))


def opened_runs() -> list[Path]:
    """The run folders ``runopen.open_run`` locked in this process, in order: the line of a
    stopped trainer names the last one's checkpoint (``tasks.common.stops.stopped_line``); kept
    here, without torch, for the error boundary of every program."""
    return list(_OPENED)


# the run folders whose finished.json this process wrote (or, a torchrun process but the
# first, saw written), in order: the error boundary asks whether its command's run finished
# (tasks.common.stops.finished_run). Not finished.json on disk: a resume with a larger --steps
# finds the old one there until runopen.resumed removes it.
_FINISHED: list[Path] = []


def mark_finished(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``finished.json`` (the last write of a run): what the run ended with."""
    written = write_json(Path(path) / FINISHED, record)
    note_finished(path)  # only once it is on disk for good
    return written


def note_finished(path: str | Path) -> None:
    """Record that run ``path``'s ``finished.json`` is on disk: written by this process, or, under
    torchrun, by process 0 (the others note it after a barrier that follows the write)."""
    _FINISHED.append(Path(path))


def finished_runs() -> list[Path]:
    """The run folders whose ``finished.json`` this process wrote or saw written, in order (as
    :func:`opened_runs`: a command looks at those after the ones there when it began)."""
    return list(_FINISHED)


def unmark_finished(path: str | Path) -> None:
    """A run that trains again (resumed, or restarted with the same config) is not finished."""
    (Path(path) / FINISHED).unlink(missing_ok=True)
