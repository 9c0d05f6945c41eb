"""Makes ``python -m pytest`` from the checkout's root collect what ``pytest`` collects, and
sizes ``-n auto``.

``python -m`` puts the working folder first on ``sys.path``, so ``import robustrep`` would find
the checkout's ``robustrep/``, which has no ``robustrep.tasks`` (that package installs from
``tasks/``; see ``package-dir`` in pyproject.toml). The tests import the installed package
(``--import-mode=importlib``), so this folder leaves ``sys.path`` before any test imports it.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker per core, at most 4: each worker imports torch and trains the
    session's cached feature networks once, which more workers would repeat for little gain on
    a suite of small tests (each runs on one torch thread, tests/conftest.py)."""
    return max(1, min(os.cpu_count() or 1, 4))
