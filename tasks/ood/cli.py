"""``robustrep ood score|bench``: the command line of the OOD program.

    robustrep ood score RUN [--id digits] --ood digits59 gaussian ... --detectors MaxSoftmax,KNN
    robustrep ood score --list
    robustrep ood bench [--regs none,mixup,...] [--seeds 0 1 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys

from robustrep.tasks.common.cli import add_command, add_program
from robustrep.tasks.ood.config import BenchOptions, ScoreOptions

# Nothing here imports torch at module level: --help and a wrong option answer before the
# detectors, the data and the run code are imported.


def _add_score(sub) -> None:
    """score a classifier run with pytorch-ood detectors"""
    add_command(
        sub, "score", "score a classifier run with pytorch-ood detectors", ScoreOptions,
        run_score,
        description="Fit pytorch-ood detectors on the in-distribution train set of a classify "
                    "run and report AUROC, AUPR-IN, AUPR-OUT and FPR@95 (fpr95_id_tpr: OOD "
                    "accepted at 95% ID kept; fpr95_ood_tpr: ID flagged at 95% OOD caught) "
                    "against each OOD set (table, JSON, CSV, ROC curves and score histograms).")


def _add_bench(sub) -> None:
    """train each regularizer on digits 0-4 (several seeds) and compare detectors"""
    add_command(
        sub, "bench", "train each regularizer on digits 0-4 (several seeds) and compare detectors",
        BenchOptions, run_bench,
        description="On the built-in split (digits 0-4 in distribution), train the baseline and "
                    "each regularizer through the classify program for several seeds, score "
                    "every detector on the built-in OOD sets, and write a regularizer x detector "
                    "x OOD set table (mean +- std AUROC and both FPR@95 conventions) as "
                    "Markdown/JSON/CSV and plots.")


def add_parser(subparsers, name: str, summary: str,
               command: str | None = None) -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_score, _add_bench, command=command)


# ------------------------------------------------------------------------------------------------
# score


def format_detector_list() -> str:
    from robustrep.tasks.ood.detectors import _robustrep_defaults, list_detectors, registry
    reg = registry()
    lines = [f"{'detector':<18} {'consumes':<10} {'fitted':<20} {'status':<11} settable arguments",
             "-" * 100]
    for name in list_detectors():
        spec = reg[name]
        fit = f"yes, on {spec.fit_on}" if spec.fit_on else "no"
        status = "UNSUPPORTED" if spec.unsupported else "ok"
        ours = _robustrep_defaults(name, 0)
        args = [f"{k}={'D//2' if k == 'd' else repr(v)} (robustrep default)"
                for k, v in ours.items()]
        args += [a for a in spec.describe_params().split(", ")
                 if a and a.split("=")[0] not in ours]
        args = ", ".join(args)
        lines.append(f"{name:<18} {spec.consumes:<10} {fit:<20} {status:<11} {args}")
        if spec.unsupported:
            lines.append(f"{'':<18} -> {spec.unsupported}")
    lines.append("")
    lines.append("consumes: logits / features (pooled pre-logits) / maps (feature maps) are "
                 "extracted once per dataset; images = run on image batches (gradients or "
                 "sampling). Higher score = more OOD.")
    return "\n".join(lines)


def check_detectors(args: argparse.Namespace) -> None:
    """``--detectors`` (and the ``--param`` of each) checked first, as the options are: a
    wrong name was refused only once the command had begun (its device, its output folder, the
    bench's --regs and --seeds)."""
    from robustrep.tasks.ood.detector_params import parse_params
    from robustrep.tasks.ood.detectors import parse_detectors
    parse_params(args.param, parse_detectors(args.detectors))  # ConfigError: one line


def run_score(args: argparse.Namespace) -> int:
    if args.list_detectors:
        print(format_detector_list())
        return 0
    check_detectors(args)
    from robustrep.tasks.common.runtime import resolve_device
    from robustrep.tasks.common.weights import model_options
    foreign = model_options(args, args.run)  # None: a run folder
    from robustrep.tasks.ood.score import score_run
    resolve_device(args.device, args.amp)
    # the user's mistakes are UserErrors where they are found (the checks' ConfigError, the
    # data's DataError, a run or weights the library refuses); any other ValueError or
    # TypeError is a bug, and keeps its traceback
    result, files = score_run(
        args.run, foreign=foreign, detectors=args.detectors, ood=args.ood, id_data=args.id,
        fit_data=args.fit_data, data_root=args.data_root, resize=args.resize,
        params=args.param, feature_maps=args.feature_maps, max_samples=args.max_samples,
        max_fit=args.max_fit, out=args.out, batch_size=args.batch_size, device=args.device,
        amp=args.amp, workers=args.workers, seed=args.seed, use_ema=not args.no_ema,
        plots=not args.no_plots, save_scores=args.save_scores,
        show_progress=not args.quiet, openood=args.openood, openood_id=args.openood_id)
    # results.md as written: its header names the weights beside the ID accuracy, and its table
    # holds an earlier call's rows kept in the folder as well
    print(files["md"].read_text(), end="")
    for note in result.notes:  # what an earlier call's results lost or kept, left-out sets
        print(f"note: {note}", file=sys.stderr)
    failed = [d for d in result.detectors.values() if d.error]
    for det in failed:
        print(f"warning: {det.name} failed: {det.error}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 1 if failed and len(failed) == len(result.detectors) else 0


# ------------------------------------------------------------------------------------------------
# bench


def run_bench(args: argparse.Namespace) -> int:
    check_detectors(args)
    from robustrep.tasks.common.runtime import resolve_device
    from robustrep.tasks.ood.bench import run_bench as bench
    from robustrep.tasks.ood.detectors import amp_note, parse_detectors
    resolve_device(args.device, args.amp)
    note = amp_note(parse_detectors(args.detectors), args.amp)  # once, not once per run
    if note:
        print(f"note: {note}", file=sys.stderr)
    # as in run_score: a ValueError or TypeError that is no UserError is a bug
    summary = bench(regs=args.regs, seeds=args.seeds, ood=args.ood, detectors=args.detectors,
                    params=args.param, feature_maps=args.feature_maps, model=args.model,
                    steps=args.steps, preset=args.preset, train_opts=args.train_opt,
                    out=args.out, retrain=args.retrain, batch_size=args.batch_size,
                    device=args.device, amp=args.amp, workers=args.workers, seed=args.seed,
                    show_progress=not args.quiet)
    print(summary["markdown"])
    for line in summary["notes"]:  # the earlier call's regularizers kept or replaced
        print(f"note: {line}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in summary['files'].values())}")
    return 0
