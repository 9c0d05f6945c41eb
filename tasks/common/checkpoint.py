"""Atomic checkpoints and the RNG state that makes a resumed run equal the uninterrupted one.

A checkpoint is one ``torch.save`` of a dict (models, optimizers, EMA, AMP scaler, regularizer
state, step, RNG states). It is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a crash mid-write never leaves a truncated ``latest.pt``.

Safety: everything a checkpoint holds is tensors and plain Python values (RNG states included:
Python's Mersenne Twister state becomes a list, NumPy's key array a tensor), so it loads with
``torch.load(weights_only=True)``, whose unpickler refuses to build arbitrary objects and so never
runs a ``__reduce__`` payload planted in a file (PyTorch >= 2.6 makes this the default; see the
``torch.load`` documentation). Every failure to read a checkpoint becomes one
:class:`CheckpointError` naming the file.

No checkpoint is ever written from non-finite state: :func:`save_checkpoint` checks every
floating tensor first and raises :class:`TrainingDiverged`, so the newest checkpoint on disk (and
the ``keep`` rotation behind it) always holds finite weights.
"""

from __future__ import annotations

import pickle
import random
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustrep.tasks.common.errors import CheckpointError, TrainingDiverged
from robustrep.tasks.common.runfiles import TMP_SUFFIX, write_atomic

LATEST = "latest.pt"


def save_atomic(obj: Any, path: str | Path, replace: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (see :func:`write_atomic`; ``replace=False``:
    a new file only)."""
    return write_atomic(path, lambda handle: torch.save(obj, handle), replace)


def remove_stale_tmp(folder: str | Path) -> list[Path]:
    """Delete the temporary files of saves that were interrupted (call while holding the lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names (``a/b/c``) of the floating-point tensors in a nested state that hold NaN or inf."""
    if isinstance(state, Tensor):
        bad = state.is_floating_point() and not bool(torch.isfinite(state).all())
        return [prefix or "<tensor>"] if bad else []
    items: Any = ()
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    found = []
    for key, value in items:
        found += nonfinite_tensors(value, f"{prefix}/{key}" if prefix else str(key))
    return found


def save_checkpoint(state: dict[str, Any], folder: str | Path, step: int, keep: int = 3) -> Path:
    """Write ``step_<step>.pt`` and ``latest.pt`` atomically; keep the newest ``keep`` steps.

    Raises :class:`TrainingDiverged` (and writes nothing) when any floating tensor of ``state``
    is NaN or inf, so a diverged run can never replace or rotate away a good checkpoint.
    """
    folder = Path(folder)
    bad = nonfinite_tensors(state)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise TrainingDiverged(f"refusing to write the step-{step} checkpoint into {folder}: "
                               f"non-finite values in {', '.join(bad[:3])}{more}")
    path = save_atomic(state, folder / f"step_{step:08d}.pt")
    try:
        save_atomic(state, folder / LATEST)
    except BaseException:  # a full disk, Ctrl-C: the newest step file stays latest.pt's step,
        path.unlink(missing_ok=True)  # which --resume reads and a stopped run's line names
        raise
    steps = sorted(folder.glob("step_*.pt"))
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def safe_load(path: str | Path, what: str, map_location: Any = "cpu",
              allow_pickle: bool = False,
              advice: str = "use a file written by this version of robustrep",
              damaged: str | None = None) -> Any:
    """``torch.load`` with ``weights_only=True``; any failure is a one-line CheckpointError.

    ``allow_pickle=True`` loads with the full unpickler, which runs whatever code the file
    carries: only for files the user wrote and trusts (it exists for checkpoints of older
    versions that pickled NumPy objects). ``advice`` ends the message about such objects;
    ``damaged`` the one about a damaged (truncated, corrupt) file: "use another file" by default,
    which fits no file that is written again rather than chosen, such as a samples file.
    """
    part = damaged_part(path)
    if part is not None:
        raise CheckpointError(f"{what} {path} is damaged: its part {part} fails its CRC-32 "
                              f"check (a disk or copy error); {damaged or 'use another file'}")
    try:
        with warnings.catch_warnings():  # torch's notes on the pickle protocol: the error says it
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=not allow_pickle)
    except pickle.UnpicklingError as err:
        # A well-formed torch zip archive, or any pickle naming a global, refused by the safe
        # unpickler holds Python objects (possibly code to run); anything else is damage.
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or zipfile.is_zipfile(path):
            what_obj = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{what} {path} holds Python objects{what_obj} that a safe load refuses (they "
                f"could run code when loaded); robustrep loads only tensors and plain values: "
                f"{advice}") from None
        raise CheckpointError(f"{what} {path} is not a readable PyTorch file (torch.save's "
                              f"format); it may be truncated or corrupt, or a pickle of another "
                              f"kind: {damaged or 'use another file'}") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError,
            IndexError, KeyError, TypeError, MemoryError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{what} {path} is not a readable PyTorch file "
                              f"({type(err).__name__}: {_first_sentence(err)}); it may be "
                              f"truncated or corrupt: {damaged or 'use another file'}"
                              ) from None


def _first_sentence(err: BaseException, most: int = 160) -> str:
    """The error's first sentence, cut at a word when longer than ``most`` characters (torch's
    "failed finding central directory." goes on for 300 more; it was cut mid-word)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= most else text[:most].rsplit(" ", 1)[0] + " ..."


def damaged_part(path: str | Path) -> str | None:
    """The first part of a zip-format ``torch.save`` file whose bytes do not match the CRC-32
    stored beside them; ``torch.load`` reads without checking, so flipped bytes would become
    weights. None when every part checks, or when the file is no zip (``torch.load`` judges)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error):
        return None


def checkpoint_names(folder: str | Path) -> list[str]:
    """The checkpoint files in ``folder`` by name (none when it is not a folder), for a line
    that says what there is to choose from."""
    folder = Path(folder)
    return sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []


def load_checkpoint(path: str | Path, map_location: Any = "cpu",
                    allow_pickle: bool = False) -> dict[str, Any]:
    """Read a checkpoint (a file, or a folder holding ``latest.pt``) safely.

    Raises :class:`CheckpointError` naming the file when it is missing, unreadable, truncated,
    refused by the safe unpickler (``allow_pickle`` lifts that, see :func:`safe_load`) or not a
    checkpoint dict.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        others = checkpoint_names(path.parent)
        where = f"; {path.parent} holds {', '.join(others)}" if others else ""
        raise CheckpointError(f"no checkpoint at {path} (expected a file written by robustrep, "
                              f"e.g. RUN/checkpoints/{LATEST}){where}")
    state = safe_load(path, "checkpoint", map_location, allow_pickle,
                      damaged="use another checkpoint")
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} is not a robustrep checkpoint (a dict with a 'step'); "
                              f"got {type(state).__name__}")
    return state


def resume_advice(last_ckpt: Path | None, last_step: int | None, run_path: Path,
                  remedy: str) -> str:
    """The end of a diverged run's message: its last good checkpoint and how to go on."""
    if last_ckpt is not None:
        return (f"the last good checkpoint is {last_ckpt} (step {last_step}); continue from it "
                f"with --resume {run_path}, e.g. with {remedy}")
    # its config.json stays: the same folder would refuse other options (RunDir.check_fresh)
    return (f"no checkpoint was written before it; start again with {remedy}, into another "
            f"--out or after removing {run_path}")


def load_weights(module: torch.nn.Module, weights: dict[str, Tensor], where: str, what: str,
                 advice: str) -> None:
    """Load ``weights`` into ``module``, refusing non-finite ones (``advice`` says what to do)
    and ones that do not fit ``what``, each as one CheckpointError line naming ``where``."""
    bad = nonfinite_tensors(weights)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(f"{where} holds non-finite weights ({bad[0]}{more}); {advice}")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, Tensor)}
    differ = mismatch_text(expected, got)
    if differ:  # torch's own message lists every key, cut here it stopped mid-name
        raise CheckpointError(f"{where} does not fit {what}: {differ}")
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:  # what the keys and shapes do not show
        raise CheckpointError(f"{where} does not fit {what}: {_first_sentence(err)}") from None


def mismatch_text(expected: dict[str, tuple], got: dict[str, tuple],
                  same_shape=lambda key, want, have: want == have) -> str:
    """How a file's tensor shapes ``got`` differ from a model's ``expected``, in a few words
    (counts, and the first three names of each kind); empty when they fit. ``same_shape``: a
    looser test for some keys (timm adapts an input conv's channels)."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got)
                   if not same_shape(k, expected[k], got[k]))
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameter(s) missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        parts.append("wrong shapes (file vs model): " + ", ".join(
            f"{k} {got[k]} vs {expected[k]}" for k in wrong[:3]))
    return "; ".join(parts)


def with_last_step(err: CheckpointError, path: str | Path, how: str) -> CheckpointError:
    """The error of a damaged ``latest.pt`` naming the last step file written beside it (a run
    keeps its last steps' files), with ``how`` to use it (``{name}``: that file's name); other
    files' errors, or a run without step files, as they are."""
    last = last_step_checkpoint(Path(path).parent) if Path(path).name == LATEST else None
    if last is None:
        return err
    whole = whole_step_checkpoint(last.parent)
    if whole is None:
        return CheckpointError(f"{err}; the step files beside it are damaged too ({last.name} "
                               f"the last)")
    which = "the last step written" if whole == last else damaged_after(last)
    return CheckpointError(f"{err}; {whole} is there, {which}: "
                           f"{how.replace('{name}', whole.name)}")


def load_for_resume(path: Path, steps: int, load: Any, map_location: Any = "cpu",
                    check: Any = None) -> dict:
    """Load checkpoint ``path`` into a trainer with ``load(state)``, before anything is written.

    ``check(state)`` first refuses a checkpoint that is not the run's (another run's copied in:
    the step check below advised ``--steps`` from that run's step). Then refuses a checkpoint
    past ``steps`` (the run would end before it) and turns a checkpoint that does not fit the
    run's config into one CheckpointError line.
    """
    from robustrep.tasks.common.errors import UserError
    try:
        state = load_checkpoint(path, map_location=map_location)
    except CheckpointError as err:  # a damaged latest.pt: the step files beside it may be whole
        raise with_last_step(err, path, f"copy it over {path} to resume from it") from None
    if check is not None:
        check(state)
    if int(state["step"]) > steps:
        raise UserError(f"--steps {steps} is below the step of the checkpoint {path} "
                        f"({state['step']}); pass --steps {state['step']} or more")
    try:
        load(state)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as err:
        # load_state_dict's first line only says where; the keys follow ("Missing key(s) ...")
        text = " ".join(str(err).split())
        text = text if len(text) <= 400 else text[:397] + "..."
        raise CheckpointError(f"checkpoint {path} does not fit this run's config "
                              f"({type(err).__name__}: {text})") from None
    return state


def saved_step(path: str | Path | None) -> int | None:
    """The step a checkpoint was saved at, read without its tensors, for what must be known
    before a resume loads it; None when it cannot be read (the load says why)."""
    step = saved_entry(path, "step")
    return int(step) if isinstance(step, int) else None


def saved_entry(path: str | Path | None, key: str) -> Any:
    """Entry ``key`` of checkpoint ``path`` (its ``step``, the ``config`` it was trained with),
    read without its tensors (memory-mapped); None when the file cannot be read (a load of it
    says why) or has no such entry."""
    if path is None:
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - damaged or legacy: load_checkpoint names it
        return None
    return state.get(key) if isinstance(state, dict) else None


def latest_checkpoint(folder: str | Path) -> Path | None:
    path = Path(folder) / LATEST
    return path if path.is_file() else None


def can_resume(run_dir: str | Path) -> bool:
    """Whether ``--resume`` has a checkpoint in ``run_dir``: ``latest.pt``, or a step file it
    restores ``latest.pt`` from (a run killed while writing it: :mod:`.runopen`)."""
    folder = Path(run_dir) / "checkpoints"
    return latest_checkpoint(folder) is not None or last_step_checkpoint(folder) is not None


def last_step_checkpoint(folder: str | Path) -> Path | None:
    """The last ``step_*.pt`` in ``folder`` (step numbers are zero-padded), or None."""
    written = sorted(Path(folder).glob("step_*.pt"))
    return written[-1] if written else None


def whole_step_checkpoint(folder: str | Path) -> Path | None:
    """The last ``step_*.pt`` in ``folder`` that reads whole (a zip whose every part passes its
    CRC-32 check), or None: the file a run whose ``latest.pt`` is missing or damaged goes on
    from. The last one written was named even when damaged (a disk error, a copy cut short),
    and copying it over ``latest.pt`` as advised only moved the damage there."""
    for path in sorted(Path(folder).glob("step_*.pt"), reverse=True):
        if zipfile.is_zipfile(path) and damaged_part(path) is None:
            return path
    return None


def damaged_after(last: Path) -> str:
    """How :func:`whole_step_checkpoint`'s file is named when a later step file is damaged."""
    return f"the last step file that reads whole ({last.name} after it is damaged)"


def checkpoint_step(path: str | Path) -> int | None:
    match = re.search(r"step_(\d+)\.pt$", str(path))
    return int(match.group(1)) if match else None


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every RNG a training step may draw from: Python, NumPy, torch CPU/CUDA, named generators."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        # Plain lists and tensors only, so that the checkpoint loads with weights_only=True.
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any],
                  generators: dict[str, torch.Generator] | None = None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], np.asarray(npy["keys"], dtype=np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (generators or {}).items():
        if name not in state["generators"]:
            raise KeyError(f"checkpoint has no state for generator {name!r}; "
                           f"it has {sorted(state['generators'])}")
        gen.set_state(state["generators"][name])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
