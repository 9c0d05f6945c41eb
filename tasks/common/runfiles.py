"""The files of a run folder, written atomically and read back through one typed reader.

Writing: every JSON (``config.json``, ``results.json``, ``report.json``, ``finished.json``) and
whole-file text output goes through :func:`write_text_atomic`: a temporary file in the same
folder, ``fsync``, then ``os.replace``, so a process killed mid-write leaves the old file or
the new one, never half of one. ``metrics.jsonl`` is appended line by line; a kill during an
append can leave a last line without its end, which :func:`read_jsonl` drops (and says so).

A folder that a command writes into over time (a run folder, an ``--out``) is guarded
(:func:`guard_folder`): removed or moved meanwhile, the next write stops the command with
one line (:class:`FolderGone`) instead of making the folder again holding only the later files.
A killed writer's temporary file (``.NAME.XXXXXXXX.tmp``) is removed by the next command
writing NAME once no process holds it (:func:`remove_abandoned_tmp`).

Reading: a damaged file is one :class:`RunFolderError` naming it (not a JSON parser message
that names no file). :func:`read_run` gives every program's run in one schema,
:class:`RunSummary`, whatever program wrote it and whichever names an older version used:

* ``step`` — the step of a record; ``train_s`` — training seconds so far, without evaluation
  (``gan`` wrote ``train_s`` from the start; ``classify`` runs written before it did have only
  ``time``, the wall-clock seconds of :meth:`RunDir.log`, which is read in its place);
* a run is **finished** when ``finished.json`` (written last, atomically, after the final
  checkpoint and evaluation) is there; runs written before the marker existed count as finished
  when their last record reached the configured ``steps`` and carries an evaluation.

This module imports neither torch nor numpy: ``report`` and ``ood bench`` read runs without them.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from robustrep.tasks.common.errors import FolderGone, RunFolderError, WriteFailed

FINISHED = "finished.json"
TMP_SUFFIX = ".tmp"  # the suffix checkpoint.remove_stale_tmp cleans up when a run is locked

# What a record's training time was called: the current name first, then older ones.
TRAIN_SECONDS_KEYS = ("train_s", "time")
# Keys of a record that are bookkeeping, not metrics.
NOT_METRICS = ("step", "time", "train_s", "kimg", "event", "term")


_OPENED: list[Path] = []  # the run folders runopen.open_run locked in this process, in order


def note_opened(path: Path) -> None:
    _OPENED.append(Path(path))


def opened_runs() -> list[Path]:
    """The run folders ``runopen.open_run`` locked in this process, in order: the line of a
    stopped trainer names the last one's checkpoint (``tasks.common.cli.stopped_line``); kept
    here, without torch, for the error boundary of every program."""
    return list(_OPENED)


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


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write ``path`` through ``write(handle)`` into a temporary file in the same folder, then
    rename it into place: a crash or a full disk never leaves a truncated file at ``path``.
    A guarded folder (:func:`guard_folder`) removed or moved meanwhile raises FolderGone."""
    path = Path(path)
    try:
        make_folder(path.parent)
        fd, tmp = temp_beside(path)
    except OSError as err:
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
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        err = _os_error(exc) if isinstance(exc, Exception) else None  # Ctrl-C stays itself
        if err is None:
            raise
        gone = folder_gone(path)
        if gone is not None:
            raise gone from None
        # disk full, quota, folder removed: the old file stays in place
        advice = (f"its folder {path.parent} was removed or moved while it was written"
                  if not path.parent.is_dir() else _advice(path, _remedy(err)))
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise WriteFailed(f"cannot write {path}: {err.strerror or err}; {advice} "
                          f"({kept})") from None
    return path


def _advice(path: Path, otherwise: str) -> str:
    """What to do about a file that cannot be written: ``otherwise`` for an output folder's,
    the cache's own advice for robustrep's cache (the user chose no folder for it)."""
    from robustrep.tasks.common.download import cache_advice  # it imports this module
    return cache_advice(path) or otherwise


_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _remedy(err: OSError) -> str:
    """What to do about a file that failed half-way, by its error: "free space" was the advice
    for a file system remounted read-only or a permission taken away while the run trained."""
    if err.errno in _NOT_ALLOWED:
        return "make the folder writable or choose another output folder"
    if err.errno in _NO_ROOM:
        return "free space or choose another output folder"
    return "check the disk or choose another output folder"


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or the one a writer wrapped. ``torch.save`` meets a
    full disk as ``OSError`` and then raises its zip writer's ``RuntimeError("unexpected
    pos ...")`` while closing, the OSError only as its context."""
    if not isinstance(exc, (OSError, RuntimeError)):  # e.g. an image the writer could not
        return None  # read, its OSError as context: the caller's own error, not this file's
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
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


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


RESTORE = "restore it or run again into another folder"


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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def train_seconds(record: dict[str, Any], key: str | None = None) -> float | None:
    """A record's training seconds: ``key``, or the first of the current and older names."""
    for name in (key,) if key else TRAIN_SECONDS_KEYS:
        if _number(record.get(name)):
            return float(record[name])
    return None


def clock_key(records: list[dict[str, Any]]) -> str:
    """The name a run's training time is logged under (``time`` only in older classify runs,
    whose evaluation records would otherwise mix wall-clock into ``train_s``)."""
    return next((k for k in TRAIN_SECONDS_KEYS if any(_number(r.get(k)) for r in records)),
                TRAIN_SECONDS_KEYS[0])


@dataclass
class RunSummary:
    """One run of any program, in one schema (see the module docstring)."""

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    finished: bool = False

    @property
    def steps(self) -> int:
        """The last step logged (0 before the first log)."""
        return max((int(r["step"]) for r in self.records if isinstance(r.get("step"), int)),
                   default=0)

    @property
    def train_seconds(self) -> float | None:
        key = clock_key(self.records)
        times = [t for t in (train_seconds(r, key) for r in self.records) if t is not None]
        return times[-1] if times else None

    @property
    def step_seconds(self) -> float | None:
        """Training seconds per step between the first and the last timed record."""
        key = clock_key(self.records)
        timed = [(r["step"], train_seconds(r, key)) for r in self.records
                 if isinstance(r.get("step"), int) and train_seconds(r, key) is not None]
        if len(timed) < 2 or timed[-1][0] <= timed[0][0]:
            return None
        return (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])

    def last(self, *keys: str) -> dict[str, Any]:
        """The last record holding any of ``keys`` (the final evaluation), or ``{}``."""
        return next((r for r in reversed(self.records) if any(k in r for k in keys)), {})

    def curve(self, key: str) -> list[tuple[int, int, float]]:
        """``(step, images seen, value)`` of every record holding ``key`` and ``kimg`` (a GAN
        run's evaluations), in step order; a step recorded twice keeps its last record."""
        by_step = {r["step"]: (r["step"], round(r["kimg"] * 1000), float(r[key]))
                   for r in self.records if isinstance(r.get("step"), int)
                   and _number(r.get("kimg")) and _number(r.get(key))}
        return [by_step[s] for s in sorted(by_step)]

    def metrics(self, *keys: str) -> dict[str, float]:
        """The numeric ``keys`` of the last record that holds any of them."""
        final = self.last(*keys)
        return {k: final[k] for k in keys if _number(final.get(k))}


def read_run(path: str | Path, eval_keys: tuple[str, ...] = (),
             advice: Callable[[Path], str] | None = None) -> RunSummary:
    """Read run folder ``path``: its config, its records and whether it finished.

    ``eval_keys`` are the metrics of a final evaluation, used only to tell whether a run from
    before ``finished.json`` existed finished. ``advice(file)`` ends the line of a damaged
    ``config.json`` or ``finished.json`` (default: :data:`RESTORE`).
    """
    path = Path(path)
    advice = advice or (lambda file: RESTORE)
    # "not a run folder" only when it is missing: a damaged one's folder is a run's
    missing = "" if (path / "config.json").exists() else "; it is not a robustrep run folder"
    config = read_json(path / "config.json", dict, missing, advice(path / "config.json"))
    lines = read_jsonl(path / "metrics.jsonl")
    run = RunSummary(path, config, lines.records, lines.dropped)
    if (path / FINISHED).is_file():
        # a damaged marker is named, not trusted
        read_json(path / FINISHED, dict, advice=advice(path / FINISHED))
        run.finished = True
    elif eval_keys:  # a run from before the marker: the last step, evaluated
        steps = config.get("steps")
        final = run.last(*eval_keys)
        run.finished = isinstance(steps, int) and final.get("step") == steps
    return run


# the run folders whose finished.json this process wrote (or, a torchrun process but the
# first, saw written), in order: the error boundary asks whether its command's run finished
# (tasks.common.cli.finished_run). Not finished.json on disk: a resume with a larger --steps
# finds the old one there until runopen.resumed removes it.
_FINISHED: list[Path] = []


def mark_finished(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``finished.json`` (the last write of a run): what the run ended with."""
    written = write_json(Path(path) / FINISHED, record)
    note_finished(path)  # only once it is on disk for good
    return written


def note_finished(path: str | Path) -> None:
    """Record that run ``path``'s ``finished.json`` is on disk: written by this process, or, under
    torchrun, by process 0 (the others note it after a barrier that follows the write)."""
    _FINISHED.append(Path(path))


def finished_runs() -> list[Path]:
    """The run folders whose ``finished.json`` this process wrote or saw written, in order (as
    :func:`opened_runs`: a command looks at those after the ones there when it began)."""
    return list(_FINISHED)


def unmark_finished(path: str | Path) -> None:
    """A run that trains again (resumed, or restarted with the same config) is not finished."""
    (Path(path) / FINISHED).unlink(missing_ok=True)


# The record each kind of robustrep folder keeps, and what the folder is: one kind per folder,
# as one run per folder. ood score, ood bench and report wrote their files into any of them (a
# classify run's folder got results.json beside its config.json, or a bench's runs/ and tables).
FOLDER_RECORDS = {"config.json": "the folder of a robustrep run",
                  "results.json": "the folder of an ood score",
                  "bench.json": "the folder of an ood bench",
                  "report.json": "the folder of a report (robustrep report or classify eval)"}


def check_own_kind(folder: Path, own: str, option: str, program: str, accepted: str) -> None:
    """Refuse ``folder`` when it holds the record of another kind of folder than ``program``'s
    (``own``: its record's name), before any work; ``accepted`` says which folders it takes."""
    folder = Path(folder).expanduser()
    found = next((name for name in FOLDER_RECORDS if name != own and (folder / name).is_file()),
                 None)
    if found is not None:
        raise RunFolderError(f"{option} {folder} is {FOLDER_RECORDS[found]} (it holds {found}); "
                             f"{program} writes only into a folder of its own: {accepted}")


def setting_changes(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """``"key old -> new"`` for each of ``keys`` in which two records of one command differ (one
    kept in a folder, one about to replace or join it). A run folder, or a model's weights file
    (given without a run; "pretrained" is no file), is compared by where it is: ``RUN``,
    ``./RUN`` and its absolute path are one run."""
    def key(name: str, record: dict[str, Any]) -> Any:
        value = record.get(name)
        path = name == "run" or (name == "weights" and record.get("run") is None
                                 and value != "pretrained")
        return os.path.abspath(value) if path and isinstance(value, str) else value
    return [f"{k} {old[k]!r} -> {new.get(k)!r}" for k in keys
            if k in old and key(k, old) != key(k, new)]


def run_holding(folder: Path) -> Path | None:
    """The run folder (one holding config.json) that ``folder`` is, or lies in."""
    return next((f for f in (folder, *folder.parents) if (f / "config.json").is_file()), None)


def check_same_run(old: dict[str, Any] | None, out: Path, run: str | Path | None,
                   noun: str, model: str | None = None, folder: bool = True) -> None:
    """A record ``old`` of an earlier evaluation in ``out`` (``--out``: a folder, or the record's
    file when not ``folder``) is replaced, or joined, only when it scored ``run``: ``gan eval A
    --out B/eval.json``, ``classify eval A --out B/eval`` and ``ood score A --out B/ood``
    replaced run B's results. A record of a model from elsewhere (``run`` null) is the
    command's to judge (its note says what differs). A record inside RUN is RUN's whatever
    path it names (a run copied or moved keeps its records); one elsewhere naming no run, or a
    relative path (an older robustrep recorded RUN as typed, relative to a working folder it
    did not record), may be any run's, and is refused too. ``noun``: what the record is ("an
    eval record", "results"); ``model``: what a call without ``run`` scores, as its flag names
    it (``--model resnet18``); the line names ``run`` resolved."""
    if old is None or ("run" in old and old["run"] is None):  # none, or a --model's
        return
    scored = old.get("run")
    named = isinstance(scored, str) and Path(scored).is_absolute()
    holder = run_holding((out if folder else out.parent).resolve())
    here = Path(run).resolve() if run is not None else None
    # a relative path (an older record) that names this run from here: the same command again
    same = isinstance(scored, str) and here is not None and Path(scored).resolve() == here
    if here is not None and (holder == here or same):
        return
    how = ("written without its run" if not isinstance(scored, str) else
           f"written with its run relative to an unrecorded folder, {scored!r}")
    the = "the " + noun.removeprefix("an ").removeprefix("a ")
    whose = (f"{the} of another run, {scored}" if named else
             f"{noun} of the run {holder} ({how}: an older robustrep's)" if holder is not None
             else f"{noun} {how} (an older robustrep's), possibly another run's")
    remove = (f"another folder, or remove {out} to replace its files" if folder else
              "another path, or remove the file to replace it")
    subject = str(here) if here is not None else model
    raise RunFolderError(f"--out {out} holds {whose}; give --out {remove} with {subject}'s")


def as_own_run(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A run's earlier record (not a --model's, run null) that :func:`check_same_run` let
    through as this run's (copied or moved with it, or naming it as an older robustrep did, or
    not at all), naming this run: its settings are compared as the same run's."""
    if isinstance(new.get("run"), str) and old.get("run", "") is not None:
        return {**old, "run": new["run"]}
    return old
