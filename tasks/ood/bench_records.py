"""A second ``ood bench`` into the same ``--out``: the earlier call's ``bench.json`` read back
and its rows merged with this call's.

A second bench keeps the earlier call's results of the regularizers it does not run, when both
asked for the same settings (:func:`asked_for`): ``bench.json`` holds the per-run records and ID
accuracies the tables are computed from, so the merged tables are those a single call of every
regularizer would write. Under other settings they are replaced, with a note.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.ood.bench_tables import SUMMARY_METRICS


def asked_for(seeds, specs, ood, model, steps, preset, opts, feature_maps, seed,
              params) -> dict[str, Any]:
    """What defines every regularizer's rows but the regularizer (as JSON reads it back): an
    earlier bench into the folder asked for the same keeps the rows of its other regularizers.
    Where and how fast it ran (device, batch size, amp, workers) is left out, as ``ood score``
    leaves it out of its merge."""
    return json.loads(json.dumps({
        "seeds": sorted(seeds), "detectors": sorted(x.name for x in specs), "ood": sorted(ood),
        "model": model, "steps": steps, "preset": preset, "train_opts": opts,
        "feature_maps": feature_maps, "seed": seed, "params": params}, default=str))


def read_earlier(path: Path) -> dict[str, Any] | None:
    """The bench.json an earlier bench wrote into the folder, or None; another file of that
    name is refused, named (before any run is trained, and again under the folder's lock)."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if not (isinstance(old, dict) and isinstance(old.get("regs"), list)
            and isinstance(old.get("summary"), list)):
        raise RunFolderError(f"{path} is not a bench.json that robustrep ood bench can read "
                             f"(its results are merged with this call's); remove it or give "
                             f"--out another folder")
    return old


def keep_earlier(old: dict[str, Any] | None, asked: dict[str, Any], regs: list[str],
                 path: Path) -> tuple[dict[str, Any], list[str]]:
    """The per-run records, accuracies and timings of the earlier bench's regularizers this call
    does not run, when it asked for the same (:func:`asked_for`), and notes saying what was kept or
    replaced. A rerun with fewer ``--regs`` replaced the others' rows without a word."""
    none: dict[str, Any] = {"regs": [], "order": [], "records": [], "runs": [], "timings": []}
    others = [r for r in (old or {}).get("regs", []) if r not in regs]
    if not others:
        return none, []
    names = ", ".join(others)
    before = old.get("asked")
    if not isinstance(before, dict) or not isinstance(old.get("records"), list):
        return none, [f"replaced the earlier {path}'s results of {names}: it keeps no per-run "
                      f"records to merge (written before they were kept); add them to --regs "
                      f"(their finished runs are reused) or give --out a new folder"]
    diff = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in asked.items() if before.get(k) != v]
    if diff:
        return none, [f"replaced the earlier {path}'s results of {names}: they were measured "
                      f"under other settings ({'; '.join(diff)}); give --out a new folder to "
                      f"keep both"]
    kept = {key: [r for r in old.get(key) or [] if isinstance(r, dict) and r.get("reg") in others]
            for key in ("records", "runs", "timings")}
    kept["records"] = [{**r, **{m: math.nan if r.get(m) is None else r[m]
                                for m in SUMMARY_METRICS}} for r in kept["records"]]
    note = (f"kept the earlier {path}'s results of {names} (regularizers this call did not "
            f"run); the tables show both calls")
    return {"regs": others, "order": list(old["regs"]), **kept}, [note]


def merged_order(earlier: list[str], kept: list[str], regs: list[str]) -> list[str]:
    """The table's regularizers: the earlier call's order (``earlier``), of those ``kept`` and
    those run again, then this call's new ones; only this call's when none is kept."""
    if not kept:
        return list(regs)
    return [r for r in earlier if r in kept or r in regs] + [r for r in regs if r not in earlier]
