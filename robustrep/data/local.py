"""Loaders for real datasets already on disk; nothing here downloads.

Every loader reads local files only (torchvision's ``download`` is always off) and, when the files
are missing, raises ``FileNotFoundError`` naming the path it expected and how to place the files.

Sources and on-disk formats:

- CIFAR-10 / CIFAR-100: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
  tech. report, University of Toronto, 2009; the "python version" archives from
  https://www.cs.toronto.edu/~kriz/cifar.html, extracted under ``root``
  (``cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta`` and
  ``cifar-100-python/train, test, meta``): pickled dicts with ``data`` uint8 ``[N, 3072]`` (the
  1024 red, then green, then blue values of a 32x32 image, row-major) and ``labels`` (CIFAR-10) or
  ``fine_labels`` (CIFAR-100). Read through :class:`torchvision.datasets.CIFAR10`/``CIFAR100``.
- SVHN: Netzer et al., "Reading Digits in Natural Images with Unsupervised Feature Learning",
  NIPS Workshop 2011; format 2 (cropped 32x32 digits) from http://ufldl.stanford.edu/housenumbers/,
  ``root/{train,test,extra}_32x32.mat`` with ``X`` uint8 ``[32, 32, 3, N]`` and ``y`` ``[N, 1]``
  (digit 0 stored as 10, mapped to 0). Read through :class:`torchvision.datasets.SVHN` (scipy).
- Image folders: torchvision's ``ImageFolder`` layout ``root/<class>/<image>``, or a flat folder of
  images (label 0), the form CelebA and LSUN exports usually take. timm's split layout
  ``root/train/<class>/...`` with ``root/val/`` (or ``root/test/``) is recognised by
  :func:`folder_split`: ``create_dataset("imagefolder", root, train=...)`` reads the split.
- Image lists: the OpenOOD benchmark ``imglist`` format (Yang et al., "OpenOOD: Benchmarking
  Generalized Out-of-Distribution Detection", NeurIPS 2022 Datasets and Benchmarks), one
  ``relative/path.png label`` per line.

Unreadable images: ``image_folder(..., verify=True)`` and ``image_list(..., verify=True)`` open
every file once before returning (PIL's ``Image.verify`` checks a PNG's chunk structure and
checksums; JPEGs and other formats are decoded at reduced size), so a truncated file or a
non-image named ``.png`` is found before training rather than when a DataLoader reaches it.
``skip_bad=True`` drops such files instead and lists them in the dataset's ``skipped``
attribute for the caller to report.

Folder scans: hidden files and folders (``._0.png`` from macOS, ``.ipynb_checkpoints``) are
skipped in both layouts; a broken symbolic link named like an image is an unreadable image (it
is not silently left out); a symbolic link is followed once, and a link to a folder already read
(a loop, or a second name for a class) is a ValueError naming the link, since torchvision's
``os.walk(followlinks=True)`` would read the images again under other labels. 16-bit greyscale
images (PIL mode ``I;16``/``I``) are scaled to 8 bits (v / 257) before conversion; PIL's
``convert`` would clip them to 255.

About checksums: torchvision verifies the md5 of every CIFAR/SVHN file against the official
archive before loading. The loaders here check only that the files are present and parse, so that
a converted or subsampled copy in the same format loads too; pass ``check_md5=True`` to keep
torchvision's verification for the official files.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets import CIFAR10, CIFAR100, SVHN, ImageFolder, VisionDataset

from robustrep._validate import check_choice, check_positive
from robustrep.data._common import image_shape, num_classes
from robustrep.data.builtin import digits
from robustrep.safe_pickle import load_array_pickle

__all__ = [
    "cifar", "svhn", "image_folder", "folder_split", "image_list", "FlatImageFolder", "ImageList",
    "find_bad_images",
    "IMG_EXTENSIONS", "DATASETS", "register_dataset", "list_datasets", "create_dataset",
    "image_shape", "num_classes",
]

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------
# shared pieces


def _transform(size: int | None, channels: int) -> Callable:
    """PIL image -> float tensor [channels, size, size] in [0, 1] (native size when None)."""
    steps: list[Callable] = [transforms.Grayscale(1)] if channels == 1 else []
    if size is not None:
        steps += [transforms.Resize(size), transforms.CenterCrop(size)]
    return transforms.Compose(steps + [transforms.ToTensor()])


def _check_common(root: Any, size: Any, channels: Any, size_required: bool = False) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    if size is not None or size_required:
        check_positive("size", size, integer=True)
    check_choice("channels", channels, (1, 3))
    return Path(root).expanduser()


def _check_train(train: Any) -> None:
    if not isinstance(train, bool):
        raise TypeError(f"train must be True (train split) or False (test split), got {train!r}")


# PIL modes of more than 8 bits per value: ``convert("RGB")`` clips them to 0..255 (a 16-bit
# image turns white), so they are scaled to 8 bits first. PNG stores 16-bit grey as "I;16"
# (or "I" in older Pillow) with values 0..65535; 16-bit colour PNGs are already 8-bit "RGB(A)".
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_8bit(image: Any) -> Any:
    """A 16-bit grey image as 8-bit "L", value v -> round(v / 257) (65535 -> 255)."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")


def convert_image(image: Any, channels: int) -> Any:
    """``image`` as 8-bit "L" (``channels`` 1) or "RGB" (3), 16-bit grey scaled, not clipped."""
    if image.mode in _WIDE_MODES:
        image = _to_8bit(image)
    return image.convert("L" if channels == 1 else "RGB")


def _load_image(path: str | Path, channels: int) -> Any:
    from PIL import Image

    with open(path, "rb") as f:
        return convert_image(Image.open(f), channels)


def _image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image, or None when it can."""
    from PIL import Image

    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)})"
    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()  # walks every chunk and checks its CRC, up to IEND
            else:
                # verify() checks little outside PNG; decoding at reduced size (JPEG draft
                # mode) still reads the whole stream, so truncation shows.
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"{type(err).__name__}: {str(err).strip() or 'unreadable'}"[:160]
    return None


def find_bad_images(paths: list[Path]) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each file of ``paths`` that is not a readable image."""
    bad = []
    for path in paths:
        reason = _image_problem(Path(path))
        if reason is not None:
            bad.append((Path(path), reason))
    return bad


def _drop_bad_images(dataset: Any, paths: list[Path], root: Path, skip_bad: bool) -> Any:
    """Scan ``paths`` (the dataset's files in sample order); raise on or drop unreadable ones."""
    bad = find_bad_images(paths)
    dataset.skipped = [str(p) for p, _ in bad]
    if not bad:
        return dataset
    if not skip_bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"unreadable image {path}{more} under {root}: {reason}; remove or "
                         f"replace it, or pass skip_bad=True to skip unreadable files")
    drop = {p for p, _ in bad}
    keep = [i for i, p in enumerate(paths) if Path(p) not in drop]
    if not keep:
        raise ValueError(f"no readable images under {root}: all {len(paths)} files failed "
                         f"(first {bad[0][0]}: {bad[0][1]})")
    dataset.samples = [dataset.samples[i] for i in keep]
    dataset.targets = [dataset.targets[i] for i in keep]
    if hasattr(dataset, "imgs"):  # torchvision's ImageFolder keeps an alias of samples
        dataset.imgs = dataset.samples
    return dataset


def _missing_files(folder: Path, names: list[str]) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


# --------------------------------------------------------------------------------------------
# CIFAR


class _PresenceCheckMixin:
    """Replace torchvision's md5 verification by a presence check unless ``check_md5`` is set.

    User-made or subsampled files in the real format cannot match the official md5 sums; the
    loaders below verify presence (and the pickle/mat structure, by parsing) instead.
    """

    check_md5: bool = False

    def _check_integrity(self) -> bool:
        if self.check_md5:
            return super()._check_integrity()
        return self._files_present()


def _read_batch(path: Path) -> Any:
    """One CIFAR python batch (a Python 2 pickle of a dict of arrays, lists and strings)."""
    return load_array_pickle(path, what="a CIFAR batch", encoding="latin1")


class _LocalCIFAR10(_PresenceCheckMixin, CIFAR10):
    """torchvision's CIFAR10 with the batches read by :func:`load_array_pickle`: torchvision's
    ``__init__`` calls ``pickle.load``, which would run any code a foreign file names."""

    def __init__(self, root: Path, train: bool, transform: Callable, check_md5: bool) -> None:
        self.check_md5 = check_md5
        VisionDataset.__init__(self, str(root), transform=transform)
        self.train = train
        if not self._check_integrity():
            raise RuntimeError(f"{self.base_folder} under {root} failed the md5 check")
        data, self.targets = [], []
        for name, _ in self.train_list if train else self.test_list:
            entry = _read_batch(Path(self.root) / self.base_folder / name)
            data.append(entry["data"])
            self.targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC
        self._load_meta()

    def _files_present(self) -> bool:
        names = [n for n, _ in self.train_list + self.test_list] + [self.meta["filename"]]
        return not _missing_files(Path(self.root) / self.base_folder, names)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        self.classes = list(_read_batch(path)[self.meta["key"]])
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class _LocalCIFAR100(_LocalCIFAR10, CIFAR100):
    pass


_CIFAR = {
    "cifar10": (_LocalCIFAR10, "CIFAR-10", "cifar-10-python.tar.gz",
                "data_batch_1..5, test_batch and batches.meta (key 'label_names')"),
    "cifar100": (_LocalCIFAR100, "CIFAR-100", "cifar-100-python.tar.gz",
                 "train, test and meta (key 'fine_label_names')"),
}


def _cifar_missing_error(root: Path, name: str) -> FileNotFoundError | None:
    cls, title, archive, contents = _CIFAR[name]
    folder = root / cls.base_folder
    names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = _missing_files(folder, names)
    if not missing:
        return None
    hint = ""
    if not _missing_files(root, names):
        hint = (f" The files are directly in {root}; pass its parent folder as root.")
    return FileNotFoundError(
        f"{title} not found: expected {folder / missing[0]} (missing under {folder}: "
        f"{', '.join(missing)}). Download is off in robustrep: fetch {archive} from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it into {root}, so that "
        f"{folder} holds {contents}.{hint}")


def cifar(root: str | os.PathLike, name: str = "cifar10", train: bool = True,
          size: int | None = None, channels: int = 3, check_md5: bool = False) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the extracted python-version archive under ``root``.

    Args:
        root: folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        name: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        train: the 50,000-image train set, else the 10,000-image test set.
        size: resize (and centre-crop) to this side; None keeps 32.
        channels: 3, or 1 for greyscale.
        check_md5: also verify torchvision's md5 sums of the official files.

    Returns:
        A torchvision dataset yielding ``(image [channels, size, size] in [0, 1], int label)``.
    """
    check_choice("name", name, _CIFAR)
    _check_train(train)
    root = _check_common(root, size, channels)
    error = _cifar_missing_error(root, name)
    if error is not None:
        raise error
    cls = _CIFAR[name][0]
    folder = root / cls.base_folder
    try:
        return cls(root, train, _transform(size, channels), check_md5)
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
    names = [n for n, _ in (cls.train_list if train else cls.test_list)] + [cls.meta["filename"]]
    for name in names:
        path = folder / name
        try:
            entry = _read_batch(path)
            if not isinstance(entry, dict):
                return path
        except Exception:  # any failure names this file
            return path
    return None


# --------------------------------------------------------------------------------------------
# SVHN


class _LocalSVHN(_PresenceCheckMixin, SVHN):
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
    root = _check_common(root, size, channels)
    path = root / SVHN.split_list[split][1]
    if not path.is_file():
        raise FileNotFoundError(
            f"SVHN {split} split not found: expected {path}. Download is off in robustrep: "
            f"fetch {path.name} (format 2, cropped digits) from "
            f"http://ufldl.stanford.edu/housenumbers/ and place it in {root}.")
    try:
        return _LocalSVHN(root, split, _transform(size, channels), check_md5)
    except RuntimeError as err:
        raise ValueError(f"{path} failed the md5 check (check_md5=True): {err}") from None
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path} is not an SVHN .mat file with 'X' (uint8 [32, 32, 3, N]) and "
                         f"'y' ([N, 1]) ({type(err).__name__}: {err})") from None


# --------------------------------------------------------------------------------------------
# image folders and lists


def _is_image(path: Path) -> bool:
    # Hidden files are skipped: macOS "._name.png" companions are not images. A broken symbolic
    # link named like an image is kept, so that verify names it (an image gone missing) rather
    # than the dataset silently shrinking.
    return (path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith(".")
            and (path.is_file() or (path.is_symlink() and not path.exists())))


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root``: its visible subfolders (``.ipynb_checkpoints`` is none)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk_images(folder: Path, seen: dict[str, Path]) -> list[Path]:
    """The visible images under ``folder``, recursively, sorted; each real folder read once.

    ``seen`` maps the real path of every folder read so far to the path it was read as. A
    symbolic link to a folder already read (a loop back to an ancestor, or a second link to
    the same folder) would read its images again, under another class: a ValueError naming
    the link.
    """
    real = os.path.realpath(folder)
    if real in seen:
        what = ("a loop: it points back to" if str(folder).startswith(str(seen[real]) + os.sep)
                else "it points to")
        raise ValueError(f"symbolic link {folder} would read a folder twice ({what} {seen[real]}, "
                         f"already read); remove the link or point it elsewhere")
    seen[real] = folder
    images = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            images += _walk_images(entry, seen)
        elif _is_image(entry):
            images.append(entry)
    return images


class _ClassFolders(ImageFolder):
    """torchvision's ``ImageFolder`` with robustrep's scan: hidden files and folders skipped,
    symbolic links followed at most once (torchvision's ``os.walk(followlinks=True)`` loops)."""

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes = [p.name for p in _class_folders(Path(directory))]
        if not classes:
            raise FileNotFoundError(f"no class folders in {directory}")
        return classes, {name: i for i, name in enumerate(classes)}

    @staticmethod
    def make_dataset(directory: str | Path, class_to_idx: dict[str, int], extensions=None,
                     is_valid_file=None, allow_empty: bool = False) -> list[tuple[str, int]]:
        seen = {os.path.realpath(directory): Path(directory)}
        samples = []
        for name, index in sorted(class_to_idx.items(), key=lambda item: item[1]):
            found = _walk_images(Path(directory) / name, seen)
            if not found and not allow_empty:
                raise FileNotFoundError(f"class folder {Path(directory) / name} holds no images")
            samples += [(str(p), index) for p in found]
        return samples


class FlatImageFolder(Dataset):
    """All images directly inside ``root`` (no class subfolders), sorted by name, label 0.

    Args:
        root: the folder.
        transform: PIL image -> tensor.
        channels: 3 (RGB) or 1 (greyscale) decoding.
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None,
                 channels: int = 3) -> None:
        check_choice("channels", channels, (1, 3))
        self.root = Path(root)
        self.transform = transform
        self.channels = channels
        self.samples = sorted(p for p in self.root.iterdir() if _is_image(p))
        if not self.samples:
            raise FileNotFoundError(f"no images found in {self.root} (accepted extensions: "
                                    f"{', '.join(IMG_EXTENSIONS)})")
        self.targets = [0] * len(self.samples)
        self.classes = [self.root.name]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = _load_image(self.samples[index], self.channels)
        return (self.transform(image) if self.transform else image), 0


def _folder_layout(root: Path) -> str:
    entries = list(root.iterdir())
    has_images = any(_is_image(p) for p in entries)
    has_dirs = any(p.is_dir() and not p.name.startswith(".") for p in entries)
    if has_images and has_dirs:
        raise ValueError(f"{root} holds both images and subfolders; pass layout='classes' to use "
                         "the subfolders as classes or layout='flat' to use the images in it")
    if has_images:
        return "flat"
    if has_dirs:
        return "classes"
    raise FileNotFoundError(f"no images found in {root}: expected root/<class>/<image> or images "
                            f"directly in root (accepted extensions: {', '.join(IMG_EXTENSIONS)})")


def folder_split(root: str | os.PathLike, train: bool | None) -> Path:
    """``root/train`` (``train=True``) or ``root/val`` / ``root/test`` (``train=False``) when
    ``root`` has timm's split layout (a ``train`` folder next to ``val`` or ``test``), else
    ``root``. ``train=None`` always gives ``root``. A folder with only ``train/`` gives it for both.
    """
    root = Path(root)
    if train is None or not (root / "train").is_dir():
        return root
    if train:
        return root / "train"
    for name in ("val", "test"):
        if (root / name).is_dir():
            return root / name
    return root / "train"


def image_folder(root: str | os.PathLike, size: int, channels: int = 3,
                 layout: str = "auto", verify: bool = False, skip_bad: bool = False) -> Dataset:
    """Images under ``root``, resized on the shorter side to ``size`` and centre-cropped.

    Args:
        root: ``root/<class>/<image>`` (torchvision ``ImageFolder``, labels in sorted class order)
            or a flat folder of images (label 0).
        size: output side length.
        channels: 3 (RGB) or 1 (greyscale).
        layout: ``"auto"`` (flat when ``root`` holds images, class folders when it holds only
            folders), ``"classes"`` or ``"flat"``.
        verify: open every image once now; an unreadable one raises ValueError naming it.
        skip_bad: with ``verify``, drop unreadable images instead (listed in ``.skipped``).
    """
    root = _check_common(root, size, channels, size_required=True)
    check_choice("layout", layout, ("auto", "classes", "flat"))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: expected a directory at {root} holding "
                                f"root/<class>/<image> or images (download is off)")
    if layout == "auto":
        layout = _folder_layout(root)
    transform = _transform(size, channels)
    if layout == "flat":
        dataset = FlatImageFolder(root, transform, channels)
        paths = list(dataset.samples)
    else:
        try:
            dataset = _ClassFolders(str(root), transform=transform,
                                    loader=partial(_load_image, channels=channels))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err} (layout root/<class>/<image> under {root}; accepted "
                                    f"extensions: {', '.join(IMG_EXTENSIONS)})") from None
        paths = [Path(p) for p, _ in dataset.samples]
    if verify:
        dataset = _drop_bad_images(dataset, paths, root, skip_bad)
    return dataset


class ImageList(Dataset):
    """Images listed in an OpenOOD-style ``imglist``: one ``relative/path label`` per line.

    Blank lines and lines starting with ``#`` are skipped; the label is the last whitespace-
    separated token, so paths may contain spaces. Every listed file is checked at construction.

    Args:
        root: the folder the listed paths are relative to.
        list_file: the list (absolute, or relative to the working directory).
        transform: PIL image -> tensor.
        channels: 3 (RGB) or 1 (greyscale) decoding.
    """

    def __init__(self, root: str | os.PathLike, list_file: str | os.PathLike,
                 transform: Callable | None = None, channels: int = 3) -> None:
        check_choice("channels", channels, (1, 3))
        self.root, self.list_file = Path(root), Path(list_file)
        self.transform, self.channels = transform, channels
        if not self.list_file.is_file():
            raise FileNotFoundError(f"image list not found: expected a file at {self.list_file}")
        self.samples = self._parse()
        if not self.samples:
            raise ValueError(f"image list {self.list_file} lists no images")
        self.targets = [label for _, label in self.samples]

    def _parse(self) -> list[tuple[Path, int]]:
        samples = []
        for number, line in enumerate(self.list_file.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            try:
                rel, label = parts[0], int(parts[1])
            except (IndexError, ValueError):
                raise ValueError(f"{self.list_file} line {number}: expected 'relative/path label' "
                                 f"with an integer label, got {line!r}") from None
            path = self.root / rel
            if not path.is_file():
                raise FileNotFoundError(f"{self.list_file} line {number}: image {path} not found "
                                        f"(paths are relative to root {self.root})")
            samples.append((path, label))
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        image = _load_image(path, self.channels)
        return (self.transform(image) if self.transform else image), label


def image_list(root: str | os.PathLike, list_file: str | os.PathLike, size: int,
               channels: int = 3, verify: bool = False, skip_bad: bool = False) -> ImageList:
    """Images of an OpenOOD ``imglist`` (``relative/path label`` lines), resized and
    centre-cropped to ``size``; paths are relative to ``root``. ``verify`` and ``skip_bad`` as
    in :func:`image_folder`."""
    root = _check_common(root, size, channels, size_required=True)
    if not root.is_dir():
        raise FileNotFoundError(f"image root not found: expected a directory at {root}")
    dataset = ImageList(root, list_file, _transform(size, channels), channels)
    if verify:
        dataset = _drop_bad_images(dataset, [p for p, _ in dataset.samples], root, skip_bad)
    return dataset


# --------------------------------------------------------------------------------------------
# registry

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
        _check_train(train)
    split = kwargs.pop("split", "train" if train else "test")
    return svhn(root, split, size, 3 if channels is None else channels, **kwargs)


def _require_size(name: str, size: int | None) -> int:
    if size is None:
        raise ValueError(f"dataset {name!r} needs size (the side length images are resized to)")
    return size


@register_dataset("imagefolder")
def _imagefolder(root, train, size, channels, **kwargs):
    if str(root).lower().endswith(".zip"):  # a stylegan2-ada dataset zip, read as a folder
        return _zip(root, train, size, channels, verify=kwargs.get("verify", False))
    return image_folder(folder_split(root, train), _require_size("imagefolder", size),
                        3 if channels is None else channels, **kwargs)


@register_dataset("zip")
def _zip(root, train, size, channels, **kwargs):
    from robustrep.data.zipdata import ZipImageDataset  # zipdata imports this module
    return ZipImageDataset(root, size, channels, verify=kwargs.get("verify", False))


@register_dataset("imagelist")
def _imagelist(root, train, size, channels, list_file=None, **kwargs):
    if list_file is None:
        raise ValueError("dataset 'imagelist' needs list_file (an OpenOOD imglist)")
    return image_list(root, list_file, _require_size("imagelist", size),
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
            ``layout`` for folders, ``list_file`` for lists). None values are dropped.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")
    if name in _NEEDS_ROOT and root is None:
        raise ValueError(f"dataset {name!r} reads local files and needs a root folder "
                         f"(root=...); nothing is downloaded")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return DATASETS[name](root, train, size, channels, **kwargs)
