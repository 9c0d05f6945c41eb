"""Makes ``python -m pytest`` from the checkout's root collect what ``pytest`` collects.

``python -m`` puts the working folder first on ``sys.path``, so ``import robustrep`` would find
the checkout's ``robustrep/``, which has no ``robustrep.tasks`` (that package installs from
``tasks/``; see ``package-dir`` in pyproject.toml). The tests import the installed package
(``--import-mode=importlib``), so this folder leaves ``sys.path`` before any test imports it.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]
