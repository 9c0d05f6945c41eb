"""Evidence for the classify program: each regularizer on the built-in digits, over seeds.

Trains the baseline and every regularizer (``robustrep classify train``) for each seed, evaluates
each run (``robustrep classify eval``: clean top-1, ECE; AutoAttack standard, PGD-10/20 and FGSM
at Linf eps 8/255 on the first ``--n-attack`` test images; mean accuracy over the 8 on-the-fly
CIFAR-10-C corruptions at severities 1-5), and writes

    OUT/results.json   every run's summary and the mean / std per regularizer
    OUT/table.md       the Markdown table (mean ± sample std over seeds, n seeds)
    OUT/evidence.png   grouped bars with std error bars

Runs are cached: a run whose ``eval/report.json`` exists is read, not retrained, and a finished
run without one is evaluated, not retrained, so the script can be stopped and restarted (and a
folder of finished runs evaluated again with other attacks). ``--budget-min`` stops starting
new runs once the wall-clock budget is spent; the table then says how many seeds each row
holds, and leaves out a column no run measured.

    python scripts/classify_evidence.py --out runs/evidence/classify --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from robustrep.metrics.robust import ATTACKS
from robustrep.tasks.classify.config import OPTION_FIELDS, ClassifyConfig, parse_regularizers
from robustrep.tasks.classify.evaluate import evaluate_run
from robustrep.tasks.classify.train import train
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.plots import bar_table
from robustrep.tasks.common.run_records import train_seconds
from robustrep.tasks.common.rundir import RunDir
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import float_in, int_at_least  # noqa: E402

REGS = ["none", "mixup", "cutmix", "srmix", "adaptivemix", "pgd", "fgsm", "free"]
COLUMNS = [("clean_acc", "clean acc"), ("autoattack_acc", "AutoAttack acc"),
           ("pgd20_acc", "PGD-20 acc"), ("fgsm_acc", "FGSM acc"),
           ("corruption_acc", "corruption acc"), ("ece", "ECE"), ("train_s", "train s"),
           ("eval_s", "eval s")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/evidence/classify")
    p.add_argument("--model", default="test_resnet")
    p.add_argument("--regs", default=",".join(REGS),
                   help="comma-separated rows; '+' joins a combination (mixup+pgd) and '@' adds "
                        "options to a row (adaptivemix@am_mode=additive, several joined by ';')")
    p.add_argument("--seeds", type=int_at_least(0), nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int_at_least(1), default=300)
    p.add_argument("--batch-size", type=int_at_least(2), default=64)
    p.add_argument("--lr", type=float_in(0, low_open=True), default=0.05)
    p.add_argument("--eps", type=float_in(0, low_open=True), default=8 / 255)
    p.add_argument("--attacks", default="autoattack,pgd,fgsm",
                   help="classify eval --attacks (the first is the headline)")
    p.add_argument("--n-attack", type=int_at_least(1), default=100,
                   help="attack the first N test images (AutoAttack is slow on a CPU)")
    p.add_argument("--budget-min", type=float_in(0), default=20.0,
                   help="stop starting new runs after this many minutes")
    args = p.parse_args(argv)
    # checked before any run starts, not minutes in as a traceback
    bad = [a for a in args.attacks.split(",") if a not in ATTACKS]
    if bad:
        p.error(f"--attacks: unknown attack {bad[0]!r}; accepted (comma-separated): "
                f"{', '.join(ATTACKS)}")
    if not [r for r in args.regs.split(",") if r.strip()]:
        p.error("--regs: no row given; accepted: comma-separated regularizers, e.g. none,mixup")
    for row in args.regs.split(","):
        try:
            parse_regularizers(parse_row(row.strip())[0])
        except ConfigError as err:
            p.error(f"--regs: row {row.strip()!r}: {err}".replace(": --reg:", ":"))
    return args


def parse_row(spec: str) -> tuple[str, dict]:
    """``"adaptivemix@am_mode=additive;am_weight=2"`` -> ``("adaptivemix", {...})``."""
    reg, _, opts = spec.partition("@")
    options = {}
    for item in filter(None, opts.split(";")):
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return reg.replace("+", ","), options


def run_one(args, row: str, seed: int, folder: Path) -> dict:
    report_path = folder / "eval" / "report.json"
    check_settings(folder, args)  # a cached run trained otherwise would be labelled as these
    if report_path.is_file():
        return json.loads(report_path.read_text())
    train_s = trained_seconds(folder)  # a finished run whose evaluation was cut: not retrained
    if train_s is None:
        reg, options = parse_row(row)
        # --eps only for the adversarial rows: ClassifyConfig refuses it where none uses it
        adversarial = any("eps" in OPTION_FIELDS.get(n, {}) for n in parse_regularizers(reg))
        cfg = ClassifyConfig(**{**dict(model=args.model, reg=reg, seed=seed, steps=args.steps,
                                       batch_size=args.batch_size, lr=args.lr,
                                       eps=args.eps if adversarial else None,
                                       eval_every=0, ckpt_every=args.steps, log_every=50),
                                **options})
        t0 = time.time()
        train(cfg, folder, quiet=True)
        train_s = time.time() - t0
    t0 = time.time()
    report = evaluate_run(folder, eps=args.eps, attacks=args.attacks.split(","),
                          pgd_steps=(10, 20), n_attack=args.n_attack, seed=seed)
    report["summary"]["train_s"] = train_s
    report["summary"]["eval_s"] = time.time() - t0
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


SETTINGS = ("model", "steps", "batch_size", "lr")  # what the table's footnote says of each run


def check_settings(folder: Path, args) -> None:
    """A finished run reused (evaluated, or its report read) was trained with this call's
    settings; else exit naming the first that differs (the table would label it wrongly)."""
    config = folder / "config.json"
    if not (folder / "finished.json").is_file() or not config.is_file():
        return
    saved = json.loads(config.read_text())
    for key in SETTINGS:
        if saved.get(key) != getattr(args, key):
            sys.exit(f"error: {folder} was trained with {key} {saved.get(key)!r}, not "
                     f"--{key.replace('_', '-')} {getattr(args, key)!r}; give another --out")


def trained_seconds(folder: Path) -> float | None:
    """A finished run's training seconds (its last record's ``train_s``, without the data
    set-up a fresh run's wall time holds), else None: the run is to be trained."""
    if not (folder / "finished.json").is_file():
        return None
    records = RunDir(folder).read_metrics()  # a missing file, or a line a kill cut: none
    return next((t for t in (train_seconds(r, "train_s") for r in reversed(records))
                 if t is not None), math.nan)


def aggregate(results: dict[str, list[dict]]) -> dict[str, dict[str, tuple[float, float, int]]]:
    table = {}
    for reg, summaries in results.items():
        row = {}
        for key, _ in COLUMNS:
            values = [s[key] for s in summaries if key in s]
            if values:
                # one seed has no spread: None (JSON null, "n/a" in the table), not NaN,
                # which strict JSON parsers refuse
                std = statistics.stdev(values) if len(values) > 1 else None
                row[key] = (statistics.fmean(values), std, len(values))
        table[reg] = row
    return table


def markdown(table, args) -> str:
    columns = [(k, name) for k, name in COLUMNS if any(k in row for row in table.values())]
    head = "| regularizer | " + " | ".join(name for _, name in columns) + " | seeds |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for reg, row in table.items():
        cells = []
        for key, _ in columns:
            if key not in row:
                cells.append("-")
                continue
            mean, std, _ = row[key]
            digits = 1 if key.endswith("_s") else 3
            cells.append(f"{mean:.{digits}f} ± " + ("n/a" if std is None else f"{std:.{digits}f}"))
        n = max((v[2] for v in row.values()), default=0)
        lines.append(f"| {reg} | " + " | ".join(cells) + f" | {n} |")
    lines.append("")
    lines.append(f"Digits (sklearn, 1,438 train / 359 test, 32x32 grey), timm `{args.model}`, "
                 f"{args.steps} SGD steps of batch {args.batch_size}, lr {args.lr} cosine; "
                 f"attacks Linf eps {args.eps * 255:.3g}/255 in [0, 1] pixels on the first "
                 f"{args.n_attack} test images (robust = correct clean and attacked; "
                 + ("AutoAttack = standard version, fra31/auto-attack via pyautoattack; "
                    if ("autoattack_acc", "AutoAttack acc") in columns else "")
                 + "PGD-20 random start, step 2.5 eps/20); corruption acc = mean over the 8 "
                 "CIFAR-10-C corruptions available on the fly (make_cifar_c.py formulas) at "
                 "severities 1-5; clean acc, ECE and corruption acc on all 359 test images; "
                 "mean ± sample std over seeds.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    regs = [r.strip() for r in args.regs.split(",") if r.strip()]
    start = time.time()
    results: dict[str, list[dict]] = {r: [] for r in regs}
    runs = []
    for seed in args.seeds:  # seed-major: a budget cut leaves every regularizer equally covered
        for reg in regs:
            folder = out / (reg.replace("@", "_").replace(";", "_").replace("=", "-") + f"-s{seed}")
            cached = (folder / "eval" / "report.json").is_file()
            if not cached and time.time() - start > 60 * args.budget_min:
                print(f"budget of {args.budget_min} min spent; skipping {reg} seed {seed}")
                continue
            if folder.exists() and not cached and not (folder / "finished.json").is_file():
                import shutil
                shutil.rmtree(folder)  # an interrupted training: start it again
            report = run_one(args, reg, seed, folder)
            results[reg].append(report["summary"])
            runs.append({"reg": reg, "seed": seed, **report["summary"]})
            s = report["summary"]
            print(f"{reg:>12} seed {seed}: clean {s['clean_acc']:.3f} robust "
                  f"{s.get('robust_acc', math.nan):.3f} pgd20 {s.get('pgd20_acc', math.nan):.3f} "
                  f"corr {s['corruption_acc']:.3f} ece {s['ece']:.3f} "
                  f"({s.get('train_s', float('nan')):.0f} s)", flush=True)
    table = aggregate(results)
    (out / "results.json").write_text(json.dumps(
        {"args": vars(args), "runs": runs,
         "table": {r: {k: list(v) for k, v in row.items()} for r, row in table.items()},
         "wall_s": time.time() - start}, indent=2) + "\n")
    md = markdown(table, args)
    (out / "table.md").write_text(md)
    rows = {reg: {name: (row[key][0], row[key][1] or 0.0) for key, name in COLUMNS
                  if key in row and not key.endswith("_s")}
            for reg, row in table.items() if row}
    bar_table(rows, out / "evidence.png", title=f"digits, {args.model}, mean ± std over seeds")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
