"""The records of a report's runs read back (:func:`collect`): a GAN run's final metrics and
FID curve, a classifier run's ``classify eval`` summary and ``ood score`` detectors, and the
runs left out with a line each (unfinished, of another size, a value that is no finite number,
trained or measured otherwise than the others: :mod:`.measured`). Planning and executing the runs
is :mod:`.runs`'.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustrep.tasks.common.run_records import read_run
from robustrep.tasks.common.runfiles import read_json
from robustrep.tasks.report.measured import (UNRECORDED, differences, eval_settings,
                                             ood_settings, radius, train_settings)
from robustrep.tasks.report.runs import FULL, GAN_KEYS, QUICK, Run, redo


OTHER_SIZE = "trained at another size"


TRAIN_IT = "run without --collect to train it"


def collect(runs: list[Run], train: str = TRAIN_IT) -> tuple[list[dict[str, Any]], list[str]]:
    """One flat record per finished run (task, reg, seed and its metrics), and a line for each
    run the page leaves out (:func:`_left_out`; ``train``: how to train one not finished, or
    again one whose folder is removed)."""
    records, missing = [], []
    for run in runs:
        reason = _left_out(run, train)
        if reason is not None:
            missing.append(f"{run.task}/{run.reg}/seed{run.seed}: {reason}")
            continue
        name = f"{run.task}/{run.reg}/seed{run.seed}"
        read = _read_classify if run.task == "classify" else _read_gan
        values, cells = read(run.folder)
        missing += [f"{name}: {line}" for line in cells]
        records.append({"task": run.task, "reg": run.reg, "seed": run.seed, **values})
    folders = {(run.task, run.reg, run.seed): run.folder for run in runs}
    return _measured_alike(records, missing, folders)


def _left_out(run: Run, train: str = TRAIN_IT) -> str | None:
    """Why ``run``'s folder cannot stand for it on the page, or None: not finished (killed,
    failed, not started), trained for another number of steps (another report size in the same
    folder), another run's folder (copied or moved: a repeated seed would show a zero spread),
    or a final evaluation missing from ``metrics.jsonl`` (a damaged line: an earlier
    evaluation would stand in for it)."""
    if not run.done:
        state = "unfinished in" if run.folder.exists() else "not started: no"
        return f"{state} {run.folder}; left out ({train})"
    summary = read_run(run.folder, advice=redo)
    trained = summary.config.get("steps")
    # before its size: a classifier's run copied into a GAN run's place was "trained at
    # another size", and no options given to the report would have read it
    for key, planned in _identity(run).items():
        if str(summary.config.get(key)) != planned:
            return (f"{run.folder} holds another run ({key} {summary.config.get(key)!r} in its "
                    f"config.json, this report's {planned!r}); left out (copied or moved?)")
    # e.g. a --quick report's runs read by a report at the default size
    if run.steps is not None and trained != run.steps:
        return (f"{OTHER_SIZE} ({trained} steps, this report's {run.steps}) in {run.folder}; "
                f"left out (give the options it was made with{_size_example(run, trained)})")
    final = summary.last(*GAN_KEYS).get("step")
    if run.task != "classify" and final != trained:
        where = f"the last is at step {final}" if final is not None else "there is none"
        return (f"{run.folder / 'metrics.jsonl'} holds no evaluation at the final step "
                f"{trained} ({where}: a damaged line?); left out (remove the folder; {train})")
    last = summary.last(*GAN_KEYS)
    bad = next((k for k in GAN_KEYS if last.get(k) is not None and (
        isinstance(last[k], bool) or not isinstance(last[k], (int, float)))), None)
    if run.task != "classify" and bad is not None:  # a hand-edited or damaged record
        return (f"{run.folder / 'metrics.jsonl'}: the final {bad} is {last[bad]!r}, not a "
                f"number; left out (remove the folder; {train})")
    return None


def _size_example(run: Run, trained: Any) -> str:
    """Which size ``trained`` steps are, as an example of the options to give: ``--quick``
    given to a default report's runs (``--collect`` honours it) wants "without --quick"."""
    steps = {"gan": "gan_steps", "grid": "grid_steps", "classify": "classify_steps"}[run.task]
    if trained == getattr(QUICK, steps):
        return ", e.g. --quick"
    return ", e.g. without --quick" if trained == getattr(FULL, steps) else ""


def _identity(run: Run) -> dict[str, str]:
    """The options of ``run``'s training command that its folder name stands for."""
    argv = run.commands[0] if run.commands else []
    flags = {"--reg": "reg", "--seed": "seed", "--preset": "preset", "--model": "model"}
    return {key: argv[argv.index(flag) + 1] for flag, key in flags.items() if flag in argv}


def _measured_alike(records: list[dict[str, Any]], missing: list[str],
                    folders: dict[tuple[str, str, int], Path]
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """Leave out, with a line naming each option or setting that differs (:mod:`.measured`),
    the runs trained otherwise than most seeds of their cell (a ``--lr`` or ``--cutmix-alpha``
    given by hand to one seed), then the classify runs evaluated or scored otherwise than most
    (a later ``classify eval --eps 4/255`` or ``--severities 1``, an ``ood score --ood gaussian
    --seed 3`` into the run): the page averages each metric over seeds, and would average unlike
    runs under one name or show a column of one. Trained first: training it again measures it
    again."""
    trained = {_key(r): _trained(folders[_key(r)], r["task"]) for r in records}
    records = _apart(records, missing, folders, lambda r: trained[_key(r)],
                     lambda r: (r["task"], r["reg"]), "trained otherwise than the other seeds",
                     _train_again)
    records = _apart(records, missing, folders, lambda r: r["settings"],
                     lambda r: r["task"] if r["task"] == "classify" else None,
                     "measured otherwise than the other runs", _measure_again)
    return records, missing


def _apart(records: list[dict[str, Any]], missing: list[str],
           folders: dict[tuple[str, str, int], Path],
           settings: Callable[[dict[str, Any]], dict[str, str]],
           group: Callable[[dict[str, Any]], Any], said: str,
           again: Callable[[Path | None, list[str]], str]) -> list[dict[str, Any]]:
    """``records`` but those whose ``settings`` differ from the most common of their ``group``
    (None: not compared), each left out with a line in ``missing``: ``said``, the differences
    and how to make it ``again`` as the others (a function of its folder and the differences)."""
    kinds: Counter = Counter()
    first: dict[Any, dict[str, str]] = {}
    for r in records:
        if group(r) is not None:
            kind = (group(r), frozenset(settings(r).items()))
            kinds[kind] += 1
            first.setdefault(kind, settings(r))
    usual: dict[Any, dict[str, str]] = {}
    for kind, _ in kinds.most_common():  # a tie: the first run read (the lower seed)
        usual.setdefault(kind[0], first[kind])
    kept = []
    for r in records:
        if group(r) is None or settings(r) == usual[group(r)]:
            kept.append(r)
            continue
        diffs = differences(settings(r), usual[group(r)])
        missing.append(f"{r['task']}/{r['reg']}/seed{r['seed']}: {said}: {'; '.join(diffs)}; "
                       f"left out ({again(folders.get(_key(r)), diffs)})")
    return kept


def _key(record: dict[str, Any]) -> tuple[str, str, int]:
    return record["task"], record["reg"], record["seed"]


def _trained(folder: Path, task: str) -> dict[str, str]:
    """What the run in ``folder`` was trained with (:func:`.measured.train_settings`); its
    ``regularizers.json`` read as none when missing (no regularizer, or an older version's)."""
    from robustrep.tasks.common.regularizer_record import RECORD_FILE, read_history
    from robustrep.tasks.common.errors import RunFolderError
    path = folder / RECORD_FILE
    try:
        history = read_history(path) if path.exists() else []
    except (RunFolderError, ValueError):  # damaged: read "unreadable", unlike the others'
        history = None
    return train_settings(read_run(folder, advice=redo).config, history, task)


def _train_again(folder: Path | None, diffs: list[str]) -> str:
    """How to train a run as the others: its folder removed, the report trains it again."""
    return (f"remove {folder or 'its folder'} and run the report again (without --collect): it "
            f"is trained again, with the report's options")


def _measure_again(folder: Path | None, diffs: list[str]) -> str:
    """How to measure a run as the others: its eval or ood folder removed, the report's own
    command writes it again (``--collect`` reads only)."""
    parts = [p for p, program in (("eval", "classify eval"), ("ood", "ood score"))
             if any(d.startswith(program) for d in diffs)]
    where = " and ".join(str(folder / p) if folder else p for p in parts)
    these = ("the commands that write them run" if len(parts) > 1
             else "the command that writes it runs")
    return (f"remove {where} and run the report again (without --collect): {these} again, "
            f"with the settings of the others")


# what a GAN run's final evaluation measured, from its record (a dict: not averaged as a metric)
GAN_EVALUATION = ("generator", "num_samples", "num_real", "kid_subsets", "kid_subset_size",
                  "pr_samples", "pr_samples_real", "pr_k")


def _read_gan(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The final metrics, step time and FID curve, and under ``evaluation`` what they were
    measured on (:data:`GAN_EVALUATION`, and the run's ``eval_every``, the FID curve's step);
    and a line for each final metric that is no finite number (JSON's NaN, Infinity)."""
    run = read_run(folder, advice=redo)
    final = run.last(*GAN_KEYS)
    evaluation = {k: final[k] for k in GAN_EVALUATION if k in final}
    if "eval_every" in run.config:
        evaluation["eval_every"] = run.config["eval_every"]
    metrics, lines = _finite(run.metrics(*GAN_KEYS), folder / "metrics.jsonl", "the final ")
    return {**metrics, "step_seconds": run.step_seconds, "fid_curve": run.curve("fid"),
            "evaluation": evaluation}, lines


def _finite(values: dict[str, Any], path: Path, where: str) -> tuple[dict[str, Any], list[str]]:
    """``values`` without its non-finite numbers, and a line naming each (its file and key):
    the page's mean skipped them, and its cell read "(1 of 2 runs)" without a word."""
    kept, lines = {}, []
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            lines.append(f"{path}: {where}{key} is {json.dumps(value)}, not a finite number; "
                         f"left out of the {key} cells")
        else:
            kept[key] = value
    return kept, lines


def attack_keys(summary: dict[str, Any]) -> list[str]:
    """The columns of a classify eval's summary that are one attack's accuracy (``pgd10_acc``)."""
    return sorted(k for k in summary if k.endswith("_acc") and k not in
                  ("clean_acc", "robust_acc", "corruption_acc"))


def _read_classify(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The run's eval summary and OOD cells, and a line for each detector left out of them."""
    path = folder / "eval" / "report.json"
    report = read_json(path, dict, advice=redo(path))
    summary = report.get("summary")
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float))
               and not isinstance(v, bool)} if isinstance(summary, dict) else {}
    out, lines = _finite(numbers, path, "summary.")
    attacks = attack_keys(numbers)  # a NaN column was still evaluated: its attack counts
    out["evaluated"] = _evaluated(report, attacks)
    out["clean_images"] = clean_images(report)
    ood_path = folder / "ood" / "results.json"
    scored = read_json(ood_path, dict, advice=redo(ood_path))
    rows = [r for r in scored.get("results", []) if isinstance(r, dict)]
    ood, ood_lines = _ood_cells(rows, ood_path)
    if "clean_acc" not in numbers:  # the page showed "–" cells, exit 0, not a word of why
        lines.insert(0, f"{path} holds no clean_acc in its summary (damaged, or not a classify "
                        f"eval's); left out of the classifier cells ({redo(path)})")
    out.update(ood)
    out["settings"] = {**eval_settings(report, attacks, out["clean_images"]),
                       **ood_settings(scored, rows)}
    out["step_seconds"] = read_run(folder, advice=redo).step_seconds
    return out, lines + ood_lines


def _evaluated(report: dict[str, Any], attacks: list[str]) -> str:
    """What a classify eval's robust numbers measured: its attacks, samples and radius (one
    seed evaluated again at another --eps was averaged with the others under one label)."""
    n = report.get("n_attack", report.get("n"))  # the attacked share of the n evaluated
    text = (f"{', '.join(attacks) or 'no attack'} on "
            f"{n if n is not None else 'an unrecorded number of'} samples")
    threat = radius(report)  # none: no attack ran
    return text if threat in ("none", UNRECORDED) else f"{text}, {threat}"


def clean_images(report: dict[str, Any]) -> str:
    """The images a classify eval's clean accuracy, ECE and corruption accuracy are over: the
    first ``n`` of its split (``--max-samples``; the report's runs are not on the whole split)."""
    n, split = report.get("n"), report.get("split")
    images = f"{split} images" if isinstance(split, str) else "images"
    return f"the first {n} {images}" if isinstance(n, int) else f"an unrecorded number of {images}"


def _ood_cells(rows: list[dict[str, Any]], path: Path) -> tuple[dict[str, float], list[str]]:
    """Each detector's metrics averaged over the OOD sets of the ``rows`` of ``ood score``'s
    ``path``. A detector that failed on some sets (metrics null or not finite, an error) or has
    no row for some is left out of this run's cells, with a line: its mean would cover fewer
    sets than the other seeds' and the cell would average unlike measurements under one name.
    (Runs scored on other sets or settings than the others: :func:`_measured_alike`.)"""
    sets = list(dict.fromkeys(r.get("ood") for r in rows))
    by_detector: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_detector.setdefault(row.get("detector"), []).append(row)
    out: dict[str, float] = {}
    lines = []
    for detector, det_rows in by_detector.items():
        bad = [r for r in det_rows if r.get("error") or not all(
            isinstance(r.get(m), (int, float)) and math.isfinite(r[m])
            for m in _ood_metrics(rows))]
        absent = [s for s in sets if s not in {r.get("ood") for r in det_rows}]
        if bad or absent:
            lines.append(_partial_line(detector, bad, absent, len(sets), path))
            continue
        for metric in _ood_metrics(det_rows):
            values = [r[metric] for r in det_rows]
            out[f"ood/{detector}/{metric}"] = sum(values) / len(values)
    return out, lines


def _ood_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """The metric columns of result rows: every numeric field but the names."""
    return sorted({k for r in rows for k, v in r.items() if k not in ("detector", "ood", "error")
                   and isinstance(v, (int, float)) and not isinstance(v, bool)})


def _partial_line(detector: str, bad: list[dict[str, Any]], absent: list[str], total: int,
                  path: Path) -> str:
    why = []
    if bad:
        error = next((r["error"] for r in bad if r.get("error")),
                     "metrics missing or not finite")
        why.append(f"failed on {', '.join(str(r.get('ood')) for r in bad)} ({error[:100]})")
    if absent:
        why.append(f"not scored on {', '.join(map(str, absent))}")
    return (f"{detector} {' and '.join(why)}, {len(bad) + len(absent)} of the {total} OOD sets "
            f"in {path}; left out of the {detector} cells (its mean would cover fewer sets than "
            f"the other runs')")
