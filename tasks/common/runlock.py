"""One run per folder: the lock a training run holds on ``RUN/.lock``, and a command's on its
output folder.

A training run (fresh or resumed) holds an exclusive ``flock`` on ``RUN/.lock`` for its whole
life, so a second run into the same folder is refused with a one-line :class:`RunFolderError`
naming the pid and host in the lock file. The kernel drops the lock when its process ends,
however it ends (``kill -9`` included), so a stale lock file is simply taken over. On taking the
lock, temporary files of interrupted checkpoint saves are deleted (``RunDir.lock``).

A command writing into an output folder (``ood score``, ``classify eval``) waits for the same
lock instead (:func:`output_lock`). The lock needs no :class:`RunDir`, so it sits below
rundir.py (whose ``RunDir.lock`` takes it) and runopen.py (whose checks before any work refuse
a lock file in the way with the lock's own lines: :func:`in_use`, :func:`foreign_lock`,
:func:`not_a_lock`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import stat
import sys
from pathlib import Path
from typing import Any, Callable

from robustrep.tasks.common.checkpoint import remove_stale_tmp
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.folder_guard import forget_folder, guard_folder

LOCK_FILE = ".lock"


def in_use(folder: Path, holder: str) -> RunFolderError:
    return RunFolderError(f"{folder} is in use by another run ({holder}); wait for it to finish "
                          f"or choose another --out")


def foreign_lock(path: Path) -> RunFolderError:
    return RunFolderError(f"{path} exists and is no lock robustrep wrote (those hold 'pid N on "
                          f"HOST'); remove it or choose another --out")


def not_a_lock(path: Path) -> RunFolderError:
    """A folder (or other non-file) named ``.lock`` where robustrep keeps its lock file: was
    "cannot create the lock file RUN/.lock: Is a directory", with nothing to do about it."""
    kind = "a folder" if path.is_dir() else "not a file"
    return RunFolderError(f"{path} is {kind}, where robustrep keeps its lock file (a file "
                          f"holding 'pid N on HOST'); it is not robustrep's: move it away or "
                          f"choose another --out")


def is_lock_record(text: bytes) -> bool:
    """Whether a lock file holds what :class:`RunLock` writes (or nothing: a new one)."""
    return not text.strip() or re.fullmatch(rb"pid \d+ on \S+\s*", text) is not None


class RunLock:
    """An exclusive, non-blocking ``flock`` on one file; the file records ``pid host``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.on_release: list[Callable[[], None]] = []  # run while the lock is still held

    def acquire(self, wait: bool = False) -> "RunLock":
        """Take the lock, or refuse in one line while another process holds it; ``wait``: wait
        for it instead (a short write that another command may be making)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            if err.errno == errno.EISDIR:
                raise not_a_lock(self.path) from None
            raise RunFolderError(f"cannot create the lock file {self.path}: "
                                 f"{err.strerror or err}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device of that name
            os.close(fd)
            raise not_a_lock(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunFolderError(f"cannot lock {self.path}: {err.strerror or err}") from None
            raise in_use(self.path.parent,
                         self.path.read_text().strip() or "another process") from None
        if not is_lock_record(os.pread(fd, 4096, 0)):
            os.close(fd)  # a file of the user's that happens to be named .lock
            raise foreign_lock(self.path)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        callbacks, self.on_release = self.on_release, []
        try:
            for callback in callbacks:
                callback()
        finally:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> "RunLock":
        return self if self.fd is not None else self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def output_lock(folder: str | Path) -> RunLock:
    """The lock of a command's output folder (``ood score``, ``classify eval``), waited for: two
    calls into one folder write one after the other, and under it the hidden temp files of a
    call killed mid-write (:func:`runfiles.write_atomic`) are removed, as a run's are on
    :meth:`RunDir.lock` (no other call can be writing them then). A wait is said on stderr."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    holder = lock_holder(folder)
    if holder is not None:
        print(f"note: waiting for {folder}, held by {holder}, to write there", file=sys.stderr,
              flush=True)
    held = RunLock(folder / LOCK_FILE).acquire(wait=True)
    remove_stale_tmp(folder)
    guard_folder(folder, f"{folder} was removed or moved while this command was writing there; "
                         f"nothing more is written there; run the command again")
    held.on_release.append(lambda: forget_folder(folder))
    return held


def lock_holder(folder: str | Path) -> str | None:
    """Who holds ``folder``'s lock now (its record, ``pid N on HOST``), or None when nobody
    does (or the folder has no lock file)."""
    path = Path(folder).expanduser() / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_not_training(folder: str | Path, what: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a run in progress: the command's
    writes would wait without a word for the run to end (its lock), the work done meanwhile."""
    folder = Path(folder).expanduser()
    holder = lock_holder(folder)
    if holder is not None and (folder / "config.json").is_file():
        raise RunFolderError(f"{what} {folder} is the folder of a run in progress ({holder}); "
                             f"give {what} another folder, or run this once the run has ended")

