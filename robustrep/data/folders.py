"""Image folders: torchvision's ``ImageFolder`` layout ``root/<class>/<image>``, or a flat folder
of images (label 0), the form CelebA and LSUN exports usually take; nothing is downloaded.

timm's split layout ``root/train/<class>/...`` with ``root/val/`` (or ``root/test/``) is
recognised by :func:`folder_split`: ``create_dataset("imagefolder", root, train=...)`` reads the
split. Scans skip hidden files and folders (``._0.png`` from macOS, ``.ipynb_checkpoints``) in
both layouts; a symbolic link is followed once, and a link to a folder already read (a loop, or
a second name for a class) is a ValueError naming the link, since torchvision's
``os.walk(followlinks=True)`` would read the images again under other labels. ``verify=True``
opens every image once before returning (:mod:`robustrep.data.images`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from robustrep._validate import check_choice
from robustrep.data.images import (IMG_EXTENSIONS, check_source, drop_bad_images, image_transform,
                                   is_image, load_image)


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root``: its visible subfolders (``.ipynb_checkpoints`` is none).
    A broken symbolic link among them is a ValueError: a class gone missing, not left out."""
    visible = [p for p in root.iterdir() if not p.name.startswith(".")]
    broken = sorted(p for p in visible if p.is_symlink() and not p.exists())
    if broken:
        raise ValueError(f"{broken[0]} is a broken symbolic link (to {os.readlink(broken[0])}): "
                         f"the class it names would be left out; fix or remove the link")
    return sorted(p for p in visible if p.is_dir())


def _walk_images(folder: Path, seen: dict[str, Path]) -> list[Path]:
    """The visible images under ``folder``, recursively, sorted; each real folder read once.

    ``seen`` maps the real path of every folder and image read so far to the path it was read
    as. A symbolic link to a folder already read (a loop back to an ancestor, or a second link
    to the same folder) would read its images again, under another class: a ValueError naming
    the link; so is a second name for an image (:func:`_see_once`).
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
        elif is_image(entry):
            _see_once(entry, seen)
            images.append(entry)
    return images


def _see_once(image: Path, seen: dict[str, Path]) -> None:
    """Record ``image``'s real path; a second name for an image already read (a symbolic link
    to it, here or in another class) is a ValueError, as it would count twice, or under two
    labels."""
    real = os.path.realpath(image)
    if real in seen:
        raise ValueError(f"{image} and {seen[real]} are the same image file (a symbolic link): "
                         f"it would be read twice, under two labels if in two classes; remove "
                         f"one of them")
    seen[real] = image


class _ClassFolders(ImageFolder):
    """torchvision's ``ImageFolder`` with robustrep's scan: hidden files and folders skipped,
    symbolic links followed at most once (torchvision's ``os.walk(followlinks=True)`` loops).
    ``classes`` fixes the label order (the training split's), else the folder's own sorted
    class folders give it."""

    def __init__(self, root: str, classes: list[str] | None = None, **kwargs: Any) -> None:
        self._given_classes = classes
        super().__init__(root, **kwargs)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        found = [p.name for p in _class_folders(Path(directory))]
        if not found:
            raise FileNotFoundError(f"no class folders in {directory}")
        if self._given_classes is None:
            return found, {name: i for i, name in enumerate(found)}
        unknown = [name for name in found if name not in self._given_classes]
        if unknown:
            raise ValueError(f"class folder {Path(directory) / unknown[0]} is not a class of the "
                             f"training split ({', '.join(self._given_classes)}): its labels would "
                             f"be guessed; rename or remove it")
        # labels are the training split's; a class the split lacks keeps its number unused
        index = {name: i for i, name in enumerate(self._given_classes)}
        return self._given_classes, {name: index[name] for name in found}

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
        self.samples = sorted(p for p in self.root.iterdir() if is_image(p))
        seen: dict[str, Path] = {}
        for image in self.samples:  # a link to an image here would read it twice
            _see_once(image, seen)
        if not self.samples:
            raise FileNotFoundError(f"no images found in {self.root} (accepted extensions: "
                                    f"{', '.join(IMG_EXTENSIONS)})")
        self.targets = [0] * len(self.samples)
        self.classes = [self.root.name]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = load_image(self.samples[index], self.channels)
        return (self.transform(image) if self.transform else image), 0


def _first_image(entries: list[Path]) -> Path:
    return min(p for p in entries if is_image(p))


def _folder_layout(root: Path) -> str:
    entries = list(root.iterdir())
    has_images = any(is_image(p) for p in entries)
    has_dirs = any(p.is_dir() and not p.name.startswith(".") for p in entries)
    if has_images and has_dirs:
        # the advice is a change to the folder, which works from every program; the library's
        # layout= argument is named only as the alternative for Python callers
        raise ValueError(f"{root} holds both images and subfolders, so it is neither a flat "
                         f"folder nor root/<class>/<image>; move its loose images (e.g. "
                         f"{_first_image(entries).name}) into a class subfolder, or move the "
                         f"subfolders out (from Python, layout='classes' or 'flat' chooses one)")
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


def split_classes(split: str | os.PathLike) -> list[str] | None:
    """The class names of ``root/train`` when ``split`` is the ``root/val`` or ``root/test`` of
    timm's split layout, else None: the evaluation split takes the training split's labels (its
    own sorted folders would renumber the classes when one is missing)."""
    split = Path(split)
    train = split.parent / "train"
    if split.name not in ("val", "test") or not train.is_dir():
        return None
    return [p.name for p in _class_folders(train)] or None


def image_folder(root: str | os.PathLike, size: int, channels: int = 3,
                 layout: str = "auto", verify: bool = False, skip_bad: bool = False,
                 classes: list[str] | None = None) -> Dataset:
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
            The visible files not read because of their extension are listed in ``.unread``
            (a ``.gif`` or ``.jfif`` is not an image here: a program can say so).
        classes: the class names in label order (:func:`split_classes` gives the training
            split's); a class folder not among them is a ValueError. Needs class folders.
    """
    root = check_source(root, size, channels, size_required=True)
    check_choice("layout", layout, ("auto", "classes", "flat"))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: expected a directory at {root} holding "
                                f"root/<class>/<image> or images (download is off)")
    if layout == "auto":
        layout = _folder_layout(root)
    if classes is not None and layout == "flat":
        raise ValueError(f"{root} holds images directly, but the training split has class "
                         f"folders ({', '.join(classes)}): put its images in the same class "
                         f"folders, or their labels would all be 0")
    transform = image_transform(size, channels)
    if layout == "flat":
        dataset = FlatImageFolder(root, transform, channels)
        paths = list(dataset.samples)
    else:
        try:
            dataset = _ClassFolders(str(root), classes, transform=transform,
                                    loader=partial(load_image, channels=channels))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err} (layout root/<class>/<image> under {root}; accepted "
                                    f"extensions: {', '.join(IMG_EXTENSIONS)})") from None
        paths = [Path(p) for p, _ in dataset.samples]
    if verify:
        dataset = drop_bad_images(dataset, paths, root, skip_bad)
    dataset.unread = _unread_files(root, recursive=layout != "flat")
    return dataset


def _unread_files(root: Path, recursive: bool) -> list[str]:
    """The visible files under ``root`` that are not taken as images (their extension)."""
    unread = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        unread += [os.path.join(folder, f) for f in sorted(files)
                   if not f.startswith(".") and not is_image(Path(folder, f))]
    return unread
