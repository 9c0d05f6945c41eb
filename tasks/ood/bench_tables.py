"""The comparison a bench writes: per (regularizer, detector, OOD set), the mean and sample
standard deviation over seeds of each metric, the Markdown table, the findings paragraph, and
the files (``bench.json``, ``bench.md``, CSVs, bar charts).

Both FPR@95 conventions are tabled (``fpr95_id_tpr``: OOD accepted at 95% ID TPR,
Hendrycks/ODIN; ``fpr95_ood_tpr``: ID flagged at 95% OOD TPR, pytorch-ood and OpenOOD v1.5).
The findings paragraph answers the question AdaptiveMix (Liu et al., "AdaptiveMix: Improving
GAN Training via Feature Space Shrinkage", CVPR 2023, WentianZhang-ML/AdaptiveMix) raises when
it reports better OOD detection with feature-space shrinkage: where AdaptiveMix is ahead of or
behind the unregularized baseline by more than the seed-to-seed spread, said either way.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from typing import Any

from robustrep.tasks.common.runfiles import write_json, write_text_atomic
from robustrep.tasks.ood.results import AS_FRACTIONS, UNITS, legend, write_fraction_csv

# what a bench writes beside its bench.json (write_files), as check_replaceable's glob patterns
BENCH_FILES = ("bench.md", "bench.csv", "bench_runs.csv", "bench_*.png")
SUMMARY_METRICS = ("AUROC", "fpr95_id_tpr", "fpr95_ood_tpr", "AUPR-IN", "AUPR-OUT")
TABLE_METRICS = (("AUROC", "higher is better"),
                 ("fpr95_id_tpr", "share of OOD accepted at 95% ID TPR; lower is better"),
                 ("fpr95_ood_tpr", "share of ID flagged at 95% OOD TPR; lower is better"))
# what bench.json says of its numbers, as bench.md's headings do (there in percent): the JSON
# and CSVs said nothing of direction, FPR definitions, unit or which std
JSON_CONVENTIONS = (f"{legend(AS_FRACTIONS)} Each cell is the mean over seeds and the sample "
                    "standard deviation over seeds (ddof=1; null for one seed). The findings' "
                    "differences are AUROC percentage points.")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std of the finite values; one value has no spread (std NaN, not 0)."""
    values = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def aggregate(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (reg, detector, ood): mean and std over seeds of each metric."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["reg"], r["detector"], r["ood"])].append(r)
    out = {}
    for key, rows in groups.items():
        entry: dict[str, Any] = {"n": sum(1 for r in rows if not r["error"])}
        for m in SUMMARY_METRICS:
            entry[m] = mean_std([r[m] for r in rows if not r["error"]])
        entry["errors"] = sorted({r["error"] for r in rows if r["error"]})
        out[key] = entry
    return out


def avg_over_ood(records, regs, detectors) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (reg, detector): mean/std over seeds of the AUROC averaged over OOD sets."""
    per_seed: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in records:
        if not r["error"]:
            per_seed[(r["reg"], r["detector"], r["seed"])].append(r["AUROC"])
    out = {}
    for reg in regs:
        for det in detectors:
            vals = [statistics.fmean(v) for (rg, d, _), v in per_seed.items()
                    if rg == reg and d == det and v]
            out[(reg, det)] = mean_std(vals)
    return out


def _fmt(ms: tuple[float, float], scale: float = 100.0) -> str:
    mean, std = ms
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(std):  # one run: say so rather than print "± 0"
        return f"{scale * mean:.1f} (1 run)"
    return f"{scale * mean:.1f} ± {scale * std:.1f}"


def findings(agg, regs, detectors, oods, baseline="none", focus="adaptivemix") -> str:
    """Plain statement of where ``focus`` beats / trails ``baseline`` by more than the spread."""
    if baseline not in regs or focus not in regs:
        return ""
    better = worse = tie = unjudged = 0
    diffs = []
    for det in detectors:
        for ood in oods:
            a, b = agg.get((focus, det, ood)), agg.get((baseline, det, ood))
            if not (a and b and math.isfinite(a["AUROC"][0]) and math.isfinite(b["AUROC"][0])):
                continue
            diff = a["AUROC"][0] - b["AUROC"][0]
            spread = math.hypot(a["AUROC"][1], b["AUROC"][1])
            diffs.append(diff)
            if not math.isfinite(spread):  # a single seed: no spread to call a difference by
                unjudged += 1
            elif diff > spread:
                better += 1
            elif diff < -spread:
                worse += 1
            else:
                tie += 1
    if not diffs:
        return ""
    n = len(diffs)
    return (f"{focus} vs {baseline}, AUROC over {n} (detector, OOD set) cells: mean difference "
            f"{100 * statistics.fmean(diffs):+.2f} points; {focus} ahead by more than the "
            f"combined seed std in {better}, behind by more than it in {worse}, within it in "
            f"{tie}" + (f"; not judged in {unjudged} (one seed: no spread)" if unjudged else "")
            + ".")


def counted(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _of_seeds(n: int, seeds: int) -> str:
    """A cell some seeds failed in says over how many it is taken."""
    return f" ({n} of {seeds} seeds)" if n < seeds else ""


def format_markdown(agg, avg, acc, regs, detectors, oods, info: dict[str, Any]) -> str:
    lines = [f"# OOD bench: digits 0-4 in distribution, {counted(info['n_seeds'], 'seed')} "
             f"({', '.join(map(str, info['seeds']))}), model {info['model']}, "
             f"{info['steps']} steps"
             + (f", classify options {info['train_opts']}" if info.get("train_opts") else ""), ""]
    lines.append("ID test accuracy (mean ± sample std over seeds, %): " + "; ".join(
        f"{r} {_fmt(acc[r])}" for r in regs))
    lines.append("")
    lines.append("## AUROC averaged over the OOD sets "
                 "(%, mean ± sample std over seeds; higher is better)")
    lines.append("")
    lines.append("| detector | " + " | ".join(regs) + " |")
    lines.append("|---|" + "---:|" * len(regs))
    for det in detectors:
        cells = [_fmt(avg.get((r, det), (math.nan, math.nan))) for r in regs]
        lines.append(f"| {det} | " + " | ".join(cells) + " |")
    lines.append("")
    for metric, note in TABLE_METRICS:
        lines.append(f"## {metric} (%, mean ± sample std over seeds; {note})")
        lines.append("")
        lines.append("| OOD set | detector | " + " | ".join(regs) + " |")
        lines.append("|---|---|" + "---:|" * len(regs))
        for ood in oods:
            for det in detectors:
                cells = []
                for r in regs:
                    e = agg.get((r, det, ood))
                    cells.append("failed" if e is None or e["n"] == 0 else
                                 _fmt(e[metric]) + _of_seeds(e["n"], info["n_seeds"]))
                lines.append(f"| {ood} | {det} | " + " | ".join(cells) + " |")
        lines.append("")
    text = findings(agg, regs, detectors, oods)
    if text:
        lines += ["## Findings", "", text, ""]
    errors = sorted({f"{k[0]}/{k[1]}: {e}" for k, v in agg.items() for e in v["errors"]})
    if errors:
        lines += ["## Failures", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(lines)


def write_files(out, records, agg, avg, acc, regs, dets, oods, info, timings, markdown,
                grouped_bars):
    files = {"md": out / "bench.md", "json": out / "bench.json", "csv": out / "bench.csv",
             "runs_csv": out / "bench_runs.csv"}
    summary = [{"reg": r, "detector": d, "ood": o, "n_seeds": e["n"],
                **{f"{m}_mean": e[m][0] for m in SUMMARY_METRICS},
                **{f"{m}_std": e[m][1] for m in SUMMARY_METRICS},
                "errors": "; ".join(e["errors"])}
               for (r, d, o), e in sorted(agg.items())]
    # the per-run records and accuracies (info's "runs") let a later bench into the folder keep
    # the rows of the regularizers it does not run
    clean = json.loads(json.dumps({
        **info, "units": UNITS, "conventions": JSON_CONVENTIONS,
        "regs": regs, "detectors": dets, "ood": oods,
        "id_accuracy": {r: {"mean": acc[r][0], "std": acc[r][1]} for r in regs},
        "auroc_avg_over_ood": {f"{r}/{d}": {"mean": avg[(r, d)][0], "std": avg[(r, d)][1]}
                               for r in regs for d in dets},
        "summary": summary, "timings": timings, "findings": findings(agg, regs, dets, oods),
        "records": records,
    }, default=str))
    # bench.json first: the other files beside it are the bench's (check_replaceable), also
    # after a stop between two of these writes
    write_json(files["json"], clean, strict=True)  # a NaN score's mean as null
    write_text_atomic(files["md"], markdown + "\n")
    spread = [f"{m}_{x}" for m in SUMMARY_METRICS for x in ("mean", "std")]
    for path, rows, metrics in ((files["csv"], summary, spread),
                                (files["runs_csv"], records, SUMMARY_METRICS)):
        write_fraction_csv(path, rows, list(rows[0]) if rows else ["empty"], metrics)
    for metric, ylim in ((m, (0.0, 1.0)) for m, _ in TABLE_METRICS):
        panels = {o: {d: {r: agg[(r, d, o)][metric] for r in regs if (r, d, o) in agg}
                      for d in dets} for o in oods}
        files[f"plot_{metric}"] = grouped_bars(
            panels, out / f"bench_{metric.lower()}.png", ylim=ylim, ylabel=metric,
            title=f"{metric} by OOD set, detector and regularizer (mean ± std over "
                  f"{counted(info['n_seeds'], 'seed')})")
    return files
