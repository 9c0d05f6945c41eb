"""LSUN scene categories read from their lmdb databases, as distributed.

Source: Yu et al., "LSUN: Construction of a Large-scale Image Dataset using Deep Learning with
Humans in the Loop", arXiv 1506.03365; the databases from https://github.com/fyu/lsun
(``download.py``): ``ROOT/<category>_<split>_lmdb/{data.mdb,lock.mdb}``, one record per image,
key = the image id, value = the encoded image (webp as shipped; jpeg/png after re-encoding).

Read through torchvision's :class:`~torchvision.datasets.LSUN` (class-name checks, the index to
``(database, record)`` mapping, the labels = position of the class in ``classes``) and its
``LSUNClass`` record decoding (``PIL.Image.open(...).convert("RGB")``), with two departures from
``LSUNClass.__init__`` (torchvision 0.17-0.29):

1. **No key cache.** ``LSUNClass`` pickles the key list to ``_cache_<letters of root>`` in the
   *current working directory* and unpickles such a file when one exists. We list the keys from
   the database (cursor order, as ``LSUNClass``) at every construction and write nothing; a
   pickle found in the user's folder is never loaded.
2. **One lmdb environment per process.** ``LSUNClass`` opens it in ``__init__`` and keeps it; an
   lmdb environment must not be used across ``fork``, so DataLoader workers would share it. We
   keep the environments in a per-process table (a forked worker opens its own on first read),
   which also lets copies of a dataset read in one process (lmdb refuses a second open).
3. **Records that are no image are named.** A record PIL cannot decode is a one-line ValueError
   naming the database folder and the record's key, not PIL's error naming neither; records
   are decoded as :func:`robustrep.data.images.convert_image` does (RGB; 16-bit grey scaled,
   float or 32-bit values refused).

``lmdb`` is an optional dependency: ``pip install 'robustrep[lsun]'``.
"""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path
from typing import Any

from torchvision.datasets import LSUN
from torchvision.datasets.lsun import LSUNClass
from torchvision.datasets.vision import VisionDataset

from robustrep.data.images import (UnreadableImageError, check_depth, check_frames,
                                   check_source, convert_image, decode_error, image_transform,
                                   open_image)
from robustrep.data.local import register_dataset, require_size
from robustrep._lists import check_no_empty_item

# the scene categories and splits torchvision's LSUN accepts (CATEGORY_SPLIT, or a split alone)
CATEGORIES = ("bedroom", "bridge", "church_outdoor", "classroom", "conference_room",
              "dining_room", "kitchen", "living_room", "restaurant", "tower")
SPLITS = ("train", "val", "test")
# the README's remedy for the object categories (cat_lmdb, ...), which torchvision's LSUN and
# this reader do not read: stylegan2-ada trains on LSUN Cat exported
OBJECTS_ADVICE = ("LSUN's object categories (cat, car, ...: one <object>_lmdb each, no split) "
                  "are read as images exported to a folder (python data.py export cat_lmdb "
                  "--out_dir DIR, github.com/fyu/lsun), an imagefolder")
INSTALL_HINT = "pip install 'robustrep[lsun]' (or pip install lmdb)"


def _lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise ModuleNotFoundError(f"dataset 'lsun' reads lmdb databases and needs the lmdb "
                                  f"package, which is not installed: {INSTALL_HINT}") from None
    return lmdb


def _open(path: str) -> Any:
    # the options of torchvision's LSUNClass: read-only, no lock file written next to the data
    return _lmdb().open(path, max_readers=1, readonly=True, lock=False, readahead=False,
                        meminit=False)


# lmdb refuses a second open of one database in a process, so readers (and their copies) share
# one environment per path; a forked worker starts a fresh table (the parent's must not be used).
_ENVS: dict[str, Any] = {}
_ENVS_PID = [os.getpid()]


def _shared_env(path: str) -> Any:
    if _ENVS_PID[0] != os.getpid():
        _ENVS.clear()
        _ENVS_PID[0] = os.getpid()
    if path not in _ENVS:
        _ENVS[path] = _open(path)
    return _ENVS[path]


def _check_whole(path: str) -> None:
    """Refuse a database whose ``data.mdb`` is shorter than its pages (an interrupted copy or
    unzip), or that lmdb cannot open: lmdb maps the file, and reading a page past its end kills
    the process with SIGBUS ("Bus error", nothing said). The pages end at (last page + 1) x
    page size, both read from the meta pages at the file's start."""
    data, lmdb = Path(path) / "data.mdb", _lmdb()
    try:
        env = _shared_env(path)
        need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    except lmdb.Error as err:
        raise ValueError(f"LSUN database {data} cannot be opened by lmdb ({err}); copy or unzip "
                         f"it again") from None
    have = data.stat().st_size
    if have < need:
        _ENVS.pop(path).close()  # a copy made whole later is opened afresh
        raise ValueError(f"LSUN database {data} is cut short: {have:,} bytes, where its pages "
                         f"need {need:,} (an interrupted copy or unzip); copy or unzip it again")


class LSUNDatabase(LSUNClass):
    """One ``<category>_<split>_lmdb`` database; ``__getitem__`` decodes as torchvision's,
    a record that is no readable image being a one-line ValueError naming the database and
    the key (torchvision's raises PIL's error, naming neither)."""

    def __init__(self, root: str | os.PathLike, transform: Any = None) -> None:
        VisionDataset.__init__(self, str(root), transform=transform)
        if not (Path(root) / "data.mdb").is_file():
            raise FileNotFoundError(f"LSUN database not found: expected {Path(root) / 'data.mdb'} "
                                    f"(the folders of github.com/fyu/lsun download.py, unzipped)")
        _check_whole(self.root)
        with self.env.begin(write=False) as txn:
            self.keys = list(txn.cursor().iternext(keys=True, values=False))
        self.length = len(self.keys)

    @property
    def env(self) -> Any:
        return _shared_env(self.root)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        key = self.keys[index]
        with self.env.begin(write=False) as txn:
            data = txn.get(key)
        where = f"LSUN database {self.root}: record {key.decode('ascii', 'backslashreplace')}"
        fix = "re-create the database from LSUN's files"
        try:
            image = open_image(io.BytesIO(data))
        except Exception as err:  # PIL raises many types (an empty record, or no image)
            raise UnreadableImageError(f"{where} is not a readable image "
                                       f"({decode_error(err)}); {fix}") from None
        check_depth(image, where)  # outside the try below: already one-line refusals
        check_frames(image, where)
        try:
            image = convert_image(image, 3, where)  # decodes it; RGB, as torchvision's
        except UnreadableImageError:  # a refusal (transparency) naming the record: complete
            raise
        except Exception as err:  # a truncated or corrupt image
            raise UnreadableImageError(f"{where} is not a readable image "
                                       f"({decode_error(err)}); {fix}") from None
        if self.transform is not None:
            image = self.transform(image)
        target = None if self.target_transform is None else self.target_transform(None)
        return image, target


class LSUNDatabases(LSUN):
    """torchvision's ``LSUN`` over :class:`LSUNDatabase` readers (no cache file, fork-safe)."""

    def __init__(self, root: str | os.PathLike, classes: str | list[str] = "train",
                 transform: Any = None) -> None:
        VisionDataset.__init__(self, str(root), transform=transform)
        self.classes = self._verify_classes(classes)
        self.dbs = [LSUNDatabase(os.path.join(self.root, f"{c}_lmdb"), transform)
                    for c in self.classes]
        self.indices = list(itertools.accumulate(len(db) for db in self.dbs))
        self.length = self.indices[-1]

    def _verify_classes(self, classes: str | list[str]) -> list[str]:
        """torchvision's check, its refusal of a name that is no scene database followed by
        the way to read an object category."""
        try:
            return super()._verify_classes(classes)
        except ValueError as err:
            raise ValueError(f"{err} {OBJECTS_ADVICE}") from None


def parse_classes(classes: str | list[str], train: bool | None = None) -> str | list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (a lone ``train``/``val``/``test`` stays a split name).

    With ``train=False`` the ``_train`` databases are swapped for their ``_val`` twins (LSUN's
    held-out split), so one ``--lsun-classes`` serves a program's train and test sets.
    """
    check_no_empty_item("lsun classes", classes, "database names separated by commas, like "
                        "church_outdoor_train,bedroom_train")
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
    if not names or not all(isinstance(c, str) and c for c in names):
        raise ValueError(f"lsun classes must be non-empty names like church_outdoor_train, "
                         f"got {classes!r}")
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:  # one database under two labels
        raise ValueError(f"lsun classes name {', '.join(twice)} twice; its images would be read "
                         f"twice, under two labels")
    if train is False:
        names = [c[: -len("_train")] + "_val" if c.endswith("_train") else c for c in names]
        names = ["val" if c == "train" else c for c in names]
    return names[0] if len(names) == 1 and names[0] in SPLITS else names


def lsun(root: str | os.PathLike, classes: str | list[str], size: int, channels: int = 3,
         train: bool | None = None) -> LSUNDatabases:
    """LSUN databases under ``root``, resized on the shorter side to ``size`` and centre-cropped.

    Args:
        root: the folder holding ``<class>_lmdb`` folders.
        classes: ``church_outdoor_train`` or several, comma-separated or as a list (label = the
            position in this list), or one of ``train``/``val``/``test`` for every category.
        size: output side length.
        channels: 3 (RGB) or 1 (greyscale).
        train: False reads the ``_val`` twin of every ``_train`` class; None or True as given.
    """
    root = check_source(root, size, channels, size_required=True)
    if not root.is_dir():
        raise FileNotFoundError(f"LSUN folder not found: expected a directory at {root} holding "
                                f"<category>_<split>_lmdb folders (download is off)")
    names = parse_classes(classes, train)
    _lmdb()  # the missing package is the first thing to report
    dataset = LSUNDatabases(root, names, transform=image_transform(size, channels))
    if len(dataset) == 0:
        raise ValueError(f"LSUN databases {dataset.classes} under {root} hold no images")
    return dataset


@register_dataset("lsun")
def _lsun(root, train, size, channels, classes=None, **kwargs):
    if classes is None:
        raise ValueError("dataset 'lsun' needs classes, the databases to read (e.g. "
                         "church_outdoor_train; comma-separated for several)")
    return lsun(root, classes, require_size("lsun", size), 3 if channels is None else channels,
                train=train, **kwargs)
