"""The run folder every program writes.

    RUN/
      config.json        the resolved config (what --dry-run prints)
      metrics.jsonl      one JSON object per line: step, wall-clock seconds, metric values
      checkpoints/       step_*.pt and latest.pt (see checkpoint.py)
      samples/           image grids (PNG)
      plots/             curves and diagrams (PNG)
      finished.json      written last, when training ended (runfiles.py reads runs back)
      resumes.json       one entry per resume: its step and the options it changed, old and new
      .lock              held (``fcntl.flock``) by the one process training into RUN

One run per folder: a training run (fresh or resumed) holds an exclusive ``flock`` on
``RUN/.lock`` for its whole life, so a second run into the same folder is refused with a one-line
:class:`RunFolderError` naming the pid and host in the lock file. The kernel drops the lock when
its process ends, however it ends (``kill -9`` included), so a stale lock file is simply taken
over. On taking the lock, temporary files of interrupted checkpoint saves are deleted.

The ``--log`` sinks (TensorBoard, wandb) opened by :func:`open_run` are closed when the run's
lock is released, which both trainers do in a ``finally``: on a normal end, a user error, a stop
signal, Ctrl-C and divergence alike, before another run may take the folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from robustrep.tasks.common.checkpoint import (LATEST, checkpoint_step, damaged_after,
                                               last_step_checkpoint, latest_checkpoint,
                                               remove_stale_tmp, whole_step_checkpoint)
from robustrep.tasks.common.errors import CheckpointError, RunFolderError, WriteFailed
from robustrep.tasks.common.runfiles import (FINISHED, check_folder, existing_parent, folder_gone,
                                            forget_folder, guard_folder, note_opened, read_json,
                                            read_jsonl, too_long, unmark_finished, write_json,
                                            write_text_atomic)
from robustrep.tasks.common.sinks import check_sinks, make_sinks

LOCK_FILE = ".lock"
RESUMES_FILE = "resumes.json"
# what a run writes beside config.json (which it writes first): in a folder without one, they
# are a user's own
RUN_OUTPUTS = ("metrics.jsonl", FINISHED, "samples", "plots", "checkpoints", "tensorboard",
               "regularizers.json", RESUMES_FILE)


def jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclass
class RunDir:
    path: Path
    started: float = field(default_factory=time.time)
    sinks: list = field(default_factory=list)  # extra metric sinks (tasks.common.sinks)

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    def create(self, subfolders: bool = True) -> "RunDir":
        """The run folder (and, with ``subfolders``, its checkpoints/, samples/, plots/)."""
        check_writable(self.path, "run folder")
        try:
            for sub in (self.path, self.checkpoints, self.samples, self.plots)[
                    :None if subfolders else 1]:
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"cannot create run folder {self.path}: "
                                 f"{err.strerror or err}") from None
        return self

    def lock(self) -> "RunLock":
        """Take the run's exclusive lock (see the module docstring) and clean stale temp files."""
        held = RunLock(self.path / LOCK_FILE).acquire()
        for folder in (self.path, self.checkpoints, self.samples, self.plots):
            remove_stale_tmp(folder)
        return held

    def write_config(self, config: dict[str, Any]) -> None:
        write_text_atomic(self.config_file, json.dumps(jsonable(config), indent=2) + "\n")

    def check_fresh(self, config: dict[str, Any]) -> None:
        """Refuse to start a new run in a folder that already holds a different run's config
        (one that wrote no checkpoint: a folder with one is refused before, for --resume)."""
        if not self.config_file.is_file():
            return
        saved = read_json(self.config_file, dict)  # a damaged one is named, not overwritten
        if saved != json.loads(json.dumps(jsonable(config))):
            raise RunFolderError(f"{self.path} already holds another run, which wrote no "
                                 f"checkpoint (its config.json differs from these options); "
                                 f"start it again with its options, remove the folder, or "
                                 f"choose another --out")

    def read_config(self) -> dict[str, Any]:
        from robustrep.tasks.common.options import check_run_folder
        check_run_folder(self.path, "", "{run}")  # a path that is not there, or a file
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a robustrep run folder: no config.json")
        return read_json(self.config_file, dict)

    def log(self, step: int, **values: Any) -> dict[str, Any]:
        """Append one record to ``metrics.jsonl`` (the source of truth), then to the sinks."""
        record = {"step": step, "time": round(time.time() - self.started, 3), **values}
        _append_line(self.metrics_file, json.dumps(jsonable(record)) + "\n")
        for sink in self.sinks:
            sink.write(jsonable(record))
        return record

    def close_sinks(self) -> None:
        """Close every sink once; one that fails to close is reported on stderr, not raised, so
        that it neither hides the error that ended the run nor keeps the others open."""
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            try:
                sink.close()
            except Exception as err:  # noqa: BLE001 - a logging backend's own failure
                print(f"warning: could not close the {type(sink).__name__} of {self.path}: "
                      f"{type(err).__name__}: {err}", file=sys.stderr)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The complete records; a line cut by a kill is dropped, with a warning on stderr."""
        lines = read_jsonl(self.metrics_file)
        if lines.warning():
            print(f"warning: {lines.warning()}", file=sys.stderr)
        return lines.records

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past ``after_step``: a resumed run rewrites what followed its checkpoint."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        write_text_atomic(self.metrics_file, "".join(json.dumps(r) + "\n" for r in kept))


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` whole or not at all: a full disk cut the record (a buffered write puts
    what fits), and the cut line then sat before the next resumed run's records."""
    data = line.encode("utf-8")
    check_folder(path)  # O_CREAT would start the file in a folder of the same name made since
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as err:
        gone = folder_gone(path)
        if gone is not None:
            raise gone from None
        raise WriteFailed(f"cannot write {path}: {err.strerror or err}") from None
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException as exc:  # Ctrl-C too: the line is kept whole or not at all
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise
            raise WriteFailed(f"cannot write {path}: {exc.strerror or exc}; its earlier "
                              f"records are intact") from None
    finally:
        os.close(fd)


def _in_use(folder: Path, holder: str) -> RunFolderError:
    return RunFolderError(f"{folder} is in use by another run ({holder}); wait for it to finish "
                          f"or choose another --out")


def _foreign_lock(path: Path) -> RunFolderError:
    return RunFolderError(f"{path} exists and is no lock robustrep wrote (those hold 'pid N on "
                          f"HOST'); remove it or choose another --out")


def _not_a_lock(path: Path) -> RunFolderError:
    """A folder (or other non-file) named ``.lock`` where robustrep keeps its lock file: was
    "cannot create the lock file RUN/.lock: Is a directory", with nothing to do about it."""
    kind = "a folder" if path.is_dir() else "not a file"
    return RunFolderError(f"{path} is {kind}, where robustrep keeps its lock file (a file "
                          f"holding 'pid N on HOST'); it is not robustrep's: move it away or "
                          f"choose another --out")


def _lock_record(text: bytes) -> bool:
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
                raise _not_a_lock(self.path) from None
            raise RunFolderError(f"cannot create the lock file {self.path}: "
                                 f"{err.strerror or err}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device of that name
            os.close(fd)
            raise _not_a_lock(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunFolderError(f"cannot lock {self.path}: {err.strerror or err}") from None
            raise _in_use(self.path.parent,
                          self.path.read_text().strip() or "another process") from None
        if not _lock_record(os.pread(fd, 4096, 0)):
            os.close(fd)  # a file of the user's that happens to be named .lock
            raise _foreign_lock(self.path)
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


def check_run_program(saved: dict[str, Any], cls: type, path: str | Path, program: str) -> None:
    """Refuse a run folder written by another program (``classify train --resume GAN_RUN``):
    most of its saved options are not options of ``cls``."""
    import dataclasses
    if not saved:  # `{}`: nothing says which run this was
        raise RunFolderError(f"{Path(path) / 'config.json'} holds no options (an empty JSON "
                             f"object); restore it or run again into another folder")
    names = {f.name for f in dataclasses.fields(cls)}
    foreign = [k for k in saved if k not in names]
    if len(foreign) > len(saved) - len(foreign):
        raise RunFolderError(f"{path} is not a '{program}' run: its config.json holds options "
                             f"of another program ({', '.join(sorted(foreign)[:3])}, ...); "
                             f"give a run folder written by 'robustrep {program} train'")
    _check_saved_plugins(saved, path, "arch" in names)


def _check_saved_plugins(saved: dict[str, Any], path: str | Path, has_arch: bool) -> None:
    """A run trained with a ``--plugin`` method or network family (``arch``) is read only with
    that plugin loaded again (a run folder never names code to import: nothing in it is
    executed)."""
    from robustrep.nets import list_networks
    from robustrep.registry import list_regularizers, split_combination
    known = set(list_regularizers())
    missing = [("regularizer", n) for n in split_combination(saved.get("reg")) if n not in known]
    arch = saved.get("arch")
    if has_arch and isinstance(arch, str) and arch not in list_networks("generator"):
        missing.append(("network family (--arch)", arch))
    if missing:
        what, name = missing[0]
        raise RunFolderError(f"{path} was trained with {what} {name!r}, which no loaded module "
                             f"registers; pass the --plugin MODULE (or .py file) that "
                             f"registered it when the run was trained")


def default_run_path(root: str | Path, task: str, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / task / f"{name}-{stamp}"


# ---------------------------------------------------------------------------------------------
# opening a training run: checks before any work, the folder and its lock, resume's last writes


def check_run_folder(path: str | Path, resume: bool) -> Path | None:
    """Before any work: ``path`` is writable and holds a checkpoint exactly when resuming.

    Returns the checkpoint to resume from (None for a fresh run)."""
    path = check_writable(path, "run folder")
    lock = path / LOCK_FILE
    if lock.is_file() and not _lock_record(lock.read_bytes()[:4096]):  # before any file is made
        raise _foreign_lock(lock)
    if os.path.lexists(lock) and not lock.is_file():
        raise _not_a_lock(lock)
    holder = lock_holder(path)
    if holder is not None:  # a run in progress: "holds a run; continue it with --resume" (that
        raise _in_use(path, holder)  # resume refused too), or "copy step_N.pt to latest.pt"
    latest = latest_checkpoint(path / "checkpoints")
    last = last_step_checkpoint(path / "checkpoints")
    if latest is None and last is not None:  # a kill between a step's file and latest.pt
        hint = _step_file_hint(path, last)
        if resume:
            raise CheckpointError(f"cannot resume {path}: no {LATEST}; {hint}")
        raise RunFolderError(f"{path} holds checkpoints but no {LATEST}; {hint}, or choose "
                             f"another --out")
    if resume and latest is None:
        raise CheckpointError(f"cannot resume {path}: no checkpoint at "
                              f"{path / 'checkpoints' / LATEST}")
    if not resume and latest is not None:
        raise _holds_a_run(path)
    if not (path / "config.json").is_file():
        theirs = next((name for name in RUN_OUTPUTS if _holds_something(path / name)), None)
        if theirs is not None:
            raise RunFolderError(f"{path} holds a {theirs} but no config.json: it is not a "
                                 f"robustrep run (its files would be overwritten); choose "
                                 f"another --out")
    return latest


def _step_file_hint(path: Path, last: Path) -> str:
    """What a run folder without ``latest.pt`` can go on from: its last step file that reads
    whole (a damaged one named here was copied to latest.pt, and the resume refused it again)."""
    whole = whole_step_checkpoint(path / "checkpoints")
    if whole is None:
        return (f"its step files are damaged ({last.name} the last), so it cannot go on: start "
                f"it again after removing {path}")
    which = "the last written" if whole == last else damaged_after(last)
    return (f"{whole} is there, {which}: copy it to {path / 'checkpoints' / LATEST} to resume "
            f"from it (--resume {path})")


def _holds_something(path: Path) -> bool:
    """A file, or a folder with something visible in it (``RunDir.create`` makes empty ones;
    an interrupted save leaves a hidden temporary file, which the lock's holder removes)."""
    return path.is_file() or (path.is_dir() and any(not p.name.startswith(".")
                                                    for p in path.iterdir()))


def _holds_a_run(path: Path) -> RunFolderError:
    if not (path / "config.json").is_file():  # a resume of it is refused: no config.json
        return RunFolderError(f"{path} holds checkpoints/{LATEST} but no config.json: it is "
                              f"not a robustrep run, and cannot be resumed; choose another --out")
    return RunFolderError(f"{path} already holds a run; continue it with --resume {path} or "
                          f"pass another --out")


# the trainers' options that name a file or folder (``model`` too when it is a local timm folder)
PATH_OPTIONS = ("data_root", "pretrained_file", "inception_weights")


def absolute_paths(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its file and folder options absolute, as a run saves it: its config.json
    is read again from other working directories (``classify eval RUN``, ``ood score RUN``, a
    resume), where a relative path would name another place, or nothing."""
    from robustrep.tasks.common.weights import LOCAL_PREFIX

    def absolute(value: str) -> str:  # "../x" from folder f saved as f/../x broke once f moved
        return os.path.abspath(os.path.expanduser(value))

    out = {k: (absolute(v) if k in PATH_OPTIONS and isinstance(v, str) and v else v)
           for k, v in config.items()}
    model = out.get("model")
    if isinstance(model, str) and model.startswith(LOCAL_PREFIX):
        out["model"] = LOCAL_PREFIX + absolute(model[len(LOCAL_PREFIX):])
    elif isinstance(model, str) and Path(model).expanduser().is_dir():
        out["model"] = absolute(model)
    return out


def open_run(run: RunDir, config: dict[str, Any], resume: bool, log: str | None) -> RunLock:
    """Create and lock the run folder (process 0) and attach the ``--log`` sinks, which the
    returned lock closes when it is released. A fresh run writes its config now; a resumed one
    only after its checkpoint passed (:func:`resumed`), its paths absolute."""
    config = absolute_paths(config)
    check_sinks(log)  # a --log backend that is not installed: before the folder is made
    run.create(subfolders=False)  # the lock's folder; the rest once the folder is checked
    lock = run.lock()
    note_opened(run.path)
    # from now on no write makes the folder again: removed or moved, the run stops
    guard_folder(run.path, gone_line(run.path))
    lock.on_release.append(lambda: forget_folder(run.path))
    lock.on_release.append(run.close_sinks)
    try:
        if not resume:
            if latest_checkpoint(run.checkpoints) is not None:  # made since check_run_folder looked
                raise _holds_a_run(run.path)
            run.check_fresh(config)  # a refused folder (a user's config.json) gets no subfolders
            run.create()
            run.truncate_metrics(0)  # a restart of the same config that never checkpointed
            unmark_finished(run.path)
            (run.path / RESUMES_FILE).unlink(missing_ok=True)  # resumes of the run it restarts
            run.write_config(config)
        else:
            run.create()
        run.sinks = make_sinks(log, run.path)
    except BaseException:
        lock.release()
        raise
    return lock


def gone_line(path: Path) -> str:
    """What a run whose folder was removed or moved while it trained says: it stops (making the
    folder again would leave a checkpoint without its config.json, records from mid-run)."""
    return (f"{path} was removed or moved while the run was going on; nothing more is written "
            f"there; a moved run goes on from its last checkpoint with --resume NEW_PLACE, a "
            f"removed one starts again with the same command")


def resumed(run: RunDir, config: dict[str, Any], step: int) -> None:
    """After a resumed run's checkpoint was validated: its (overridden) config, what the resume
    changed (:func:`record_resume`), the metrics, step files and sample grids cut back to the
    checkpoint's step, and the records' wall clock going on from the last one."""
    unmark_finished(run.path)
    config = absolute_paths(config)
    # how the run logged up to its checkpoint: config.json before the resume rewrites it
    before = read_json(run.config_file, dict) if run.config_file.is_file() else config
    record_resume(run, config, step)
    run.write_config(config)
    existed = run.metrics_file.exists()
    run.truncate_metrics(step)
    records = run.read_metrics()
    # deleted, or emptied (a disk that filled up, a user's edit)
    if step > 0 and not records and _had_logged(before, step):
        what = "holds no records" if existed else "is missing"
        print(f"warning: {run.metrics_file} {what}: the records up to step {step} are lost; "
              f"the resumed run's records start after it", file=sys.stderr)
    if records:
        run.started = time.time() - float(records[-1].get("time", 0.0))
    drop_later_checkpoints(run, step)
    drop_later_grids(run, step)


def drop_later_checkpoints(run: RunDir, step: int) -> None:
    """Move the step files past the resumed ``step`` into ``checkpoints/abandoned_step_N/``
    (nothing is deleted: an older checkpoint resumed on purpose leaves another trajectory's
    steps, which a user may want back). A kill between a step's file and latest.pt left one
    beside the others, where a damaged latest.pt's line named it as "the last step written" to
    go on from, and a stop line gave its step as latest.pt's."""
    later = sorted(p for p in run.checkpoints.glob("step_*.pt")
                   if (checkpoint_step(p) or 0) > step)
    if later:
        aside = _move_aside(later, run.checkpoints, step)
        print(f"note: moved {', '.join(p.name for p in later)} into {aside}: past step {step}, "
              f"which the run resumes from and trains on again", file=sys.stderr)


def drop_later_grids(run: RunDir, step: int) -> None:
    """Move the sample grids past the resumed ``step`` (``samples/step_N.png``, one per
    evaluation) into ``samples/abandoned_step_N/``, as their step files and records go. A kill
    after an evaluation past the last checkpoint left its grid, which a resume with another
    ``--eval-every`` or a lower ``--steps`` never drew again: a picture of a step the run no
    longer had, read as the run's. Grids of ``gan sample`` (``sample-step...``) are the user's."""
    later = sorted(p for p in run.samples.glob("step_*.png") if (_grid_step(p) or 0) > step)
    if later:
        aside = _move_aside(later, run.samples, step)
        print(f"note: moved {', '.join(p.name for p in later)} into {aside}: sample grids past "
              f"step {step}, which the run resumes from and trains on again", file=sys.stderr)


def _grid_step(path: Path) -> int | None:
    match = re.fullmatch(r"step_(\d+)\.png", path.name)
    return int(match.group(1)) if match else None


def _move_aside(paths: list[Path], folder: Path, step: int) -> Path:
    """Move ``paths`` into a new ``folder/abandoned_step_N`` (``_2``, ``_3``... when a resume
    from this step left one before: that folder is kept too); returns it."""
    aside = folder / f"abandoned_step_{step:08d}"
    n = 1
    while aside.exists():
        n += 1
        aside = folder / f"abandoned_step_{step:08d}_{n}"
    aside.mkdir()
    for path in paths:
        os.replace(path, aside / path.name)
    return aside


def _had_logged(config: dict[str, Any], step: int) -> bool:
    """Whether a run of ``config`` had written a record by ``step``: a loss record every
    ``log_every`` steps, an evaluation every ``eval_every``, one at its last step. A run
    stopped before its first has none, and lost none (its resume said the records were lost);
    a config that says neither is taken to have logged."""
    every = [v for v in (config.get("log_every"), config.get("eval_every"))
             if isinstance(v, int) and not isinstance(v, bool)]
    steps = config.get("steps")
    return (not every or any(0 < v <= step for v in every)
            or (isinstance(steps, int) and 0 < steps <= step))


def record_resume(run: RunDir, config: dict[str, Any], step: int) -> None:
    """Append this resume to ``RUN/resumes.json`` (a list of ``{"step", "changed"}``, written
    atomically): the options whose value differs from the run's config.json, ``{"old", "new"}``,
    in effect from ``step``; a note on stderr names them. config.json then holds the new values
    alone: without this record a run resumed with ``--lr 0.5`` at step 200 would read as run at
    0.5 throughout. Entries past ``step`` are dropped, as the metrics are (an older checkpoint
    resumed: the steps they ran are run again)."""
    # the trainers read it before the resume (a caller without one compares nothing)
    old = read_json(run.config_file, dict) if run.config_file.is_file() else {}
    new = json.loads(json.dumps(jsonable(config)))  # as config.json holds it
    # an option this version added is no override (the run had none): only keys saved before
    changed = {k: {"old": old[k], "new": v} for k, v in new.items() if k in old and old[k] != v}
    history = [e for e in _read_resumes(run.path / RESUMES_FILE) if e["step"] <= step]
    write_json(run.path / RESUMES_FILE, [*history, {"step": step, "changed": changed}])
    if changed:
        diffs = ", ".join(f"{k} {d['old']!r} -> {d['new']!r}" for k, d in changed.items())
        print(f"note: {run.path} resumed at step {step} with {diffs} (config.json holds the new "
              f"values, {RESUMES_FILE} the old)", file=sys.stderr)


def _read_resumes(path: Path) -> list[dict[str, Any]]:
    """The entries of a run's resumes.json (none when it has none); a damaged one is said on
    stderr and started again, as a resume must not fail for its record of earlier ones."""
    if not path.exists():
        return []
    try:
        entries = read_json(path, list)
        if not all(isinstance(e, dict) and {"step", "changed"} <= e.keys()
                   and isinstance(e["step"], int) for e in entries):
            raise ValueError("its entries are not {step, changed}")
    except (RunFolderError, ValueError) as err:
        print(f"warning: {path} is unreadable ({err}); it starts again with this resume",
              file=sys.stderr)
        return []
    return entries
