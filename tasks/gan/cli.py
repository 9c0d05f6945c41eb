"""``robustrep gan train|eval|sample|fid``: argument parsing for the GAN program.

    robustrep gan train [--preset NAME] [--config FILE] [--reg adaptivemix,asgan] [--OPTION V ...]
    robustrep gan train --resume RUN [--steps N] [--stop-after N]
    robustrep gan eval RUN [--num-samples N] [--inception-weights FILE]
    robustrep gan sample RUN|NET.pkl [--num N | --seeds 0-7] [--grid PNG] [--outdir DIR]
    robustrep gan fid A [B] [--num N] [--fid-features NET] [--save-stats FILE.npz [--force]]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robustrep.tasks.common.cli import (HelpFormatter, add_command, add_program,
                                        dry_run_or_prepare, regularizer_groups)
from robustrep.tasks.common.config import (from_dict, merge_for_resume, overrides_from_args,
                                           refuse_unused_on_resume, resolve_config)
from robustrep.tasks.common.config_flags import add_config_args
from robustrep.tasks.common import errors
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.options import (check_stop_after, resume_step, run_to_resume,
                                            stopped_note)
from robustrep.tasks.common.regularizers import refuse_unlisted_flags
from robustrep.tasks.gan.config import (RESUMABLE, EvalOptions, FidOptions, GanConfig,
                                        SampleOptions, TrainOptions, saved_config)
from robustrep.tasks.gan.config_checks import (check_ema_off, check_eval_off,
                                               check_inception_file, inception_unused,
                                               unused_options)
from robustrep.tasks.gan.presets import (AUX_PRESETS, DEFAULT_PRESET, PRESETS, presets_for,
                                         with_preset_aux_task)

# Option-name prefix -> the registered methods they configure (their own --help sections).
REG_PREFIXES = {"am_": ("adaptivemix",), "mix_": ("mixup", "cutmix", "srmix"), "dat_": ("dat",),
                "asgan_": ("asgan",), "rp_": ("rpgan",)}


def _add_train(sub) -> None:
    """train a GAN (default preset: digits-dcgan, 97 s measured on 2 CPU cores)"""
    p = sub.add_parser(
        "train", help="train a GAN (default preset: digits-dcgan, 97 s measured on 2 CPU cores)",
        description="Train a GAN with any of the regularizers. Options resolve as: defaults < "
                    "--preset < --config FILE < flags.",
        epilog=f"presets: {', '.join(PRESETS)}. Multi-process: torchrun --nproc_per_node N -m "
               "robustrep.tasks.cli gan train ...", formatter_class=HelpFormatter)
    add_config_args(p, TrainOptions, real_defaults=True)  # the run flags, as classify train's
    add_config_args(p, GanConfig, skip=("preset", "out"),  # the run flags' --preset and --out
                    groups=regularizer_groups(REG_PREFIXES, "gan"),
                    default_preset=(DEFAULT_PRESET, PRESETS[DEFAULT_PRESET]))
    GanConfig.add_generated_flags(p)
    p.set_defaults(func=cmd_train)


def _add_eval(sub) -> None:
    """FID/KID/precision-recall (or 2-D mode stats) of a run"""
    add_command(sub, "eval", "FID/KID/precision-recall (or 2-D mode stats) of a run", EvalOptions,
                cmd_eval, description="Score a run's G-EMA (G when the run keeps none); "
                                      "writes RUN/eval.json and prints a table.")


def _add_sample(sub) -> None:
    """draw samples from a run as a PNG grid and/or a .pt file"""
    add_command(sub, "sample", "draw samples from a run as a PNG grid and/or a .pt file",
                SampleOptions, cmd_sample,
                description="Draw N samples from a run's G-EMA (G when the run keeps none).")


def _add_fid(sub) -> None:
    """FID/KID/precision-recall between any two image sets or statistics files"""
    add_command(
        sub, "fid", "FID/KID/precision-recall between any two image sets or statistics files",
        FidOptions, cmd_fid,
        description="FID, KID and precision/recall of A against the reference B. A and B are "
                    "each an image folder, a dataset .zip, a GAN run folder, a stylegan2-ada "
                    "network pickle (.pkl), statistics (a .npz with mu and sigma, "
                    "torch-fidelity's cached .pt, stylegan2-ada's cached .pkl or a .pkl of mu and "
                    "sigma), a samples file "
                    "(.pt, .npy, .npz) or a named reference "
                    "(digits, cifar10-train, cifar10-test, cifar100-train, cifar100-test, "
                    "svhn-train, svhn-test). Prints the metrics and their convention.")


def add_parser(subparsers, name: str = "gan", summary: str = "",
               command: str | None = None) -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_train, _add_eval, _add_sample, _add_fid,
                       command=command)


# ---------------------------------------------------------------------------------------------
# commands


def resolve_train_config(args: argparse.Namespace) -> GanConfig:
    """Config for ``gan train``: preset/file/flags, or the resumed run's config plus overrides."""
    overrides = overrides_from_args(GanConfig, args)
    run = run_to_resume(args, ("preset", "config", "aux_task"))
    if run is None:
        cfg = resolve_config(GanConfig, presets_for(args.aux_task), args.preset, args.config,
                             overrides, default_preset=DEFAULT_PRESET,
                             unused=unused_options, say_preset_dropped=True)
        refuse_unlisted_flags(args, cfg.reg.split(","))
        check_ema_off(cfg, overrides)
        check_eval_off(cfg, overrides)
        if not args.dry_run:  # a file of this machine, which --dry-run does not check
            check_inception_file(cfg.inception_weights)  # a flag's or the --config file's
        resolved = with_preset_aux_task(cfg, cfg.preset, args.aux_task)
        if resolved.reg != cfg.reg:  # the user named other methods: say that it stays
            print(f"note: --preset {cfg.preset} includes its D auxiliary task "
                  f"{AUX_PRESETS[cfg.preset]}: --reg {cfg.reg} runs as --reg {resolved.reg} "
                  f"(--aux-task none drops it)", file=sys.stderr)
        return resolved
    args.resume = run  # `--resume` alone: the --out folder
    overrides.pop("out", None)  # --out names the folder resumed; its saved config keeps its own
    from robustrep.tasks.common.rundir import RunDir, check_run_program
    saved = RunDir(run).read_config()
    check_run_program(saved, GanConfig, run, "gan")
    saved = saved_config(saved)
    refuse_unused_on_resume(saved, overrides, unused_options, RESUMABLE)
    cfg = from_dict(GanConfig, merge_for_resume(saved, overrides, RESUMABLE, run),
                    source=f"{run}/config.json")
    check_eval_off(cfg, overrides)  # the resumable eval options may turn evaluation off
    if not args.dry_run:
        check_inception_file(overrides.get("inception_weights"))  # the flag; a saved path is
    # read only where the run evaluates on Inception (saved_config drops one acting on nothing)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    cfg = resolve_train_config(args)  # a wrong option is answered before torch is imported
    def dry_run_checks() -> None:  # the regularizers built with their options, as the run does
        from robustrep.tasks.gan.regs import build_regs, kept_regs
        kept, note = kept_regs(cfg, args.resume) if args.resume else (None, None)
        if note:  # what the resume keeps, said as it will say it
            print(note, file=sys.stderr)
        build_regs(cfg, kept)

    # before --dry-run says the flags are fine, from the step a resume goes on from
    check_stop_after(args.stop_after, resume_step(args.resume, args.stop_after), cfg.steps)
    if dry_run_or_prepare(cfg, args, dry_run_checks):
        return 0
    if not args.resume:  # a method option refused before the training code's imports (seconds);
        from robustrep.tasks.gan.regs import build_regs  # a resume changes none of them
        build_regs(cfg)
    from robustrep.tasks.gan.evaluate import format_table
    from robustrep.tasks.gan.train import TrainingDiverged, train
    try:
        summary = train(cfg, resume=args.resume, show_progress=not args.quiet,
                        stop_after=args.stop_after)
    except TrainingDiverged as err:  # once gan.train raises the common class, a no-op
        raise errors.TrainingDiverged(str(err)) from err
    if summary.get("rank", 0) == 0:  # one report per torchrun job
        print(f"run: {summary['run']}  steps: {summary['step']}  "
              f"train time: {summary['train_seconds']:.1f} s")
        if summary["metrics"]:
            print(format_table(summary["metrics"]))
        note = stopped_note("gan", args.stop_after, cfg.steps, summary["run"])
        if note:
            print(note)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from robustrep.tasks.common.runtime import resolve_device
    from robustrep.tasks.gan.evaluate import evaluate_run, format_table
    resolve_device(args.device)
    # the user's mistakes (a run, checkpoint, weights file or data refused) are UserErrors
    # where they are found; any other ValueError is a bug, and keeps its traceback
    metrics = evaluate_run(args.run, args.checkpoint, args.num_samples,
                           args.inception_weights, args.device, args.out,
                           use_ema=not args.no_ema, fid_features=args.fid_features,
                           max_real=args.real, show_progress=not args.quiet)
    print(format_table(metrics))
    from robustrep.tasks.gan.sample import run_config
    steps = run_config(args.run).steps
    # the latest checkpoint behind the run's end, as classify eval and ood score say it (an
    # earlier --checkpoint of a finished run is what was asked for)
    if args.checkpoint is None and metrics["step"] < steps:
        print(f"note: {args.run} is unfinished: these are the metrics of its checkpoint at step "
              f"{metrics['step']} of {steps}")
    return 0


def cmd_fid(args: argparse.Namespace) -> int:
    from robustrep.tasks.gan.evaluate import format_table
    from robustrep.tasks.common.runtime import resolve_device
    from robustrep.tasks.gan.fid import compare
    _check_fid_inception(args)
    _absolute_run_features(args)
    args.torch_device = resolve_device(args.device)
    record = compare(args)  # as in cmd_eval: a ValueError that is no UserError is a bug
    print(format_table(record))
    return 0


def _absolute_run_features(args: argparse.Namespace) -> None:
    """``--fid-features run:DIR`` with DIR absolute, as runs and statistics files record it (a
    relative DIR named the same run differently, or another run from another folder)."""
    from robustrep.tasks.common.runopen import absolute_prefixed  # imports torch
    if args.fid_features is not None:
        args.fid_features = absolute_prefixed(args.fid_features, "run:")


def _check_fid_inception(args: argparse.Namespace) -> None:
    """``gan fid``'s ``--inception-weights``, before any set is read: a file that is not there,
    or one beside ``--fid-features`` naming another network (which network A and B name is
    known once they are opened: tasks/gan/fid.py)."""
    if args.inception_weights is None:
        return
    need = inception_unused(None, args.fid_features)
    if need is not None:
        raise UserError(f"--inception-weights applies only with {need}; drop it or set that "
                        f"option")
    check_inception_file(args.inception_weights)


def cmd_sample(args: argparse.Namespace) -> int:
    from robustrep.tasks.common.runtime import resolve_device
    from robustrep.tasks.common.options import check_run_folder
    from robustrep.tasks.gan.sample import sample_run
    if Path(args.run).suffix.lower() != ".pkl":  # a network pickle: tasks/gan/sample.py names it
        check_run_folder(args.run, "RUN", "gan sample {run} --checkpoint {name}")
    resolve_device(args.device)
    out = sample_run(args.run, args.num, args.grid, args.pt, args.seed, args.checkpoint,
                     args.device, use_ema=not args.no_ema, nrow=args.nrow, force=args.force,
                     truncation=args.truncation, seeds=args.seeds, outdir=args.outdir,
                     noise_mode=args.noise_mode, class_idx=args.class_idx,
                     show_progress=not args.quiet)
    print(json.dumps(out, indent=2))
    return 0
