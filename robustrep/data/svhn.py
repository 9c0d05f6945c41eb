"""SVHN cropped digits (format 2) from the official ``.mat`` files; nothing is downloaded.

Netzer et al., "Reading Digits in Natural Images with Unsupervised Feature Learning", NIPS
Workshop 2011; format 2 (cropped 32x32 digits) from http://ufldl.stanford.edu/housenumbers/,
``root/{train,test,extra}_32x32.mat`` with ``X`` uint8 ``[32, 32, 3, N]`` and ``y`` ``[N, 1]``
(labels 1..10, digit 0 stored as 10, mapped to 0). Read as :class:`torchvision.datasets.SVHN`
reads it (scipy, the same arrays and ``__getitem__``), with the file's contents checked first
(one line naming the file for a truncated file, a MATLAB v7.3 file, or arrays of other shapes,
counts or labels); presence is checked instead of torchvision's md5 unless ``check_md5=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from torchvision.datasets import SVHN, VisionDataset

from robustrep._validate import check_choice
from robustrep.data._common import PresenceCheckMixin
from robustrep.data.images import check_source, image_transform

SOURCE = "http://ufldl.stanford.edu/housenumbers/"
LAYOUT = "expected 'X' uint8 [32, 32, 3, N] and 'y' [N, 1] of labels 1..10 (10 is the digit 0)"


class _LocalSVHN(PresenceCheckMixin, SVHN):
    """torchvision's SVHN with its ``__init__`` replaced: the same arrays, read only after the
    file is known to hold them (torchvision's raises scipy's or numpy's errors, or reads a
    label count that differs from the images' until an IndexError mid-run)."""

    def __init__(self, root: Path, split: str, transform: Callable, check_md5: bool) -> None:
        self.check_md5 = check_md5
        VisionDataset.__init__(self, str(root), transform=transform)
        self.split = split
        self.url, self.filename, self.file_md5 = self.split_list[split]
        path = Path(self.root) / self.filename
        if not self._check_integrity():  # present (checked before): only the md5 can fail
            raise ValueError(f"{path} failed the md5 check (check_md5=True): it is not the "
                             f"official file (a converted copy loads with check_md5=False)")
        images, labels = _read_mat(path)
        self.labels = np.where(labels == 10, 0, labels)  # SVHN stores the digit 0 as 10
        self.data = np.transpose(images, (3, 2, 0, 1))  # [N, C, H, W], as torchvision's

    def _files_present(self) -> bool:
        return (Path(self.root) / self.filename).is_file()


def _load_mat(path: Path) -> dict[str, Any]:
    """The variables of the .mat file ``path``; a file scipy cannot read is a ValueError."""
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    try:
        major, _ = matfile_version(path)
        variables = None if major == 2 else loadmat(path)  # 2: HDF5, which scipy refuses
    except Exception as err:  # scipy raises many types for a damaged file (OSError, IndexError)
        raise ValueError(f"{path} cannot be read as a MATLAB .mat file ({type(err).__name__}: "
                         f"{str(err)[:120]}; truncated or damaged?); fetch it again from "
                         f"{SOURCE}") from None
    if variables is None:  # scipy's own message reads as advice to use h5py
        raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) .mat file, which scipy cannot read; "
                         f"re-save it as v7 (save(..., '-v7') in MATLAB) or use the official "
                         f"files from {SOURCE}")
    return variables


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` (int64 ``[N]``, 1..10) of the SVHN file ``path``, checked."""
    loaded = _load_mat(path)
    problem = _mat_problem(loaded.get("X"), loaded.get("y"))
    if problem is not None:
        raise ValueError(f"{path} is not an SVHN .mat file (format 2): {problem}; {LAYOUT}")
    return loaded["X"], loaded["y"].reshape(-1).astype(np.int64)


def _mat_problem(x: Any, y: Any) -> str | None:
    """What in ``X``/``y`` differs from SVHN's format 2, or None."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        return "it lacks 'X' or 'y'"
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        return f"'X' is {x.dtype} {list(x.shape)}"
    n = x.shape[3]
    if y.size != n or y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        # a label count other than the images' would end in an IndexError mid-run
        return f"'y' is {list(y.shape)} for {n} images"
    if y.dtype.kind not in "uif" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        return f"'y' holds {y.dtype} values that are not all integers"
    outside = np.flatnonzero((y < 1) | (y > 10))
    if len(outside):  # each would become a class of its own
        i = int(outside[0])
        return f"'y' holds the label {y.reshape(-1)[i]} (index {i}), outside 1..10"
    return None


def svhn(root: str | os.PathLike, split: str = "train", size: int | None = None,
         channels: int = 3, check_md5: bool = False) -> Dataset:
    """SVHN cropped digits (format 2) from ``root/{split}_32x32.mat``; labels 0..9.

    Args:
        root: folder holding ``train_32x32.mat`` / ``test_32x32.mat`` / ``extra_32x32.mat``.
        split: ``"train"``, ``"test"`` or ``"extra"``.
        size: resize (and centre-crop) to this side; None keeps 32.
        channels: 3, or 1 for greyscale.
        check_md5: also verify torchvision's md5 sum of the official file.

    Raises:
        FileNotFoundError: the split's file is missing.
        ValueError: the file cannot be read (truncated, MATLAB v7.3), its arrays are not SVHN's,
            or it fails the md5 check; one line naming the file.
    """
    check_choice("split", split, tuple(SVHN.split_list))
    root = check_source(root, size, channels)
    path = root / SVHN.split_list[split][1]
    if not path.is_file():
        raise FileNotFoundError(
            f"SVHN {split} split not found: expected {path}. Download is off in robustrep: "
            f"fetch {path.name} (format 2, cropped digits) from {SOURCE} and place it in "
            f"{root}.")
    return _LocalSVHN(root, split, image_transform(size, channels), check_md5)
