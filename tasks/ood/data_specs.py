"""Dataset specs: the names ``robustrep ood score --id NAME --ood NAME ...`` takes, parsed.

Names:

- built in, no files: ``digits`` (the classifier's own classes of sklearn's digits; the ID set of
  a digits run), and the OOD sets of :data:`robustrep.data.builtin.BUILTIN_OOD`: ``digits59``
  (semantic shift: the unseen digits 5-9), ``gaussian`` and ``uniform`` noise (Hendrycks et al.,
  "Deep Anomaly Detection with Outlier Exposure", ICLR 2019), ``photos`` (patches of sklearn's
  sample photographs), ``rotated`` and ``inverted`` (covariate shift of the known digits). These
  are generated in the classifier's shape.
- local files, never downloaded: ``cifar10``, ``cifar100``, ``svhn`` (root from ``--data-root``,
  the run's ``data_root``, or a ``NAME:ROOT`` suffix), ``imagefolder:PATH`` (torchvision
  ImageFolder layout or a flat folder; timm's split layout ``PATH/train`` + ``PATH/val`` (or
  ``PATH/test``) gives the train split for fitting and the val split for scoring),
  ``imagelist:ROOT:LISTFILE`` (an OpenOOD v1.5 ``imglist``, one ``relative/path label`` per line;
  Zhang et al., "OpenOOD v1.5", 2023); ``imagefolder:FILE.zip`` reads a stylegan2-ada dataset zip
  (its ``dataset.json`` labels, one split, as a flat folder).

A spec is a name and the ``:``-separated parts after it (:func:`split_spec`). Here are the names,
their parsing, and the ``--id`` a run's config implies (:func:`default_id`); the sets are built
by :mod:`robustrep.tasks.ood.datasets`, OpenOOD's lists found by :mod:`robustrep.tasks.ood.openood`
and the specs compared by :mod:`robustrep.tasks.ood.set_checks`, each reading specs through this
module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config import ConfigError

BUILTIN_ID = ("digits",)
LOCAL = ("cifar10", "cifar100", "svhn")
PATH_SETS = ("imagefolder:PATH", "imagelist:ROOT:LISTFILE")


def builtin_ood_names() -> tuple[str, ...]:
    from robustrep.data.builtin import BUILTIN_OOD
    return tuple(BUILTIN_OOD)


def valid_names() -> list[str]:
    return [*BUILTIN_ID, *builtin_ood_names(), *LOCAL, *PATH_SETS]


def unknown_dataset(name: str) -> ConfigError:
    return ConfigError(f"unknown dataset {name!r}{_path_hint(name)}; valid names: "
                       f"{', '.join(valid_names())}")


def _path_hint(name: str) -> str:
    """`` (a folder: did you mean imagefolder:NAME?)`` when ``name`` is a path the loaders
    read under a prefix (a folder or dataset zip: ``imagefolder:``; a ``.txt`` image list:
    ``imagelist:ROOT:``), else nothing: ``--ood f/hidden`` was answered with the names alone."""
    name = name.strip()
    path = Path(os.path.expanduser(name))
    try:
        folder, file = bool(name) and path.is_dir(), bool(name) and path.is_file()  # "": "."
    except (OSError, ValueError):  # a name too long for a path, a NUL in it: no path
        return ""
    if folder:
        return f" (a folder: did you mean imagefolder:{name}?)"
    if file and is_zip(name):
        return f" (a dataset zip: did you mean imagefolder:{name}?)"
    if file and path.suffix.lower() == ".txt":
        return (f" (an image list: did you mean imagelist:ROOT:{name}, ROOT the folder "
                f"its paths are relative to?)")
    return ""


def split_spec(spec: str) -> tuple[str, list[str]]:
    if not isinstance(spec, str) or not spec.strip():
        raise unknown_dataset(str(spec))
    head, *rest = spec.strip().split(":")
    # Windows drive letters and paths with ':' stay in one piece after the first separator.
    return head.lower(), rest


def is_zip(path: str) -> bool:
    return str(path).lower().endswith(".zip")


def default_id(config: dict[str, Any], data_root: str | None = None) -> str:
    """The ``--id`` name matching a classify run's ``config.json`` (or a model's options), its
    folder ``--data-root`` where given."""
    dataset = config.get("dataset")
    if dataset in ("digits", *LOCAL):
        return dataset
    root = data_root or config.get("data_root")
    folder = dataset in ("image_folder", "imagefolder", "zip")
    if folder and root and has_train_split(f"imagefolder:{root}"):
        return f"imagefolder:{root}"  # root/train fits the detectors, root/val is scored
    give_id = ("name the in-distribution test data with --id imagefolder:PATH (a folder or "
               "dataset zip; and the train data for fitting with --fit-data imagefolder:PATH)")
    if folder and not root:  # a model from elsewhere, no --data-root: was "trained on None"
        raise ConfigError(f"--dataset {dataset} names no folder: give --data-root ROOT (with "
                          f"ROOT/train and ROOT/val or ROOT/test), or {give_id}")
    if folder:
        where = f"--data-root {root} is" if data_root else f"the run was trained on {root},"
        raise ConfigError(f"{where} one set of images (no val/ or test/ split); {give_id}")
    raise ConfigError(f"cannot tell the in-distribution data of a run trained on {dataset!r}; "
                      f"give --id (valid: {', '.join(valid_names())})")


def imagefolder_split(root: str, train: bool) -> Path:
    """The split of an image folder that ``robustrep.data``'s ``folder_split`` reads, its
    refusal (``train/`` beside class folders and no evaluation split) a DataError line."""
    from robustrep.data.local import folder_split
    from robustrep.tasks.common.errors import DataError
    try:
        return folder_split(root, train)
    except ValueError as err:
        raise DataError(str(err)) from None


def has_train_split(spec: str) -> bool:
    """Whether ``id_dataset(spec, train=True)`` differs from the test split: built-in and CIFAR/
    SVHN sets do, image lists do not, image folders only in the ``root/train`` layout."""
    name, rest = split_spec(spec)
    if name == "imagelist":
        return False
    if name == "imagefolder":
        root = os.path.expanduser(":".join(rest))
        return not is_zip(root) and imagefolder_split(root, True) != imagefolder_split(root, False)
    return True
