"""Whether OOD sets measure what their names say for a run: checked before any feature is
extracted (``ood score``) or any run is trained (``ood bench``).

An OOD set must hold no class the classifier was trained on (``digits59`` for a run of every
digit, ``--ood cifar10`` for a CIFAR-10 run: its AUROC would measure nothing), and a
covariate-shift set (``rotated``, ``inverted``) only digits the run learned: decided from the
run's ``config.json`` (``dataset`` and ``classes``), user folders and image lists not guessed at
(:func:`trained_overlap`, :func:`untrained_digits`); ``ood score`` leaves such sets out of its
default ones (:func:`suits`). Nor may an OOD set read the ID test or fit data
(:func:`check_not_id`) or another OOD set's data however written (:func:`check_distinct`):
specs are compared by the files and folders they read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood.data_specs import (LOCAL, builtin_ood_names, imagefolder_split,
                                            is_zip, split_spec)
from robustrep.tasks.ood.datasets import DataContext


def trained_overlap(spec: str, config: dict[str, Any]) -> str | None:
    """Why the OOD set ``spec`` holds classes the run's classifier was trained on, or None.

    Decided from the run's ``config.json`` (``dataset`` and ``classes``; ``classes`` None means
    every class of the dataset): ``digits59`` holds digits 5-9, so it is OOD only for a run that
    left them out; a local set named like the run's own dataset (``--ood cifar10`` for a CIFAR-10
    run) is the test split of the training classes. CIFAR-10 and CIFAR-100 share no class, and
    user folders and image lists are not guessed at.
    """
    from robustrep.data.builtin import OOD_CLASSES
    name, rest = split_spec(spec)
    dataset, classes = config.get("dataset"), config.get("classes")
    if name == "digits59" and not rest and dataset == "digits":
        trained = set(range(10)) if classes is None else {int(c) for c in classes}
        both = sorted(trained & set(OOD_CLASSES))
        return (f"digits {', '.join(map(str, both))}" if both else None)
    if name in LOCAL and name == dataset:
        return (f"{name} classes {', '.join(map(str, classes))}" if classes is not None
                else f"every {name} class")
    return None


def untrained_digits(spec: str, config: dict[str, Any]) -> str | None:
    """``rotated`` and ``inverted`` transform the test split of digits 0-4, meant as a covariate
    shift of classes the classifier knows: the digits among those a digits run was not trained
    on (its OOD scores would mix in new classes), or None."""
    from robustrep.data.builtin import ID_CLASSES
    name, rest = split_spec(spec)
    classes = config.get("classes")
    if name not in ("rotated", "inverted") or rest or config.get("dataset") != "digits" \
            or classes is None:
        return None
    missing = sorted(set(ID_CLASSES) - {int(c) for c in classes})
    return f"digits {', '.join(map(str, missing))}" if missing else None


def unsuited(spec: str, config: dict[str, Any]) -> str | None:
    """Why the OOD set ``spec`` does not measure what its name says for the run of ``config``
    (classes it was trained on, or digits it never learned), or None."""
    overlap = trained_overlap(spec, config)
    if overlap is not None:
        return f"it holds {overlap}, which the classifier was trained on"
    missing = untrained_digits(spec, config)
    if missing is not None:
        return f"it transforms {missing}, which the classifier was not trained on"
    return None


def suits(spec: str, config: dict[str, Any]) -> bool:
    """Whether the OOD set ``spec`` measures what its name says for the run of ``config``."""
    return unsuited(spec, config) is None


def check_not_trained_on(specs: Sequence[str], config: dict[str, Any],
                         foreign: bool = False) -> None:
    """Refuse an OOD set that holds classes the classifier was trained on (its AUROC would
    measure nothing), or a covariate-shift set of digits it never learned. One line naming the
    set, the classes and what is accepted. ``foreign``: a model no run made, whose classes are
    ``--dataset``/``--classes`` (every class by default): the line says to name them, where it
    spoke of "the run's classifier" and advised training another run."""
    for spec in specs:
        if suits(spec, config):
            continue
        others = ", ".join(n for n in builtin_ood_names() if suits(n, config))
        classes = config.get("classes")
        if foreign:
            raise ConfigError(_foreign_unsuited(spec, config, others))
        missing = untrained_digits(spec, config)
        if missing is not None:
            raise ConfigError(f"--ood {spec} transforms digits 0-4 as a covariate shift of "
                              f"classes the classifier knows, but the run was not trained on "
                              f"{missing} (classes {classes}); use a run trained "
                              f"on digits 0-4 (robustrep classify train --preset digits-ood), "
                              f"or another OOD set: {others}")
        overlap = trained_overlap(spec, config)
        accepted = ("a run trained on digits 0-4 (robustrep classify train --preset digits-ood)"
                    if split_spec(spec)[0] == "digits59" else "a run trained on other data")
        raise ConfigError(f"--ood {spec} holds {overlap}, which the run's classifier was trained "
                          f"on (dataset {config.get('dataset')}, classes "
                          f"{classes or 'all'}), so its OOD scores would be "
                          f"meaningless; use {accepted}, or another OOD set: {others}")


def _foreign_unsuited(spec: str, config: dict[str, Any], others: str) -> str:
    """The refusal of :func:`check_not_trained_on` for a model from elsewhere: its classes are
    what ``--classes`` declares, so that is the option to give."""
    classes = config.get("classes")
    declared = ("--classes " + " ".join(map(str, classes)) if classes is not None
                else "every class: no --classes given")
    fix = ("give --classes the labels the model was trained on (--classes 0 1 2 3 4 for "
           "digits 0-4)" if config.get("dataset") == "digits" else "give OOD data of other "
           "classes")
    return (f"--ood {spec}: {unsuited(spec, config)} (--dataset {config.get('dataset')}, "
            f"{declared}), so its OOD scores would be meaningless; {fix}, or another OOD set: "
            f"{others}")


def _identity(spec: str, ctx: DataContext) -> tuple[str, ...]:
    """What ``spec`` reads, whatever way it is written (``imagefolder:x`` and
    ``imagefolder:./x/`` are one folder; ``cifar10`` is ``cifar10:ROOT`` of ``--data-root``)."""
    name, rest = split_spec(spec)
    if name == "imagelist" and len(rest) >= 2:
        return (name, _where(rest[0]), _where(":".join(rest[1:])))
    if name == "imagefolder" or (name in LOCAL and (rest or ctx.data_root)):
        return (name, _where(":".join(rest) if rest else str(ctx.data_root)))
    return (name, *rest)


def _where(path: str | os.PathLike) -> str:
    return str(Path(os.path.expanduser(path)).absolute().resolve())


def _folder_read(spec: str, train: bool) -> Path | None:
    """The folder whose images an ``imagefolder:`` spec reads in the split ``train`` (timm's
    ``root/train`` or ``root/val``; the root itself otherwise), resolved; None for other
    specs and zips."""
    name, rest = split_spec(spec)
    root = os.path.expanduser(":".join(rest))
    if name != "imagefolder" or not root.strip() or is_zip(root):
        return None
    return Path(_where(imagefolder_split(root, train)))


def _shares_images(ood: Path | None, other: Path | None) -> bool:
    """Whether two folders read some of the same images: one is the other or holds it (a class
    folder layout reads every image below its root)."""
    return ood is not None and other is not None and (
        ood == other or other in ood.parents or ood in other.parents)


def check_not_id(ood: dict[str, str], ctx: DataContext, id_spec: str,
                 fit_spec: str | None) -> None:
    """Refuse an OOD set (name -> spec) that reads the ID test or fit data: ID images scored
    against ID images, an AUROC of about 50 that measures no detector. Image folders are
    compared by the folders they read, so the ``val/`` or ``train/`` split of an ``--id`` folder
    in timm's layout, a class folder of it, or a folder holding it are refused too."""
    roles = [("--id", id_spec, False), ("--id", id_spec, True)]
    roles += [("--fit-data", fit_spec, True)] if fit_spec else []
    for name, spec in ood.items():
        for option, other, train in roles:
            same = _identity(spec, ctx) == _identity(other, ctx)
            read = _folder_read(other, train)
            if not (same or _shares_images(_folder_read(spec, False), read)):
                continue
            what = ("" if same else f", whose {'train' if train else 'test'} images are "
                    f"under {read}")
            raise ConfigError(f"--ood {name} reads the in-distribution data ({option} "
                              f"{other}{what}): ID images scored as OOD give an AUROC of about "
                              f"50 that measures nothing; give OOD data that is not an ID set")


def check_distinct(ood: dict[str, str], ctx: DataContext) -> None:
    """Refuse two OOD sets (name -> spec) that read the same data however written
    (``imagefolder:x`` and ``imagefolder:./x/``): the set was scored twice, two rows of one
    measurement. The same name twice is refused with the options."""
    seen: dict[tuple[str, ...], str] = {}
    for name, spec in ood.items():
        first = seen.setdefault(_identity(spec, ctx), name)
        if first != name:
            raise ConfigError(f"--ood {first} and {name} read the same data: it would be scored "
                              f"twice; give it once")
