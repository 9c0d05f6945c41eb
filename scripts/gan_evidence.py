"""Evidence for the GAN program: the baseline and every seed method on the 2-D grid and on digits.

For each benchmark (``grid``: the 25-Gaussian grid with the MLP GAN, ``digits``: DCGAN on the
built-in digits) and each method (``--methods``), train ``--seeds`` runs of equal length and
report mean +- std over seeds of the final metrics:

- digits: FID and KID (digits-CNN features; not comparable with Inception FIDs), precision and
  recall (k = 3), all from 1000 G-EMA samples;
- grid: modes covered (of 25), the share of high-quality samples (within 3 std of a mode) and the
  KL divergence of the mode histogram to uniform (VEEGAN/PacGAN protocol), from 2500 samples.

Every method trains for the same number of steps within a benchmark (equal steps, not equal
time; seconds per step are reported so the cost is visible). The step counts come from the
wall-clock budget: a short pilot measures each method's seconds per step, then the steps are set
so that all runs fit in ``--budget-minutes`` (``--grid-share`` of it for the grid), capped by
the preset's own length. ``--grid-steps``/``--digits-steps`` fix them instead.

Writes ``OUT/results.json`` (every run and the aggregates), ``OUT/results.md`` (the tables) and
``OUT/results.png`` (bars with error bars).

    OMP_NUM_THREADS=1 python scripts/gan_evidence.py --budget-minutes 20 --out runs/evidence
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config import resolve_config
from robustrep.tasks.common.plots import bar_table
from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.presets import PRESETS
from robustrep.tasks.gan.regs import METHODS
from robustrep.tasks.gan.train import TrainingDiverged, train
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import float_in, int_at_least  # noqa: E402

BENCHMARKS = {"grid": "grid-mlp", "digits": "digits-dcgan", "sg2": "digits-stylegan2"}
# Settings that are not a --reg name: label -> (reg, extra options).
SETTINGS = {"adaptivemix-additive": ("adaptivemix", {"am_mode": "additive"}),
            "diffaugment": ("none", {"diffaugment": "color,translation,cutout"}),
            "ada": ("none", {"augment": "ada"})}
METRICS = {
    "grid": [("modes_covered", "modes covered (of 25) ↑", 1.0, 1),
             ("high_quality", "high-quality % ↑", 100.0, 1),
             ("kl_uniform", "KL(modes ‖ uniform) ↓", 1.0, 3)],
    "digits": [("fid", "FID (digits-CNN) ↓", 1.0, 3), ("kid", "KID ×10³ ↓", 1000.0, 2),
               ("precision", "precision ↑", 1.0, 3), ("recall", "recall ↑", 1.0, 3)],
}
METRICS["sg2"] = [*METRICS["digits"], ("ada_p", "ADA p at the end", 1.0, 3)]
MIN_STEPS = {"grid": 200, "digits": 100, "sg2": 50}
IMAGE_ONLY = ("cutmix", "srmix")  # they paste image regions; a 2-D point has none


def bench_methods(bench: str, methods: list[str]) -> list[str]:
    return [m for m in methods if bench != "grid" or m not in IMAGE_ONLY]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-minutes", type=float_in(0, low_open=True), default=20.0,
                   help="total wall-clock budget for all runs (default 20)")
    p.add_argument("--seeds", type=int_at_least(1), default=3, help="seeds per method (default 3)")
    p.add_argument("--methods", default=",".join(("none", *METHODS)),
                   help="comma-separated --reg values (default: none and every method)")
    p.add_argument("--benchmarks", default="grid,digits",
                   help="comma-separated: grid, digits, sg2 (StyleGAN2 on digits)")
    p.add_argument("--grid-share", type=float_in(0.0, 1.0), default=0.3,
                   help="share of the budget for the grid (default 0.3)")
    p.add_argument("--grid-steps", type=int_at_least(1), default=None, help="fix the grid's steps")
    p.add_argument("--digits-steps", type=int_at_least(1), default=None,
                   help="fix the digits' steps")
    p.add_argument("--sg2-steps", type=int_at_least(1), default=None,
                   help="fix the steps of sg2 (StyleGAN2 on digits, preset digits-stylegan2)")
    p.add_argument("--pilot-steps", type=int_at_least(1), default=10,
                   help="steps of the timing pilot")
    p.add_argument("--set-grid", action="append", default=[], metavar="KEY=VALUE",
                   help="override a grid-mlp option (repeatable)")
    p.add_argument("--set-sg2", action="append", default=[], metavar="KEY=VALUE",
                   help="override a digits-stylegan2 option (repeatable)")
    p.add_argument("--set-digits", action="append", default=[], metavar="KEY=VALUE",
                   help="override a digits-dcgan option (repeatable)")
    p.add_argument("--ada-kimg", type=float, default=None,
                   help="ADA's speed for the 'ada' method (default: the reference's 500 kimg, "
                        "under which p cannot move in a CPU-length run)")
    p.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="runs in parallel, one process each (default 1; the pilot is serial)")
    p.add_argument("--out", default="runs/evidence", help="output folder")
    args = p.parse_args(argv)
    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if not benches or any(b not in BENCHMARKS for b in benches):
        wrong = next((b for b in benches if b not in BENCHMARKS), "")
        p.error(f"--benchmarks: unknown benchmark {wrong!r}; accepted (comma-separated): "
                f"{', '.join(BENCHMARKS)}")
    return args


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.replace("-", "_")] = _value(value)
    return out


def make_config(bench: str, method: str, seed: int, steps: int, out: Path,
                extra: dict[str, Any]) -> GanConfig:
    reg, setting = SETTINGS.get(method, (method, {}))
    options = {**extra, **setting, "reg": reg, "seed": seed, "steps": steps, "eval_every": 0,
               "final_eval": True, "ckpt_every": 0, "log_every": max(1, steps // 20),
               "out": str(out), "device": "cpu"}
    return resolve_config(GanConfig, PRESETS, BENCHMARKS[bench], None, options)


def run_one(cfg: GanConfig) -> dict[str, Any]:
    start = time.time()
    try:
        summary = train(cfg, show_progress=False)
        metrics, status = {**summary["metrics"], **_final_p(cfg)}, "ok"
        train_s = summary["train_seconds"]
    except TrainingDiverged as err:
        metrics, status, train_s = {}, f"diverged: {err}", float("nan")
    return {"metrics": metrics, "status": status, "train_s": train_s,
            "s_per_step": train_s / cfg.steps, "wall_s": round(time.time() - start, 2)}


def _final_p(cfg: GanConfig) -> dict[str, float]:
    """ADA's p in the last logged interval (mean over it), when the run used ADA."""
    if cfg.augment == "none":
        return {}
    lines = (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()
    values = [json.loads(line).get("loss/ada/p") for line in lines]
    values = [v for v in values if v is not None]
    return {"ada_p": values[-1]} if values else {}


def _report(job: tuple[str, str, int], result: dict[str, Any]) -> dict[str, Any]:
    bench, method, seed = job
    shown = {k: round(v, 4) for k, v in result["metrics"].items()
             if isinstance(v, (int, float)) and k != "step"}
    print(f"{bench:6s} {method:12s} seed {seed}: {result['status']} {shown}", flush=True)
    return {"bench": bench, "method": method, "seed": seed, **result}


def run_all(jobs: list[tuple[str, str, int]], configs: list[GanConfig],
            workers: int) -> list[dict[str, Any]]:
    """Run every config, serially or in ``workers`` spawned processes (one thread each)."""
    if workers <= 1:
        return [_report(job, run_one(cfg)) for job, cfg in zip(jobs, configs)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_one_thread) as pool:
        futures = [pool.submit(run_one, cfg) for cfg in configs]
        return [_report(job, f.result()) for job, f in zip(jobs, futures)]


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def pilot(benches, methods, args, out: Path, extras) -> dict[tuple[str, str], float]:
    """Seconds per step of each (benchmark, method), from a short run without evaluation."""
    costs = {}
    for bench in benches:
        for method in bench_methods(bench, methods):
            cfg = make_config(bench, method, 0, args.pilot_steps, out / "pilot" / bench / method,
                              extras[bench])
            cfg.final_eval = False
            summary = train(cfg, show_progress=False)
            costs[bench, method] = summary["train_seconds"] / args.pilot_steps
            print(f"pilot {bench:6s} {method:12s} {1000 * costs[bench, method]:7.1f} ms/step",
                  flush=True)
    return costs


def plan_steps(benches, methods, args, costs) -> dict[str, int]:
    fixed = {"grid": args.grid_steps, "digits": args.digits_steps, "sg2": args.sg2_steps}
    share = {"grid": args.grid_share, "digits": 1.0 - args.grid_share}
    if len(benches) == 1:
        share = {benches[0]: 1.0}
    steps = {}
    for bench in benches:
        if fixed[bench] is not None:
            steps[bench] = fixed[bench]
            continue
        seconds = 60 * args.budget_minutes * share[bench] * args.jobs
        per_step = args.seeds * sum(costs[bench, m] for m in bench_methods(bench, methods))
        # ~10% of the time goes to start-up and the final evaluation of each run; parallel
        # jobs slow each other down (memory bandwidth, other users of the machine)
        slowdown = 1.0 if args.jobs <= 1 else 1.3
        n = int(0.9 * seconds / per_step / slowdown) // 50 * 50
        steps[bench] = max(MIN_STEPS[bench], min(n, PRESETS[BENCHMARKS[bench]]["steps"]))
    return steps


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    # one run has no spread: None (null in JSON, "n/a" in the table), not a made-up 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def aggregate(rows: list[dict[str, Any]], bench: str, methods) -> dict[str, dict[str, Any]]:
    out = {}
    for method in methods:
        runs = [r for r in rows if r["bench"] == bench and r["method"] == method]
        agg = {"runs": len(runs), "diverged": sum(r["status"] != "ok" for r in runs)}
        for key, _, scale, _ in METRICS[bench]:
            mean, std = _mean_std([r["metrics"].get(key, float("nan")) for r in runs])
            agg[key] = (mean * scale, None if std is None else std * scale)
        agg["s_per_step"] = _mean_std([r["s_per_step"] for r in runs])
        out[method] = agg
    return out


def _cell(mean: float, std: float | None, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± " + ("n/a" if std is None else f"{std:.{digits}f}")


def markdown(aggs: dict[str, dict], steps: dict[str, int], args, header: str) -> str:
    lines = [header, ""]
    for bench, agg in aggs.items():
        preset = BENCHMARKS[bench]
        lines += [f"### {bench} ({preset}, {steps[bench]} steps, {args.seeds} seeds, mean ± std)",
                  ""]
        cols = [label for _, label, _, _ in METRICS[bench]]
        lines.append("| method | " + " | ".join(cols) + " | ms/step | diverged |")
        lines.append("|---" * (len(cols) + 3) + "|")
        for method, row in agg.items():
            cells = [_cell(*row[key], d) for key, _, _, d in METRICS[bench]]
            mean, std = row["s_per_step"]
            ms = _cell(1000 * mean, None if std is None else 1000 * std, 1)
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {ms} | "
                         f"{row['diverged']}/{row['runs']} |")
        skipped = [m for m in args.methods.split(",") if m not in agg]
        if skipped:
            lines.append(f"Not run on {bench}: {', '.join(skipped)} (they paste image regions; "
                         f"a 2-D point has none).")
        lines.append("")
    return "\n".join(lines)


def plot(aggs: dict[str, dict], path: Path) -> None:
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for bench, agg in aggs.items():
        for method, row in agg.items():
            for key, label, _, _ in METRICS[bench]:
                mean, std = row[key]
                rows.setdefault(method, {})[f"{bench}: {label}"] = (mean, std or 0.0)  # no bar
    bar_table(rows, path, title="GAN evidence (mean ± std over seeds)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ada_kimg is not None:
        SETTINGS["ada"][1]["ada_kimg"] = args.ada_kimg
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    extras = {"grid": _overrides(args.set_grid), "digits": _overrides(args.set_digits),
              "sg2": _overrides(args.set_sg2)}
    start = time.time()
    needs_pilot = any(getattr(args, f"{b}_steps") is None for b in benches)
    costs = pilot(benches, methods, args, out, extras) if needs_pilot else {}
    steps = plan_steps(benches, methods, args, costs)
    print(f"steps per run: {steps}", flush=True)
    jobs = [(bench, method, seed) for bench in benches for seed in range(args.seeds)
            for method in bench_methods(bench, methods)]
    configs = [make_config(b, m, s, steps[b], out / "runs" / b / m / f"seed{s}", extras[b])
               for b, m, s in jobs]
    rows = run_all(jobs, configs, args.jobs)
    aggs = {bench: aggregate(rows, bench, bench_methods(bench, methods)) for bench in benches}
    minutes = (time.time() - start) / 60
    header = (f"GAN evidence: {len(rows)} runs in {minutes:.1f} min on CPU "
              f"(budget {args.budget_minutes} min; torch threads per process as set by "
              f"OMP_NUM_THREADS).")
    (out / "results.md").write_text(markdown(aggs, steps, args, header) + "\n")
    (out / "results.json").write_text(json.dumps(
        {"steps": steps, "seeds": args.seeds, "methods": methods, "minutes": minutes,
         "pilot_s_per_step": {f"{b}/{m}": c for (b, m), c in costs.items()},
         "overrides": extras, "aggregates": aggs, "runs": rows}, indent=2, default=str) + "\n")
    plot(aggs, out / "results.png")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
