"""The training clock of ``classify train`` and ``gan train``: the seconds of the training
steps alone.

``train_s`` in ``metrics.jsonl`` is the training seconds so far, a resumed run's earlier ones
included, without the evaluations (logged apart as ``eval_s``) and the checkpoints; classify's
included both, so a run that evaluated often read as slow, and gan's left out the device wait at
each log's read of the losses. The time of reading each step's batch counts (timm's ``train.py``
counts it in its batch time too).
``time/step_ms`` is the mean over the steps since the previous log (since the start or the
resume for the first), as timm's ``train.py`` logs its recent batch time: it was the mean since
the process started, evaluations included, and hid a slowdown behind the earlier steps.

The caller stops the clock only after a read that waits for the device (the loss meter's, at a
log, an evaluation or a checkpoint), so the steps' queued GPU work is counted as theirs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class TrainClock:
    """Training seconds since a run began, and the mean step time of each log interval."""

    def __init__(self, seconds: float = 0.0, step: int = 0) -> None:
        self._done = seconds  # a resumed run's earlier training seconds, then this session's
        self._mark = (step, seconds)  # step and seconds at the previous log
        self._started: float | None = None

    @property
    def seconds(self) -> float:
        """Training seconds so far, the running lap's included (a checkpoint at a stop signal
        is written while the clock runs)."""
        running = 0.0 if self._started is None else time.perf_counter() - self._started
        return self._done + running

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        """Add the seconds since :meth:`start` (none when not running)."""
        if self._started is not None:
            self._done += time.perf_counter() - self._started
            self._started = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Not counted: an evaluation, a checkpoint, the writing of a log; the clock runs again
        after it only if it ran before (the final step's log comes after the loop's stop)."""
        running = self._started is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()

    def step_ms(self, step: int) -> float:
        """Milliseconds per step since the previous call (or the clock's start); starts the
        next interval at ``step``."""
        step0, seconds0 = self._mark
        self._mark = (step, self.seconds)
        return 1000 * (self.seconds - seconds0) / max(step - step0, 1)
