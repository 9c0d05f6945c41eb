"""What a run's regularizers were, and what its resume keeps of them.

``regularizers.json`` in a run folder lists, from the first step and again at each resume that
changes them, every regularizer's class, all its options with the core defaults filled in (and
those a class resolves itself, as PGD's radius by its norm) and the sha256 of its source file.
A resume keeps the recorded value of each option the config leaves to the core when this
version would resolve it otherwise (:func:`kept_options`): a run goes on as it trained, not
with a default changed since (the L2 training radius was 8/255 before 2026-12-07, 0.5 after).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustrep.registry import regularizer_info
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.regularizers import (Kept, OptionFields, fmt_value, options_for,
                                                 scalar_kind, typed_option)

RECORD_FILE = "regularizers.json"


def regularizer_record(cfg: Any, names: tuple[str, ...] | list[str], fields: OptionFields,
                       context: dict[str, Any] | None = None, kept: Kept | None = None
                       ) -> dict[str, Any]:
    """``{name: {"class", "options", "source"}}`` of what ``names`` builds from ``cfg`` (and a
    resume's ``kept`` values): every option, the class defaults filled in (config.json records
    ``None`` for "the core default"), and the sha256 of the class's module source, so that a
    resume under other code is seen."""
    record = {}
    for name in names:
        info = regularizer_info(name)
        as_none = getattr(info.cls, "none_is_a_value", ())  # passed on, as create_regularizer
        given = {k: v for k, v in options_for(cfg, name, fields, context, kept).items()
                 if (v is not None or k in as_none) and k in info.kwargs}
        options = _resolved(info, {**info.kwargs, **given}, given, as_none)
        record[name] = {"class": f"{info.module}.{info.qualname}", "options": options,
                        "source": _source_hash(info)}
    return json.loads(json.dumps(record, default=str))  # as the file holds it: lists, text


def _resolved(info: Any, options: dict[str, Any], given: dict[str, Any],
              kept: tuple[str, ...]) -> dict[str, Any]:
    """``options`` with each None the class resolves itself (PGD's eps by its norm: 8/255 or
    0.5) replaced by the value the built object holds, so the record says what ran. Regularizers
    are side-effect free to build; one that cannot be built without the program's context
    keeps its None."""
    unresolved = [k for k, v in options.items() if v is None and k not in kept]
    if not unresolved or info.kind != "regularizer":
        return options
    try:
        built = info.cls(**given)
    except Exception:  # noqa: BLE001 - needs the program's context; the None stays
        return options
    return {**options, **{k: getattr(built, k) for k in unresolved
                          if getattr(built, k, None) is not None}}


def _source_hash(info: Any) -> str | None:
    module = sys.modules.get(info.module)
    path = getattr(module, "__file__", None)
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def record_regularizers(run: Path, record: dict[str, Any], step: int) -> None:
    """Append ``record`` to the run's ``regularizers.json`` (a list of ``{"step",
    "regularizers"}``) when it differs from the last entry, with a note on stderr naming what
    changed (a resume under another plugin file or core default would else change the run
    silently)."""
    note = _record(Path(run), record, step)
    if note:
        print(note, file=sys.stderr)


def _record(run: Path, record: dict[str, Any], step: int) -> str | None:
    from robustrep.tasks.common.runfiles import write_json
    path = run / RECORD_FILE
    history: list = []
    if step > 0 and path.exists():
        try:
            full = read_history(path)
        except Exception as err:  # noqa: BLE001 (a damaged record: said, then started again)
            history = []
            note = f"warning: {path} is unreadable ({err}); it starts again at step {step}"
        else:
            # entries after the resumed step are an abandoned trajectory's, cut as its metrics
            history = [e for e in full if e["step"] <= step]
            last = history[-1]["regularizers"] if history else None
            if last == record:
                if len(history) < len(full):
                    write_json(path, history)
                return None
            note = _changes(last or {}, record, path.parent, step) if last is not None else None
    else:
        note = None
    write_json(path, [*history, {"step": step, "regularizers": record}])
    return note


def read_history(path: Path) -> list[dict[str, Any]]:
    """The entries of a ``regularizers.json``; ValueError for one that is not a list of
    ``{"step": int, "regularizers": {name: {"class", "options": {...}, ...}}}``."""
    from robustrep.tasks.common.runfiles import read_json
    history = read_json(path, list)
    for entry in history:
        regs = entry.get("regularizers") if isinstance(entry, dict) else None
        if not (isinstance(regs, dict) and isinstance(entry.get("step"), int) and all(
                isinstance(r, dict) and isinstance(r.get("options", {}), dict)
                for r in regs.values())):
            raise ValueError("its entries are not {step, regularizers}")
    return history


def _changes(old: dict[str, Any], new: dict[str, Any], run: Path, step: int) -> str:
    parts = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, {}), new.get(name, {})
        oa, ob = a.get("options", {}), b.get("options", {})
        diffs = [f"{k} {oa.get(k)!r} -> {ob.get(k)!r}" for k in sorted(set(oa) | set(ob))
                 if oa.get(k) != ob.get(k)]
        if a.get("class") != b.get("class"):
            diffs.insert(0, f"class {a.get('class')} -> {b.get('class')}")
        if a.get("source") != b.get("source"):
            diffs.append("its source file changed")
        if diffs:
            parts.append(f"{name}: {', '.join(diffs)}")
    return (f"note: the regularizers differ from when {run} was trained ({'; '.join(parts)}); "
            f"the steps from {step} on use the new ones (recorded in {RECORD_FILE})")


# a program's own record of a registered name it builds itself (gan's rpgan ensemble): a
# function of the recorded entry giving {option: (recorded value, this version's)} to keep
OwnRecord = Callable[[dict[str, Any]], dict[str, tuple[Any, Any]]]


def kept_options(run: Path, cfg: Any, names: tuple[str, ...] | list[str], fields: OptionFields,
                 context: dict[str, Any] | None = None, step: int | None = None,
                 own: dict[str, OwnRecord] | None = None) -> tuple[Kept, str | None]:
    """For a resume of ``run`` at ``step`` (None: its last): the values its record holds at
    that step for options that ``cfg`` leaves to the core and that this version would resolve
    otherwise, with a note naming each (None when there are none). Only scalar options of the
    same class are kept; a record that cannot be read keeps nothing (:func:`record_regularizers`
    says so); a kept value this version refuses is a ConfigError naming the record. ``own``:
    the names the program records itself, compared by its functions."""
    last = _entry_at(Path(run), step)
    own = own or {}
    kept, changed = _kept_core(run, cfg, last, [n for n in names if n not in own], fields,
                               context)
    _check_buildable(run, cfg, kept, fields, context)
    for name in (n for n in names if n in own and isinstance(last.get(n), dict)):
        for opt, (old, value) in own[name](last[name]).items():
            kept.setdefault(name, {})[opt] = old
            changed.append(f"{name}'s {opt} {fmt_value(old)} (this version's default: "
                           f"{fmt_value(value)})")
    note = (f"note: {Path(run) / RECORD_FILE} records {'; '.join(changed)}: core defaults "
            f"that changed since the run started; the resume keeps the recorded values (a new "
            f"run takes the new ones)") if changed else None
    return kept, note


def _kept_core(run: Path, cfg: Any, last: dict[str, Any], names: list[str],
               fields: OptionFields, context: dict[str, Any] | None
               ) -> tuple[Kept, list[str]]:
    """:func:`kept_options` for the classes built through the registry: the kept values and
    the note's words for each. A recorded None is kept as None: the class chooses again."""
    kept: Kept = {}
    changed = []
    for name, now in regularizer_record(cfg, names, fields, context).items():
        was, info = last.get(name), regularizer_info(name)
        if not isinstance(was, dict) or was.get("class") != now["class"]:
            continue
        set_by_cfg = {k for k, v in options_for(cfg, name, fields, context).items()
                      if v is not None}
        recorded = was.get("options") or {}
        for opt, value in now["options"].items():
            spec = info.options.get(opt)
            if opt not in recorded:  # added since the run started: its default applies
                continue
            old = recorded[opt]
            # a recorded None is the class's own choice (PGD's step size by its radius), which
            # no option can give back: the resume's record of changes names the new value
            if (old is None or old == value or opt in set_by_cfg or spec is None
                    or scalar_kind(spec.annotation)[0] is None):
                continue
            kept.setdefault(name, {})[opt] = _kept_value(run, name, opt, old)
            changed.append(f"{name}'s {opt} {fmt_value(old)} (this version's default: "
                           f"{fmt_value(value)})")
    return kept, changed


def kept_on_resume(run: Path, cfg: Any, names: tuple[str, ...] | list[str],
                   fields: OptionFields, context: dict[str, Any] | None = None,
                   own: dict[str, OwnRecord] | None = None) -> tuple[Kept, str | None]:
    """:func:`kept_options` for a resume of ``run`` from its latest checkpoint, at the step
    that checkpoint was saved at (read without its tensors)."""
    from robustrep.tasks.common import checkpoint as ckpt
    from robustrep.tasks.common.rundir import RunDir
    step = ckpt.saved_step(ckpt.latest_checkpoint(RunDir(run).checkpoints))
    return kept_options(run, cfg, names, fields, context, step, own)


def _entry_at(run: Path, step: int | None) -> dict[str, Any]:
    """The regularizers of the record's last entry at or before ``step`` (a resume from an
    older checkpoint goes on from that trajectory), ``{}`` when there is none to read."""
    try:
        history = read_history(run / RECORD_FILE)
    except Exception:  # noqa: BLE001 - missing or damaged: nothing kept (the record says why)
        return {}
    entries = [e for e in history if step is None or e["step"] <= step]
    return dict(entries[-1]["regularizers"]) if entries else {}


def _refused(run: Path, what: str, err: Exception) -> ConfigError:
    return ConfigError(f"{Path(run) / RECORD_FILE} records {what}, which this version refuses "
                       f"({err}); finish the run with the version that started it, or start "
                       f"it again")


def _kept_value(run: Path, name: str, opt: str, old: Any) -> Any:
    """A recorded value typed as its flag types it; one this version's annotation refuses (a
    choice since removed) names the record, not the reg_options the user never gave."""
    try:
        return typed_option(name, opt, old)
    except ConfigError as err:
        raise _refused(run, f"{name}'s {opt} {fmt_value(old)}", err) from None


def _check_buildable(run: Path, cfg: Any, kept: Kept, fields: OptionFields,
                     context: dict[str, Any] | None) -> None:
    """Each regularizer with kept values built once: a value the class now refuses (a range
    since narrowed) names the record, not ``--reg NAME``."""
    from robustrep.registry import create_regularizer
    for name, values in kept.items():
        try:
            create_regularizer(name, **options_for(cfg, name, fields, context, kept))
        except (TypeError, ValueError) as err:
            shown = ", ".join(f"{k} {fmt_value(v)}" for k, v in values.items())
            raise _refused(run, f"{name}'s {shown}", err) from None
