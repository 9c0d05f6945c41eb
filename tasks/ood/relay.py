"""A child run's progress, relayed from its log while it runs.

``ood bench`` trains each classifier with ``robustrep classify train`` in its own process, whose
output goes to a log file (:func:`robustrep.tasks.common.launch.run_robustrep`). There the
child's progress bar is written as plain lines every few seconds
(:class:`robustrep.tasks.common.progress.LogProgress`)::

    train resnet10t: step 120/300 (40%) 7.9 it/s ETA 22s loss=0.31

:func:`relaying` reads the lines the log gains meanwhile and passes each progress line's step,
share and estimate on, so that the bench says how far its training is while it waits for it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 1.0  # how often the log is read; the child writes a line every 10 s

# LogProgress.line() of a loop counting steps: "DESC: step N/TOTAL (P%) RATE it/s[ ETA T]"
_PROGRESS = re.compile(r": step (\d+)/(\d+) \((\d+)%\) \S+ it/s(?: ETA (\S+))?")


def progress_text(line: str) -> str | None:
    """``"step 120/300 (40%), ETA 22s"`` of one of the child's progress lines; None for its
    other lines (the command line, notes, evaluations)."""
    found = _PROGRESS.search(line)
    if found is None:
        return None
    step, total, share, eta = found.groups()
    return f"step {step}/{total} ({share}%)" + (f", ETA {eta}" if eta else "")


class _Tail:
    """The complete lines ``path`` gains after byte ``start`` (a line still being written waits
    for its end)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path, self.offset, self.partial = path, start, b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:  # not made yet
            return []
        self.offset += len(data)
        *done, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in done]


@contextmanager
def relaying(log: Path, say: Callable[[str], None] | None) -> Iterator[None]:
    """While the block runs, ``say`` the progress of the lines ``log`` gains (its earlier lines,
    of earlier runs, are not said again); a last read after the block says those written
    since the last poll. ``say`` None: nothing is read."""
    if say is None:
        yield
        return
    tail = _Tail(log, log.stat().st_size if log.is_file() else 0)
    stop = threading.Event()

    def relay() -> None:
        for line in tail.lines():
            text = progress_text(line)
            if text is not None:
                say(f"training {text}")

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            relay()

    thread = threading.Thread(target=poll, name="relay-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        relay()
