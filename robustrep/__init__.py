"""robustrep: regularizers for robust learned representations.

One core of regularizers (AdaptiveMix feature-space shrinkage, Mixup/CutMix/SRMix sample mixing,
symmetric adversarial training of a discriminator, multiple random projections) that serves GAN
training, timm classifier fine-tuning and OOD detection through the programs in ``tasks/``
(installed as ``robustrep.tasks`` and reached through the ``robustrep`` console script).

The library is side-effect free: nothing here parses argv, prints or writes run folders.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"


class _CheckoutTasksFinder(importlib.abc.MetaPathFinder):
    """Find ``robustrep.tasks`` in a source checkout, where ``tasks/`` sits beside ``robustrep/``.

    An installed robustrep holds ``robustrep/tasks`` (pyproject maps it there). When the checkout
    itself is first on ``sys.path`` (``python -m robustrep.tasks.cli`` or ``torchrun -m ...`` run
    from the repository root), ``robustrep`` is the source folder, which has no ``tasks``; this
    finder, consulted only after the normal ones fail, maps that one name to ``../tasks``.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "robustrep.tasks":
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)])


def _register_checkout_tasks() -> None:
    package = Path(__file__).resolve().parent
    tasks = package.parent / "tasks"
    if (package / "tasks").is_dir() or not (tasks / "__init__.py").is_file():
        return  # installed (tasks inside the package), or not a checkout
    if not any(isinstance(f, _CheckoutTasksFinder) for f in sys.meta_path):
        sys.meta_path.append(_CheckoutTasksFinder(tasks))


_register_checkout_tasks()
