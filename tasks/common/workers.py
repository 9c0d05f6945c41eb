"""How many DataLoader worker processes a program starts when the user does not say.

A worker per spare core, at most 4 (past that, decoding rarely limits these models), and none on
machines with two cores or fewer, where workers would compete with the training process itself.
PyTorch's DataLoader leaves the choice to the caller (``num_workers=0`` by default); timm's
training script defaults to 4 whatever the machine.
"""

from __future__ import annotations

import os

MAX_AUTO_WORKERS = 4


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def loader_workers(requested: int | None, dataset: object) -> int:
    """``requested``, or for None none when ``dataset`` is held in memory (an image tensor, or a
    subset of one: indexing it is cheaper than a worker's start and its pickled batches), else
    :func:`resolve_workers`'s choice."""
    from torch.utils.data import Subset

    from robustrep.data import ImageTensorDataset
    while requested is None and isinstance(dataset, Subset):
        dataset = dataset.dataset
    if requested is None and isinstance(dataset, ImageTensorDataset):
        return 0
    return resolve_workers(requested)


def resolve_workers(requested: int | None, cpus: int | None = None) -> int:
    """``requested`` when given, else ``min(4, cpus - 1)``, and 0 on machines with <= 2 CPUs."""
    if requested is not None:
        return int(requested)
    cpus = available_cpus() if cpus is None else cpus
    return 0 if cpus <= 2 else min(MAX_AUTO_WORKERS, cpus - 1)
