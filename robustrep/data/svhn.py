"""SVHN cropped digits (format 2) from the official ``.mat`` files; nothing is downloaded.

Netzer et al., "Reading Digits in Natural Images with Unsupervised Feature Learning", NIPS
Workshop 2011; format 2 (cropped 32x32 digits) from http://ufldl.stanford.edu/housenumbers/,
``root/{train,test,extra}_32x32.mat`` with ``X`` uint8 ``[32, 32, 3, N]`` and ``y`` ``[N, 1]``
(digit 0 stored as 10, mapped to 0). Read through :class:`torchvision.datasets.SVHN` (scipy);
presence is checked instead of torchvision's md5 unless ``check_md5=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset
from torchvision.datasets import SVHN

from robustrep._validate import check_choice
from robustrep.data._common import PresenceCheckMixin
from robustrep.data.images import check_source, image_transform


class _LocalSVHN(PresenceCheckMixin, SVHN):
    def __init__(self, root: Path, split: str, transform: Callable, check_md5: bool) -> None:
        self.check_md5 = check_md5
        super().__init__(str(root), split=split, transform=transform, download=False)

    def _files_present(self) -> bool:
        return (Path(self.root) / self.filename).is_file()


def svhn(root: str | os.PathLike, split: str = "train", size: int | None = None,
         channels: int = 3, check_md5: bool = False) -> Dataset:
    """SVHN cropped digits (format 2) from ``root/{split}_32x32.mat``; labels 0..9.

    Args:
        root: folder holding ``train_32x32.mat`` / ``test_32x32.mat`` / ``extra_32x32.mat``.
        split: ``"train"``, ``"test"`` or ``"extra"``.
        size: resize (and centre-crop) to this side; None keeps 32.
        channels: 3, or 1 for greyscale.
        check_md5: also verify torchvision's md5 sum of the official file.
    """
    check_choice("split", split, tuple(SVHN.split_list))
    root = check_source(root, size, channels)
    path = root / SVHN.split_list[split][1]
    if not path.is_file():
        raise FileNotFoundError(
            f"SVHN {split} split not found: expected {path}. Download is off in robustrep: "
            f"fetch {path.name} (format 2, cropped digits) from "
            f"http://ufldl.stanford.edu/housenumbers/ and place it in {root}.")
    try:
        return _LocalSVHN(root, split, image_transform(size, channels), check_md5)
    except RuntimeError as err:
        raise ValueError(f"{path} failed the md5 check (check_md5=True): {err}") from None
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path} is not an SVHN .mat file with 'X' (uint8 [32, 32, 3, N]) and "
                         f"'y' ([N, 1]) ({type(err).__name__}: {err})") from None
