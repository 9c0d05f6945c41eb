"""Folders guarded against removal under a running command, and the folders made inside them.

A folder that a command writes into over time (a run folder, an ``--out``) is guarded
(:func:`guard_folder`): removed or moved meanwhile, the next write stops the command with
one line (:class:`FolderGone`) instead of making the folder again holding only the later files.
Every writer asks here before it writes (``runfiles.write_atomic`` through :func:`make_folder`,
``RunDir``'s appends through :func:`check_folder`; both through :func:`folder_gone` when a write
fails), so the guards of this process are kept in this module alone, below the modules that
write files.

This module imports neither torch nor numpy: ``report`` and ``ood bench`` write without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from robustrep.tasks.common.errors import FolderGone


@dataclass(frozen=True)
class _Guard:
    fd: int  # the folder, held open: its inode number is not given to a new folder meanwhile
    ident: tuple[int, int]  # (st_dev, st_ino) when it was guarded
    line: str  # what FolderGone says


_GUARDED: dict[str, _Guard] = {}  # absolute folder -> its guard


def guard_folder(folder: str | Path, line: str) -> None:
    """From now on, every write under ``folder`` (which exists) first checks that it is still
    the folder it was (same device and inode): removed, moved, or replaced by another of the
    same name, the write raises :class:`FolderGone` saying ``line``, and no folder is made
    again. Only the command that made ``folder`` guards it, until :func:`forget_folder`."""
    where = os.path.abspath(folder)
    forget_folder(where)
    # held open: a removed folder's inode would be free for the next folder made, which would
    # then pass for it (a user's `rm -rf RUN; mkdir RUN`)
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    info = os.fstat(fd)
    _GUARDED[where] = _Guard(fd, (info.st_dev, info.st_ino), line)


def forget_folder(folder: str | Path) -> None:
    guard = _GUARDED.pop(os.path.abspath(folder), None)
    if guard is not None:
        os.close(guard.fd)


def _guard_root(path: str | Path) -> str | None:
    """The innermost guarded folder holding ``path`` (or ``path`` itself), or None."""
    where = os.path.abspath(path)
    roots = [r for r in _GUARDED if where == r or where.startswith(r.rstrip(os.sep) + os.sep)]
    return max(roots, key=len, default=None)


def folder_gone(path: str | Path) -> FolderGone | None:
    """The error to raise when the guarded folder holding ``path`` is no longer the one that
    was guarded; None when it still is, or ``path`` is in no guarded folder."""
    root = _guard_root(path)
    if root is None:
        return None
    guard = _GUARDED[root]
    try:
        info = os.stat(root)
    except (FileNotFoundError, NotADirectoryError):
        return FolderGone(guard.line)
    except OSError:  # e.g. a parent made unreadable: not known to be gone; the write says
        return None
    return None if (info.st_dev, info.st_ino) == guard.ident else FolderGone(guard.line)


def check_folder(path: str | Path) -> None:
    """Raise :class:`FolderGone` when the guarded folder holding ``path`` is gone."""
    gone = folder_gone(path)
    if gone is not None:
        raise gone


def make_folder(folder: str | Path) -> None:
    """Make ``folder`` (a file's folder, before writing it). Inside a guarded folder only the
    folders below it are made (a run's samples/, plots/), after checking it is still there;
    elsewhere every missing folder is (an output path the user named)."""
    folder = Path(folder)
    root = _guard_root(folder)
    if root is None:
        folder.mkdir(parents=True, exist_ok=True)
        return
    check_folder(folder)
    level = Path(root)
    try:
        for part in Path(os.path.abspath(folder)).relative_to(root).parts:
            level = level / part
            level.mkdir(exist_ok=True)  # no parents: the guarded folder is never made again
    except FileNotFoundError:
        check_folder(folder)  # removed since it was checked: its line
        raise
