"""Checks on where a command writes, made before any work, leaving nothing behind: a folder or
file that can be written (:func:`check_writable`, :func:`check_output_file`), a file robustrep
is about to write over that is its own record (:func:`check_replaceable`), and a default output
folder claimed for one call alone (:func:`claim_new_folder`). A wrong ``--out`` thus fails in
one line before a model is loaded or a folder made; they know nothing of a run folder, so every
program's outputs (run folders, eval folders, files) are checked alike.
"""

from __future__ import annotations

import errno
import json
import tempfile
from pathlib import Path

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.runfiles import existing_parent, too_long


def claim_new_folder(path: str | Path) -> Path:
    """Make the folder ``path`` (a default output folder, ``runs/<task>/<model>-<time>``) for
    this call alone, or ``path-2``, ``path-3``, ... when another call has made it: two calls
    started in the same second shared one folder, and the later one replaced the earlier one's
    results (of other weights), both exiting 0."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder, n = path, 1
    while True:
        try:
            folder.mkdir()  # atomic: one call makes it
            return folder
        except FileExistsError:
            n += 1
            folder = path.with_name(f"{path.name}-{n}")


def check_writable(path: str | Path, what: str = "output folder") -> Path:
    """Check that ``path`` (a folder, made later if missing) can be written; nothing is left.

    Tries to create a file in ``path`` or, when it does not exist yet, in its nearest existing
    parent (so a wrong ``--out`` fails before any work, without creating folders).
    """
    path = Path(path).expanduser()
    probe, problem = _unwritable(path, what)
    if problem is None:
        return path
    if problem == _A_FILE:
        raise RunFolderError(f"cannot use {what} {path}: {probe} {problem}")
    where = "it" if probe == path else f"it would be made in {probe}, which"
    raise RunFolderError(f"cannot write to {what} {path}: {where} {problem}; choose another "
                         f"folder")


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Check before any work that the file ``path`` can be written (its folder is writable)."""
    path = Path(path).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        raise RunFolderError(too_long(path, what)) from None
    if is_dir:
        raise RunFolderError(f"{what} {path} is a folder; give a file path")
    folder = path.parent
    probe, problem = _unwritable(folder, what, path)
    if problem == _A_FILE:
        raise RunFolderError(f"cannot write {what} {path}: {probe} {problem}")
    if problem is not None:  # was "cannot write to the folder of OUT o/x.zip o (o: ...)"
        where = (f"its folder {folder}" if probe == folder
                 else f"its folder {folder} would be made in {probe}, which")
        raise RunFolderError(f"cannot write {what} {path}: {where} {problem}; choose another "
                             f"folder")
    return path


_A_FILE = "is a file, not a folder"


def _unwritable(folder: Path, what: str, named: Path | None = None) -> tuple[Path, str | None]:
    """Where a file would be made for ``folder`` (it, or its nearest existing parent) and why
    none can be (None: one can), as a phrase to follow that place; a path too long for the
    system is refused naming ``what`` and ``named`` (``folder`` when not given)."""
    try:
        probe = existing_parent(folder)
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        raise RunFolderError(too_long(named or folder, what)) from None
    if probe.exists() and not probe.is_dir():
        return probe, _A_FILE
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        return probe, _refusal(err)
    return probe, None


def _refusal(err: OSError) -> str:
    """Why a folder took no new file, after its name: the system's word alone read as said of
    the folder ("/proc: No such file or directory", of a /proc that is there)."""
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"is not writable ({reason})"
    if err.errno == errno.EROFS:
        return "is on a read-only file system"
    return f"takes no new files (making one there failed: {reason})"


def check_replaceable(path: str | Path, keys: tuple[str, ...], what: str, option: str,
                      companions: tuple[str, ...] = ()) -> None:
    """A file robustrep is about to write over must be the record ``what`` wrote before (a JSON
    object holding ``keys``), never a user's own file of the same name; checked before work.
    ``companions`` (glob patterns) are the other files ``what`` writes beside the record: with
    no record there, such a file is the user's, and refused as well."""
    path = Path(path)
    if not path.exists():
        found = sorted(p for pattern in companions for p in path.parent.glob(pattern))
        if found:
            raise RunFolderError(f"{option} {path.parent} holds "
                                 f"{found[0].relative_to(path.parent)}, which no "
                                 f"{what} wrote there (it has no {path.name}); remove it or "
                                 f"choose another folder ({what} replaces only its own files)")
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # a damaged record of ours is not told from a foreign file
        old = None
    if not (isinstance(old, dict) and set(keys) <= old.keys()):
        raise RunFolderError(f"{option} {path} exists and is not a readable record of {what}; "
                             f"remove it or choose another path ({what} replaces only its own "
                             f"files)")
