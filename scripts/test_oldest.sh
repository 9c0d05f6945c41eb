#!/usr/bin/env bash
# The test suite at the oldest versions robustrep accepts: a fresh virtual environment holding
# pyproject.toml's floor of every runtime dependency (pinned in scripts/oldest-constraints.txt),
# the package itself (not editable) with its dev extra, then the README's test commands.
#
#   bash scripts/test_oldest.sh [VENV]        # VENV defaults to .venv-oldest
#   PYTHON=python3.10 bash scripts/test_oldest.sh   # the oldest Python too (requires-python)
#
# Needs only the package registries and about 6 GB of disk (torch from PyPI brings its CUDA
# libraries; the tests run on the CPU); about 15 minutes on 2 cores. The constraints file says
# why each floor is where it is.
set -euo pipefail
usage="usage: bash scripts/test_oldest.sh [VENV]   (VENV defaults to .venv-oldest; it is deleted and rebuilt)"
case "${1:-}" in
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "test_oldest.sh: error: unknown option ${1}; accepted: -h/--help or a VENV folder" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "test_oldest.sh: error: at most one argument (VENV) accepted, got $#" >&2; exit 2; }
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "test_oldest.sh: error: PYTHON=$python is not a command; give an interpreter such as python3.10" >&2; exit 2; }
cd "$(dirname "$0")/.."
venv="${1:-.venv-oldest}"
# The folder is rm -rf'd below, so only ever delete one this script made itself (it leaves a
# marker there); anything else, e.g. "." or a user's venv, is refused.
marker=".made-by-test_oldest"
if [ -e "$venv" ] && [ ! -f "$venv/$marker" ]; then
    echo "test_oldest.sh: error: VENV $venv exists and was not made by this script (no $marker in it); pass a new folder" >&2
    exit 2
fi
rm -rf "$venv"
"$python" -m venv "$venv"
touch "$venv/$marker"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --prefer-binary -c scripts/oldest-constraints.txt '.[dev]'
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
pins = dict(line.split("==") for line in open("scripts/oldest-constraints.txt")
            if "==" in line and not line.startswith("#"))
got = {name: md.version(name) for name in pins}
wrong = {n: (v, pins[n].strip()) for n, v in got.items() if v != pins[n].strip()}
assert not wrong, f"installed versions differ from the floors (installed, floor): {wrong}"
import sys
print(f"oldest versions on Python {sys.version.split()[0]}:",
      ", ".join(f"{n} {v}" for n, v in got.items()))
PY
"$venv/bin/pytest" -q
"$venv/bin/pytest" -q -m subprocess
