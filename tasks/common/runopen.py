"""Opening a training run: the checks before any work, the folder and its lock, a resume's last
writes.

:func:`check_run_folder` refuses, before the data are read, a folder that is no place for this
run (in use, another run's, a user's files, a resume with nothing to resume); :func:`open_run`
creates and locks the folder and attaches the ``--log`` sinks; :func:`resumed` brings a resumed
folder back to its checkpoint's step (the metrics, step files and sample grids past it moved or
cut, ``resumes.json`` recording what the resume changed). Both trainers go through it, so a
``gan train`` and a ``classify train`` run folder open and resume alike.

The ``--log`` sinks (TensorBoard, wandb) opened by :func:`open_run` are closed when the run's
lock is released, which both trainers do in a ``finally``: on a normal end, a user error, a stop
signal, Ctrl-C and divergence alike, before another run may take the folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from robustrep.tasks.common.checkpoint import (LATEST, checkpoint_step, damaged_after,
                                               last_step_checkpoint, latest_checkpoint,
                                               saved_entry, whole_step_checkpoint)
from robustrep.tasks.common.errors import CheckpointError, RunFolderError, WriteFailed
from robustrep.tasks.common.eval_records import check_no_output
from robustrep.tasks.common.output_paths import check_writable
from robustrep.tasks.common.rundir import RESUMES_FILE, RUN_OUTPUTS, RunDir, jsonable
from robustrep.tasks.common.folder_guard import forget_folder, guard_folder
from robustrep.tasks.common.run_records import note_opened, unmark_finished
from robustrep.tasks.common.runfiles import read_json, write_atomic, write_json
from robustrep.tasks.common.runlock import (LOCK_FILE, RunLock, foreign_lock, in_use,
                                            is_lock_record, lock_holder, not_a_lock)
from robustrep.tasks.common.sinks import check_sinks, make_sinks


def check_run_folder(path: str | Path, resume: bool) -> Path | None:
    """Before any work: ``path`` is writable and holds a checkpoint exactly when resuming.

    Returns the checkpoint to resume from (None for a fresh run)."""
    path = check_writable(path, "run folder")
    lock = path / LOCK_FILE
    if lock.is_file() and not is_lock_record(lock.read_bytes()[:4096]):  # before any file is made
        raise foreign_lock(lock)
    if os.path.lexists(lock) and not lock.is_file():
        raise not_a_lock(lock)
    holder = lock_holder(path)
    if holder is not None:  # a run in progress: "holds a run; continue it with --resume" (that
        raise in_use(path, holder)  # resume refused too), or "copy step_N.pt to latest.pt"
    latest = latest_checkpoint(path / "checkpoints")
    last = last_step_checkpoint(path / "checkpoints")
    if latest is None and last is not None:  # a kill between a step's file and latest.pt
        whole = whole_step_checkpoint(path / "checkpoints")
        if resume and whole is not None:
            latest = _restore_latest(path, whole, last)
        else:
            hint = _step_file_hint(path, last, whole)
            if resume:
                raise CheckpointError(f"cannot resume {path}: no {LATEST}; {hint}")
            raise RunFolderError(f"{path} holds checkpoints but no {LATEST}; {hint}, or choose "
                                 f"another --out")
    if resume and latest is None:
        raise CheckpointError(f"cannot resume {path}: no checkpoint at "
                              f"{path / 'checkpoints' / LATEST}{_start_again_hint(path)}")
    if not resume and latest is not None:
        raise _holds_a_run(path)
    if not (path / "config.json").is_file():
        if not resume:  # an ood score's, bench's, report's... folder, then refused as a run's
            check_no_output(path, "--out")
        theirs = next((name for name in RUN_OUTPUTS if _holds_something(path / name)), None)
        if theirs is not None:
            raise RunFolderError(f"{path} holds a {theirs} but no config.json: it is not a "
                                 f"robustrep run (its files would be overwritten); choose "
                                 f"another --out")
    return latest


def _step_file_hint(path: Path, last: Path, whole: Path | None) -> str:
    """What a run folder without ``latest.pt`` can go on from: its last step file that reads
    whole (``whole``; a damaged one named here was copied to latest.pt, and the resume refused
    it again)."""
    if whole is None:
        return (f"its step files are damaged ({last.name} the last), so it cannot go on: start "
                f"it again after removing {path}")
    return f"{whole} is there, {_which(whole, last)}: continue from it with --resume {path}"


def _which(whole: Path, last: Path) -> str:
    """Which step file ``whole`` is: the last written, or the last whole one after ``last``."""
    return "the last written" if whole == last else damaged_after(last)


def _restore_latest(path: Path, whole: Path, last: Path) -> Path:
    """``latest.pt`` again, a copy of ``whole``, the last step file that reads whole: a run killed
    between a step's file and ``latest.pt`` (``kill -9``, a power cut) was refused with "copy
    it to latest.pt", which the resume can do itself. A new file only: one another process
    made meanwhile is kept, and this resume refused in one line."""
    import shutil
    latest = path / "checkpoints" / LATEST
    with open(whole, "rb") as source:
        try:
            write_atomic(latest, lambda handle: shutil.copyfileobj(source, handle),
                         replace=False)
        except WriteFailed:
            if latest.is_file():  # another resume restored it meanwhile: its run, not a user's
                raise RunFolderError(f"{path} is being resumed by another process, which "
                                     f"restored {LATEST} meanwhile; wait for it to finish"
                                     ) from None
            raise
    print(f"note: {path} had no {LATEST} (stopped while it was written); resuming from "
          f"{whole.name}, {_which(whole, last)}, copied to it", file=sys.stderr)
    return latest


def _start_again_hint(path: Path) -> str:
    """What a run folder with a config.json and no checkpoint at all can do (a run killed before
    its first): start again into it, which a fresh run with its very options may
    (``RunDir.check_fresh``: its config.json, ``out`` left out, must match). ``--config
    RUN/config.json --out RUN`` gives them, from any working folder (``out`` is saved as
    given: from another folder a relative one names another place, which ``--out`` replaces)."""
    from robustrep.tasks.common.plugins import plugin_args
    try:
        config = read_json(path / "config.json", dict)
    except RunFolderError:  # none, or damaged: the resume says so
        return ""
    every = config.get("ckpt_every")
    when = f" (--ckpt-every {every})" if isinstance(every, int) and every > 0 else ""
    how = shlex.join(["--config", str(path / "config.json"), "--out", str(path), *plugin_args()])
    return (f"; it was stopped before its first checkpoint{when}: start it again with the "
            f"command that started it, or with {how}")


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
PATH_OPTIONS = ("data_root", "pretrained_file", "inception_weights", "init")
# options whose value may name a run folder after a prefix (gan's --fid-features run:DIR)
RUN_PREFIXED = {"fid_features": "run:"}
# the paths versions before 2026-12-07 saved as given (the others were saved absolute already)
SAVED_AS_GIVEN = ("init", *RUN_PREFIXED)


def path_option(key: str, value: Any) -> bool:
    """Whether ``key``'s ``value`` is a path that a run's config.json holds absolute and its
    checkpoints as given (:data:`PATH_OPTIONS`, a ``run:DIR``): the two compare only as paths."""
    prefix = RUN_PREFIXED.get(key)
    return key in PATH_OPTIONS or (prefix is not None and isinstance(value, str)
                                   and value.startswith(prefix))


def absolute(value: str) -> str:
    """``value`` as an absolute path ("../x" saved from folder f as f/../x broke once f moved)."""
    return os.path.abspath(os.path.expanduser(value))


def absolute_prefixed(value: str, prefix: str) -> str:
    """``value`` with the path after ``prefix`` absolute; other values as given."""
    if value.startswith(prefix) and len(value) > len(prefix):
        return prefix + absolute(value[len(prefix):])
    return value


def started_paths(run: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (``run``'s config.json) with the relative paths an earlier version kept as
    given (``--init``, ``run:DIR``) read from the folder the run was started in: its relative
    ``out`` names ``run`` from there. From another folder they named other files, without a
    word (a FID on another classify run's features). Where ``out`` cannot tell that folder
    (absolute, or not the end of ``run``'s path: the run was moved), a RunFolderError."""
    relative = {k: v for k, v in saved.items() if k in SAVED_AS_GIVEN and path_option(k, v)
                and isinstance(v, str) and v
                and not os.path.isabs(os.path.expanduser(_path_part(k, v)))}
    if not relative:
        return saved
    start = _start_folder(Path(run), saved.get("out"))
    if start is None:
        key, value = next(iter(relative.items()))
        raise RunFolderError(f"{Path(run) / 'config.json'} names {key} {value!r} relative to "
                             f"the folder the run was started in, which its out "
                             f"{saved.get('out')!r} does not tell; write that path absolute in "
                             f"config.json")
    prefix = {k: RUN_PREFIXED.get(k, "") for k in relative}
    return {**saved, **{k: prefix[k] + os.path.normpath(start / _path_part(k, v))
                        for k, v in relative.items()}}


def _path_part(key: str, value: str) -> str:
    return value.removeprefix(RUN_PREFIXED.get(key, ""))


def _start_folder(run: Path, out: Any) -> Path | None:
    """The folder from which the relative ``out`` names ``run``, or None."""
    if not isinstance(out, str) or not out or os.path.isabs(os.path.expanduser(out)):
        return None
    parts, here = Path(os.path.normpath(out)).parts, Path(run).resolve().parts
    if ".." in parts or here[-len(parts):] != parts:
        return None
    return Path(*here[:-len(parts)])


def absolute_paths(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its file and folder options absolute, as a run saves it: its config.json
    is read again from other working directories (``classify eval RUN``, ``ood score RUN``, a
    resume), where a relative path would name another place, or nothing."""
    from robustrep.tasks.common.weights import LOCAL_PREFIX
    out = {k: (absolute(v) if k in PATH_OPTIONS and isinstance(v, str) and v else v)
           for k, v in config.items()}
    for key, prefix in {**RUN_PREFIXED, "model": LOCAL_PREFIX}.items():
        if isinstance(out.get(key), str):
            out[key] = absolute_prefixed(out[key], prefix)
    model = out.get("model")
    if isinstance(model, str) and not model.startswith(LOCAL_PREFIX) and \
            Path(model).expanduser().is_dir():
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


def resumed(run: RunDir, config: dict[str, Any], step: int,
            checkpoint: Path | None = None) -> None:
    """After a resumed run's checkpoint was validated: the line saying where it goes on from
    (as stylegan2-ada's "Resuming from" and timm's "Loaded checkpoint"; after a kill nothing
    else showed the step), its (overridden) config, what the resume changed
    (:func:`record_resume`), the metrics, step files and sample grids cut back to the
    checkpoint's step, and the records' wall clock going on from the last one."""
    if checkpoint is not None:
        print(f"resuming {run.path} at step {step} of {config.get('steps')} from {checkpoint}",
              file=sys.stderr)
    unmark_finished(run.path)
    config = absolute_paths(config)
    # how the run logged up to its checkpoint: config.json before the resume rewrites it
    before = read_json(run.config_file, dict) if run.config_file.is_file() else config
    record_resume(run, config, step, saved_entry(checkpoint, "config"))
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


def record_resume(run: RunDir, config: dict[str, Any], step: int,
                  trained: dict[str, Any] | None = None) -> None:
    """Append this resume to ``RUN/resumes.json`` (a list of ``{"step", "changed"}``, written
    atomically): the options whose value differs from what the run trained with up to its
    checkpoint (``trained``, the config saved in it, else config.json), ``{"old", "new"}``, in
    effect from ``step``; a note on stderr names them. config.json then holds the new values
    alone: without this record a run resumed with ``--lr 0.5`` at step 200 would read as run at
    0.5 throughout. Entries past ``step`` are dropped, as the metrics are (an older checkpoint
    resumed: the steps they ran are run again)."""
    # the trainers read it before the resume (a caller without one compares nothing)
    old = read_json(run.config_file, dict) if run.config_file.is_file() else {}
    # a value edited into config.json by hand since the checkpoint is a change too: compared
    # with config.json, it went on without a note and its record said nothing changed
    old.update(_trained_values(trained, old))
    new = json.loads(json.dumps(jsonable(config)))  # as config.json holds it
    # an option this version added is no override (the run had none): only keys saved before
    changed = {k: {"old": old[k], "new": v} for k, v in new.items() if k in old and old[k] != v}
    history = [e for e in _read_resumes(run.path / RESUMES_FILE) if e["step"] <= step]
    write_json(run.path / RESUMES_FILE, [*history, {"step": step, "changed": changed}])
    if changed:
        diffs = ", ".join(f"{k} {d['old']!r} -> {d['new']!r}" for k, d in changed.items())
        print(f"note: {run.path} resumed at step {step} with {diffs} (config.json holds the new "
              f"values, {RESUMES_FILE} the old)", file=sys.stderr)


def _trained_values(trained: Any, saved: dict[str, Any]) -> dict[str, Any]:
    """The values of ``saved``'s options (config.json's) in a checkpoint's own config
    ``trained``, as config.json holds them; a relative path is left out (the checkpoint keeps it
    as given, relative to a folder config.json does not name), as are ``out`` and ``model``."""
    if not isinstance(trained, dict):  # a checkpoint from before the config was saved in it
        return {}
    trained = json.loads(json.dumps(jsonable(trained)))
    return {k: v for k, v in trained.items() if k in saved and k not in ("out", "model")
            and (not path_option(k, v) or not isinstance(v, str)
                 or os.path.isabs(v.removeprefix(RUN_PREFIXED.get(k, ""))))}


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
