"""CIFAR-10 and CIFAR-100 from the extracted python-version archives; nothing is downloaded.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, University of
Toronto, 2009; the "python version" archives from https://www.cs.toronto.edu/~kriz/cifar.html,
extracted under ``root`` (``cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta`` and
``cifar-100-python/train, test, meta``): pickled dicts with ``data`` uint8 ``[N, 3072]`` (the
1024 red, then green, then blue values of a 32x32 image, row-major) and ``labels`` (CIFAR-10) or
``fine_labels`` (CIFAR-100). A split needs only its own batches and the meta file: the test
split reads ``test_batch`` (``test``) alone, so a folder without the training batches serves an
evaluation or an OOD set. Read through :class:`torchvision.datasets.CIFAR10`/``CIFAR100``,
with the batches unpickled by :func:`robustrep.safe_pickle.load_array_pickle` (torchvision's
``pickle.load`` would run any code a foreign file names).

About checksums: torchvision verifies the md5 of every file against the official archive before
loading. Here presence, parsing and contents are checked (``data`` uint8 ``[N, 3072]``, ``N``
integer labels within the classes of the meta file), so that a converted or subsampled copy in
the same format loads too; ``check_md5=True`` keeps torchvision's verification.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, CIFAR100, VisionDataset
from torchvision.datasets.utils import check_integrity

from robustrep._validate import check_choice
from robustrep.data.images import check_source, check_train, image_transform
from robustrep.safe_pickle import load_array_pickle


def _missing_files(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


def _read_batch(path: Path) -> Any:
    """One CIFAR python batch (a Python 2 pickle of a dict of arrays, lists and strings)."""
    return load_array_pickle(path, what="a CIFAR batch", encoding="latin1")


class CIFARBatchError(ValueError):
    """A batch that unpickles but whose contents are not a CIFAR batch; its message is complete
    (it names the file), so :func:`cifar` passes it on unchanged."""


class _LocalCIFAR10(CIFAR10):
    """torchvision's CIFAR10 with the batches read by :func:`load_array_pickle`: torchvision's
    ``__init__`` calls ``pickle.load``, which would run any code a foreign file names. Only the
    split's own files are looked for, or with ``check_md5`` md5-checked (torchvision's check
    wants every batch of both splits; the presence check replaces it, as
    :class:`~robustrep.data._common.PresenceCheckMixin` does for the other readers)."""

    check_md5 = False

    label_key = "labels"  # the labels this class reads from each batch

    def __init__(self, root: Path, train: bool, transform: Callable, check_md5: bool) -> None:
        self.check_md5 = check_md5
        VisionDataset.__init__(self, str(root), transform=transform)
        self.train = train
        if not self._check_integrity():
            raise RuntimeError(f"{self.base_folder} under {root} failed the md5 check")
        self._load_meta()  # first: the classes bound the labels checked below
        data, self.targets = [], []
        for name, _ in _split_files(type(self), train):
            path = Path(self.root) / self.base_folder / name
            images, labels = self._checked_batch(path, _read_batch(path))
            data.append(images)
            self.targets.extend(labels)
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC

    def _checked_batch(self, path: Path, entry: Any) -> tuple[np.ndarray, list[int]]:
        """``entry``'s images and labels, or a :class:`CIFARBatchError` naming ``path``: a row
        count that differs from the labels' would shift every label after it, another row
        length would be reshaped into other images, and a label outside the classes fails
        only in the loss."""
        problem = _batch_problem(entry, self.label_key, len(self.classes))
        if problem is not None:
            meta = self.meta["filename"]
            raise CIFARBatchError(
                f"{path} is not in the CIFAR python format: {problem}; each batch must be a "
                f"pickled dict with 'data' (uint8 [N, 3072]) and '{self.label_key}' (N integers "
                f"in 0..{len(self.classes) - 1}, the {len(self.classes)} classes of {meta})")
        return entry["data"], [int(label) for label in entry[self.label_key]]

    def _files_present(self) -> bool:
        names = [n for n, _ in _split_files(type(self), self.train)] + [self.meta["filename"]]
        return not _missing_files(Path(self.root) / self.base_folder, names)

    def _check_integrity(self) -> bool:
        """The split's files are there or, with ``check_md5``, are the official ones."""
        if not self.check_md5:
            return self._files_present()
        folder = Path(self.root) / self.base_folder
        return all(check_integrity(str(folder / name), md5)
                   for name, md5 in _split_files(type(self), self.train))

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        self.classes = list(_read_batch(path)[self.meta["key"]])
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class _LocalCIFAR100(_LocalCIFAR10, CIFAR100):
    label_key = "fine_labels"  # robustrep's CIFAR-100 is the 100-class (fine) task


def _split_files(cls: type, train: bool) -> list[tuple[str, str]]:
    """``(name, md5)`` of the batches of one split of ``cls`` (CIFAR10 or CIFAR100)."""
    return list(cls.train_list if train else cls.test_list)


def _batch_problem(entry: Any, key: str, classes: int) -> str | None:
    """What in the unpickled batch ``entry`` is not CIFAR's ``data``/``key`` layout, or None."""
    if not isinstance(entry, dict):
        return f"it holds a {type(entry).__name__}, not a dict"
    if "data" not in entry or key not in entry:
        return f"its keys are {sorted(map(str, entry))[:8]}"
    data, labels = entry["data"], entry[key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        what = (f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray)
                else f"a {type(data).__name__}")
        return f"'data' is {what}"
    if not isinstance(labels, (list, tuple, np.ndarray)):
        return f"'{key}' is a {type(labels).__name__}, not a list of integers"
    if len(labels) != len(data):  # every label after the first missing one would be shifted
        return f"'{key}' holds {len(labels)} labels for the {len(data)} images of 'data'"
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            return f"'{key}' holds {label!r:.40} (index {i}), not an integer"
        if not 0 <= label < classes:
            return f"'{key}' holds the label {label} (index {i}), outside 0..{classes - 1}"
    return None


_CIFAR = {  # class, title, archive, the batches of (train, test) as said, the meta file's key
    "cifar10": (_LocalCIFAR10, "CIFAR-10", "cifar-10-python.tar.gz",
                ("data_batch_1..5", "test_batch"), "label_names"),
    "cifar100": (_LocalCIFAR100, "CIFAR-100", "cifar-100-python.tar.gz", ("train", "test"),
                 "fine_label_names"),
}


def _cifar_missing_error(root: Path, name: str, train: bool) -> FileNotFoundError | None:
    """The error for a file of the split missing under ``root``, or None when all are there:
    the other split's files are not needed (``--ood cifar10:ROOT`` reads the test split)."""
    cls, title, archive, batches, key = _CIFAR[name]
    folder = root / cls.base_folder
    names = [n for n, _ in _split_files(cls, train)] + [cls.meta["filename"]]
    missing = _missing_files(folder, names)
    if not missing:
        return None
    hint = ""
    if not _missing_files(root, names):
        hint = (f" The files are directly in {root}; pass its parent folder as root.")
    split = "train" if train else "test"
    return FileNotFoundError(
        f"{title} {split} split not found: expected {folder / missing[0]} (missing under "
        f"{folder}: {', '.join(missing)}). Download is off in robustrep: fetch {archive} from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it into {root}, so that "
        f"{folder} holds {batches[0 if train else 1]} and {cls.meta['filename']} (key "
        f"'{key}'), the {split} split's files.{hint}")


def cifar(root: str | os.PathLike, name: str = "cifar10", train: bool = True,
          size: int | None = None, channels: int = 3, check_md5: bool = False) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the extracted python-version archive under ``root``.

    Args:
        root: folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        name: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        train: the 50,000-image train set, else the 10,000-image test set; only that
            split's batches (and the meta file) need to be under ``root``.
        size: resize (and centre-crop) to this side; None keeps 32.
        channels: 3, or 1 for greyscale.
        check_md5: also verify torchvision's md5 sums of the official files.

    Returns:
        A torchvision dataset yielding ``(image [channels, size, size] in [0, 1], int label)``.
    """
    check_choice("name", name, _CIFAR)
    check_train(train)
    root = check_source(root, size, channels)
    error = _cifar_missing_error(root, name, train)
    if error is not None:
        raise error
    cls = _CIFAR[name][0]
    folder = root / cls.base_folder
    try:
        return cls(root, train, image_transform(size, channels), check_md5)
    except CIFARBatchError:  # already one line naming the batch
        raise
    except RuntimeError as err:  # torchvision's md5 failure when check_md5=True
        raise ValueError(f"{_CIFAR[name][1]} files under {folder} failed the md5 check "
                         f"(check_md5=True): {err}") from None
    except (KeyError, pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            AttributeError, OSError) as err:
        culprit = _bad_cifar_file(folder, cls, train) or folder
        raise ValueError(
            f"{culprit} is not in the CIFAR python format (truncated or another file?): each "
            f"batch must be a pickled dict with 'data' (uint8 [N, 3072]) and 'labels' or "
            f"'fine_labels' ({type(err).__name__}: {str(err)[:120]})") from None


def _bad_cifar_file(folder: Path, cls: type, train: bool) -> Path | None:
    """The first batch file of the split that does not unpickle into a dict with 'data'.

    Only called after loading failed, to name the file.
    """
    names = [n for n, _ in _split_files(cls, train)] + [cls.meta["filename"]]
    for name in names:
        path = folder / name
        try:
            entry = _read_batch(path)
            if not isinstance(entry, dict):
                return path
        except Exception:  # any failure names this file
            return path
    return None
