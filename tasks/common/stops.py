"""Stop signals raised or held until a safe point, and what the line of a stopped command says.

Outside a trainer, SIGTERM raises :class:`Stopped` as Ctrl-C raises KeyboardInterrupt
(:func:`sigterm_raises`): Python's default ended the process at once with no word, leaving a
half-written ``.tmp``. Once the command's run has finished (:func:`finished_run`), a SIGTERM
stops nothing.

A trainer holds SIGINT and SIGTERM (a scheduler's warning before it preempts a job) until its
step ends and a checkpoint is written (:mod:`.training`). A command that writes a set of files
that refer to each other (``ood score``'s ``results.json`` with its tables, scores and
pictures; ``classify eval``'s ``report.json`` and its diagrams; ``ood bench``'s and
``report``'s pages) holds them over the set (:func:`held_stops`): each file was written whole,
but a stop between two of them left ``results.json`` naming a detector ``results.csv`` lacked,
while the stop line said nothing was half-written. A second Ctrl-C stops at once, for a user
who will not wait, and the line then says what may be out of step.

The stop line (:func:`stopped_line`) says what was kept and how to go on: what the command in
flight has kept so far (:func:`stop_note`), else for a trainer its last checkpoint and the flags
that continue from it (:func:`checkpoint_kept`), for any other command that each file was
written whole; a run that had finished is said as such (:func:`say_if_finished`).
:func:`run_command <robustrep.tasks.common.cli.run_command>` prints it, under torchrun from the
first process only (:func:`is_first_process`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import Stopped, WriteFailed

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_STOP_NOTE: list[str] = []  # what the command in flight has kept so far (stop_note)


def stop_note(note: str | None) -> None:
    """What a command that writes file after file has kept, should a signal stop it now: the
    stop line says it in place of the general one (None: the general one again)."""
    _STOP_NOTE[:] = [] if note is None else [note]


def current_stop_note() -> str | None:
    return _STOP_NOTE[0] if _STOP_NOTE else None


class StopRequest:
    """The signal handler: the first SIGINT/SIGTERM is remembered, a second SIGINT interrupts."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any = None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum

    @contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        """Handle the stop signals for the block (main thread only: Python's rule)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                restore_signal(sig, handler)


@contextmanager
def held_stops(files: str) -> Iterator[None]:
    """Write the block's files as one set: a SIGINT or SIGTERM met in it stops the command when
    the block ends, the line saying ``files`` were written whole; the first one is said at
    once (the wait, seconds for pictures, invited a second Ctrl-C). A file that cannot be
    written (a full disk) leaves the set out of step too: its line says so. ``files``: what the
    block writes, as the line names it (``the results in OUT``)."""
    stop = SaidStop(f"once it has written {files}")
    with stop.installed():
        try:
            yield
        except KeyboardInterrupt:  # the second Ctrl-C
            if stop.signum is not None:
                stop_note(f"a second Ctrl-C stopped it while it wrote {files}: each file is "
                          f"whole, but some may be missing or still the earlier call's; the "
                          f"same command again writes them all")
            raise
        except WriteFailed as err:  # "(nothing was written)" of the one file, not of the set
            raise WriteFailed(f"{err}; {files} may be out of step with each other until the "
                              f"same command writes them all again") from None
    if stop.signum is not None:
        stop_note(f"it stopped once it had written {files}, each file whole")
        raise KeyboardInterrupt if stop.signum == signal.SIGINT else Stopped(stop.signum)


class SaidStop(StopRequest):
    """:class:`StopRequest` that says at the first signal when the command stops (``when``:
    ``once it has written the results in OUT``, ``after this step, with a checkpoint``) and
    that a second Ctrl-C stops it now (``now``: what that costs): the wait, seconds for pictures
    and minutes for a trainer's evaluation, had looked like a Ctrl-C not heard, and invited a
    second one. Said on torchrun's first process only, above a progress bar."""

    def __init__(self, when: str, now: str = "") -> None:
        super().__init__()
        self.when, self.now = when, now

    def __call__(self, signum: int, frame: Any = None) -> None:
        first = self.signum is None
        super().__call__(signum, frame)
        if first and is_first_process():
            from tqdm.auto import tqdm  # write clears a bar on a terminal and redraws it below
            tqdm.write(f"stopping {self.when} (Ctrl-C again stops now{self.now})",
                       file=sys.stderr)


@contextmanager
def sigterm_raises(finished: Callable[[], Path | None] = lambda: None) -> Iterator[list[Path]]:
    """SIGTERM raises :class:`Stopped` in the block, as Ctrl-C raises KeyboardInterrupt: unhandled
    (Python's default), it ended the process at once with no word, leaving a half-written
    ``.tmp`` beside the file being written (``data pack``'s zip, a PNG of ``gan sample``).
    Main thread only (Python's rule); a trainer installs its own handler over this one.

    Once ``finished()`` names a run (:func:`finished_run`), a SIGTERM is only recorded in the
    list the block gets: nothing is left to stop, and exit 143 with "continue with --resume"
    made a scheduler count a finished run as killed (a resume of it is refused)."""
    late: list[Path] = []
    if threading.current_thread() is not threading.main_thread():
        yield late
        return

    def stop(signum: int, frame: Any) -> None:
        run = finished()
        if run is None:
            raise Stopped(signum)
        late.append(run)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield late
    finally:
        restore_signal(signal.SIGTERM, previous)


def restore_signal(signum: int, previous: Any) -> None:
    """Put back the handler ``signal.signal`` returned for ``signum``: None, for a handler set
    outside Python (which cannot be put back), is the default one (``signal.signal(sig, None)``
    raised TypeError, in place of the block's own error or stop)."""
    signal.signal(signum, signal.SIG_DFL if previous is None else previous)


def finished_run(opened: int, marks: int) -> Path | None:
    """The run a trainer opened (after the first ``opened`` of this process: only trainers open
    one), once the command wrote its ``finished.json`` (after the first ``marks``: one an earlier
    command wrote is not this one's, whose resume may train on), else None. Only the CLI's
    handler asks: the Python ``train()`` functions leave a caller's SIGTERM as it was.

    A torchrun process but the first opens no run folder: its run is the one it noted finished
    (``run_records.note_finished``, after process 0's write), one run a command."""
    from robustrep.tasks.common.run_records import finished_runs, opened_runs
    runs, done = opened_runs()[opened:], finished_runs()[marks:]
    if not runs:
        return done[-1] if done else None
    return runs[-1] if runs[-1] in done else None


def say_if_finished(opened: int, marks: int) -> None:
    """A command stopped (Ctrl-C) after its run had finished (:func:`finished_run`): the stop
    line says so. The general one said "continue with --resume", which is refused for a finished
    run (nothing to train). The exit code stays 130: the user stopped the command (its report
    was not printed), and a shell or script stops on it, as they asked."""
    run = finished_run(opened, marks)
    if run is not None:
        stop_note(f"{run} had finished (finished.json written); there is nothing to resume")


def stopped_line(signum: int, args: argparse.Namespace, opened: int = 0) -> str:
    """``interrupted (Ctrl-C); <what was kept and how to go on>`` (SIGTERM: ``stopped by
    SIGTERM; ...``). ``opened``: how many run folders this process had opened before the
    command (:func:`~robustrep.tasks.common.run_records.opened_runs`); a trainer's is the next."""
    how = ("interrupted (Ctrl-C)" if signum == signal.SIGINT
           else f"stopped by {signal.Signals(signum).name}")
    return f"{how}; {_kept(args, opened)}"


def _kept(args: argparse.Namespace, opened: int) -> str:
    note = current_stop_note()
    if note is not None:
        return note
    if getattr(args, "command", None) != "train":  # every output is written atomically
        return ("no file was left half-written (each is written whole or not at all); the same "
                "command again does the work again")
    return checkpoint_kept(opened, resumed_run(args))


def resumed_run(args: argparse.Namespace) -> str | None:
    """The run folder ``--resume`` names (``--resume`` alone: the ``--out`` folder), or None."""
    from robustrep.tasks.common.options import RESUME_OUT
    resume = getattr(args, "resume", None)
    return getattr(args, "out", None) if resume == RESUME_OUT else resume


def checkpoint_kept(opened: int, resumed: str | None = None) -> str:
    """What a stopped trainer kept: the last checkpoint of the run folder it opened (after the
    first ``opened`` of this process) and how to continue from it; a resume stopped before it
    opened its run (``resumed``) left that run as it was."""
    from robustrep.tasks.common.plugins import resume_flags
    from robustrep.tasks.common.run_records import opened_runs
    runs = opened_runs()[opened:]
    if not runs and resumed is not None:  # it said "before making its run folder"
        return (f"it stopped before it opened {resumed}, which is unchanged; the same command "
                f"again continues it")
    if not runs:
        return "it stopped before making its run folder; nothing was written"
    from robustrep.tasks.common.checkpoint import (  # torch: loaded by now
        checkpoint_step, last_step_checkpoint, latest_checkpoint)
    latest = latest_checkpoint(runs[-1] / "checkpoints")
    if latest is None:
        return (f"{runs[-1]} holds no checkpoint yet; the same command again starts the run "
                f"afresh there")
    last = last_step_checkpoint(runs[-1] / "checkpoints")
    step = f" (step {checkpoint_step(last)})" if last is not None else ""
    return f"checkpoint {latest}{step} is intact; continue with {resume_flags(runs[-1])}"


def is_first_process() -> bool:
    """Whether this is torchrun's process 0 (or no torchrun): the one that opens the run folder
    and says, once for the job, what a stop kept."""
    return os.environ.get("RANK", "0") == "0"
