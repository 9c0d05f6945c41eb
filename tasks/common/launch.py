"""Run a ``robustrep`` command in a fresh Python process.

Programs that build on another program's runs (``ood bench`` trains classifiers, ``report``
runs all three) call it through its command line instead of importing it: the programs stay
independent, and a crash, a leak or a global setting in one run cannot touch the next.

Stopping: inside :func:`forwarding_signals`, a SIGINT or SIGTERM to the program is passed once
to the runs it started (each in a session of its own, so a terminal's Ctrl-C reaches them only
through the program, once: a second SIGINT would stop a run without its checkpoint); they
checkpoint and stop, and the program stops with :class:`Interrupted`, starting nothing more.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import Interrupted, Stopped
from robustrep.tasks.common.plugins import plugin_args, plugin_env
from robustrep.tasks.common.stops import restore_signal

_LIVE: set[subprocess.Popen] = set()  # the runs started and not yet ended
_STOP: list[int] = []  # the signal that asked this program to stop, once one did
_LOCK = threading.Lock()


@contextmanager
def forwarding_signals() -> Iterator[None]:
    """SIGINT and SIGTERM pass to the runs :func:`run_robustrep` started (main thread only)."""
    def forward(signum: int, frame: Any) -> None:
        with _LOCK:
            first = not _STOP
            _STOP.append(signum)
            live = list(_LIVE)
        if not live:  # nothing started to wait for: stop now, as without this handler; the
            # program's line says what it kept (its stop_note), as for a Ctrl-C
            raise KeyboardInterrupt if signum == signal.SIGINT else Stopped(signum)
        if first:
            for proc in live:
                _signal(proc, signum)

    _STOP.clear()  # kept set after the block: a straggling thread starts no run
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            restore_signal(s, handler)


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except OSError:  # it has just ended
        pass


def check_stop(ended: list[str] | None = None) -> None:
    """Interrupted when a stop signal was caught: no further run starts (``ended``: the run
    that has just stopped, named in the line; None before a run starts, which is not named)."""
    if not _STOP:
        return
    name = signal.Signals(_STOP[0]).name
    # a training run checkpointed; an evaluation or scoring has none, and is done again
    among = (f" (robustrep {' '.join(ended[:2])} among them)" if ended and ended[1:2] == ["train"]
             else "")
    raise Interrupted(_STOP[0], f"stopped by {name}; the runs started stopped with their "
                                f"checkpoints{among}; the same command again continues them")


def option_args(options: dict[str, Any]) -> list[str]:
    """``{"adv_steps": 3, "classes": [0, 1]}`` -> ``["--adv-steps", "3", "--classes", "0,1"]``."""
    argv = []
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        argv += ["--" + key.replace("_", "-"), str(value).lower() if isinstance(value, bool)
                 else str(value)]
    return argv


def command(argv: list[str]) -> list[str]:
    """``ARGV`` as a child process runs it: after the ``--plugin`` options of the plugins this
    process loaded, so that a regularizer or network family the parent accepted exists there."""
    return [*plugin_args(), *argv]


# set for a run started by run_robustrep: the pid of the process that waits for it
PARENT_ENV = "ROBUSTREP_PARENT_PID"


def stop_with_parent() -> None:
    """In a run :func:`run_robustrep` started: a SIGTERM (which checkpoints a training run) when
    the process that started it dies, even by ``kill -9``, instead of training on as an orphan
    that holds its run folder while the next report tries to resume it. Linux only
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing."""
    parent = os.environ.pop(PARENT_ENV, None)  # not passed on to the run's own children
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != int(parent):  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def run_robustrep(argv: list[str], log: Path, threads: int | None = 1) -> int:
    """Run ``robustrep ARGV``, appending its output to ``log``; return the exit code. The
    plugins this process loaded are loaded there too (:func:`command`).

    ``threads`` caps the process's intra-op threads, so that several runs side by side share
    the cores instead of oversubscribing them. The process starts in ``log``'s folder, never in
    a source checkout whose ``robustrep/`` could shadow the installed package.
    """
    argv = command(argv)
    env = plugin_env(dict(os.environ))
    env[PARENT_ENV] = str(os.getpid())  # the run stops when this process dies (stop_with_parent)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log.parent.mkdir(parents=True, exist_ok=True)
    check_stop()  # the run is not started: it is not named
    with log.open("a") as handle:
        handle.write(f"$ {shlex.join(['robustrep', *argv])}\n")  # as a shell reads it
        handle.flush()
        proc = subprocess.Popen([sys.executable, "-m", "robustrep.tasks.cli", *argv], env=env,
                                stdout=handle, stderr=subprocess.STDOUT, cwd=log.parent,
                                start_new_session=True)
        with _LOCK:
            _LIVE.add(proc)
            late = _STOP[0] if _STOP else None  # a signal between the start and the line above
        if late is not None:
            _signal(proc, late)
        try:
            code = proc.wait()
        finally:
            with _LOCK:
                _LIVE.discard(proc)
    check_stop(argv)
    return code


def check_robustrep(argv: list[str]) -> tuple[int, str, str]:
    """Run ``robustrep ARGV`` (a ``--dry-run``: it writes nothing) in a fresh process from the
    temporary folder; return its exit code, stdout (the resolved config) and stderr (its notes
    and refusal, kept apart so that a note never lands inside the config's JSON)."""
    import tempfile
    done = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", *command(argv)],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(),
                          env=plugin_env(dict(os.environ)))
    return done.returncode, done.stdout, done.stderr


def last_lines(log: Path, count: int = 1) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()] if log.is_file() else []
    return " | ".join(lines[-count:])
