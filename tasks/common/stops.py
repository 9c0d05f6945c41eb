"""Stop signals held until a safe point, and what the stop line says was kept.

A trainer holds SIGINT and SIGTERM (a scheduler's warning before it preempts a job) until its
step ends and a checkpoint is written (:mod:`.training`). A command that writes a set of files
that refer to each other (``ood score``'s ``results.json`` with its tables, scores and
pictures; ``classify eval``'s ``report.json`` and its diagrams; ``ood bench``'s and
``report``'s pages) holds them over the set (:func:`held_stops`): each file was written whole,
but a stop between two of them left ``results.json`` naming a detector ``results.csv`` lacked,
while the stop line said nothing was half-written. A second Ctrl-C stops at once, for a user
who will not wait, and the line then says what may be out of step.

:func:`stop_note` is what the command in flight has kept so far; :func:`run_command
<robustrep.tasks.common.cli.run_command>` prints it in place of its general stop line.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from robustrep.tasks.common.errors import Stopped

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
                signal.signal(sig, handler)


@contextmanager
def held_stops(files: str) -> Iterator[None]:
    """Write the block's files as one set: a SIGINT or SIGTERM met in it stops the command when
    the block ends, the line saying ``files`` were written whole. ``files``: what the block
    writes, as the line names it (``the results in OUT``)."""
    stop = StopRequest()
    with stop.installed():
        try:
            yield
        except KeyboardInterrupt:  # the second Ctrl-C
            if stop.signum is not None:
                stop_note(f"a second Ctrl-C stopped it while it wrote {files}: each file is "
                          f"whole, but some may still be the earlier call's; the same command "
                          f"again writes them all")
            raise
    if stop.signum is not None:
        stop_note(f"it stopped once it had written {files}, each file whole")
        raise KeyboardInterrupt if stop.signum == signal.SIGINT else Stopped(stop.signum)
