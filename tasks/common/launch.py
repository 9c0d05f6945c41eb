"""Run a ``robustrep`` command in a fresh Python process.

Programs that build on another program's runs (``ood bench`` trains classifiers, ``report``
runs all three) call it through its command line instead of importing it: the programs stay
independent, and a crash, a leak or a global setting in one run cannot touch the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from robustrep.tasks.common.plugins import plugin_args


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


def run_robustrep(argv: list[str], log: Path, threads: int | None = 1) -> int:
    """Run ``robustrep ARGV``, appending its output to ``log``; return the exit code. The
    plugins this process loaded are loaded there too (:func:`command`).

    ``threads`` caps the process's intra-op threads, so that several runs side by side share
    the cores instead of oversubscribing them. The process starts in ``log``'s folder, never in
    a source checkout whose ``robustrep/`` could shadow the installed package.
    """
    argv = command(argv)
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"$ robustrep {' '.join(argv)}\n")
        handle.flush()
        done = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", *argv],
                              env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=log.parent)
    return done.returncode


def check_robustrep(argv: list[str]) -> tuple[int, str]:
    """Run ``robustrep ARGV`` (a ``--dry-run``: it writes nothing) in a fresh process from the
    temporary folder; return its exit code and its output (stdout and stderr)."""
    import tempfile
    done = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", *command(argv)],
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    return done.returncode, done.stdout + done.stderr


def last_lines(log: Path, count: int = 1) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()] if log.is_file() else []
    return " | ".join(lines[-count:])
