"""What ``robustrep ood score`` writes: ``results.json``, ``.csv`` and ``.md``, ``scores.pt``,
and an ROC curve and a score histogram per OOD set; and how a second call into the same folder
merges with the first (rows keyed by detector and OOD set; other settings replace them all).

One results file holds the rows of one run (or one model from elsewhere): its record names the
run once (``run``, its resolved path) and its rows name only detector and OOD set, so rows of
two runs cannot share it. Another run's results are never replaced: ``--out`` holding them is
refused before any work (:func:`check_same_run`), as ``gan eval`` and ``classify eval`` refuse
another run's record."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustrep.tasks.common.classifier_run import weights_label
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.eval_records import as_own_run, check_same_run, setting_changes
from robustrep.tasks.common.folder_guard import make_folder
from robustrep.tasks.common.runfiles import write_text_atomic
from robustrep.tasks.ood.results import (AS_FRACTIONS, IN_PERCENT, METRICS, UNITS,
                                         DetectorResult, ScoreResult, compute_metrics, legend,
                                         write_fraction_csv)


# Settings under which two calls' rows belong in one table (fit_data and the train size only
# when both calls fitted a detector: a call of unfitted detectors reads no train data). The
# image size is a --model's option (``--image-size``, a run's own): two calls of one checkpoint
# at other sizes read the ID data otherwise under one ``id`` name.
# mean and std too: other input statistics are another model as much as other weights are (a
# results.json from before they were recorded has neither, and merges as it did); amp, as
# half-precision features score otherwise
_SAME_SETTINGS = ("run", "model", "weights", "step", "id", "image_size", "feature_maps",
                  "resize", "seed", "ema", "mean", "std", "amp")


def read_earlier(path: Path) -> dict[str, Any] | None:
    """The results.json of an earlier ``ood score`` into the same folder (check_replaceable
    has made sure it is one), or None. Damaged (also since that check: it is read again under
    the folder's lock): a RunFolderError naming it."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except ValueError:  # not JSON (any more): as damaged as rows without keys
        old = None
    rows = old.get("results") if isinstance(old, dict) else None
    if not (isinstance(rows, list) and all(isinstance(r, dict) and {"detector", "ood"} <= r.keys()
                                           for r in rows)):
        raise RunFolderError(f"{path} is damaged (its results are not rows with detector and "
                             f"ood); remove it or give --out another folder")
    return old


def _differences(old: dict[str, Any], meta: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    old = as_own_run(old, meta)  # its rows merge as the run's own
    diff = setting_changes(old, meta, _SAME_SETTINGS)
    if old.get("fit_data") and meta.get("fit_data") and old["fit_data"] != meta["fit_data"]:
        diff.append(f"fit_data {old['fit_data']!r} -> {meta['fit_data']!r}")
    # every set both calls read (an OOD set under another --max-samples: its rows of both calls
    # under one size in the header)
    old_sizes = old.get("sizes") or {}
    diff += [f"{k} size {old_sizes[k]} -> {sizes[k]}" for k in sizes
             if k in old_sizes and old_sizes[k] != sizes[k]]
    return diff + _param_changes(old, meta)


def _param_changes(old: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """A detector of both calls scored now with other ``--param`` values: its rows of the two
    calls would share one table, one record of its params and its ID scores in scores.pt
    (the earlier OOD sets' scores judged against the new ID scores gave AUROC 0)."""
    before, now = old.get("params") or {}, meta["params"]
    measured = {r["detector"] for r in old["results"]}
    return [f"{d} params {before.get(d) or {}!r} -> {now.get(d) or {}!r}"
            for d in meta["detectors"] if d in measured
            and (before.get(d) or {}) != (now.get(d) or {})]


def keep_earlier(result: ScoreResult, old: dict[str, Any] | None, meta: dict[str, Any],
                  path: Path) -> dict[str, Any] | None:
    """Keep an earlier call's rows that this call did not measure again (``result.previous``)
    when both were measured under the same settings; say what was replaced. Returns the earlier
    record to merge with, or None."""
    if old is None:
        return None
    rows = [{**r, **{m: math.nan if r.get(m) is None else r[m] for m in METRICS}}
            for r in old["results"]]
    diff = _differences(old, meta, result.sizes)
    if diff:
        result.notes.append(f"replaced all {len(rows)} rows of the earlier {path}: they were "
                            f"measured under other settings ({'; '.join(diff)}); give --out a "
                            f"new folder to keep both")
        return None
    result.previous = rows
    again = result.replaced()
    if again:
        result.notes.append(f"replaced {len(again)} rows of the earlier {path} measured again: "
                            f"{', '.join(again)}")
    kept = len(rows) - len(again)
    if kept:
        result.notes.append(f"kept {kept} rows of the earlier {path} (other detectors or OOD "
                            f"sets); the table shows both calls")
    return old


def format_table(result: ScoreResult) -> str:
    """A Markdown table: detector x OOD set with the metrics (in %, as papers report), and a
    legend saying which rate each FPR holds at 95%."""
    head = "| detector | OOD set | " + " | ".join(METRICS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(METRICS)]
    for row in result.merged_rows():
        name, ood = _md(row["detector"]), _md(row["ood"])  # a "|" in a name is no column break
        if row["error"]:
            lines.append(f"| {name} | {ood} | failed: {_md(row['error'][:80])} "
                         + "| " * (len(METRICS) - 1) + "|")
            continue
        vals = " | ".join(f"{100 * row[m]:.2f}" for m in METRICS)
        lines.append(f"| {name} | {ood} | {vals} |")
    return "\n".join(lines + ["", legend(IN_PERCENT)])


def format_header(record: dict[str, Any]) -> str:
    """What results.md and the terminal say above the table (results.json's record): what was
    scored with which weights, the ID test accuracy and each set's size. results.md was the
    table alone, and the terminal's accuracy named no weights."""
    kind = weights_label(record) or "raw weights"  # results.json has always said which
    step, steps = record.get("step"), record.get("steps")
    at = "" if step is None else f", step {step}" + (f" of {steps}" if steps else "")
    if record.get("run"):
        scored = f"run {record['run']} ({record.get('model')}, {kind}{at})"
    else:  # a model no run made: its weights file, or timm's pretrained weights
        source = "" if record.get("weights") == "pretrained" else f"{record.get('weights')}, "
        scored = f"--model {record.get('model')} ({source}{kind}{at})"
    acc = record.get("id_accuracy")
    acc = "n/a" if acc is None else f"{100 * acc:.2f}% ({kind})"
    sizes = ", ".join(f"{k} {v}" for k, v in (record.get("sizes") or {}).items())
    return (f"# OOD scores of {scored}\n\nID test accuracy {acc}; ID set {record.get('id')}; "
            f"images per set: {sizes}\n")


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _finite(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None


def _merged_meta(meta: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """The record's lists and maps over both calls (this call's entries win)."""
    dets = meta["detectors"]
    merged = dict(meta)
    merged["ood"] = list(dict.fromkeys([*earlier.get("ood", []), *meta["ood"]]))
    merged["params"] = {**{k: v for k, v in (earlier.get("params") or {}).items()
                           if k not in dets}, **meta["params"]}
    for key in ("groups", "ood_specs"):
        both = {**(earlier.get(key) or {}), **(meta.get(key) or {})}
        merged[key] = both or None
    return merged


def write_merged(result: ScoreResult, out_dir: Path, meta: dict[str, Any], plots: bool = True,
                 save_scores: bool = False, show_progress: bool = False) -> dict[str, Path]:
    """Write this call's outputs merged with an earlier call's in the same folder, under the
    folder's lock: two calls used to read the results at their start and write them back at
    their end, and the first one's rows were lost. A killed call's temp files go. A stop waits
    for the whole set (held_stops): results.json named rows the tables and scores lacked."""
    from robustrep.tasks.common.runlock import output_lock
    from robustrep.tasks.common.stops import held_stops
    with output_lock(out_dir), held_stops(f"the results in {out_dir}"):
        old = read_earlier(out_dir / "results.json")
        check_same_run(old, out_dir, meta["run"], "results",
                       f"--model {meta['model']}")  # written there meanwhile
        earlier = keep_earlier(result, old, meta, out_dir / "results.json")
        if old is not None and earlier is None:
            remove_earlier_outputs(result, out_dir, old)
        return write_outputs(result, out_dir, meta, plots=plots, save_scores=save_scores,
                             earlier=earlier, show_progress=show_progress)


# what write_outputs writes beside results.json (one roc/hist picture per OOD set)
OUTPUTS = ("results.csv", "results.md", "scores.pt", "roc_*.png", "hist_*.png")

def write_outputs(result: ScoreResult, out_dir: str | Path, meta: dict[str, Any],
                  plots: bool = True, save_scores: bool = False,
                  earlier: dict[str, Any] | None = None,
                  show_progress: bool = False) -> dict[str, Path]:
    """Write ``results.json``, ``.csv``, ``.md``, ``scores.pt`` and per-OOD-set PNGs to ``out_dir``.

    ``scores.pt`` holds every detector's scores (with the plots, or with ``save_scores``): a
    later call into the folder draws its OOD sets' pictures with the detectors of both calls.
    ``earlier``: the results.json of an earlier call whose rows ``result.previous`` keeps; the
    files then hold both calls' rows and scores. ``show_progress``: a bar over the OOD sets'
    pictures (about half of a small call's time, which had passed without a word).
    """
    out = Path(out_dir)
    make_folder(out)  # under write_merged's lock: never again, should it be removed meanwhile
    files = _write_tables(result, out, meta, earlier)
    scores = _merged_scores(result, out / "scores.pt" if earlier is not None else None)
    if plots or save_scores or (out / "scores.pt").is_file():  # an earlier one kept in step
        from robustrep.tasks.common.checkpoint import save_atomic
        files["scores"] = save_atomic(scores, out / "scores.pt")
    if plots:
        files.update(_draw(result, out, scores, show_progress))
    elif earlier is not None:
        _remove_pictures(result, out, result.ood_names, "this call measured them without plots")
    return files


def _write_tables(result: ScoreResult, out: Path, meta: dict[str, Any],
                  earlier: dict[str, Any] | None) -> dict[str, Path]:
    rows = result.merged_rows()
    detectors = {d.name: {"error": d.error, "fit_seconds": round(d.fit_seconds, 3),
                          "score_seconds": round(d.score_seconds, 3)}
                 for d in result.detectors.values()}
    if earlier is not None:
        meta = _merged_meta(meta, earlier)
        detectors = {**earlier.get("detectors", {}), **detectors}
    payload = {
        **meta,
        # the file's own unit (results.md and the terminal give percent)
        "fpr_conventions": legend(AS_FRACTIONS), "units": UNITS,
        "id_accuracy": result.id_accuracy,
        "sizes": {**((earlier or {}).get("sizes") or {}), **result.sizes},
        "extract_seconds": round(result.extract_seconds, 3),
        **result.info,
        "detectors": detectors,
        "results": [{k: (_finite(v) if k in METRICS else v) for k, v in r.items()} for r in rows],
    }
    files = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    write_text_atomic(files["json"], json.dumps(payload, indent=2) + "\n")
    write_fraction_csv(files["csv"], rows, ["detector", "ood", *METRICS, "error"], METRICS)
    write_text_atomic(files["md"], format_header(payload) + "\n" + format_table(result) + "\n")
    return files


def _merged_scores(result: ScoreResult, earlier: Path | None) -> dict[str, dict[str, Any]]:
    """``{detector: {"id": scores, ood_set: scores}}``: an earlier call's (``earlier``, its
    scores.pt) with this call's replacing the sets it measured; a detector that failed now
    loses its earlier scores of those sets, as its rows are replaced by the failure."""
    from robustrep.tasks.common.checkpoint import safe_load
    scores = (safe_load(earlier, "earlier ood scores") if earlier is not None
              and earlier.is_file() else {})
    for d in result.detectors.values():
        if d.error is None:
            scores[d.name] = {**scores.get(d.name, {}), "id": d.id_scores, **d.ood_scores}
        elif d.name in scores:
            scores[d.name] = {k: v for k, v in scores[d.name].items()
                              if k not in result.ood_names}
    return scores


def _draw(result: ScoreResult, out: Path, scores: dict[str, dict[str, Any]],
          show_progress: bool = False) -> dict[str, Path]:
    """ROC curves and score histograms of each OOD set this call measured, with every detector
    whose scores of it are known (this call's and an earlier call's)."""
    from robustrep.tasks.common.progress import progress
    files: dict[str, Path] = {}
    rows = result.merged_rows()
    with progress(len(result.ood_names), desc="pictures", enabled=show_progress,
                  unit="OOD set") as bar:
        for ood in result.ood_names:
            files.update(_draw_set(result, out, scores, rows, ood))
            bar.update(1)
    return files


def _draw_set(result: ScoreResult, out: Path, scores: dict[str, dict[str, Any]],
              rows: list[dict[str, Any]], ood: str) -> dict[str, Path]:
    """The ROC curves and histograms of OOD set ``ood``; none, and its earlier ones removed,
    where no detector's scores of it are kept."""
    from robustrep.tasks.common.plots import histogram_grid, roc_curves, roc_curves_many
    names = [r["detector"] for r in rows if r["ood"] == ood and not r.get("error")]
    drawn = [n for n in names if ood in scores.get(n, {}) and "id" in scores[n]]
    if len(drawn) < len(names):
        result.notes.append(f"roc_{_slug(ood)}.png leaves out "
                            f"{', '.join(n for n in names if n not in drawn)}: an earlier "
                            f"call kept no scores of them (it ran with --no-plots)")
    if not drawn:
        _remove_pictures(result, out, [ood], "no detector's scores of it are kept")
        return {}
    curves = {n: _curve(result.detectors.get(n), scores[n], ood) for n in drawn}
    draw = roc_curves if len(curves) <= 8 else roc_curves_many
    panels = {n: {"ID": scores[n]["id"], ood: scores[n][ood]} for n in drawn}
    return {f"roc_{ood}": draw(curves, out / f"roc_{_slug(ood)}.png", title=f"ID vs {ood}"),
            f"hist_{ood}": histogram_grid(panels, out / f"hist_{_slug(ood)}.png",
                                          title=f"outlier scores, ID vs {ood}")}


def _curve(det: DetectorResult | None, scores: dict[str, Any], ood: str) -> tuple[Any, Any, float]:
    """(fpr, tpr, AUROC): this call's, or computed from an earlier call's scores."""
    if det is not None and det.error is None:
        return (*det.roc[ood], det.metrics[ood]["AUROC"])
    metrics, (fpr, tpr) = compute_metrics(scores["id"], scores[ood])
    return fpr, tpr, metrics["AUROC"]


def _remove_pictures(result: ScoreResult, out: Path, sets: Sequence[str], why: str) -> None:
    """Remove the PNGs an earlier call drew of ``sets``: they no longer show the table."""
    gone = [p.name for ood in sets for p in (out / f"roc_{_slug(ood)}.png",
                                            out / f"hist_{_slug(ood)}.png") if p.is_file()]
    for name in gone:
        (out / name).unlink()
    if gone:
        result.notes.append(f"removed the earlier {', '.join(gone)}: {why}")


def remove_earlier_outputs(result: ScoreResult, out: Path, old: dict[str, Any]) -> None:
    """An earlier call's scores.pt and pictures, when its rows were all replaced (other
    settings): they would show what the table no longer holds."""
    if (out / "scores.pt").is_file():
        (out / "scores.pt").unlink()
        result.notes.append(f"removed the earlier {out / 'scores.pt'} with its rows")
    _remove_pictures(result, out, [o for o in old.get("ood", []) if isinstance(o, str)],
                     "their rows were replaced")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
