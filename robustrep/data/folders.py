"""Image folders: torchvision's ``ImageFolder`` layout ``root/<class>/<image>``, or a flat folder
of images (label 0), the form CelebA and LSUN exports usually take; nothing is downloaded.

timm's split layout, ``root/train/<class>/...`` beside ``root/val/``, is
:mod:`robustrep.data.folder_splits`'s: a folder read here is one split, or one set of images.
Scans skip hidden files and folders (``._0.png`` from macOS, ``.ipynb_checkpoints``) and
``__MACOSX/`` (the resource forks a zip made by macOS's Finder holds, unzipped with it) in
both layouts. A folder holding one folder and nothing else, whose images all lie in subfolders,
is read from inside it (:func:`_inside`), as a zip of it is. A symbolic link is followed once,
and a link to a folder already read (a loop, or a second name for a class) is a ValueError
naming the link, since torchvision's ``os.walk(followlinks=True)`` would read the images again
under other labels. ``verify=True`` opens every image once before returning
(:mod:`robustrep.data.images`).

:class:`ZipImageFolder` reads a zip of an image folder (``robustrep data pack SRC.zip``) by the
same scan, run on the zip's tree (:func:`robustrep.data.zipdata.zip_tree`): the same layouts,
class folders, hidden names and refusals, so it gives what the folder it was made from gives.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from robustrep._validate import check_choice
from robustrep.data.images import (IMG_EXTENSIONS, Checked, check_depth, check_source,
                                   convert_image, decode_error, drop_bad_images, image_problem,
                                   image_transform, is_image, load_image, open_image)
from robustrep.data.zipdata import (MEMBER_DAMAGE, RECREATE, ZipEntry, check_member, damaged,
                                    zip_tree)
from robustrep.errors import UnreadableImageError

# the scans below take a folder as a Path or as a ZipEntry (a folder inside a zip)
Entry = Path | ZipEntry


def _real(entry: Entry) -> str:
    """What ``entry`` is, whatever name it is read by: its real path (symbolic links resolved),
    or a zip member's name (a zip holds no links)."""
    return str(entry) if isinstance(entry, ZipEntry) else os.path.realpath(entry)


def _visible(entry: Entry) -> bool:
    """Whether ``entry`` is scanned: not hidden (``._0.png``, ``.ipynb_checkpoints``), and not
    ``__MACOSX``, macOS's resource forks, which a folder unzipped from a Finder zip holds (a
    zip's own are left out by :func:`~robustrep.data.zipdata.zip_tree`)."""
    return not entry.name.startswith(".") and entry.name != "__MACOSX"


def _class_folders(root: Entry) -> list[Entry]:
    """The class folders of ``root``: its visible subfolders (``.ipynb_checkpoints`` and
    ``__MACOSX`` are none). A broken symbolic link among them is a ValueError: a class gone
    missing, not left out."""
    visible = [p for p in root.iterdir() if _visible(p)]
    broken = sorted(p for p in visible if p.is_symlink() and not p.exists())
    if broken:
        raise ValueError(f"{broken[0]} is a broken symbolic link (to {os.readlink(broken[0])}): "
                         f"the class it names would be left out; fix or remove the link")
    return sorted(p for p in visible if p.is_dir())


def _walk_images(folder: Entry, seen: dict[str, Entry]) -> list[Entry]:
    """The visible images under ``folder``, recursively, sorted; each real folder read once.

    ``seen`` maps the real path of every folder and image read so far to the path it was read
    as. A symbolic link to a folder already read (a loop back to an ancestor, or a second link
    to the same folder) would read its images again, under another class: a ValueError naming
    the link; so is a second name for an image (:func:`_see_once`).
    """
    real = _real(folder)
    if real in seen:
        what = ("a loop: it points back to" if str(folder).startswith(str(seen[real]) + os.sep)
                else "it points to")
        raise ValueError(f"symbolic link {folder} would read a folder twice ({what} {seen[real]}, "
                         f"already read); remove the link or point it elsewhere")
    seen[real] = folder
    images = []
    for entry in sorted(folder.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir():
            images += _walk_images(entry, seen)
        elif is_image(entry):
            _see_once(entry, seen)
            images.append(entry)
    return images


def _see_once(image: Entry, seen: dict[str, Entry]) -> None:
    """Record ``image``'s real path; a second name for an image already read (a symbolic link
    to it, here or in another class) is a ValueError, as it would count twice, or under two
    labels."""
    real = _real(image)
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
        return _find_classes(Path(directory), self._given_classes)

    @staticmethod
    def make_dataset(directory: str | Path, class_to_idx: dict[str, int], extensions=None,
                     is_valid_file=None, allow_empty: bool = False) -> list[tuple[str, int]]:
        return [(str(p), index) for p, index in
                _class_samples(Path(directory), class_to_idx, allow_empty)]


def _find_classes(root: Entry, given: list[str] | None) -> tuple[list[str], dict[str, int]]:
    """The class names of ``root`` in label order and their labels (``given`` fixes both)."""
    found = [p.name for p in _class_folders(root)]
    if not found:
        raise FileNotFoundError(f"no class folders in {root}")
    if given is None:
        return found, {name: i for i, name in enumerate(found)}
    unknown = [name for name in found if name not in given]
    if unknown:
        raise ValueError(f"class folder {root / unknown[0]} is not a class of the training "
                         f"split ({', '.join(given)}): its labels would be guessed; rename or "
                         f"remove it")
    # labels are the training split's; a class the split lacks keeps its number unused
    index = {name: i for i, name in enumerate(given)}
    return given, {name: index[name] for name in found}


def _class_samples(root: Entry, class_to_idx: dict[str, int],
                   allow_empty: bool = False) -> list[tuple[Entry, int]]:
    """``(image, label)`` of every image under ``root/<class>/``, class by class in label order;
    a class folder without images is a FileNotFoundError (unless ``allow_empty``). Within a
    class, entries sorted by name, a subfolder read where its name sorts (``sub/deep/y.png``
    before ``z.png``), as dataset_tool's sorted paths: torchvision's ``ImageFolder`` walks
    ``os.walk``, a folder's own files before its subfolders', so by position the two differ
    where a class folder has subfolders (labels and pixels are the same image by image)."""
    seen = {_real(root): root}
    samples = []
    for name, index in sorted(class_to_idx.items(), key=lambda item: item[1]):
        found = _walk_images(root / name, seen)
        if not found and not allow_empty:
            raise FileNotFoundError(f"class folder {root / name} holds no images")
        samples += [(p, index) for p in found]
    return samples


def _layout_hint(err: FileNotFoundError, root: Entry) -> FileNotFoundError:
    """``err`` of a class-folder scan, with the layout it looked for."""
    return FileNotFoundError(f"{err} (layout root/<class>/<image> under {root}; accepted "
                             f"extensions: {', '.join(IMG_EXTENSIONS)})")


def _flat_images(root: Entry) -> list[Entry]:
    """The images directly inside ``root``, sorted by name; none is a FileNotFoundError."""
    images = sorted(p for p in root.iterdir() if is_image(p))
    seen: dict[str, Entry] = {}
    for image in images:  # a link to an image here would read it twice
        _see_once(image, seen)
    if not images:
        raise FileNotFoundError(f"no images found in {root} (accepted extensions: "
                                f"{', '.join(IMG_EXTENSIONS)})")
    return images


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
        self.samples = _flat_images(self.root)
        self.targets = [0] * len(self.samples)
        self.classes = [self.root.name]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = load_image(self.samples[index], self.channels)
        return (self.transform(image) if self.transform else image), 0


def _first_image(entries: list[Entry]) -> Entry:
    return min(p for p in entries if is_image(p))


def _holds_anything(folder: Entry) -> bool:
    return any(_visible(p) for p in folder.iterdir())


def _holds(entries: list[Entry]) -> tuple[bool, bool]:
    """Whether ``entries`` (a folder's) hold images, and subfolders that hold something."""
    has_images = any(is_image(p) for p in entries)
    # an empty subfolder (or one of hidden files only) holds no class: it is not counted
    has_dirs = any(p.is_dir() and _visible(p) and _holds_anything(p) for p in entries)
    return has_images, has_dirs


def _lone_folder(root: Entry) -> Entry | None:
    """The one visible entry of ``root`` when it is a folder, else None."""
    visible = [p for p in root.iterdir() if _visible(p)]
    return visible[0] if len(visible) == 1 and visible[0].is_dir() else None


def _inside(root: Entry, classes: list[str] | None = None) -> Entry:
    """The folder ``root`` is read from: while it holds one folder and nothing else, and that
    folder's images all lie in subfolders (class folders), that folder. Read from ``root``, the
    one folder would be one class of every image, its class folders merged into it; and a zip
    of ``root`` (``zip -r`` from inside it or from its parent: the names cannot tell which) is
    read from inside the one folder it holds (:func:`_unwrapped`), so the folder is too, and
    the two give the same classes. A lone folder holding images itself is a class, and so is
    one named as a class of ``classes`` (the training split's); a symbolic link back to a
    folder passed is left to the scan, which refuses the loop."""
    passed = {_real(root)}
    while True:
        lone = _lone_folder(root)
        if lone is None or _real(lone) in passed or (classes and lone.name in classes):
            return root
        has_images, has_dirs = _holds(list(lone.iterdir()))
        if has_images or not has_dirs:
            return root
        root = lone
        passed.add(_real(root))


def _folder_layout(root: Entry) -> str:
    entries = list(root.iterdir())
    has_images, has_dirs = _holds(entries)
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


def image_folder(root: str | os.PathLike, size: int, channels: int = 3,
                 layout: str = "auto", verify: bool = False, skip_bad: bool = False,
                 classes: list[str] | None = None, checked: Checked | None = None) -> Dataset:
    """Images under ``root``, resized on the shorter side to ``size`` and centre-cropped.

    Args:
        root: ``root/<class>/<image>`` (torchvision ``ImageFolder``, labels in sorted class order)
            or a flat folder of images (label 0).
        size: output side length.
        channels: 3 (RGB) or 1 (greyscale).
        layout: ``"auto"`` (flat when ``root`` holds images, class folders when it holds only
            folders; a ``root`` of one folder whose images lie in subfolders is read from inside
            it, :func:`_inside`, and ``.top`` names that folder under ``root``, else None),
            ``"classes"`` or ``"flat"``.
        verify: open every image once now; an unreadable one raises ValueError naming it.
        skip_bad: with ``verify``, drop unreadable images instead (listed in ``.skipped``).
            The visible files not read because of their extension are listed in ``.unread``
            (a ``.gif`` or ``.jfif`` is not an image here: a program can say so).
        classes: the class names in label order
            (:func:`~robustrep.data.folder_splits.split_classes` gives the training split's); a
            class folder not among them is a ValueError. Needs class folders.
        checked: with ``verify``, called as ``checked(done, total)`` after each image is
            opened (a program's progress bar: the scan prints nothing).
    """
    root = check_source(root, size, channels, size_required=True)
    check_choice("layout", layout, ("auto", "classes", "flat"))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: expected a directory at {root} holding "
                                f"root/<class>/<image> or images (download is off)")
    given, top = root, None
    if layout == "auto":
        root = _inside(root, classes)
        top = root.relative_to(given).as_posix() if root != given else None
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
            raise _layout_hint(err, root) from None
        paths = [Path(p) for p, _ in dataset.samples]
    if verify:
        dataset = drop_bad_images(dataset, paths, root, skip_bad, checked)
    dataset.unread = _unread_files(root, recursive=layout != "flat")
    dataset.layout, dataset.top = layout, top
    return dataset


def _unread_files(root: Entry, recursive: bool) -> list[str]:
    """The visible files under ``root`` that are not taken as images (their extension): a
    folder's own first, then its subfolders' in name order (as ``os.walk`` lists them)."""
    visible = sorted(p for p in root.iterdir() if _visible(p))
    unread = [str(p) for p in visible if not p.is_dir() and not is_image(p)]
    for folder in (p for p in visible if recursive and p.is_dir()):
        unread += _unread_files(folder, recursive)
    return unread


def _unwrapped(root: Any) -> Any:
    """The one folder a zip holds where it holds nothing else visible: ``zip -r SRC.zip FOLDER``
    keeps ``FOLDER/`` in every name, and read as the top that zip would be one class of every
    image (its class folders merged into it), where the folder it was made from is read as
    its class folders or flat."""
    return _lone_folder(root) or root


class ZipImageFolder(Dataset):
    """The images of a zip of an image folder, found as :func:`image_folder` finds a folder's:
    the same scan (:func:`_folder_layout`, class folders, hidden names skipped, the same
    refusals) run on the zip's tree (:func:`~robustrep.data.zipdata.zip_tree`), and each image
    decoded as :func:`~robustrep.data.images.load_image` decodes a file. So a zip gives what
    the folder it was made from gives, image for image (``robustrep data pack SRC.zip``).

    Members zipfile cannot read (encrypted, or compressed with a method such as Deflate64) are
    refused at construction, naming the member; with ``verify`` every image is read (its CRC
    checked) and decoded once, the first that fails refused as :func:`image_folder` refuses
    an unreadable file.

    Args:
        path: the zip.
        channels: 3 (RGB) or 1 (greyscale) decoding.
        transform: PIL image -> tensor; None gives the PIL image.
        verify: read and decode every image now.
        checked: with ``verify``, called as ``checked(done, total)`` after each image (a
            program's progress bar: nothing here prints).

    A zip holding one folder and nothing else (``zip -r SRC.zip FOLDER`` writes it so) is
    read from inside that folder, which ``top`` names (else None), and from there as
    :func:`image_folder` reads ``FOLDER`` (:func:`_inside`).

    Attributes: ``samples`` (``(ZipEntry, label)``), ``targets``, ``classes``, ``layout``
    (``"flat"`` or ``"classes"``) and ``unread`` (visible members not read for their extension,
    named ``ZIP/member``), as :func:`image_folder` gives them.
    """

    def __init__(self, path: str | os.PathLike, channels: int = 3,
                 transform: Callable | None = None, verify: bool = False,
                 checked: Checked | None = None) -> None:
        check_choice("channels", channels, (1, 3))
        self.path, self.channels, self.transform = Path(path), channels, transform
        top = _unwrapped(zip_tree(self.path))
        self.top = top.member or None  # the one folder the zip holds, read as its top
        root = _inside(top)  # and further in, as the folder it was made from is read
        self.layout = _folder_layout(root)
        if self.layout == "flat":
            self.classes, self.samples = [root.name], [(p, 0) for p in _flat_images(root)]
        else:
            try:
                self.classes, index = _find_classes(root, None)
                self.samples = _class_samples(root, index)
            except FileNotFoundError as err:
                raise _layout_hint(err, root) from None
        self.targets = [label for _, label in self.samples]
        self._archive: zipfile.ZipFile | None = None
        for entry, _ in self.samples:  # from the central directory: no data read for this
            check_member(self.path, self._zip().getinfo(entry.member))
        if verify:
            self._verify(checked)
        self.skipped: list[str] = []
        self.unread = _unread_files(root, recursive=self.layout != "flat")

    def __len__(self) -> int:
        return len(self.samples)

    def _zip(self) -> zipfile.ZipFile:
        if self._archive is None:
            self._archive = zipfile.ZipFile(self.path)
        return self._archive

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers each open their own handle (a ZipFile does not survive a fork)
        return {**self.__dict__, "_archive": None}

    def _read(self, entry: ZipEntry) -> bytes:
        """The member's bytes, its CRC checked as zipfile reads it to the end."""
        return self._zip().read(entry.member)

    def _problem(self, entry: ZipEntry) -> tuple[str, str] | None:
        """Why the member ``entry`` is no readable image and the fix, or None: damaged in the
        zip (only a new zip brings it back), or no image as
        :func:`~robustrep.data.images.image_problem` finds a file."""
        try:
            data = self._read(entry)
        except MEMBER_DAMAGE as err:
            return damaged(err), RECREATE
        reason = image_problem(io.BytesIO(data))
        return None if reason is None else (reason, "remove or replace it")

    def _verify(self, checked: Checked | None = None) -> None:
        """Read and decode every image, refusing the first that fails (naming how many more),
        in :func:`image_folder`'s words; ``checked(done, total)`` after each."""
        bad = []
        for done, (entry, _) in enumerate(self.samples, 1):
            reason = self._problem(entry)
            if reason is not None:
                bad.append((entry, reason))
            if checked is not None:
                checked(done, len(self.samples))
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            entry, (reason, fix) = bad[0]
            raise ValueError(f"unreadable image {entry}{more} under {self.path}: {reason}; "
                             f"{fix}")

    def __getitem__(self, index: int) -> tuple[Any, int]:
        entry, label = self.samples[index]
        try:
            data = io.BytesIO(self._read(entry))
        except MEMBER_DAMAGE as err:  # a CRC mismatch, a stream that does not decompress
            raise UnreadableImageError(f"cannot read {entry}: {damaged(err)}; "
                                       f"{RECREATE}") from None
        try:  # as load_image reads a file
            image = open_image(data)
            check_depth(image, entry)
            image = convert_image(image, self.channels, entry)
        except UnreadableImageError:
            raise
        except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
            raise UnreadableImageError(f"cannot read {entry}: {decode_error(err)}; remove or "
                                       f"replace it") from None
        return (self.transform(image) if self.transform else image), label
