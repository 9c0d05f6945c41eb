"""Datasets for OOD scoring, by name, in the image shape of the classifier.

Names (``robustrep ood score --id NAME --ood NAME ...``):

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

The OpenOOD v1.5 benchmark (:func:`openood_benchmark`): OpenOOD's ``data`` folder holds
``benchmark_imglist/<id>/{train,test}_<id>.txt`` and ``test_<ood>.txt`` lists, with the images
under ``images_classic/`` (CIFAR) or ``images_largescale/`` (ImageNet). The near-/far-OOD groups
per ID dataset are those of OpenOOD's ``configs/datasets/<id>/<id>_ood.yml``
(``Jingkang50/OpenOOD``), e.g. CIFAR-10: near = CIFAR-100, TinyImageNet; far = MNIST, SVHN,
Textures, Places365.

Image folders and image lists are loaded in the classifier's input shape ``(C, H, W)`` (the
run's ``image_size`` and ``channels``): resized on the shorter side, centre-cropped and converted
to its channels, as the classifier's own image-folder training data were. The CIFAR and SVHN
files keep their native size unless ``resize=True``: a set whose images differ from the
classifier's shape is an error naming both shapes.
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

BUILTIN_ID = ("digits",)
_C, _L = "images_classic", "images_largescale"
_IMAGENET_OOD = {"near": {"ssb_hard": (_L, "imagenet/test_ssb_hard.txt"),
                          "ninco": (_L, "imagenet/test_ninco.txt")},
                 "far": {"inaturalist": (_L, "imagenet/test_inaturalist.txt"),
                         "textures": (_C, "imagenet/test_textures.txt"),
                         "openimage_o": (_L, "imagenet/test_openimage_o.txt")}}
# ID name -> (image folder of the ID lists, {near/far: {OOD name: (image folder, list)}}), from
# OpenOOD v1.5's configs/datasets/<id>/<id>.yml and <id>_ood.yml.
OPENOOD_V15: dict[str, tuple[str, dict[str, dict[str, tuple[str, str]]]]] = {
    "cifar10": (_C, {"near": {"cifar100": (_C, "cifar10/test_cifar100.txt"),
                              "tin": (_C, "cifar10/test_tin.txt")},
                     "far": {"mnist": (_C, "cifar10/test_mnist.txt"),
                             "svhn": (_C, "cifar10/test_svhn.txt"),
                             "texture": (_C, "cifar10/test_texture.txt"),
                             "places365": (_C, "cifar10/test_places365.txt")}}),
    "cifar100": (_C, {"near": {"cifar10": (_C, "cifar100/test_cifar10.txt"),
                               "tin": (_C, "cifar100/test_tin.txt")},
                      "far": {"mnist": (_C, "cifar100/test_mnist.txt"),
                              "svhn": (_C, "cifar100/test_svhn.txt"),
                              "texture": (_C, "cifar100/test_texture.txt"),
                              "places365": (_C, "cifar100/test_places365.txt")}}),
    "imagenet200": (_L, _IMAGENET_OOD),
    "imagenet": (_L, _IMAGENET_OOD),
}
LOCAL = ("cifar10", "cifar100", "svhn")
PATH_SETS = ("imagefolder:PATH", "imagelist:ROOT:LISTFILE")


def builtin_ood_names() -> tuple[str, ...]:
    from robustrep.data.builtin import BUILTIN_OOD
    return tuple(BUILTIN_OOD)


def valid_names() -> list[str]:
    return [*BUILTIN_ID, *builtin_ood_names(), *LOCAL, *PATH_SETS]


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


def _unknown(name: str) -> ConfigError:
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


def _split_spec(spec: str) -> tuple[str, list[str]]:
    if not isinstance(spec, str) or not spec.strip():
        raise _unknown(str(spec))
    head, *rest = spec.strip().split(":")
    # Windows drive letters and paths with ':' stay in one piece after the first separator.
    return head.lower(), rest


def _root(name: str, rest: list[str], ctx: DataContext) -> str:
    root = ":".join(rest) if rest else ctx.data_root
    if not root:
        raise ConfigError(f"dataset {name!r} reads local files: give its folder with --data-root "
                          f"or as {name}:ROOT (nothing is downloaded)")
    return os.path.expanduser(root)


def _first_image(name: str, rest: list[str]) -> Path:
    from robustrep.data.local import IMG_EXTENSIONS
    if name == "imagelist":
        root, list_file = Path(rest[0]).expanduser(), Path(":".join(rest[1:])).expanduser()
        if not list_file.is_file():
            raise FileNotFoundError(f"image list not found: expected a file at {list_file}")
        for line in _list_lines(list_file):
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


def _list_lines(list_file: Path) -> list[str]:
    """The lines of an image list, read as the library reads it (UTF-8, a byte order mark
    dropped): a binary or otherwise encoded file was a UnicodeDecodeError traceback here."""
    try:
        return list_file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise BadData(f"image list {list_file} is not UTF-8 text (byte {err.start}: "
                      f"{err.reason}); give a text file of 'relative/path label' lines, saved "
                      f"as UTF-8") from None


def _path_set(name: str, rest: list[str], ctx: DataContext, train: bool = False) -> Dataset:
    from robustrep.data.local import folder_split, image_folder, image_list, split_classes
    if name == "imagelist" and (len(rest) < 2 or not all(rest)):
        raise ConfigError("imagelist needs a root and a list file: imagelist:ROOT:LISTFILE")
    if name == "imagefolder" and not "".join(rest).strip():  # `imagefolder:` would read "."
        raise ConfigError("imagefolder needs a path: imagefolder:PATH")
    channels, height, width = ctx.shape
    if name == "imagefolder" and is_zip(":".join(rest)):
        return _zip_set(":".join(rest), ctx)
    if name == "imagefolder":  # timm's root/train + root/val layout: the split asked for
        rest = [str(folder_split(os.path.expanduser(":".join(rest)), train))]
    _first_image(name, rest)  # a missing folder or list is named before anything is read
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


def is_zip(path: str) -> bool:
    return str(path).lower().endswith(".zip")


def _zip_set(path: str, ctx: DataContext) -> Dataset:
    """A stylegan2-ada dataset zip in the classifier's shape, every member checked now."""
    from robustrep.data.zipdata import ZipImageDataset
    channels, height, _ = ctx.shape
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dataset zip not found: expected a file at {path}")
    try:
        return ZipImageDataset(path, height, channels, verify=True)
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
    name, rest = _split_spec(spec)
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
        raise _unknown(spec)
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
    name, rest = _split_spec(spec)
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
        dataset = _path_set(name, rest, ctx)
    else:
        raise _unknown(spec)
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


def trained_overlap(spec: str, config: dict[str, Any]) -> str | None:
    """Why the OOD set ``spec`` holds classes the run's classifier was trained on, or None.

    Decided from the run's ``config.json`` (``dataset`` and ``classes``; ``classes`` None means
    every class of the dataset): ``digits59`` holds digits 5-9, so it is OOD only for a run that
    left them out; a local set named like the run's own dataset (``--ood cifar10`` for a CIFAR-10
    run) is the test split of the training classes. CIFAR-10 and CIFAR-100 share no class, and
    user folders and image lists are not guessed at.
    """
    from robustrep.data.builtin import OOD_CLASSES
    name, rest = _split_spec(spec)
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
    name, rest = _split_spec(spec)
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
                    if _split_spec(spec)[0] == "digits59" else "a run trained on other data")
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
    name, rest = _split_spec(spec)
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
    from robustrep.data.local import folder_split
    name, rest = _split_spec(spec)
    root = os.path.expanduser(":".join(rest))
    if name != "imagefolder" or not root.strip() or is_zip(root):
        return None
    return Path(_where(folder_split(root, train)))


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


def has_train_split(spec: str) -> bool:
    """Whether ``id_dataset(spec, train=True)`` differs from the test split: built-in and CIFAR/
    SVHN sets do, image lists do not, image folders only in the ``root/train`` layout."""
    from robustrep.data.local import folder_split
    name, rest = _split_spec(spec)
    if name == "imagelist":
        return False
    if name == "imagefolder":
        root = os.path.expanduser(":".join(rest))
        return not is_zip(root) and folder_split(root, True) != folder_split(root, False)
    return True


def _data_folder_hint(given: Path) -> str:
    """``; give --openood DIR`` when ``given`` lies inside OpenOOD's data folder DIR (a list
    folder ``benchmark_imglist/cifar10``, or ``images_classic``), else nothing."""
    inside = [p.parent for p in (given, *given.parents) if p.name == "benchmark_imglist"]
    if not inside and given.name in (_C, _L):
        inside = [given.parent]
    return f"; give --openood {inside[0]}, the folder holding it" if inside else ""


@dataclass
class OpenOODBenchmark:
    """The OpenOOD v1.5 sets of one ID dataset as ``imagelist:`` specs."""

    id_name: str
    id_test: str
    id_train: str
    groups: dict[str, dict[str, str]]  # "near"/"far" -> OOD name -> imagelist spec


def openood_benchmark(data_dir: str | os.PathLike, id_name: str | None) -> OpenOODBenchmark:
    """The OpenOOD v1.5 benchmark of ``id_name`` under OpenOOD's ``data_dir`` (the folder holding
    ``benchmark_imglist/``; a path to ``benchmark_imglist`` itself is accepted too).

    Every list file is checked here, so a missing one is reported before any scoring.
    """
    if id_name not in OPENOOD_V15:
        raise ConfigError(f"the OpenOOD v1.5 benchmark has no ID dataset {id_name!r}; valid: "
                          f"{', '.join(OPENOOD_V15)} (pass --openood-id)")
    data = Path(data_dir).expanduser()
    if data.name == "benchmark_imglist":
        data = data.parent
    lists = data / "benchmark_imglist"
    if not lists.is_dir():
        raise FileNotFoundError(f"OpenOOD benchmark lists not found: expected {lists} (OpenOOD's "
                                f"data folder holds benchmark_imglist/ and images_classic/)"
                                f"{_data_folder_hint(data)}")
    id_images, groups = OPENOOD_V15[id_name]

    def spec(images: str, list_file: str) -> str:
        path = lists / list_file
        if not path.is_file():
            raise FileNotFoundError(f"OpenOOD v1.5 list {path} not found (the {id_name} "
                                    "benchmark needs it; see OpenOOD's scripts/download)")
        return f"imagelist:{data / images}:{path}"

    return OpenOODBenchmark(
        id_name, spec(id_images, f"{id_name}/test_{id_name}.txt"),
        spec(id_images, f"{id_name}/train_{id_name}.txt"),
        {g: {n: spec(*where) for n, where in sets.items()} for g, sets in groups.items()})


def stored_shape(spec: str) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the first image the ``imagelist:`` ``spec`` lists, as stored (1 channel
    for a grey image, 3 for colour), before the loader converts it to the classifier's shape;
    None when it cannot be opened (the loader names the file)."""
    from PIL import Image
    name, rest = _split_spec(spec)
    path = _first_image(name, rest)
    try:
        with Image.open(path) as image:
            grey = image.getbands()[0] in ("1", "L", "I", "F")  # "LA" and 16-bit grey too
            return (1 if grey else 3, image.height, image.width)
    except Exception:  # PIL raises many types; the loader's verify names the file
        return None


def check_openood_shape(bench_id: str, spec: str, ctx: DataContext, what: str) -> bool:
    """Whether OpenOOD's ID images of the list ``spec`` (of the benchmark ``bench_id``, which
    ``what`` names) are stored in another shape than the classifier's ``ctx.shape``: image lists
    are always converted to it, so CIFAR-10's colour images became grey for a 1-channel model
    without a word, where ``--id cifar10`` is refused unless ``--resize``. The same rule here:
    refused without ``ctx.resize``. The sizes are compared for the fixed-size images_classic
    lists only (ImageNet's images differ from one another, and are resized as folders are)."""
    got = stored_shape(spec)
    if got is None:
        return False
    sized = OPENOOD_V15[bench_id][0] == _C
    want = tuple(ctx.shape) if sized else (ctx.shape[0], *got[1:])
    if got == want:
        return False
    if not ctx.resize:
        raise BadData(f"{what}: OpenOOD's {bench_id} images have shape {got} (C, H, W) but the "
                      f"classifier takes {tuple(ctx.shape)}; pass --resize to resize and convert "
                      f"them to {tuple(ctx.shape)}, or give ID data of that shape with --id and "
                      f"--fit-data")
    return True


def list_labels(spec: str) -> set[int]:
    """The labels the ``imagelist:`` ``spec`` lists (each line's last token); a line that is
    not ``relative/path label`` is left for the loader to name."""
    _, rest = _split_spec(spec)
    labels = set()
    for line in _list_lines(Path(":".join(rest[1:])).expanduser()):
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) == 2 and not parts[0].startswith("#") and parts[1].lstrip("-").isdigit():
            labels.add(int(parts[1]))
    return labels

