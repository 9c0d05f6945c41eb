"""timm's split layout of an image folder: ``root/train/<class>/...`` beside an evaluation split
``root/val/<class>/...``, as ImageNet is laid out and timm reads it
(``create_dataset("imagefolder", root, train=...)`` reads the split, :func:`folder_split`).

The splits go by timm's names (``timm.data.dataset_factory``'s train and eval synonyms):
:data:`TRAIN_SPLITS`, ``train/`` or ``training/``; :data:`EVAL_SPLITS`, ``val/``, ``valid/``,
``validation/`` (timm's default ``--val-split``), ``eval/``, ``evaluation/``, then ``test/``.
The evaluation split takes the training split's labels (:func:`split_classes`), since its own
sorted folders would renumber the classes when one is missing.

A training split is one only beside an evaluation split, or alone. Beside other folders and no
evaluation split it is refused (:func:`_refuse_beside`): they may be classes, one of them
named ``train``, or a split of another name (``dev/``), and read as this layout all but
``train/`` would be left out. Beside both, the folders that are neither split are left out,
and :func:`split_folders` names them (``left_out``) for a program to say so: nothing here
prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from robustrep.data.folders import _class_folders, _inside, _visible

TRAIN_SPLITS = ("train", "training")
# timm's eval synonyms in its order, then test: a validation/ split read as a class (or left
# out while train/ was scored as the whole folder) gave numbers of the wrong images
EVAL_SPLITS = ("val", "valid", "validation", "eval", "evaluation", "test")


class Splits(NamedTuple):
    """The splits :func:`split_folders` found under a root, and what it leaves out."""

    train: Path
    evaluation: Path | None  # None: the training split alone
    left_out: tuple[str, ...]  # the names of the other folders beside both splits, sorted


def split_folders(root: str | os.PathLike) -> Splits | None:
    """The training split of timm's layout under ``root`` and its evaluation split (None: none
    beside it), each the first of :data:`TRAIN_SPLITS` / :data:`EVAL_SPLITS` that is a folder,
    and the other folders beside them, left out; None when ``root`` has no training split. A
    training split is one only beside an evaluation split or alone: beside other folders alone
    it is a ValueError (:func:`_refuse_beside`)."""
    root = Path(root)
    train = next((root / n for n in TRAIN_SPLITS if (root / n).is_dir()), None)
    if train is None:
        return None
    evaluation = next((root / n for n in EVAL_SPLITS if (root / n).is_dir()), None)
    others = tuple(sorted(p.name for p in root.iterdir()
                          if _visible(p) and p.is_dir() and p not in (train, evaluation)))
    if evaluation is None and others:
        _refuse_beside(root, train, others)
    return Splits(train, evaluation, others)


def _refuse_beside(root: Path, train: Path, others: tuple[str, ...]) -> None:
    """The ValueError for ``train`` with folders beside it (``others``) and no evaluation
    split: they look like classes (``bus/``, ``car/`` and a class named ``train/``) or a split
    of another name (``dev/``), and read as timm's layout only ``train/`` would be, the rest
    left out unsaid."""
    raise ValueError(f"{root} holds {train.name}/ beside {folder_names(others)}, none an "
                     f"evaluation split ({', '.join(EVAL_SPLITS)}): read as timm's split "
                     f"layout, only {train.name}/ would be read; if {train.name}/ is a class, "
                     f"rename that folder; if these are splits, put them in {train.name}/ and "
                     f"val/")


def folder_names(names: tuple[str, ...], most: int = 4) -> str:
    """``names`` as folders in a message: ``extra/, test/``, the first ``most`` and how many
    more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(f"{name}/" for name in names[:most]) + more


def folder_split(root: str | os.PathLike, train: bool | None) -> Path:
    """The training (``train=True``) or evaluation split (``train=False``) when ``root`` has
    timm's split layout (:func:`split_folders`), else ``root``. ``train=None`` always gives
    ``root``. A folder with only a training split gives it for both."""
    splits = split_folders(root) if train is not None else None
    if splits is None:
        return Path(root)
    return splits.train if train or splits.evaluation is None else splits.evaluation


def split_classes(split: str | os.PathLike) -> list[str] | None:
    """The class names of the training split when ``split`` is an evaluation split of timm's
    layout (``root/val``, ``root/validation``, ``root/test``, ...: :func:`split_folders`), else
    None: the evaluation split takes the training split's labels (its own sorted folders would
    renumber the classes when one is missing)."""
    split = Path(split)
    if split.name not in EVAL_SPLITS:  # its parent's layout is not this folder's business
        return None
    splits = split_folders(split.parent)
    if splits is None:
        return None
    # as image_folder reads the training split
    return [p.name for p in _class_folders(_inside(splits.train))] or None
