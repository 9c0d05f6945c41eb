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
as are images beside the splits; :func:`split_folders` names them (``left_out``, ``images``)
and :func:`left_out_line` words them, with a split a program does not read, in the one line
every program says (``classify``, ``gan train``, ``ood score``): nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from robustrep.data.folders import _class_folders, _inside, _visible
from robustrep.data.images import is_image

TRAIN_SPLITS = ("train", "training")
# timm's eval synonyms in its order, then test: a validation/ split read as a class (or left
# out while train/ was scored as the whole folder) gave numbers of the wrong images
EVAL_SPLITS = ("val", "valid", "validation", "eval", "evaluation", "test")


class Splits(NamedTuple):
    """The splits :func:`split_folders` found under a root, and what it leaves out."""

    train: Path
    evaluation: Path | None  # None: the training split alone
    left_out: tuple[str, ...]  # the names of the other folders beside both splits, sorted
    images: tuple[str, ...] = ()  # the names of the images beside the splits, sorted


def split_folders(root: str | os.PathLike) -> Splits | None:
    """The training split of timm's layout under ``root`` and its evaluation split (None: none
    beside it), each the first of :data:`TRAIN_SPLITS` / :data:`EVAL_SPLITS` that is a folder,
    and the other folders and the images beside them, left out; None when ``root`` has no
    training split. A training split is one only beside an evaluation split or alone: beside
    other folders alone it is a ValueError (:func:`_refuse_beside`)."""
    root = Path(root)
    train = next((root / n for n in TRAIN_SPLITS if (root / n).is_dir()), None)
    if train is None:
        return None
    evaluation = next((root / n for n in EVAL_SPLITS if (root / n).is_dir()), None)
    entries = list(root.iterdir())
    others = tuple(sorted(p.name for p in entries
                          if _visible(p) and p.is_dir() and p not in (train, evaluation)))
    if evaluation is None and others:
        _refuse_beside(root, train, others)
    # loose images beside the splits (a class folder would refuse them): left out, not refused
    return Splits(train, evaluation, others, tuple(sorted(p.name for p in entries
                                                          if is_image(p))))


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
    return _some([f"{name}/" for name in names], most)


def _some(names: Sequence[str], most: int = 4) -> str:
    """The first ``most`` of ``names`` in a message, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def left_out_line(where: str, splits: Splits, read: Collection[Path]) -> str | None:
    """What a program reading the splits ``read`` (of ``splits.train`` and
    ``splits.evaluation``) leaves out of their root, in the one line every program says: the
    folders beside the splits, a split it does not read (``gan train`` reads no ``val/``) and
    the images beside them; None when it leaves out nothing. ``where``: the root as the
    program's option names it (``--data-root ROOT``, ``imagefolder:ROOT``). Hidden entries are
    no data (:mod:`robustrep.data.folders`) and not named."""
    both = [s for s in (splits.train, splits.evaluation) if s is not None]
    taken = [s for s in both if s in read]
    unread = [s.name for s in both if s not in read]
    names = sorted([*(f"{n}/" for n in (*splits.left_out, *unread)), *splits.images])
    if not names or not taken:
        return None
    roles = " and ".join("training" if s == splits.train else "evaluation" for s in taken)
    them = "it is" if len(names) == 1 else "they are"
    return (f"{where} holds {_some(names)} beside {' and '.join(f'{s.name}/' for s in taken)}, "
            f"read as timm's {roles} split{'s' * (len(taken) > 1)}: {them} left out")


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
