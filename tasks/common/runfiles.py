"""Files robustrep writes, written atomically, and read back with one error naming a damaged one.

Writing: every JSON (``config.json``, ``results.json``, ``report.json``, ``finished.json``) and
whole-file text output goes through :func:`write_text_atomic`: a temporary file in the same
folder, ``fsync``, then ``os.replace``, so a process killed mid-write leaves the old file or
the new one, never half of one. ``metrics.jsonl`` is appended line by line; a kill during an
append can leave a last line without its end, which :func:`read_jsonl` drops (and says so).

A write into a guarded folder (``folder_guard.guard_folder``) removed or moved meanwhile stops
the command with one line (``errors.FolderGone``) instead of making the folder again holding only
the later files. A failed write removes its temporary file, from its folder moved meanwhile too;
a killed writer's temporary file (``.NAME.XXXXXXXX.tmp``) is removed by the
next command writing NAME once no process holds it (:func:`remove_abandoned_tmp`). A path the
system refuses as too long is worded by :func:`too_long`.

Reading: a damaged file is one :class:`RunFolderError` naming it (not a JSON parser message
that names no file). A whole run is read back through these in ``run_records.read_run``.

This module imports neither torch nor numpy: ``report`` and ``ood bench`` read runs without them.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from robustrep.tasks.common.errors import RunFolderError, WriteFailed
from robustrep.tasks.common.folder_guard import folder_gone, make_folder

TMP_SUFFIX = ".tmp"  # the suffix checkpoint.remove_stale_tmp cleans up when a run is locked


def can_write(folder: Path) -> bool:
    """Whether ``folder`` could be made and written: it, or its nearest existing parent, is a
    folder this user may write (``os.access``, as matplotlib checks its own; False on a
    read-only file system)."""
    try:
        probe = existing_parent(folder.resolve())
        return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
    except (OSError, RuntimeError):
        return False


def existing_parent(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest parent that does (the root at last): where
    a folder not made yet would be made, to check before any work. A path with a name too long
    for the system raises OSError(ENAMETOOLONG) (:func:`too_long` words it)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


NAME_MAX = 255  # bytes in one file or folder name: Linux's file systems, macOS's APFS
PATH_MAX = 4096  # bytes in a path given to the system, its closing NUL included (Linux)


def too_long(path: str | os.PathLike, what: str | None = None) -> str:
    """What to say of a path the system refused as too long (ENAMETOOLONG): ``what`` (the
    option naming it) and the path, its long names shortened, then which limit it passes.
    Said in full it was a screenful of the name, "File name too long", and no limit."""
    text = os.fsdecode(path)
    subject = f"{what} {_shortened(text)}" if what else _shortened(text)
    names = [name for name in text.split(os.sep) if name]
    long = next((name for name in names if len(os.fsencode(name)) > NAME_MAX), None)
    limit = (f"and a file or folder name may have at most {NAME_MAX} bytes (the system's limit); "
             f"give a shorter name")
    if long is not None and long == names[-1]:
        return f"{subject}: its name is {len(os.fsencode(long))} bytes long, {limit}"
    if long is not None:
        return (f"{subject}: the folder name {_shortened(long)} in it is "
                f"{len(os.fsencode(long))} bytes long, {limit}")
    if len(os.fsencode(text)) >= PATH_MAX:
        return (f"{subject}: it is {len(os.fsencode(text))} bytes long, and a path may have at "
                f"most {PATH_MAX - 1} bytes (the system's limit); give a shorter path")
    return (f"{subject}: the system refused it as too long (a file or folder name may have at "
            f"most {NAME_MAX} bytes, a path {PATH_MAX - 1}, links followed); give a shorter path")


def _shortened(path: str, keep: int = 40) -> str:
    """``path`` with each name longer than ``keep`` characters cut to its start and end, and
    the whole cut so too when it is still over three times that (a path of many names)."""
    text = os.sep.join(name if len(name) <= keep else f"{name[:20]}...{name[-12:]}"
                       for name in path.split(os.sep))
    return text if len(text) <= 3 * keep else f"{text[:2 * keep]}...{text[-keep:]}"


def temp_beside(path: Path, suffix: str = TMP_SUFFIX) -> tuple[int, str]:
    """A new hidden file in ``path``'s folder, as ``(fd, name)``, with the mode a plain ``open``
    would give ``path`` (0666 less the umask): ``mkstemp`` makes it 0600, and the rename into
    place would carry that over, hiding a shared run folder's files from the user's group.
    The file is ``flock``-ed while ``fd`` is open: a later command tells a killed writer's file
    (the kernel dropped its lock) from one being written (:func:`remove_abandoned_tmp`)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without flock: the age test alone guards it
        pass
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


# mkstemp's names: prefix, 8 characters of tempfile's alphabet, suffix (temp_beside)
_TMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX))
ABANDONED_AFTER_S = 60.0  # a live writer's file changes far more often than this
# A live writer's file is unlocked only between mkstemp and flock (temp_beside) and between its
# close and its rename (write_atomic): two system calls apart, never seconds.
UNLOCKED_WINDOW_S = 2.0


def tmp_files(folder: str | Path, own: Callable[[str], bool]) -> list[Path]:
    """The temporary files :func:`write_atomic` makes in ``folder`` for the names ``own(name)``
    accepts (``.NAME.XXXXXXXX.tmp``), being written or left by a killed writer."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not there yet: none
        return []
    return [Path(entry.path) for entry in entries
            if (found := _TMP_NAME.fullmatch(entry.name)) and own(found["name"])]


def remove_abandoned_tmp(folder: str | Path, own: Callable[[str], bool],
                         min_age: float = ABANDONED_AFTER_S) -> int:
    """Remove from ``folder`` the temporary files :func:`write_atomic` left for the names
    ``own(name)`` accepts when its process was killed (``kill -9``, a power loss: no clean-up
    ran); returns how many. For commands without a folder lock (``data pack OUT``, ``gan
    sample --outdir``): a file goes only when no process holds its ``flock``, and it has not
    changed for ``min_age`` seconds where the file system's flock says nothing (or for
    :data:`UNLOCKED_WINDOW_S` where it does: a rerun right after a kill found the file too new
    and left it for good beside the OUT it wrote); nothing not of robustrep's pattern is
    touched."""
    return sum(_remove_if_abandoned(str(path), min_age) for path in tmp_files(folder, own))


def _remove_if_abandoned(path: str, min_age: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # a link (never followed), or gone meanwhile
        return False
    try:
        info = os.fstat(fd)
        age = time.time() - info.st_mtime
        if not stat.S_ISREG(info.st_mode) or age < min(min_age, UNLOCKED_WINDOW_S):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False  # its writer is alive and holds it
            seen = False  # no flock here: the age alone tells
        else:
            seen = _flock_seen(path)
        if not seen and age < min_age:
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _flock_seen(path: str) -> bool:
    """Whether the flock this process just took on ``path`` keeps a second open of it out: then
    the flock taken means no other writer holds one. Where flock is emulated by per-process
    locks (NFS) or not kept at all, the second open takes it too, and only the age tells."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
    else:
        return False
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any],
                 replace: bool = True) -> Path:
    """Write ``path`` through ``write(handle)`` into a temporary file in the same folder, then
    rename it into place: a crash or a full disk never leaves a truncated file at ``path``.
    A guarded folder (:func:`folder_guard.guard_folder`) removed or moved meanwhile raises
    FolderGone. ``replace=False``: a new file only (FileExistsError when ``path`` appeared
    meanwhile, a user's file never replaced), where the file system can hard-link."""
    path = Path(path)
    folder = None
    try:
        make_folder(path.parent)
        folder = _hold_folder(path.parent)  # before the temporary file is made in it
        fd, tmp = temp_beside(path)
    except OSError as err:
        _close(folder)
        gone = folder_gone(path)  # removed between the check and the folder's making
        if gone is not None:
            raise gone from None
        advice = _advice(path, "make the folder writable or choose another output folder")
        raise WriteFailed(f"cannot write {path}: {err.strerror or err}; {advice}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _move_into_place(tmp, path, replace)
    except BaseException as exc:
        _remove_temp(tmp, folder)
        stop = _interrupt(exc)
        if stop is not None and stop is not exc:  # the stop line, not a writer's traceback
            raise stop from None
        err = _os_error(exc) if isinstance(exc, Exception) else None  # Ctrl-C stays itself
        if err is None:
            raise
        gone = folder_gone(path)
        if gone is not None:
            raise gone from None
        # disk full, quota, folder removed: the old file stays in place
        advice = (f"its folder {path.parent} was removed or moved while it was written"
                  if not path.parent.is_dir() else _advice(path, _remedy(err)))
        kept = ("the other process's file is kept" if err.errno == errno.EEXIST else
                "the previous file is unchanged" if path.exists() else "nothing was written")
        raise WriteFailed(f"cannot write {path}: {err.strerror or err}; {advice} "
                          f"({kept})") from None
    finally:
        _close(folder)
    return path


def _hold_folder(folder: Path) -> int | None:
    """``folder`` held open (an ``O_PATH`` descriptor where Linux has one: no read permission
    needed), for :func:`_remove_temp`; None where it cannot be opened."""
    try:
        return os.open(folder, os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY))
    except OSError:
        return None


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _remove_temp(tmp: str, folder: int | None) -> None:
    """Remove a failed write's temporary file from the folder it was made in, through that
    folder held open: moved (renamed) meanwhile, its old path ``tmp`` names nothing, and the
    file was left in the moved folder. A removal that fails does not hide the write's error."""
    try:
        if folder is None:
            os.unlink(tmp)
        else:
            os.unlink(os.path.basename(tmp), dir_fd=folder)
    except OSError:
        pass


def _move_into_place(tmp: str, path: Path, replace: bool) -> None:
    """``os.replace``; or, for a new file, a hard link that fails on an existing ``path`` (a
    check before the rename would leave a moment in which a file made there is replaced)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network file systems): check, then rename
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _advice(path: Path, otherwise: str) -> str:
    """What to do about a file that cannot be written: ``otherwise`` for an output folder's,
    the cache's own advice for robustrep's cache (the user chose no folder for it)."""
    from robustrep.tasks.common.download import cache_advice  # it imports this module
    return cache_advice(path) or otherwise


_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _remedy(err: OSError) -> str:
    """What to do about a file that failed half-way, by its error: "free space" was the advice
    for a file system remounted read-only or a permission taken away while the run trained."""
    if err.errno in _NOT_ALLOWED:
        return "make the folder writable or choose another output folder"
    if err.errno in _NO_ROOM:
        return "free space or choose another output folder"
    if err.errno == errno.EEXIST:  # replace=False, and another process made it meanwhile
        return "another process wrote it while this one worked; remove it or choose another path"
    if err.errno == errno.EFBIG:  # one file over a size limit, not a full disk
        return ("raise the file size limit (ulimit -f, or the file system's largest file) or "
                "choose another output folder")
    return "check the disk or choose another output folder"


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or the one a writer wrapped. ``torch.save`` meets a
    full disk as ``OSError`` and then raises its zip writer's ``RuntimeError("unexpected
    pos ...")`` while closing, the OSError only as its context."""
    if not isinstance(exc, (OSError, RuntimeError)):  # e.g. an image the writer could not
        return None  # read, its OSError as context: the caller's own error, not this file's
    return _in_chain(exc, OSError)


def _interrupt(exc: BaseException) -> BaseException | None:
    """The Ctrl-C (or SIGTERM's Stopped) behind ``exc``: itself, or the one a writer wrapped.
    torch's zip writer, stopped inside ``torch.save``, raises ``RuntimeError("unexpected pos
    ...")`` with the KeyboardInterrupt only as its context: re-raised, it was a traceback and
    exit 1 where a stop prints one line and exits 130 or 143."""
    return _in_chain(exc, KeyboardInterrupt)


def _in_chain(exc: BaseException | None, kind: type) -> Any:
    """``exc`` or the first exception of type ``kind`` in its cause/context chain (8 deep)."""
    for _ in range(8):
        if exc is None or isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_csv(path: str | Path, rows: list[dict[str, Any]], fields: list[str]) -> Path:
    """``rows`` as CSV with the header ``fields``, written atomically."""
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, table.getvalue())


def write_json(path: str | Path, obj: Any, strict: bool = False) -> Path:
    """``obj`` as indented JSON (``default=str``), written atomically; ``strict``: every NaN
    and infinity as null (:func:`finite_or_null`), JSON that strict readers accept."""
    if strict:
        obj = finite_or_null(obj)
    return write_text_atomic(path, json.dumps(obj, indent=2, default=str, allow_nan=not strict)
                             + "\n")


def finite_or_null(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON null), inside dicts, lists and tuples
    too: ``json.dumps`` writes them as NaN and Infinity, which strict JSON readers refuse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


RESTORE = "restore it or run again into another folder"


def saved_option(run: str | Path | None, key: str) -> Any:
    """``key`` of a run folder's config.json, or None where it cannot be read (no run, a damaged
    file): for a hint or a choice made before the run is loaded, whose own reading then names
    the folder's problem."""
    try:
        return json.loads((Path(run) / "config.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def read_json(path: str | Path, kind: type = dict, what: str = "",
              advice: str = RESTORE) -> Any:
    """The JSON value in ``path``, which must be a ``kind``; else one error naming the file and
    ending with ``advice`` (what the caller's user can do about it)."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing{what}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunFolderError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}"
                             f"{what}") from None
    except ValueError as err:
        raise RunFolderError(f"{path} is damaged (not JSON: {err}){what}; {advice}") from None
    if not isinstance(value, kind):
        raise RunFolderError(f"{path} holds a JSON {type(value).__name__}, not the "
                             f"{kind.__name__} robustrep writes{what}; {advice}")
    return value


@dataclass
class Lines:
    """What :func:`read_jsonl` read: the complete records, and the damaged lines it dropped."""

    records: list[dict[str, Any]]
    dropped: int = 0
    path: Path | None = None
    damaged: tuple[int, ...] = ()  # numbers of dropped lines before the last: no kill cuts them

    def warning(self) -> str | None:
        if not self.dropped:
            return None
        if self.damaged:
            shown = ", ".join(map(str, self.damaged[:5])) + (", ..." if len(self.damaged) > 5
                                                              else "")
            return (f"{self.path}: dropped {self.dropped} line(s) that are not JSON records, "
                    f"line {shown} among them (the file was changed or damaged after it was "
                    f"written); read {len(self.records)} complete record(s)")
        return (f"{self.path}: dropped {self.dropped} incomplete line(s) (a run killed during "
                f"a write leaves one); read {len(self.records)} complete record(s)")


RECORD_START = '{"step": '  # how every line RunDir.log appends begins


def read_jsonl(path: str | Path) -> Lines:
    """The complete JSON-object lines of ``path`` (a missing file has none).

    A line is complete when it parses as a JSON object; the last line of a killed writer (no
    end, or half a number) does not and is dropped and counted. A file none of whose lines are
    JSON objects is not a robustrep file: one error naming it.
    """
    path = Path(path)
    if not path.is_file():
        return Lines([], 0, path)
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise RunFolderError(f"cannot read {path}: {err.strerror or err}") from None
    records, bad = [], []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            records.append(value)
        else:
            bad.append(number)
    dropped = len(bad)
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    # a run's first record cut by a kill or a power loss is its own, not a foreign file's line
    torn_first = bad == [last] and lines[last - 1].startswith(RECORD_START)
    if dropped and not records and not torn_first:
        raise RunFolderError(f"{path} is not a robustrep metrics file (no line is a JSON "
                             f"record); move it away or choose another folder")
    return Lines(records, dropped, path, tuple(n for n in bad if n != last))
