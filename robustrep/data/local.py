"""Datasets on disk by name: :func:`create_dataset` and the registry every local loader joins.

Every loader reads local files only (torchvision's ``download`` is always off) and, when the files
are missing, raises ``FileNotFoundError`` naming the path it expected and how to place the files.
The loaders: :mod:`robustrep.data.cifar` (CIFAR-10/100), :mod:`robustrep.data.svhn`,
:mod:`robustrep.data.folders` (image folders; timm's split layout in
:mod:`robustrep.data.folder_splits`), :mod:`robustrep.data.imagelist` (OpenOOD image lists),
:mod:`robustrep.data.zipdata` (stylegan2-ada dataset zips), :mod:`robustrep.data.celeba` and
:mod:`robustrep.data.lsun` (which register themselves), reading image files through
:mod:`robustrep.data.images`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from robustrep.data._common import image_shape, num_classes
from robustrep.data.builtin import digits
from robustrep.data.cifar import cifar
from robustrep.data.folder_splits import folder_split, split_classes
from robustrep.data.folders import FlatImageFolder, image_folder
from robustrep.data.imagelist import ImageList, image_list
from robustrep.data.images import IMG_EXTENSIONS, check_train, find_bad_images
from robustrep.data.svhn import svhn
from robustrep.data.zipdata import ZipImageDataset

__all__ = [
    "cifar", "svhn", "image_folder", "folder_split", "split_classes", "image_list",
    "FlatImageFolder", "ImageList", "find_bad_images",
    "IMG_EXTENSIONS", "DATASETS", "register_dataset", "list_datasets", "create_dataset",
    "image_shape", "num_classes", "require_size",
]

# name -> builder(root, train, size, channels, **kwargs); ``root`` is None for built-in data.
DATASETS: dict[str, Callable[..., Dataset]] = {}
_NEEDS_ROOT: set[str] = set()


def register_dataset(name: str, needs_root: bool = True) -> Callable:
    """Decorator adding a builder ``fn(root, train, size, channels, **kwargs)`` to DATASETS."""
    def add(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = fn
        if needs_root:
            _NEEDS_ROOT.add(name)
        return fn
    return add


def list_datasets() -> list[str]:
    return sorted(DATASETS)


@register_dataset("digits", needs_root=False)
def _digits(root, train, size, channels, **kwargs):
    return digits(32 if size is None else size, 1 if channels is None else channels,
                  train=train, **kwargs)


@register_dataset("cifar10")
def _cifar10(root, train, size, channels, **kwargs):
    return cifar(root, "cifar10", train, size, 3 if channels is None else channels, **kwargs)


@register_dataset("cifar100")
def _cifar100(root, train, size, channels, **kwargs):
    return cifar(root, "cifar100", train, size, 3 if channels is None else channels, **kwargs)


@register_dataset("svhn")
def _svhn(root, train, size, channels, **kwargs):
    if "split" not in kwargs:
        check_train(train)
    split = kwargs.pop("split", "train" if train else "test")
    return svhn(root, split, size, 3 if channels is None else channels, **kwargs)


def require_size(name: str, size: int | None) -> int:
    if size is None:
        raise ValueError(f"dataset {name!r} needs size (the side length images are resized to)")
    return size


@register_dataset("imagefolder")
def _imagefolder(root, train, size, channels, **kwargs):
    if str(root).lower().endswith(".zip"):  # a stylegan2-ada dataset zip, read as a folder
        return _zip(root, train, size, channels, kwargs.get("verify", False),
                    kwargs.get("skip_bad", False), kwargs.get("labels", True))
    split = folder_split(root, train)
    kwargs.setdefault("classes", split_classes(split))
    return image_folder(split, require_size("imagefolder", size),
                        3 if channels is None else channels, **kwargs)


@register_dataset("zip")
def _zip(root, train, size, channels, verify=False, skip_bad=False, labels=True, **kwargs):
    # labels=False: dataset.json unread, as stylegan2-ada's unconditional reader (GAN training)
    if skip_bad:  # a zip is checked whole; leaving members out is not offered (stylegan2-ada)
        raise ValueError(f"{root}: a zip cannot skip unreadable members (skip_bad); remove them "
                         f"from the zip or re-create it")
    # the programs' zips hold one size, checked now (gan fid reads a mixed one as a folder)
    return ZipImageDataset(root, size, channels, verify=verify, one_size=True, labels=labels)


@register_dataset("imagelist")
def _imagelist(root, train, size, channels, list_file=None, **kwargs):
    if list_file is None:
        raise ValueError("dataset 'imagelist' needs list_file (an OpenOOD imglist)")
    return image_list(root, list_file, require_size("imagelist", size),
                      3 if channels is None else channels, **kwargs)


def create_dataset(name: str, root: str | os.PathLike | None = None, train: bool | None = True,
                   size: int | None = None, channels: int | None = None,
                   **kwargs: Any) -> Dataset:
    """Build the dataset ``name`` (one of :func:`list_datasets`).

    Args:
        name: ``digits`` (built in), ``cifar10``, ``cifar100``, ``svhn``, ``imagefolder``,
            ``zip`` (a stylegan2-ada dataset zip, :mod:`robustrep.data.zipdata`; an
            ``imagefolder`` root ending in ``.zip`` is read as one) or ``imagelist`` (local
            files under ``root``).
        root: the data folder; required for every name but ``digits``.
        train: train or test split (``digits`` also takes None for all; folders and lists are
            one split each and ignore it).
        size: image side; None keeps the native size (32 for digits, CIFAR, SVHN); required for
            folders and lists.
        channels: 1 or 3; None gives 1 for digits and 3 otherwise.
        kwargs: passed to the loader (``classes`` for digits, ``check_md5``, ``split`` for SVHN,
            ``layout`` for folders, ``list_file`` for lists, ``labels=False`` for a zip whose
            ``dataset.json`` is not read). None values are dropped.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")
    if name in _NEEDS_ROOT and root is None:
        raise ValueError(f"dataset {name!r} reads local files and needs a root folder "
                         f"(root=...); nothing is downloaded")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return DATASETS[name](root, train, size, channels, **kwargs)
