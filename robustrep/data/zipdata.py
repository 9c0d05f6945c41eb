"""stylegan2-ada dataset zips: reading them, and the x-flipped duplicate.

The format is the one ``dataset_tool.py`` of ``NVlabs/stylegan2-ada-pytorch`` writes and its
``training/dataset.py`` (``ImageFolderDataset``) reads (Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020):

- every member whose extension PIL knows is an image, at any path inside the zip; the samples
  are those members sorted by name (one departure: hidden members such as macOS's
  ``._img.png`` and everything under ``__MACOSX/``, resource forks a zip made by macOS's Finder
  holds, are no images and are skipped, as image folders skip hidden files);
- an optional ``dataset.json`` at the top, ``{"labels": [["00000/img00000000.png", 6], ...]}``
  (one entry per image, keyed by the member name with ``/``) or ``{"labels": null``}; one
  below the top (``zip -r`` of the packed folder), which the reference ignores, is refused;
- images are square, all of one size, greyscale or RGB (``dataset_tool.py`` stores
  uncompressed PNGs under ``{idx // 1000:05d}/img{idx:08d}.png``); the programs' zips are
  checked for one size at construction (``one_size``).

Members Python's zipfile cannot read (encrypted, or compressed with Deflate64 and the like) are
refused at construction, from the central directory. A member damaged in the zip (a CRC
mismatch, or a deflate, bzip2 or LZMA stream that does not decompress) is refused when it is read,
naming the zip and the member (:func:`read_member`).

:class:`ZipImageDataset` yields ``(image [C, H, W] in [0, 1], label)`` like every dataset of
:mod:`robustrep.data`; labels are integers, 0 when the zip has none. Only integer class labels are
read (``dataset.json`` may also hold float vectors, which the reference treats as conditioning
vectors; they are refused, naming the remedy), and only where a program reads labels:
``labels=False`` (``gan train``, ``gan fid``) leaves ``dataset.json`` unread, as the reference's
unconditional reader (``use_labels=False``) does, so any zip it reads is read. The class ids
are ``0..max label`` (``classes``; stylegan2-ada's ``label_dim`` is max + 1), ids no image
has included. Writing a zip in ``dataset_tool.py``'s layout is :mod:`robustrep.data.zippack`,
which imports :data:`LABELS_FILE` from here.

:func:`zip_tree` shows any zip as a folder tree (:class:`ZipEntry`), so that a zip of an image
folder is scanned by the image folders' own code (``robustrep data pack SRC.zip``).

:class:`XFlip` is stylegan2-ada's ``--mirror=1`` (``Dataset(xflip=True)``): the dataset doubled,
sample ``i + N`` being sample ``i`` flipped left-right. It is a fixed duplicate, not a random
flip per epoch.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from torch import Tensor
from torch.utils.data import Dataset

from robustrep._validate import check_choice, check_positive
from robustrep.data.images import (WIDE_MODES, UnreadableImageError, check_depth, convert_image,
                                   decode_error, image_problem, image_transform, open_image)

__all__ = ["ZipImageDataset", "XFlip", "zip_members", "ZipEntry", "zip_tree", "read_member"]

LABELS_FILE = "dataset.json"


def _image_extensions() -> set[str]:
    from PIL import Image

    Image.init()  # the reference takes every extension PIL registers
    return {ext.lower() for ext in Image.EXTENSION}


def _hidden(name: str) -> bool:
    """A member that is no image whatever its extension: under ``__MACOSX/`` (the resource
    forks macOS's Finder adds to a zip) or hidden (``._img.png``, or inside a dot-folder), as
    image folders skip hidden files and folders."""
    parts = name.split("/")
    # "." and ".." are path steps, not hidden names
    return parts[0] == "__MACOSX" or any(p.startswith(".") and p.strip(".") for p in parts)


def zip_members(path: str | os.PathLike, labels: bool = True
                ) -> tuple[list[str], list[int] | None]:
    """The image members of the zip at ``path`` (sorted by name) and their integer labels from
    ``dataset.json`` (None when it is absent or ``null``, or ``labels`` is False: then it is
    not read, as stylegan2-ada's unconditional reader reads none).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: not a zip, no images, two members of one name, a member zipfile cannot
            read (encrypted, or compressed with a method such as Deflate64); with ``labels``, a
            ``dataset.json`` below the top, or one that does not label every image with an
            integer (the message names the zip and the member).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset zip not found: expected a file at {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip archive (expected a stylegan2-ada dataset zip)")
    exts = _image_extensions()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        images = sorted(n for n in names if os.path.splitext(n)[1].lower() in exts
                        and not _hidden(n))
        if not images:
            raise ValueError(f"{path} holds no images (any path inside, PIL's extensions)")
        twice = next((a for a, b in zip(images, images[1:]) if a == b), None)
        if twice is not None:  # appended twice: only the last copy could ever be read
            raise ValueError(f"{path} holds two members named {twice}; re-create the zip with "
                             f"one of each")
        labelled = labels and LABELS_FILE in names
        if labels:
            _check_labels_place(path, names)
        for name in images + ([LABELS_FILE] if labelled else []):  # the central directory
            check_member(path, archive.getinfo(name))
        raw = read_member(path, archive, LABELS_FILE) if labelled else None
    return images, (None if raw is None else _labels(raw, images, path))


@functools.cache
def _readable_methods() -> dict[int, str]:
    """The compression methods Python's zipfile decompresses here, by number."""
    import importlib.util

    methods = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
    # bzip2 and LZMA only when Python was built with their modules (zipfile needs them)
    for number, module, name in ((zipfile.ZIP_BZIP2, "bz2", "bzip2"),
                                 (zipfile.ZIP_LZMA, "lzma", "LZMA")):
        if importlib.util.find_spec(module) is not None:
            methods[number] = name
    return methods


# methods other zip tools write (Windows Explorer and 7-Zip use Deflate64 for large files)
_OTHER_METHODS = {9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES"}


def check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse the member ``info`` when zipfile cannot read it: encrypted (it asks for a password,
    a RuntimeError) or compressed by a method it lacks (a NotImplementedError), both told by
    the central directory, before any data is read."""
    where = f"{path}: member {info.filename}"
    if info.flag_bits & 0x1:  # bit 0 of the general purpose flags: encrypted
        raise ValueError(f"{where} is encrypted (password-protected), which robustrep does not "
                         f"read; re-create the zip without a password")
    methods = _readable_methods()
    if info.compress_type not in methods:
        method = _OTHER_METHODS.get(info.compress_type, "an unknown method")
        raise ValueError(f"{where} is compressed with {method} (method {info.compress_type}), "
                         f"which Python's zipfile cannot read; accepted: "
                         f"{', '.join(methods.values())} members; re-create the zip (e.g. "
                         f"zip -r, or robustrep data pack)")


def _damage_errors() -> tuple[type[Exception], ...]:
    """What zipfile raises on a member it cannot read back: a CRC mismatch (BadZipFile), a zip
    cut short (EOFError), a bzip2 stream that does not decompress (OSError), and the
    decompressors' own errors, which it lets through (zlib.error for deflate, LZMAError)."""
    errors: list[type[Exception]] = [zipfile.BadZipFile, EOFError, OSError]
    for module, name in (("zlib", "error"), ("lzma", "LZMAError")):
        try:  # absent when Python was built without the module, as zipfile allows
            errors.append(getattr(importlib.import_module(module), name))
        except ImportError:
            pass
    return tuple(errors)


MEMBER_DAMAGE = _damage_errors()
RECREATE = "re-create the zip"  # the fix for a member damaged in it: nothing else brings it back


def damaged(err: Exception) -> str:
    """Why a member could not be read back (``err``, one of :data:`MEMBER_DAMAGE`), in a few
    words."""
    reason = decode_error(err)
    if type(err).__name__ == "error":  # zlib's error class, named "error" alone
        reason = f"{type(err).__module__}.{reason}"
    return f"damaged in the zip ({reason})"


def read_member(path: Path, archive: zipfile.ZipFile, name: str, keep: bool = True) -> bytes:
    """The bytes of member ``name`` of ``archive`` (the zip at ``path``), its CRC checked as
    zipfile reads it to the end; ``keep`` False reads it through in pieces and gives b"" (a
    check of a member that need not fit in memory). A member damaged in the zip is an
    :class:`UnreadableImageError` naming the zip and the member, not zipfile's or a
    decompressor's own error (``zlib.error``, which names neither)."""
    try:
        with archive.open(name) as member:
            if keep:
                return member.read()
            while member.read(1 << 20):
                pass
            return b""
    except MEMBER_DAMAGE as err:
        raise UnreadableImageError(f"{path}: member {name} is {damaged(err)}; "
                                   f"{RECREATE}") from None


def _check_labels_place(path: Path, names: list[str]) -> None:
    """Refuse a ``dataset.json`` below the top (``zip -r`` of the folder holding it):
    stylegan2-ada reads only the top one, so its labels would be ignored there, and reading it
    here would label the images as the reference does not, by names relative to its folder."""
    nested = next((n for n in names if n.split("/")[-1] == LABELS_FILE and n != LABELS_FILE
                   and not _hidden(n)), None)
    if nested is not None:
        raise ValueError(f"{path} holds {nested}, but labels are read only from a top-level "
                         f"{LABELS_FILE} (as stylegan2-ada reads them), so its images would be "
                         f"unlabelled: re-create the zip from inside the folder holding "
                         f"{LABELS_FILE} (cd FOLDER && zip -r ../{path.name} .)")


# the fix for labels a program that reads classes cannot use (gan train and gan fid read none)
LABEL_REMEDY = (f"give each image its class index in {LABELS_FILE} (or pack class folders "
                f"with robustrep data pack)")


def _labels(raw: bytes, images: list[str], path: Path) -> list[int] | None:
    try:
        entries = json.loads(raw)["labels"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: {LABELS_FILE} must be {{\"labels\": [[name, label], ...]}} "
                         f"or {{\"labels\": null}}") from None
    if entries is None:
        return None
    try:
        table = {str(name).replace("\\", "/"): label for name, label in entries}
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {LABELS_FILE} labels must be [name, label] pairs") from None
    labels = []
    for name in images:
        label = table.get(name)
        if label is None:
            raise ValueError(f"{path}: {LABELS_FILE} has no label for image {name}, and "
                             f"classes are read from it: {LABEL_REMEDY}")
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            vector = (" (a vector: stylegan2-ada's conditioning labels, no class)"
                      if isinstance(label, list) else "")
            raise ValueError(f"{path}: {LABELS_FILE} label of {name} is {label!r}{vector}; "
                             f"classes are integer labels >= 0: {LABEL_REMEDY}")
        labels.append(label)
    return labels



class ZipEntry:
    """A file or folder inside a zip, with the methods of :class:`pathlib.Path` that the image
    folder scans of :mod:`robustrep.data.folders` call (``name``, ``suffix``, ``iterdir``,
    ``is_dir``, ``is_file``, ``is_symlink``, ``exists``, ``/``, sorting), so that a zip of an
    image folder is read by the folder's own scan. ``member`` is the name inside the zip
    (``""`` for the top); a zip holds no symbolic links to follow (:func:`zip_tree` refuses
    them)."""

    def __init__(self, archive: Path, member: str = "", folder: bool = True) -> None:
        self.archive, self.member = archive, member
        self.children: dict[str, ZipEntry] | None = {} if folder else None

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1] if self.member else self.archive.name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def is_dir(self) -> bool:
        return self.children is not None

    def is_file(self) -> bool:
        return self.children is None

    def is_symlink(self) -> bool:
        return False

    def exists(self) -> bool:
        return True

    def iterdir(self) -> Iterable[ZipEntry]:
        if self.children is None:
            raise NotADirectoryError(f"{self} is a file")
        return iter(list(self.children.values()))

    def __truediv__(self, name: str) -> ZipEntry:
        if self.children is None or name not in self.children:
            raise FileNotFoundError(f"{self}/{name} is not in the zip")
        return self.children[name]

    def __lt__(self, other: ZipEntry) -> bool:  # as Paths sort: part by part
        return self.member.split("/") < other.member.split("/")

    def __str__(self) -> str:
        return f"{self.archive}/{self.member}" if self.member else str(self.archive)

    def __repr__(self) -> str:
        return f"ZipEntry({str(self)!r})"


def zip_tree(path: str | os.PathLike) -> ZipEntry:
    """The zip at ``path`` as a tree of folders and files (:class:`ZipEntry`; folders that only
    member names imply are made too), its top the zip itself. ``__MACOSX/``, the resource forks
    macOS's Finder adds, is left out as the zip's own; hidden names are kept, for the scan to
    skip as it skips hidden files.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: not a zip; a member name that is no plain relative path (``/a.png``,
            ``../a.png``, ``a\\b.png``: extracting it would write elsewhere or rename it); a
            name held twice, or as a file and a folder; a symbolic link member (the zip holds
            the name of its target, not the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"zip not found: expected a file at {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip archive")
    top = ZipEntry(path)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            _add_member(top, info)
    return top


def _add_member(top: ZipEntry, info: zipfile.ZipInfo) -> None:
    """Place member ``info`` in the tree under ``top`` (see :func:`zip_tree`)."""
    name, where = info.filename, f"{top.archive}: member {info.filename!r}"
    parts = name.rstrip("/").split("/")
    if parts[0] == "__MACOSX":
        return
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{where} is not a plain relative path inside the zip; re-create the "
                         f"zip from inside the image folder (cd FOLDER && zip -r ../SRC.zip .)")
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):  # made on Unix
        raise ValueError(f"{where} is a symbolic link (the zip holds its target's name, not "
                         f"the file); re-create the zip with the files themselves (zip -r "
                         f"without -y)")
    folder = top
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        entry = folder.children.get(part)
        is_folder = info.is_dir() or not last
        if entry is None:
            entry = ZipEntry(top.archive, "/".join(parts[:depth + 1]) if is_folder else name,
                             folder=is_folder)
            folder.children[part] = entry
        elif entry.is_file() and not is_folder:
            raise ValueError(f"{where} is held twice; re-create the zip with one of each")
        elif entry.is_dir() != is_folder:
            raise ValueError(f"{top.archive}: {'/'.join(parts[:depth + 1])!r} is both a file "
                             f"and a folder (member {name!r} makes it the other); re-create "
                             f"the zip with one of them")
        folder = entry


class ZipImageDataset(Dataset):
    """The images of a stylegan2-ada dataset zip, as ``(image [C, H, W] in [0, 1], label)``.

    ``classes`` are the class ids ``0..max label`` (stylegan2-ada's ``label_dim``: ids no
    image has are classes too, so labels {0, 7} give 8), ``[0]`` without labels.

    Args:
        path: the zip.
        size: side to resize (shorter side) and centre-crop to; None keeps the stored size
            (the reference requires every image to have it).
        channels: 1 or 3; None keeps the stored mode (greyscale zips give 1 channel).
        verify: read every member now, check its CRC and decode every image (a truncated or
            damaged zip, or a member that is no readable image, raises ValueError naming the
            first bad member); without it such a member raises when it is read.
        one_size: read every member's header now and refuse a zip whose images differ in
            size, naming two (the format holds one size; the programs' ``zip`` dataset sets
            it). Without it a member whose size differs from the first's raises when it is read
            with ``size`` None, and is resized to ``size`` otherwise (a zip read as a folder,
            as ``gan fid`` reads one).
        labels: read ``dataset.json``'s labels (refusing labels that are no integer class);
            False for a program that uses none: it is not read and every label is 0 (as
            stylegan2-ada's unconditional reader, which reads any ``dataset.json``).
    """

    def __init__(self, path: str | os.PathLike, size: int | None = None,
                 channels: int | None = None, verify: bool = False,
                 one_size: bool = False, labels: bool = True) -> None:
        if size is not None:
            check_positive("size", size, integer=True)
        if channels is not None:
            check_choice("channels", channels, (1, 3))
        self.path = Path(path)
        self.names, read = zip_members(self.path, labels)
        self.targets = read if read is not None else [0] * len(self.names)
        self.has_labels = read is not None
        self.size = size
        self._archive: zipfile.ZipFile | None = None
        if verify:
            self._verify(check_channels=channels is None)
        # (member, (width, height)) of the size the images have; the first's until read
        self._sized = self._one_size() if one_size else None
        if channels is None:
            channels = _stored_channels(self._open(0))
        self.channels = channels
        self.classes = list(range(max(self.targets) + 1))  # ids, as label_dim: unused too
        # the image-folder transform: resize the shorter side, centre-crop (no-op at native size)
        self._transform = image_transform(size, channels)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def stored_size(self) -> tuple[int, int]:
        """``(width, height)`` of the stored images: the zip's resolution, which every image
        shares with ``one_size`` (checked at construction); else the first image's."""
        if self._sized is None:
            self._sized = (self.names[0], self._open(0).size)
        return self._sized[1]

    def _one_size(self) -> tuple[str, tuple[int, int]] | None:
        """The first member and the size every image has (:func:`member_sizes`), or None when
        none opens. Two sizes are refused naming two members: a mixed zip would be resized
        without a word, or fail to batch mid-run."""
        first: tuple[str, tuple[int, int]] | None = None
        for name, size in member_sizes(self.path, self.names):
            if first is None:
                first = (name, size)
            elif size != first[1]:
                raise ValueError(self._mixed_sizes(name, size, *first))
        return first

    def _mixed_sizes(self, name: str, size: tuple[int, int], first: str,
                     first_size: tuple[int, int]) -> str:
        (w, h), (w0, h0) = size, first_size
        return (f"{self.path}: member {name} is {w}x{h} but {first} is {w0}x{h0}; a dataset zip "
                f"holds images of one size (as stylegan2-ada requires): re-create it at one "
                f"resolution (robustrep data pack --resolution)")

    def _verify(self, check_channels: bool = False) -> None:
        try:
            archive = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as err:
            raise ValueError(f"{self.path} cannot be read as a zip ({err})") from None
        with archive:
            # every member's CRC, as ZipFile.testzip checks them, but naming the member whose
            # stream does not decompress (testzip lets zlib's or lzma's error through); the
            # images' below, as they are read to be decoded (read once, not twice)
            images = set(self.names)
            for info in archive.infolist():
                if info.filename in images or info.flag_bits & 0x1 or \
                        info.compress_type not in _readable_methods():
                    continue  # unreadable ones are no images (refused at construction)
                read_member(self.path, archive, info.filename, keep=False)
            # every image decoded once now (as image_folder's verify), not when a batch does
            first: int | None = None
            for name in self.names:
                data = io.BytesIO(read_member(self.path, archive, name))
                reason = image_problem(data)
                if reason is not None:
                    raise UnreadableImageError(self._unreadable(name, reason))
                if check_channels:  # channels read from the first: the rest must agree
                    data.seek(0)
                    first = self._check_channels(name, data, first)

    def _check_channels(self, name: str, data: BinaryIO, first: int | None) -> int:
        """The stored channels of member ``name`` (``data``), refused when they differ from the
        ``first`` member's: a colour image would be read as grey, or grey as colour, by a
        guess (stylegan2-ada requires one shape throughout)."""

        with open_image(data) as image:
            channels = _stored_channels(image)
        if first is not None and channels != first:
            kinds = {1: "greyscale", 3: "colour"}
            raise ValueError(f"{self.path}: member {name} is {kinds[channels]} but "
                             f"{self.names[0]} is {kinds[first]}, and the channels are read "
                             f"from the first (a zip holds one kind, as stylegan2-ada "
                             f"requires): read all as colour with channels=3 (--channels 3)")
        return channels

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers each open their own handle (a ZipFile does not survive a fork)
        return {**self.__dict__, "_archive": None}

    def _unreadable(self, member: str, reason: Any) -> str:
        if isinstance(reason, Exception):
            reason = decode_error(reason)
        return (f"{self.path}: member {member} is not a readable image ({reason}); remove it "
                f"from the zip or re-create the zip")

    def _open(self, index: int):
        """Member ``index`` opened (its header read), not decoded: decoding would drop the
        layout that :func:`check_depth` reads."""

        if self._archive is None:
            self._archive = zipfile.ZipFile(self.path)
        data = read_member(self.path, self._archive, self.names[index])
        try:
            return open_image(io.BytesIO(data))
        except Exception as err:  # an empty member, or one that is no image at all
            raise UnreadableImageError(self._unreadable(self.names[index], err)) from None

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self._open(index)
        if self.size is None and image.size != self.stored_size:  # would not batch with the rest
            raise UnreadableImageError(self._mixed_sizes(self.names[index], image.size,
                                                         *self._sized))
        where = f"{self.path}: member {self.names[index]}"
        check_depth(image, where)  # outside the try below: already a one-line refusal
        try:
            image = convert_image(image, self.channels, where)  # decodes the image
        except UnreadableImageError:  # a transparent image: already one line naming the member
            raise
        except Exception as err:  # a truncated or corrupt image; PIL raises many types
            raise UnreadableImageError(self._unreadable(self.names[index], err)) from None
        return self._transform(image), self.targets[index]


def _stored_channels(image: Any) -> int:
    """1 for a greyscale image (any bit depth), 3 otherwise."""
    return 1 if image.mode in ("L", "1", *WIDE_MODES) else 3


class XFlip(Dataset):
    """``dataset`` followed by its left-right mirror image (stylegan2-ada ``--mirror=1``)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return 2 * len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        n = len(self.dataset)
        if not -2 * n <= index < 2 * n:
            raise IndexError(f"index {index} out of range for {2 * n} samples")
        index %= 2 * n
        image, label = self.dataset[index % n]
        return (image.flip(-1) if index >= n else image), label


def member_sizes(path: str | os.PathLike, names: Iterable[str]
                 ) -> Iterator[tuple[str, tuple[int, int]]]:
    """``(member, (width, height))`` of each of ``names`` in the zip ``path``, read from the
    member's header (PIL reads no pixels: about 0.13 ms a member, 0.65 s for 5,000 small
    PNGs); a member that is no image is left out (verify names it, or the batch that reads
    it)."""

    with zipfile.ZipFile(path) as archive:
        for name in names:
            try:
                with archive.open(name) as f, open_image(f) as image:
                    size = image.size
            except Exception:  # noqa: BLE001 - no image: named elsewhere
                continue
            yield name, size
