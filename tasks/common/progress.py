"""Progress for long loops, shown on the main process only.

On a terminal this is a tqdm bar. When stderr is not a terminal (a log file, ``nohup``, a batch
job, CI) a bar's carriage-return updates become thousands of lines (about 10 a second), so the
same calls write one plain line every ``interval`` seconds instead: steps, rate, ETA and the last
values given to ``set_postfix``, e.g. ``gan digits-dcgan none: step 400/2000 (20%) 7.9 it/s
ETA 3m22s d=1.21 g=0.93``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_INTERVAL = 10.0  # seconds between two plain log lines
WARM_UPDATES = 10  # updates after the first before the rate leaves the first one out


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def speed(rate: float, unit: str) -> str:
    """``1840 image/s``, ``7.9 it/s``, ``0.52 it/s``; below one a second, tqdm's ``3.2s/it``
    (a log had read ``1.84e+03 image/s``)."""
    if rate >= 1:
        return f"{rate:.0f} {unit}/s" if rate >= 99.5 else f"{rate:.3g} {unit}/s"
    per = 1 / rate
    return f"{per:.1f}s/{unit}" if per < 99.95 else f"{duration(per)}/{unit}"


class LogProgress:
    """tqdm's ``update``/``set_postfix``/``close`` interface, written as plain log lines."""

    def __init__(self, total: int, initial: int = 0, desc: str = "",
                 interval: float = LOG_INTERVAL, file: TextIO | None = None,
                 clock=time.monotonic, unit: str = "step", leave: bool = True):
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.leave, self.lines = leave, 0
        self.interval, self.file, self.clock = interval, file or sys.stderr, clock
        self.postfix: dict[str, Any] = {}
        self._start_n, self._start = initial, clock()
        self._first: tuple[int, float] | None = None  # count and time at the first update's end
        self._updates = 0
        self._last_line = self._start
        self._last_n, self._last_postfix = initial, {}
        self.closed = False

    def rate(self) -> float:
        """Units a second since the first update ended, once ``WARM_UPDATES`` more have come:
        the first (a warm-up: compilation, the first batch's workers) had made a log's first
        estimate 2.4x the time left. With fewer (a report's runs, two of which end together),
        the whole time since the start: from the first's end, one second for the second run
        had read as its pace."""
        now = self.clock()
        if self._first is not None and self._updates > WARM_UPDATES and now > self._first[1]:
            return (self.n - self._first[0]) / (now - self._first[1])
        elapsed = now - self._start
        return (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        of = f"/{self.total}" if self.total else ""  # a total of 0 or None: not known
        parts = [f"{self.desc}: " if self.desc else "", f"{self.unit} {self.n}{of}"]
        if self.total:
            parts.append(f" ({100 * self.n / self.total:.0f}%)")
        if rate > 0:  # none yet (a resumed run that ended at once): no "0 it/s"
            parts.append(" " + speed(rate, "it" if self.unit == "step" else self.unit))
        if rate > 0 and self.total:
            parts.append(f" ETA {duration(max(0, self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(" " + " ".join(f"{k}={v}" for k, v in self.postfix.items()))
        return "".join(parts)

    def _write(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self._last_line, self._last_n, self._last_postfix = self.clock(), self.n, self.postfix
        self.lines += 1

    def update(self, n: int = 1) -> None:
        self.n += n
        self._updates += 1
        if self._first is None:
            self._first = (self.n, self.clock())
        if self.clock() - self._last_line >= self.interval:
            self._write()

    def set_postfix(self, values: dict | None = None, refresh: bool = True, **kwargs) -> None:
        """New values; written at once when the last line is older than ``interval`` (a long
        step, such as one attack, reports from inside), unless ``refresh`` is False (as tqdm:
        the next update writes them)."""
        self.postfix = {**(values or {}), **kwargs}
        if refresh and self.clock() - self._last_line >= self.interval:
            self._write()

    def close(self) -> None:
        # the final count and values, unless the last line already said them (a training's
        # last step is written before its final evaluation, whose FID the postfix then holds)
        # or a stage that was left (leave=False) ended before its first line
        said = self.n == self._last_n and self.postfix == self._last_postfix
        if not self.closed and not said and (self.leave or self.lines):
            self._write()
        self.closed = True

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None, initial: int = 0, desc: str = "", enabled: bool = True,
             interval: float = LOG_INTERVAL, file: TextIO | None = None, unit: str = "step",
             leave: bool = True):
    """A tqdm bar on a terminal, plain log lines every ``interval`` seconds otherwise; ``unit``
    names what ``total`` counts (a step of a loop by default; None: not known). ``leave=False``
    clears the bar when done (a stage inside a longer loop, such as an evaluation)."""
    stream = file or sys.stderr
    is_tty = getattr(stream, "isatty", lambda: False)()
    if enabled and not is_tty:
        return LogProgress(total or 0, initial, desc, interval=interval, file=stream, unit=unit,
                           leave=leave)
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True,
                file=stream, smoothing=0.1, unit="it" if unit == "step" else unit, leave=leave)


def fmt_postfix(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, float):
            out[key] = f"{value:.3g}"
        elif value is not None:
            out[key] = value
    return out
