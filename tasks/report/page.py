"""Aggregate a report's runs and write the page: ``report.md``, ``report.html`` (self-contained,
plots embedded) and ``report.json``.

Every number is a mean ± sample standard deviation over seeds, with the baseline (``none``)
trained in the same report. The reading compares each regularizer with that baseline on each
headline metric and calls a difference clear only when it exceeds the two spreads added; all
else is "within the spread".
"""

from __future__ import annotations

import base64
import html
import math
import statistics
from pathlib import Path
from typing import Any

from robustrep.metrics.convergence import fid_area, first_crossings
from robustrep.tasks.common.runfiles import write_json, write_text_atomic
from robustrep.tasks.report.records import attack_keys

# (task, metric key, label, higher is better, scale for display)
HEADLINES = [
    ("gan", "fid", "FID (digits-CNN features) ↓", False, 1.0),
    ("gan", "kid", "KID ×10³ ↓", False, 1000.0),
    ("gan", "precision", "precision ↑", True, 1.0),
    ("gan", "recall", "recall ↑", True, 1.0),
    ("grid", "modes_covered", "grid modes covered (of 25) ↑", True, 1.0),
    ("grid", "high_quality", "grid high-quality share ↑", True, 1.0),
    ("classify", "clean_acc", "clean accuracy ↑", True, 1.0),
    ("classify", "robust_acc", "robust accuracy ↑", True, 1.0),
    ("classify", "ece", "ECE ↓", False, 1.0),
    ("classify", "corruption_acc", "corruption accuracy ↑", True, 1.0),
]
OOD_METRIC_HINTS = (("auroc", True), ("fpr", False))


def mean_std(values: list[float]) -> tuple[float, float, int]:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return math.nan, math.nan, 0
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread, len(values)


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, tuple]]]:
    """``agg[task][reg][metric] = (mean, std, n)`` over seeds."""
    grouped: dict[str, dict[str, dict[str, list[float]]]] = {}
    for rec in records:
        per = grouped.setdefault(rec["task"], {}).setdefault(rec["reg"], {})
        for key, value in rec.items():
            if key not in ("task", "reg", "seed") and isinstance(value, (int, float)):
                per.setdefault(key, []).append(value)
    return {task: {reg: {k: mean_std(v) for k, v in metrics.items()}
                   for reg, metrics in regs.items()} for task, regs in grouped.items()}


def robust_key(metrics: dict[str, Any]) -> str | None:
    """The robust-accuracy column of a classify eval: the worst case over the attacks it ran
    (its summary's ``robust_acc``, RobustBench's reading), else its one attack's column."""
    if "robust_acc" in metrics:
        return "robust_acc"
    return next(iter(attack_keys(metrics)), None)


def headline_rows(agg) -> list[tuple[str, str, str, bool, float]]:
    """HEADLINES with the robust column resolved, plus one row per OOD detector and metric."""
    rows = []
    for task, key, label, higher, scale in HEADLINES:
        if key == "robust_acc":
            any_reg = next(iter(agg.get("classify", {}).values()), {})
            key = robust_key(any_reg) or key
            attacks = [k.removesuffix("_acc") for k in attack_keys(any_reg)]
            worst = "worst of " if key == "robust_acc" and len(attacks) > 1 else ""
            label = f"robust accuracy ({worst}{', '.join(attacks) or 'none run'}) ↑"
        rows.append((task, key, label, higher, scale))
    ood_keys = sorted({k for regs in agg.get("classify", {}).values() for k in regs
                       if k.startswith("ood/")})
    for key in ood_keys:
        metric = key.rsplit("/", 1)[-1].lower()
        for hint, higher in OOD_METRIC_HINTS:
            if hint in metric:
                _, detector, name = key.split("/")
                rows.append(("ood", key, f"{detector} {name} {'↑' if higher else '↓'}", higher,
                             1.0))
    return rows


def verdict(reg: tuple, base: tuple, higher: bool) -> str:
    if reg[2] == 0 or base[2] == 0:
        return "missing"
    if reg[2] < 2 or base[2] < 2:  # one run has no spread to call a difference by
        return "not judged"
    diff = reg[0] - base[0]
    # isclose: equal values averaged over other seed counts differ in the last bit, and with no
    # spread on either side that bit was called "better" or "worse"
    if abs(diff) <= reg[1] + base[1] or math.isclose(reg[0], base[0], rel_tol=1e-9):
        return "within the spread"
    return "better" if (diff > 0) == higher else "worse"


# Convergence levels: multiples of the baseline's mean final FID in the same report (digits-CNN
# FIDs have no absolute scale to pick levels from); 1.0 is "the baseline's final quality".
FID_LEVELS = (2.0, 1.5, 1.0)


def convergence(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per GAN setting, from each run's ``fid_curve`` (``(step, images, fid)`` records): the
    steps and images at which FID first falls to each level (:data:`FID_LEVELS`; seeds that
    never do are counted, not averaged), the image-weighted mean FID over the range every run
    covers (the normalised area under the curve) and the seconds per step. None without a
    baseline (``none``) with FIDs."""
    gan = [r for r in records if r["task"] == "gan" and r.get("fid_curve")]
    base = [r["fid_curve"][-1][2] for r in gan if r["reg"] == "none"]
    base = [f for f in base if math.isfinite(f)]
    if not base:
        return None
    levels = [statistics.fmean(base) * m for m in FID_LEVELS]
    until = min(r["fid_curve"][-1][1] for r in gan)
    out: dict[str, Any] = {"levels": levels, "multiples": list(FID_LEVELS), "regs": {}}
    for reg in dict.fromkeys(r["reg"] for r in gan):
        runs = [r for r in gan if r["reg"] == reg]
        hits = [first_crossings(r["fid_curve"], levels) for r in runs]
        per_level = []
        for i, level in enumerate(levels):
            reached = [h[i] for h in hits if h[i].step is not None]
            per_level.append({"level": level, "reached": len(reached), "runs": len(runs),
                              "steps": mean_std([c.step for c in reached]),
                              "kimg": mean_std([c.images / 1000 for c in reached])})
        out["regs"][reg] = {"levels": per_level,
                            "mean_fid": mean_std([_mean_fid(r["fid_curve"], until) for r in runs]),
                            "step_seconds": mean_std([r.get("step_seconds") for r in runs])}
    return out


def _mean_fid(curve: list, until: int) -> float:
    """FID averaged over images seen up to ``until``; NaN (left out) where undefined."""
    try:
        return fid_area(curve, until_images=until, normalized=True)
    except ValueError:  # one record, a non-finite FID, or a range the run does not cover
        return math.nan


def convergence_table(conv: dict[str, Any] | None) -> list[list[str]] | None:
    """Header, one row per level, the mean FID over training and the step time / baseline."""
    if conv is None:
        return None
    regs = list(conv["regs"])
    table = [["metric", *regs]]
    for i, (level, mult) in enumerate(zip(conv["levels"], conv["multiples"])):
        cells = []
        for reg in regs:
            c = conv["regs"][reg]["levels"][i]
            if not c["reached"]:
                cells.append(f"not reached (0/{c['runs']})")
                continue
            cells.append(_crossing_cell(c))
        table.append([f"steps to FID ≤ {level:.3g} ({mult:g}× baseline final) ↓", *cells])
    table.append(["mean FID over training (area / images) ↓",
                  *[fmt(conv["regs"][r]["mean_fid"]) for r in regs]])
    base = conv["regs"].get("none", {}).get("step_seconds", (math.nan, 0, 0))
    table.append(["step time / baseline", *[
        f"{conv['regs'][r]['step_seconds'][0] / base[0]:.2f}×" if base[2] and
        conv["regs"][r]["step_seconds"][2] else "–" for r in regs]])
    return table


def _crossing_cell(c: dict[str, Any]) -> str:
    """``"275 ± 43 steps (8.8 ± 1.4 kimg)"``, the count of runs that got there when not all."""
    (steps, s_std, n), (kimg, k_std, _) = c["steps"], c["kimg"]
    spread = n > 1
    text = (f"{steps:.0f}" + (f" ± {s_std:.0f}" if spread else "") + f" ({kimg:.1f}"
            + (f" ± {k_std:.1f}" if spread else "") + " kimg")
    return text + (f", {n}/{c['runs']} runs)" if n < c["runs"] else ")")


def convergence_reading(conv: dict[str, Any] | None) -> list[str]:
    """Per setting: when it reached the baseline's final FID and its mean FID over training,
    against the baseline, a difference called only beyond both spreads."""
    if conv is None or "none" not in conv["regs"]:
        return []
    base = conv["regs"]["none"]
    lines = []
    for reg, c in conv["regs"].items():
        if reg == "none":
            continue
        last, b_last = c["levels"][-1], base["levels"][-1]
        lines.append(f"gan convergence · {reg}: reached the baseline's final FID in "
                     f"{last['reached']}/{last['runs']} runs (baseline {b_last['reached']}/"
                     f"{b_last['runs']}); mean FID over training "
                     f"{verdict(c['mean_fid'], base['mean_fid'], False)} "
                     f"({fmt(c['mean_fid'])} vs {fmt(base['mean_fid'])}).")
    return lines


def reading(agg, rows) -> list[str]:
    """One honest sentence per regularizer and task: where it beats the baseline, where not."""
    lines = []
    for task in ("gan", "grid", "classify", "ood"):
        source = agg.get("classify" if task == "ood" else task, {})
        base = source.get("none")
        if base is None:
            continue
        for reg, metrics in source.items():
            if reg == "none":
                continue
            calls = {"better": [], "worse": [], "within the spread": []}
            for t, key, label, higher, _ in rows:
                if t == task and key in metrics and key in base:
                    v = verdict(metrics[key], base[key], higher)
                    calls.setdefault(v, []).append(label.rstrip(" ↑↓"))
            if any(calls.values()):
                unjudged = calls.get("not judged")
                lines.append(f"{task} · {reg}: better on {_list(calls['better'])}; worse on "
                             f"{_list(calls['worse'])}; level within the spread on "
                             f"{_list(calls['within the spread'])}"
                             + (f"; not judged on {_list(unjudged)} (one run: no spread)"
                                if unjudged else "") + ".")
    return lines


def _list(items: list[str]) -> str:
    return ", ".join(items) if items else "nothing"


def fmt(value: tuple, scale: float = 1.0, runs: int = 0) -> str:
    """``mean ± std``; a cell over fewer than the setting's ``runs`` names its count (a run
    whose eval or ood score lacks the metric: the mean covers the other seeds only)."""
    mean, std, n = value
    if n == 0 or not math.isfinite(mean):
        return "–"
    digits = 3 if abs(mean * scale) < 10 else 1
    of = f" ({n} of {runs} runs)" if n < runs else ""
    if n == 1:  # one run has no spread: say so rather than print "± 0"
        return f"{mean * scale:.{digits}f}{of or ' (1 run)'}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}{of}"


def run_count(metrics: dict[str, tuple]) -> int:
    """The runs of a setting: the most seeds any of its metrics averages (every finished run
    records its step time)."""
    return max((v[2] for v in metrics.values()), default=0)


def tables(agg, rows, conv: dict[str, Any] | None = None) -> dict[str, list[list[str]]]:
    """Per task: a header row, then one row per metric with a cell per regularizer."""
    out = {}
    for task in ("gan", "grid", "classify", "ood"):
        source = agg.get("classify" if task == "ood" else task, {})
        regs = list(source)
        task_rows = [r for r in rows if r[0] == task]
        if not regs or not task_rows:
            continue
        body = [[label, *[fmt(source[reg].get(key, (math.nan, 0, 0)), scale,
                              run_count(source[reg])) for reg in regs]]
                for _, key, label, _, scale in task_rows]
        cost = _cost_row(source, regs) if task != "ood" else None  # the classifier runs' cost
        out[task] = [["metric", *regs], *body, *([cost] if cost else [])]
    conv_table = convergence_table(conv)
    if conv_table is not None:
        out["convergence"] = conv_table
    return out


def _cost_row(source, regs) -> list[str] | None:
    base = source.get("none", {}).get("step_seconds")
    if not base or not base[2]:
        return None
    cells = [f"{source[r]['step_seconds'][0] / base[0]:.2f}×" if source[r].get("step_seconds")
             and source[r]["step_seconds"][2] else "–" for r in regs]
    return ["step time / baseline", *cells]


TITLES = {"gan": "GAN on digits (DCGAN)", "grid": "GAN on the 25-Gaussian grid (MLP)",
          "convergence": "GAN convergence on digits (FID over training)",
          "classify": "Classifier on digits 0–4", "ood": "OOD detection (ID digits 0–4), "
                                                         "mean over the OOD sets"}


def markdown(agg, rows, info: dict[str, Any], conv: dict[str, Any] | None = None) -> str:
    parts = [f"# robustrep report\n\n{info['summary']}\n"]
    for task, table in tables(agg, rows, conv).items():
        parts.append(f"## {TITLES[task]}\n")
        parts.append(md_row(table[0]))
        parts.append("|" + "---|" + "---:|" * (len(table[0]) - 1))
        parts += [md_row(r) for r in table[1:]]
        parts.append("")
        if task in info.get("notes", {}):  # what the table's numbers are over, beside them
            parts.append(f"{info['notes'][task]}\n")
    parts.append("## Reading\n")
    parts += [f"- {line}" for line in reading_lines(agg, rows, conv)]
    if info.get("failures"):
        parts.append("\n## Left out\n")
        parts += [f"- {line}" for line in info["failures"]]
    parts.append(f"\n{info['conventions']}\n")
    return "\n".join(parts) + "\n"


RULE = ("A setting is called better or worse than the baseline (none) on a metric only when the "
        "difference of the means exceeds the sum of the two sample stds over seeds; otherwise it "
        "is level within the spread.")


def reading_lines(agg, rows, conv: dict[str, Any] | None) -> list[str]:
    """The reading of both pages: the verdicts, or what stands in for them, then the rule."""
    lines = reading(agg, rows) + convergence_reading(conv)
    if not lines:
        has_baseline = any("none" in by_reg for by_reg in agg.values())
        lines = ["only the baseline (none) was run: nothing to compare it with" if has_baseline
                 else "no baseline in this report"]
    return lines + [RULE]


def md_row(cells: list[str]) -> str:
    """A Markdown table row; a ``|`` inside a cell (a name) is escaped, not a column break."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def html_page(agg, rows, info: dict[str, Any], plots: dict[str, Path],
              conv: dict[str, Any] | None = None) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>robustrep report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "</style></head><body>", "<h1>robustrep report</h1>", f"<p>{esc(info['summary'])}</p>"]
    for task, table in tables(agg, rows, conv).items():
        parts.append(f"<h2>{esc(TITLES[task])}</h2><table>")
        parts.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in table[0]) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in table[1:]]
        parts.append("</table>")
        if task in info.get("notes", {}):
            parts.append(f"<p>{esc(info['notes'][task])}</p>")
        if task in plots:
            data = base64.b64encode(plots[task].read_bytes()).decode()
            parts.append(f"<img alt='{esc(task)}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Reading</h2><ul>")
    parts += [f"<li>{esc(line)}</li>" for line in reading_lines(agg, rows, conv)]
    parts.append("</ul>")
    if info.get("failures"):
        parts.append("<h2>Left out</h2><ul>")
        parts += [f"<li>{esc(line)}</li>" for line in info["failures"]]
        parts.append("</ul>")
    parts.append(f"<p>{esc(info['conventions'])}</p></body></html>")
    return "\n".join(parts) + "\n"


def draw(agg, rows, folder: Path) -> dict[str, Path]:
    """A bar chart per table: mean, its spread and its run count per setting. A table this
    report lacks loses its chart from an earlier report in ``folder`` (a narrower ``--collect``
    would leave that picture beside a page that no longer has its numbers)."""
    from robustrep.tasks.common.plots import bar_table
    plots = {}
    for task in ("gan", "grid", "classify", "ood"):
        bars = _bars(agg, rows, task)
        if bars:
            plots[task] = bar_table(bars, folder / f"{task}.png", title=TITLES[task])
        else:
            (folder / f"{task}.png").unlink(missing_ok=True)
    return plots


def _bars(agg, rows, task: str) -> dict[str, dict[str, tuple]] | None:
    """``task``'s table as bars (mean, spread, runs) per setting and label; None: no panel."""
    source = agg.get("classify" if task == "ood" else task, {})
    picked = [(key, label, scale) for t, key, label, _, scale in rows if t == task]
    if not source or not picked:
        return None
    bars = {reg: {label: (source[reg][key][0] * scale, source[reg][key][1] * scale,
                          source[reg][key][2])
                  for key, label, scale in picked if key in source[reg]}
            for reg in source}
    return bars if any(bars.values()) else None  # runs without these metrics: no panel


def write(out: Path, records: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Path]:
    agg = aggregate(records)
    rows = headline_rows(agg)
    conv = convergence(records)
    plots = draw(agg, rows, out / "plots")
    files = {"md": out / "report.md", "html": out / "report.html", "json": out / "report.json"}
    payload = {"info": info, "runs": records, "convergence": conv,
               "aggregate": {t: {r: {k: list(v) for k, v in m.items()} for r, m in regs.items()}
                             for t, regs in agg.items()}}
    # report.json first: it marks the page as the report's own, so a stop before the page is
    # written leaves a folder the next report replaces (a page without it is a user's file)
    write_json(files["json"], payload, strict=True)  # a NaN FID of a curve, a mean of no run
    write_text_atomic(files["md"], markdown(agg, rows, info, conv))
    write_text_atomic(files["html"], html_page(agg, rows, info, plots, conv))
    return files
