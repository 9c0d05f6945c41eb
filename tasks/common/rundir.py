"""The run folder every program writes.

    RUN/
      config.json        the resolved config (what --dry-run prints)
      metrics.jsonl      one JSON object per line: step, wall-clock seconds, metric values
      checkpoints/       step_*.pt and latest.pt (see checkpoint.py)
      samples/           image grids (PNG)
      plots/             curves and diagrams (PNG)
      finished.json      written last, when training ended (run_records.py reads runs back)
      resumes.json       one entry per resume: its step and the options it changed, old and new
                         (see runopen.py)
      .lock              held (``fcntl.flock``) by the one process training into RUN (see
                         runlock.py)

:class:`RunDir` names these files and writes the config and the records; a run folder written
by another program is refused by :func:`check_run_program`. Beside it: the one-run-per-folder
lock (runlock.py), the checks on where a command writes (output_paths.py), and opening a
training run in the folder, a resume's last writes included (runopen.py).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common.checkpoint import remove_stale_tmp
from robustrep.tasks.common.errors import RunFolderError, WriteFailed
from robustrep.tasks.common.output_paths import check_writable
from robustrep.tasks.common.folder_guard import check_folder, folder_gone
from robustrep.tasks.common.run_records import FINISHED
from robustrep.tasks.common.runfiles import read_json, read_jsonl, write_text_atomic
from robustrep.tasks.common.runlock import LOCK_FILE, RunLock

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
        """Take the run's exclusive lock (see runlock.py) and clean stale temp files."""
        held = RunLock(self.path / LOCK_FILE).acquire()
        for folder in (self.path, self.checkpoints, self.samples, self.plots):
            remove_stale_tmp(folder)
        return held

    def write_config(self, config: dict[str, Any]) -> None:
        write_text_atomic(self.config_file, json.dumps(jsonable(config), indent=2) + "\n")

    def check_fresh(self, config: dict[str, Any]) -> None:
        """Refuse to start a new run in a folder that already holds a different run's config
        (one that wrote no checkpoint: a folder with one is refused before, for --resume).
        ``out`` is left out: the folder is the run's, however --out spelled it (``runs/a``,
        ``./runs/a``, its absolute path, a relative one from another working folder); the data
        and weights paths are saved absolute (``runopen.absolute_paths``)."""
        if not self.config_file.is_file():
            return
        from robustrep.tasks.common.runopen import started_paths
        saved = read_json(self.config_file, dict)  # a damaged one is named, not overwritten
        # an earlier version saved some paths as given (--init, run:DIR): read as read_config
        if _options(started_paths(self.path, saved)) != \
                _options(json.loads(json.dumps(jsonable(config)))):
            raise RunFolderError(f"{self.path} already holds another run, which wrote no "
                                 f"checkpoint (its config.json differs from these options); "
                                 f"start it again with its options, remove the folder, or "
                                 f"choose another --out")

    def read_config(self) -> dict[str, Any]:
        """The run's options; relative paths an earlier version saved, from the folder the run
        was started in (``runopen.started_paths``)."""
        from robustrep.tasks.common.options import check_run_folder
        from robustrep.tasks.common.runopen import started_paths
        check_run_folder(self.path, "", "{run}")  # a path that is not there, or a file
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a robustrep run folder: no config.json")
        return started_paths(self.path, read_json(self.config_file, dict))

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


def _options(config: dict[str, Any]) -> dict[str, Any]:
    """A run's options without ``out``, saved as given: it names the folder holding them."""
    return {k: v for k, v in config.items() if k != "out"}


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


def foreign_options(saved: dict[str, Any], cls: type) -> list[str]:
    """The names in ``saved`` (a run's options) that are no fields of config class ``cls`` when
    they are most of them: the options of another program's run; else ``[]``."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(cls)}
    foreign = [k for k in saved if k not in names]
    return foreign if len(foreign) > len(saved) - len(foreign) else []


def check_run_program(saved: dict[str, Any], cls: type, path: str | Path, program: str) -> None:
    """Refuse a run folder written by another program (``classify train --resume GAN_RUN``):
    most of its saved options are not options of ``cls``."""
    import dataclasses
    if not saved:  # `{}`: nothing says which run this was
        raise RunFolderError(f"{Path(path) / 'config.json'} holds no options (an empty JSON "
                             f"object); restore it or run again into another folder")
    names = {f.name for f in dataclasses.fields(cls)}
    foreign = foreign_options(saved, cls)
    if foreign:
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

