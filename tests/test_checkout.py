"""``python -m pytest`` and ``pytest`` from the checkout's root collect the same tests.

Simulates a regular (not editable) install, where the checkout's ``robustrep/`` (no ``tasks``)
would shadow the installed package: the installed layout is copied to a temporary folder, and
``python -S`` keeps the editable install's import hook (a .pth file) out.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/tasks/test_cli.py", "tests/test_registry.py"]


def _collect(python_args: list[str], site: Path) -> subprocess.CompletedProcess:
    paths = [str(site), *(p for p in sys.path if p.endswith("site-packages"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-S", *python_args, "--collect-only", "-q",
                           "-p", "no:cacheprovider", *MODULES],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess
def test_python_dash_m_pytest_collects_like_pytest(tmp_path):
    if not (ROOT / "tasks").is_dir():
        pytest.skip("not a checkout (installed test run)")
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "robustrep", site / "robustrep", ignore=ignore)
    shutil.copytree(ROOT / "tasks", site / "robustrep" / "tasks", ignore=ignore)
    script = _collect([str(Path(sys.executable).parent / "pytest")], site)
    module = _collect(["-m", "pytest"], site)
    assert script.returncode == 0, script.stdout[-2000:] + script.stderr[-2000:]
    assert module.returncode == 0, module.stdout[-2000:] + module.stderr[-2000:]
    ids = [line for line in script.stdout.splitlines() if "::" in line]
    assert any(i.startswith("tests/tasks/test_cli.py::") for i in ids), script.stdout
    assert [line for line in module.stdout.splitlines() if "::" in line] == ids
