"""``robustrep ood score|bench``: the command line of the OOD program.

    robustrep ood score RUN [--id digits] --ood digits59 gaussian ... --detectors MaxSoftmax,KNN
    robustrep ood score --list
    robustrep ood bench [--regs none,mixup,...] [--seeds 0 1 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys

from robustrep.tasks.common.cli import HelpFormatter, add_program
from robustrep.tasks.common.config import option_type
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.common.weights import add_model_options, model_options

_INT1 = option_type(int, min=1)
_INT0 = option_type(int, min=0)

DEFAULT_DETECTORS = ("MaxSoftmax,EnergyBased,MaxLogit,Entropy,ODIN,Mahalanobis,ViM,KNN,ReAct,ASH")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detectors", default=DEFAULT_DETECTORS, metavar="NAME,...",
                   help="pytorch-ood detectors, comma-separated, or 'all' (see --list)")
    p.add_argument("--param", action="append", default=[], metavar="DETECTOR.NAME=VALUE",
                   help="override a detector's constructor argument, e.g. KNN.k=10 or "
                        "ASH.variant=ash-b (repeatable)")
    p.add_argument("--feature-maps", choices=("spatial", "pooled"), default="spatial",
                   help="what the feature-map detectors (ReAct, ASH, SCALE, RankFeat, VRA) shape: "
                        "the unpooled trunk maps, or the pooled pre-logit vector as [B, D, 1, 1] "
                        "(the papers' penultimate layer)")
    p.add_argument("--batch-size", type=_INT1, default=256, help="images per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off",
                   help="autocast precision of the feature extraction")
    p.add_argument("--workers", type=_INT0, default=0, help="DataLoader worker processes")
    p.add_argument("--seed", type=_INT0, default=0,
                   help="seed of generated OOD sets (noise, photo patches) and subsampling")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_score(sub) -> None:
    p = sub.add_parser(
        "score", help="score a classifier run with pytorch-ood detectors",
        description="Fit pytorch-ood detectors on the in-distribution train set of a classify "
                    "run and report AUROC, AUPR-IN, AUPR-OUT and FPR@95 (fpr95_id_tpr: OOD "
                    "accepted at 95%% ID kept; fpr95_ood_tpr: ID flagged at 95%% OOD caught) "
                    "against each OOD set "
                    "(table, JSON, CSV, ROC curves and score histograms).",
        formatter_class=HelpFormatter)
    p.add_argument("run", nargs="?", default=None,
                   help="run folder written by `robustrep classify train` (or --model ...)")
    p.add_argument("--list", action="store_true",
                   help="list every pytorch-ood detector: what it consumes, whether it is fitted, "
                        "its settable arguments; then exit")
    p.add_argument("--id", default=None, metavar="DATA",
                   help="in-distribution test data (default: the run's dataset and classes)")
    p.add_argument("--fit-data", default=None, metavar="DATA",
                   help="in-distribution data the detectors are fitted on (default: the train "
                        "split of --id)")
    p.add_argument("--ood", nargs="+", default=None, metavar="DATA",
                   help="OOD sets (default: every built-in set: digits59 gaussian uniform photos "
                        "rotated inverted). Names: digits59, gaussian, uniform, photos, rotated, "
                        "inverted, cifar10, cifar100, svhn (optionally NAME:ROOT), "
                        "imagefolder:PATH, imagelist:ROOT:LISTFILE")
    p.add_argument("--data-root", default=None,
                   help="folder of local sets (cifar10/100, svhn); default: the run's data_root")
    p.add_argument("--openood", default=None, metavar="DATA_DIR",
                   help="OpenOOD v1.5 benchmark: OpenOOD's data folder (benchmark_imglist/, "
                        "images_classic/); scores its near- and far-OOD sets and their means")
    p.add_argument("--openood-id", default=None, metavar="NAME",
                   help="ID dataset of the OpenOOD benchmark (cifar10, cifar100, imagenet200, "
                        "imagenet; default: the run's dataset)")
    p.add_argument("--resize", action="store_true",
                   help="resize local sets and convert their channels to the classifier's input "
                        "shape (otherwise a different shape is an error)")
    p.add_argument("--max-samples", type=_INT1, default=None,
                   help="score at most this many images of each evaluation set (random subset)")
    p.add_argument("--max-fit", type=_INT1, default=None,
                   help="fit on at most this many ID train images (random subset)")
    p.add_argument("--out", default=None,
                   help="output folder (default: RUN/ood; with --model a new "
                        "runs/ood/<model>-<time>)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA copy")
    p.add_argument("--no-plots", action="store_true", help="skip the ROC and histogram PNGs")
    p.add_argument("--save-scores", action="store_true",
                   help="also write every score to scores.pt")
    _add_common(p)
    add_model_options(p)
    p.set_defaults(func=run_score)


def _add_bench(sub) -> None:
    from robustrep.tasks.ood.bench import BENCH_OOD, DEFAULT_REGS
    p = sub.add_parser(
        "bench", help="train each regularizer on digits 0-4 (several seeds) and compare detectors",
        description="On the built-in split (digits 0-4 in distribution), train the baseline and "
                    "each regularizer through the classify program for several seeds, score every "
                    "detector on the built-in OOD sets, and write a regularizer x detector x OOD "
                    "set table (mean +- std AUROC and both FPR@95 conventions) as "
                    "Markdown/JSON/CSV and plots.",
        formatter_class=HelpFormatter)
    p.add_argument("--regs", default=",".join(DEFAULT_REGS),
                   help="regularizer settings to compare, comma-separated; each is a classify "
                        "--reg value (use + to combine, e.g. mixup+pgd)")
    p.add_argument("--seeds", type=_INT0, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--ood", nargs="+", default=list(BENCH_OOD), metavar="DATA",
                   help="built-in OOD sets to score")
    p.add_argument("--model", default=None, help="timm model (default: the classify default)")
    p.add_argument("--steps", type=_INT1, default=None, help="training steps per run")
    p.add_argument("--preset", default="digits-ood", help="classify preset of every run")
    p.add_argument("--train-opt", action="append", default=[], metavar="NAME=VALUE",
                   help="extra classify option for every run, e.g. adv_steps=3 (repeatable)")
    p.add_argument("--out", default="runs/ood-bench", help="bench folder (runs and tables)")
    p.add_argument("--retrain", action="store_true",
                   help="train again even when a finished run exists in the bench folder")
    _add_common(p)
    p.set_defaults(func=run_bench)


def add_parser(subparsers, name: str, summary: str) -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_score, _add_bench)


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


def run_score(args: argparse.Namespace) -> int:
    if args.list:
        print(format_detector_list())
        return 0
    foreign = model_options(args, args.run)  # None: a run folder
    from robustrep.tasks.ood.score import format_table, score_run
    resolve_device(args.device, args.amp)
    try:
        result, files = score_run(
            args.run, foreign=foreign, detectors=args.detectors, ood=args.ood, id_data=args.id,
            fit_data=args.fit_data, data_root=args.data_root, resize=args.resize,
            params=args.param, feature_maps=args.feature_maps, max_samples=args.max_samples,
            max_fit=args.max_fit, out=args.out, batch_size=args.batch_size, device=args.device,
            amp=args.amp, workers=args.workers, seed=args.seed, use_ema=not args.no_ema,
            plots=not args.no_plots, save_scores=args.save_scores,
            show_progress=not args.quiet, openood=args.openood, openood_id=args.openood_id)
    except (ValueError, TypeError) as err:  # the detectors' and data sets' argument checks
        raise UserError(str(err)) from err
    acc = "n/a" if result.id_accuracy is None else f"{100 * result.id_accuracy:.2f}%"
    print(f"ID test accuracy {acc}; sizes {result.sizes}")
    print(format_table(result))
    failed = [d for d in result.detectors.values() if d.error]
    for det in failed:
        print(f"warning: {det.name} failed: {det.error}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 1 if failed and len(failed) == len(result.detectors) else 0


# ------------------------------------------------------------------------------------------------
# bench


def run_bench(args: argparse.Namespace) -> int:
    from robustrep.tasks.ood.bench import run_bench as bench
    resolve_device(args.device, args.amp)
    try:
        summary = bench(regs=args.regs, seeds=args.seeds, ood=args.ood, detectors=args.detectors,
                        params=args.param, feature_maps=args.feature_maps, model=args.model,
                        steps=args.steps, preset=args.preset, train_opts=args.train_opt,
                        out=args.out, retrain=args.retrain, batch_size=args.batch_size,
                        device=args.device, amp=args.amp, workers=args.workers, seed=args.seed,
                        show_progress=not args.quiet)
    except (ValueError, TypeError) as err:  # the detectors' and data sets' argument checks
        raise UserError(str(err)) from err
    print(summary["markdown"])
    print(f"wrote {', '.join(str(p) for p in summary['files'].values())}")
    return 0
