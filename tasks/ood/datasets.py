"""Datasets for OOD scoring, built from their specs (the names:
:mod:`robustrep.tasks.ood.data_specs`) in the image shape of the classifier.

Image folders and image lists are loaded in the classifier's input shape ``(C, H, W)`` (the
run's ``image_size`` and ``channels``): resized on the shorter side, centre-cropped and converted
to its channels, as the classifier's own image-folder training data were. The CIFAR and SVHN
files keep their native size unless ``resize=True``: a set whose images differ from the
classifier's shape is an error naming both shapes. The built-in sets are generated in the
classifier's shape.

An ID set holds the run's classes (:func:`whole_id_dataset`); at most ``--max-samples`` or
``--max-fit`` of its images are drawn, seeded (:func:`id_subset`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from robustrep.data import select_classes
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import (DataError, is_allocation_failure, program_advice,
                                           report_skipped)
from robustrep.tasks.ood.data_specs import (LOCAL, PATH_SETS, builtin_ood_names,
                                            imagefolder_split, is_zip, split_spec, unknown_dataset)


@dataclass
class DataContext:
    """What dataset construction needs to know about the classifier.

    Attributes:
        shape: the classifier's input ``(C, H, W)``.
        classes: the ID class labels of the run (None: all of the dataset's classes).
        data_root: default root of local sets.
        resize: resize/convert the CIFAR/SVHN sets to ``shape`` instead of refusing other
            shapes (image folders and lists always take ``shape``).
        seed: seed of the generated sets (noise, photo patches) and of subsampling.
    """

    shape: tuple[int, int, int]
    classes: Sequence[int] | None = None
    data_root: str | None = None
    resize: bool = False
    seed: int = 0

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1000 + salt)


class BadData(DataError, ValueError):
    """Data that cannot be scored as given (a list of no images, images of another shape, none
    of the run's classes): one line, exit 2. Also a ValueError, as the library's data checks
    are. A set named wrongly in an option is a :class:`ConfigError`."""


def _root(name: str, rest: list[str], ctx: DataContext) -> str:
    root = ":".join(rest) if rest else ctx.data_root
    if not root:
        raise ConfigError(f"dataset {name!r} reads local files: give its folder with --data-root "
                          f"or as {name}:ROOT (nothing is downloaded)")
    return os.path.expanduser(root)


def first_image(name: str, rest: list[str]) -> Path:
    from robustrep.data.local import IMG_EXTENSIONS
    if name == "imagelist":
        root, list_file = Path(rest[0]).expanduser(), Path(":".join(rest[1:])).expanduser()
        if not list_file.is_file():
            raise FileNotFoundError(f"image list not found: expected a file at {list_file}")
        for line in list_lines(list_file):
            line = line.strip()
            if line and not line.startswith("#"):
                return root / line.rsplit(maxsplit=1)[0]
        raise BadData(f"image list {list_file} lists no images")
    root = Path(":".join(rest)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: expected a directory at {root}")
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith("."):
            return path
    raise FileNotFoundError(f"no images found under {root} (accepted extensions: "
                            f"{', '.join(IMG_EXTENSIONS)})")


def list_lines(list_file: Path) -> list[str]:
    """The lines of an image list, read as the library reads it (UTF-8, a byte order mark
    dropped): a binary or otherwise encoded file was a UnicodeDecodeError traceback here."""
    try:
        return list_file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise BadData(f"image list {list_file} is not UTF-8 text (byte {err.start}: "
                      f"{err.reason}); give a text file of 'relative/path label' lines, saved "
                      f"as UTF-8") from None


def _path_set(name: str, rest: list[str], ctx: DataContext, train: bool = False,
              labels: bool = True) -> Dataset:
    """An image folder, list or dataset zip; ``labels=False``: a zip's ``dataset.json`` is left
    unread (an OOD set needs no labels, and one of label vectors was refused)."""
    from robustrep.data.local import image_folder, image_list, split_classes
    if name == "imagelist" and (len(rest) < 2 or not all(rest)):
        raise ConfigError("imagelist needs a root and a list file: imagelist:ROOT:LISTFILE")
    if name == "imagefolder" and not "".join(rest).strip():  # `imagefolder:` would read "."
        raise ConfigError("imagefolder needs a path: imagefolder:PATH")
    channels, height, width = ctx.shape
    if name == "imagefolder" and is_zip(":".join(rest)):
        return _zip_set(":".join(rest), ctx, labels)
    if name == "imagefolder":  # timm's root/train + root/val layout: the split asked for
        rest = [str(imagefolder_split(os.path.expanduser(":".join(rest)), train))]
    first_image(name, rest)  # a missing folder or list is named before anything is read
    # The run knows its input: folders take it (resize + crop + channel conversion), and every
    # file is opened once now so an unreadable image is named before scoring starts.
    try:
        if name == "imagefolder":
            dataset = image_folder(":".join(rest), height, channels, verify=True,
                                   classes=split_classes(":".join(rest)))
            report_skipped(dataset)
            return dataset
        return image_list(rest[0], ":".join(rest[1:]), height, channels, verify=True)
    except ValueError as err:  # an unreadable image, named by the library
        raise DataError(program_advice(err, skip_option=False)) from None


def _zip_set(path: str, ctx: DataContext, labels: bool = True) -> Dataset:
    """A stylegan2-ada dataset zip in the classifier's shape, every member checked now."""
    from robustrep.data.zipdata import ZipImageDataset
    channels, height, _ = ctx.shape
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dataset zip not found: expected a file at {path}")
    try:
        return ZipImageDataset(path, height, channels, verify=True, labels=labels)
    except ValueError as err:  # an unreadable member or dataset.json, named by the library
        raise DataError(program_advice(err, skip_option=False)) from None


class ShapeMismatch(BadData):
    """Images of a dataset differ in shape from the classifier's input."""

    def __init__(self, name: str, got: Sequence[int], want: Sequence[int]):
        super().__init__(
            f"dataset {name!r} has images of shape {tuple(got)} (C, H, W) but the classifier and "
            f"its in-distribution data use {tuple(want)}; pass --resize to resize and convert "
            f"channels to {tuple(want)}, or give data of that shape")


def _local(name: str, rest: list[str], ctx: DataContext, train: bool) -> Dataset:
    from robustrep.data.local import cifar, svhn
    root = _root(name, rest, ctx)
    channels, size, _ = ctx.shape
    kwargs: dict[str, Any] = {"size": size, "channels": channels} if ctx.resize else {}
    try:
        if name == "svhn":
            return svhn(root, "train" if train else "test", **kwargs)
        return cifar(root, name, train, **kwargs)
    except ValueError as err:  # a damaged or foreign file, named by the library
        raise BadData(str(err)) from None


def _check_shape(name: str, dataset: Dataset, ctx: DataContext) -> Dataset:
    from robustrep.data import image_shape
    got = image_shape(dataset)
    if tuple(got) != tuple(ctx.shape):
        raise ShapeMismatch(name, got, ctx.shape)
    return dataset


def _subsample(dataset: Dataset, limit: int | None, gen: torch.Generator) -> Dataset:
    if limit is None or limit >= len(dataset):
        return dataset
    if limit < 1:
        raise ValueError(f"the sample limit must be >= 1, got {limit}")
    order = torch.randperm(len(dataset), generator=gen)[:limit].sort().values
    return Subset(dataset, order.tolist())


def id_dataset(spec: str, ctx: DataContext, train: bool, limit: int | None = None) -> Dataset:
    """The in-distribution set ``spec`` (its train split when ``train``), restricted to the run's
    classes, in the classifier's shape; a random ``limit`` of it (:func:`id_subset`)."""
    return id_subset(whole_id_dataset(spec, ctx, train), ctx, train, limit)


def id_subset(dataset: Dataset, ctx: DataContext, train: bool, limit: int | None) -> Dataset:
    """At most ``limit`` images of the ID set ``dataset``, drawn as :func:`id_dataset` draws
    them (``--max-samples``/``--max-fit``)."""
    return _subsample(dataset, limit, ctx.generator(1 if train else 2))


def whole_id_dataset(spec: str, ctx: DataContext, train: bool) -> Dataset:
    """:func:`id_dataset` before subsampling: its labels are every ID class the data holds."""
    name, rest = split_spec(spec)
    if name == "digits" and not rest:
        dataset = _digits(ctx, train)
    elif name in LOCAL:
        dataset = _of_classes(_local(name, rest, ctx, train), ctx, spec)
    elif name in ("imagefolder", "imagelist"):
        dataset = _of_classes(_path_set(name, rest, ctx, train), ctx, spec)
    elif name in builtin_ood_names():
        raise ConfigError(f"{name!r} is a built-in OOD set (every label -1); it cannot be the "
                          f"in-distribution set. ID sets: digits, {', '.join(LOCAL)}, "
                          f"{', '.join(PATH_SETS)}")
    else:
        raise unknown_dataset(spec)
    return _check_shape(spec, dataset, ctx)


def _digits(ctx: DataContext, train: bool) -> Dataset:
    """The bundled digits of the ID classes; a class that is no digit (a model's ``--classes``,
    which its options accept as any labels) is refused naming the option."""
    from robustrep.data.builtin import digits
    channels, height, width = ctx.shape
    try:
        return digits((height, width), channels, ctx.classes, train=train)
    except ValueError as err:  # "classes must be one of 0, ..., 9; got 12"
        raise ConfigError(f"--classes {' '.join(map(str, ctx.classes or ()))}: the digits' "
                          f"{err}") from None


def _of_classes(dataset: Dataset, ctx: DataContext, spec: str) -> Dataset:
    """The images of ``dataset`` of the ID classes (all of them: None); holding none of them,
    the ID data ``spec`` is refused naming the labels it has."""
    try:
        return select_classes(dataset, ctx.classes, f"ID data {spec}", strict=False)
    except ValueError as err:  # the library's: "classes [5, 6] do not occur in ..."
        raise BadData(f"{err}; give ID data of the classes the classifier was trained "
                      f"on") from None


def ood_dataset(spec: str, ctx: DataContext, limit: int | None = None) -> Dataset:
    """The OOD set ``spec`` (test split for local sets) in the classifier's shape."""
    name, rest = split_spec(spec)
    salt = 10 + sum(map(ord, spec))
    if name in builtin_ood_names() and not rest:
        from robustrep.data.builtin import builtin_ood
        dataset = builtin_ood(name, ctx.shape, num=None, generator=ctx.generator(salt))
    elif name == "digits" and not rest:
        raise ConfigError("'digits' holds the known classes; as an OOD set use digits59 (the "
                          "unseen digits 5-9), rotated or inverted")
    elif name in LOCAL:
        dataset = _local(name, rest, ctx, train=False)
    elif name in ("imagefolder", "imagelist"):
        dataset = _path_set(name, rest, ctx, labels=False)
    else:
        raise unknown_dataset(spec)
    dataset = _check_shape(spec, dataset, ctx)
    return _subsample(dataset, limit, ctx.generator(salt + 1))


@contextmanager
def in_memory(size: int, given: bool) -> Iterator[None]:
    """Name the image size when the sets resized in memory do not fit there: ``ood score
    --image-size 100000`` was a RuntimeError traceback from torch's allocator. ``given``: the
    size is ``--image-size`` (a model from elsewhere), not the run's own."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not is_allocation_failure(err):
            raise
        what, fix = ((f"--image-size {size}", "give a smaller --image-size") if given else
                     (f"the run's image_size {size}", "score it on a machine with more memory"))
        raise DataError(f"{what}: the images resized to {size}x{size} do not fit in this "
                        f"machine's memory (the built-in sets are held in memory, resized); "
                        f"{fix}") from None
