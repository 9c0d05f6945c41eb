"""The options a report folder was started with: ``DIR/report_options.json``.

A report writes it before its first run (as stylegan2-ada writes ``training_options.json``
before its first kimg), so that the next report into the folder knows them even when the one
that started it was stopped before its page: ``--collect`` and a plain ``report --out DIR`` take
the options not given from it. Options given that would leave the folder's runs off the page
that replaces its own (another size; unless ``--collect``, seeds or settings without some of
its own) are refused before any run. (Only ``report.json``, written with the page at the end,
held them: a stopped report left a folder ``--collect`` read as the default full report, and a
rerun at another size replaced the page and its record with one of none of those runs.)
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.runfiles import read_json, write_json
from robustrep.tasks.report.runs import FULL, QUICK, Settings

OPTIONS_FILE = "report_options.json"

# the options of a report's size (--quick or the default), beside its runs and seeds
SIZE_FIELDS = ("gan_steps", "grid_steps", "classify_steps", "classify_model", "detectors",
               "attack_samples", "gan_evals")
# the settings a user gives, by their option (the size is --quick's)
GIVEN = (("seeds", "--seeds"), ("gan_regs", "--gan-regs"), ("classify_regs", "--classify-regs"))


@dataclass(frozen=True)
class Recorded:
    """The options of the report in a folder, and the file they were read from."""

    settings: Settings
    quick: bool
    path: Path


def write_options(out: Path, settings: Settings, quick: bool) -> None:
    """Record the options of the report starting in ``out`` (atomically: a stop mid-write
    leaves the earlier record)."""
    write_json(out / OPTIONS_FILE, {"settings": asdict(settings), "quick": quick})


def recorded(out: Path) -> Recorded | None:
    """The options the report in ``out`` was started with: its :data:`OPTIONS_FILE`, else the
    page's record (``report.json`` of a report made before that file was written, whose shape
    :func:`~robustrep.tasks.report.runs.check_out` checked); None: neither (run folders gathered
    by hand). A damaged or foreign value is refused in one line: the runs read would not be
    that report's."""
    path = out / OPTIONS_FILE
    if path.is_file():
        return _parse(read_json(path, dict, advice=_anew(path)), path, "")
    path = out / "report.json"
    if not path.is_file():
        return None
    info = read_json(path, dict, advice=_anew(path)).get("info")
    return _parse(info if isinstance(info, dict) else {}, path, "info.")


def _parse(info: dict[str, Any], path: Path, prefix: str) -> Recorded:
    """The settings in ``info`` (``prefix``: where they lie in the file, for the message). A
    field a report of an earlier version did not record is its size's."""
    stored = info.get("settings")
    # every report recorded these: their size's value would hide a damaged record
    required = ("gan_regs", "classify_regs", "seeds", "gan_steps", "grid_steps",
                "classify_steps")
    if not isinstance(stored, dict):
        raise UserError(f"{path} holds no report settings ({prefix}settings); {_anew(path)}")
    absent = [name for name in required if name not in stored]
    if absent:
        raise UserError(f"{path}: {prefix}settings has no {absent[0]}; {_anew(path)}")
    quick = info.get("quick")
    if quick is None:  # written before "quick" was recorded: the quick size's steps tell
        quick = all(stored.get(k) == getattr(QUICK, k) for k in SIZE_FIELDS if k in stored)
    if not isinstance(quick, bool):
        raise UserError(f"{path}: {prefix}quick is {quick!r}, not true or false; "
                        f"{_anew(path)}")
    values = {}
    for name, default in asdict(QUICK if quick else FULL).items():
        value = stored.get(name, default)
        if not _same_kind(value, default):
            raise UserError(f"{path}: {prefix}settings.{name} is {value!r}, not what a report "
                            f"writes; {_anew(path)}")
        values[name] = tuple(value) if isinstance(default, tuple) else value
    return Recorded(Settings(**values), quick, path)


def _anew(path: Path) -> str:
    """What to do about a damaged record: without ``report.json`` the page beside it would be
    refused as a user's file, so it goes too."""
    page = " and the page beside it (report.md, report.html, plots/)" * (
        path.name == "report.json")
    return (f"restore it, or remove it{page} and give the options the report was started with "
            f"(--quick, --seeds, --gan-regs, --classify-regs)")


def _same_kind(value: Any, default: Any) -> bool:
    """``value`` is of the type of the setting ``default`` (a sequence: of its items' type; a
    count: not negative); bools are not numbers here."""
    if isinstance(default, tuple):
        kind = type(default[0])
        return isinstance(value, list) and bool(value) and all(
            type(v) is kind and (kind is not int or v >= 0) for v in value)
    return type(value) is type(default) and (not isinstance(value, int) or value >= 0)


def report_command(settings: Settings, quick: bool, out: Path, collect: bool = False) -> str:
    """The ``robustrep report`` line that makes ``settings`` in ``out``, quoted as a shell reads
    it: the options that differ from its size's (a combination's methods joined by '+', as
    ``--gan-regs`` takes them)."""
    base = QUICK if quick else FULL
    argv = ["robustrep", "report", *["--collect"] * collect, *["--quick"] * quick]
    for field, flag in GIVEN:
        if getattr(settings, field) != getattr(base, field):
            argv += [flag, *_values(field, getattr(settings, field))]
    return shlex.join([*argv, "--out", str(out)])


def _values(field: str, values: tuple) -> list[str]:
    if field == "seeds":
        return [str(seed) for seed in values]
    return [",".join(_joined(setting) for setting in values)]


def _joined(setting: str) -> str:
    """A setting as ``--gan-regs`` takes it: its methods joined by '+' (``mixup+cutmix``), its
    own options after '@' as they are."""
    methods, at, options = setting.partition("@")
    return methods.replace(",", "+") + at + options


def covering(settings: Settings, earlier: Recorded | None) -> Settings:
    """``settings`` with the seeds and settings of the folder's report that it lacks: the
    report whose command trains the runs of both, and leaves none of the folder's out."""
    if earlier is None:
        return settings
    return replace(settings, **{field: getattr(earlier.settings, field) + tuple(
        v for v in getattr(settings, field) if v not in getattr(earlier.settings, field))
        for field, _ in GIVEN})


def check_same_report(settings: Settings, quick: bool, earlier: Recorded, out: Path,
                      collect: bool) -> None:
    """Refuse, before any run, options that would leave the runs of the report in ``out`` off
    the page that replaces its own: ``--quick`` over a report of the default size (every run
    trained at another size), or, unless ``--collect`` (which shows some of them on purpose),
    seeds or settings without some of its own. Seeds or settings added to its own continue
    it."""
    mine = earlier.settings
    if quick != earlier.quick:
        gone = ["--quick would leave out every run of it (trained at the default size)"]
    else:
        gone = [f"{flag} {' '.join(_values(field, getattr(settings, field)))} would leave out "
                f"its runs of {', '.join(_values(field, lost))}" for field, flag in GIVEN
                if not collect and (lost := tuple(v for v in getattr(mine, field)
                                                  if v not in getattr(settings, field)))]
    if not gone:
        return
    add = ("" if quick != earlier.quick else
           f"; `{report_command(covering(settings, earlier), quick, out)}` adds yours to it")
    own = report_command(mine, earlier.quick, out, collect)
    raise UserError(f"--out {out} holds a report that `{own}` "
                    f"{'reads' if collect else 'continues'}; {'; '.join(gone)} and replace its "
                    f"page{add}; give another --out for a different report")
