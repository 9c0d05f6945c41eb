"""How fast the command line answers: ``--help`` and argument errors, as a ratio to
``python -c pass`` (the cost of starting Python at all), measured in one run.

    python scripts/bench_cli.py [--repeats 5]

Each command is run ``--repeats`` times as a fresh process (the installed ``robustrep`` console
script beside this Python, else ``python -m robustrep.tasks.cli``); the table gives the median
wall time and its ratio to the median of ``python -c pass``. The issue's target: ``--help`` and an
argument error within 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import int_at_least  # noqa: E402

# Every command of every program: its --help and one wrong value (an argument error).
CASES = [
    ("classify train --help", ["classify", "train", "--help"]),
    ("classify train --nope (argument error)", ["classify", "train", "--nope"]),
    ("classify train --reg foo (option error)", ["classify", "train", "--reg", "foo"]),
    ("classify eval --help", ["classify", "eval", "--help"]),
    ("classify eval RUN --bins 0", ["classify", "eval", "RUN", "--bins", "0"]),
    ("gan train --help", ["gan", "train", "--help"]),
    ("gan train --steps 0 (argument error)", ["gan", "train", "--steps", "0"]),
    ("gan eval --help", ["gan", "eval", "--help"]),
    ("gan eval RUN --real 0", ["gan", "eval", "RUN", "--real", "0"]),
    ("gan sample --help", ["gan", "sample", "--help"]),
    ("gan sample RUN --num 0", ["gan", "sample", "RUN", "--num", "0"]),
    ("gan fid --help", ["gan", "fid", "--help"]),
    ("gan fid A --num 1", ["gan", "fid", "A", "--num", "1"]),
    ("ood score --help", ["ood", "score", "--help"]),
    ("ood score RUN --batch-size 0", ["ood", "score", "RUN", "--batch-size", "0"]),
    ("ood bench --help", ["ood", "bench", "--help"]),
    ("ood bench --seeds -1", ["ood", "bench", "--seeds", "-1"]),
    ("report --help", ["report", "--help"]),
    ("report --jobs 0", ["report", "--jobs", "0"]),
    ("data pack --help", ["data", "pack", "--help"]),
    ("data pack SRC OUT.zip --resolution 0", ["data", "pack", "SRC", "OUT.zip",
                                              "--resolution", "0"]),
]


def _robustrep() -> list[str]:
    script = Path(sys.executable).with_name("robustrep")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "robustrep.tasks.cli"]


def _median_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int_at_least(1), default=5,
                        help="runs per command (median)")
    args = parser.parse_args(argv)
    base = _median_seconds([sys.executable, "-c", "pass"], args.repeats)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"{'command':50s} {'median s':>9s} {'x python -c pass':>17s}")
    print(f"{'python -c pass':50s} {base:9.3f} {1.0:17.1f}")
    for label, words in CASES:
        t = _median_seconds(_robustrep() + words, args.repeats)
        print(f"{'robustrep ' + label:50s} {t:9.3f} {t / base:17.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
