"""``robustrep classify train|eval|export``: the command line of the classify program.

    robustrep classify train --model resnet10t [--preset digits] [--reg mixup,pgd] [--OPTION V]
    robustrep classify train --resume RUN [--steps N] [--stop-after N]
    robustrep classify eval RUN [--attacks autoattack,pgd] [--norm Linf] [--eps 0.0313]
    robustrep classify export RUN OUT.pth [--no-ema]

Options are the fields of :class:`~robustrep.tasks.classify.config.ClassifyConfig`; a preset
sets several at once and the flags given override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from robustrep.tasks.common.cli import (HelpFormatter, add_command, add_program,
                                        dry_run_or_prepare, regularizer_groups)
from robustrep.tasks.common.config import ConfigError, overrides_from_args, resolve_config
from robustrep.tasks.common.config_flags import add_config_args
from robustrep.tasks.common.errors import TrainingDiverged, UserError
from robustrep.tasks.common.options import (check_stop_after, resume_step, run_to_resume,
                                            stopped_note)
from robustrep.tasks.common.regularizers import refuse_unlisted_flags
from robustrep.tasks.common.weights import model_options

from .config import ClassifyConfig, EvalOptions, TrainOptions
from .lengths import flags_decide_lengths, lengths_given_once
from .option_checks import unused_options
from .presets import PRESETS

# Nothing here imports torch or timm at module level: the arguments are parsed (and --help or a
# wrong option answered) before the training and evaluation code is imported.

# Option-name prefix -> the registered methods they configure (their own --help sections).
REG_PREFIXES = {"am_": ("adaptivemix",), "mix_": ("mixup", "cutmix", "srmix"),
                "srmix_": ("srmix",), "adv_": ("pgd", "fgsm", "free"), "free_": ("free",)}


def _add_train(sub) -> None:
    """fine-tune a timm classifier with regularizers"""
    p = sub.add_parser(
        "train", help="fine-tune a timm classifier with regularizers",
        description="Fine-tune a timm classifier (built-in digits by default) with mixing, "
                    "AdaptiveMix and adversarial training; writes a run folder.",
        formatter_class=HelpFormatter)
    add_config_args(p, TrainOptions, real_defaults=True)  # the run flags, as gan train's
    add_config_args(p, ClassifyConfig, skip=("preset",),
                    groups=regularizer_groups(REG_PREFIXES, "classify"))
    ClassifyConfig.add_generated_flags(p)
    p.set_defaults(func=run_train)


def _add_eval(sub) -> None:
    """clean, calibration, adversarial and corruption metrics of a run"""
    add_command(
        sub, "eval", "clean, calibration, adversarial and corruption metrics of a run",
        EvalOptions, run_eval,
        description="Evaluate a classify run: clean top-1, NLL, ECE (+ reliability diagram), "
                    "robust accuracy under AutoAttack (default; official fra31/auto-attack code) "
                    "or PGD/FGSM/APGD, Linf or L2 in [0, 1] pixels, and accuracy and mCE under "
                    "CIFAR-10-C corruptions (on the fly, or the released files with --cifar-c); "
                    "writes RUN/eval/report.json.")


def _add_export(sub) -> None:
    """write a run's weights as a file timm.create_model(checkpoint_path=) loads"""
    p = sub.add_parser(
        "export", help="write a run's weights as a file timm.create_model(checkpoint_path=) loads",
        description="Write the timm model of a classify run (its EMA weights where it has them) "
                    "as a new file timm loads: .pth/.pth.tar/.pt (timm train.py's keys: "
                    "state_dict, arch, args with the model, mean and std) or .safetensors; "
                    "prints the timm.create_model call and the input normalisation.",
        formatter_class=HelpFormatter)
    p.add_argument("run", metavar="RUN", help="a classify run folder")
    p.add_argument("out", metavar="OUT", help="the new file: .pth, .pth.tar, .pt or "
                                              ".safetensors (an existing file is refused)")
    p.add_argument("--no-ema", action="store_true",
                   help="the raw weights, not the EMA weights the run keeps")
    p.set_defaults(func=run_export)

def add_parser(subparsers, name: str, summary: str,
               command: str | None = None) -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_train, _add_eval, _add_export,
                       command=command)


def run_train(args: argparse.Namespace) -> int:
    overrides = overrides_from_args(ClassifyConfig, args)
    lengths_given_once(overrides)
    resume = run_to_resume(args)
    if resume is not None:
        from .train import config_for_resume
        cfg = config_for_resume(resume, overrides)
    else:
        cfg = resolve_config(ClassifyConfig, PRESETS, args.preset, args.config, overrides,
                             unused=unused_options)
        refuse_unlisted_flags(args, cfg.regularizers())
        cfg = flags_decide_lengths(cfg, overrides)
    if resume is not None or cfg.epochs is None:  # else known once the data is read (train)
        # before --dry-run says it is fine, from the step a resume goes on from
        check_stop_after(args.stop_after, resume_step(resume, args.stop_after), cfg.steps)
    if dry_run_or_prepare(cfg, args, lambda: _dry_run_checks(cfg, resume is None, resume,
                                                             args.stop_after)):
        return 0
    from robustrep.tasks.common.rundir import default_run_path

    from .train import train
    run_dir = resume or args.out or default_run_path("runs", "classify", cfg.model)
    # the user's mistakes are UserErrors where they are found (the options' ConfigError, the
    # data's DataError, weights of another model); any other ValueError is a bug, and keeps its
    # traceback
    try:
        last = train(cfg, run_dir, resume=resume is not None, stop_after=args.stop_after,
                     quiet=args.quiet)
    except FloatingPointError as err:  # a non-finite loss: exit 1 with one line
        raise TrainingDiverged(str(err)) from err
    if os.environ.get("RANK", "0") != "0":
        return 0  # only the main process reports
    print(f"run folder: {run_dir}")
    if last:
        print(json.dumps({k: v for k, v in last.items() if k.startswith(("eval/", "step"))}))
    note = stopped_note("classify", args.stop_after, cfg.steps, run_dir)
    if note:
        print(note)
    return 0


def _dry_run_checks(cfg: ClassifyConfig, fresh: bool = True,
                    resume: str | None = None, stop_after: int | None = None) -> None:
    """What ``--dry-run`` checks beyond the options (``ood bench`` asks it before training):
    the regularizers built with their options, the model built as the run builds it (on the
    meta device, without its pretrained weights: an option the timm model does not take is
    refused here) with the optimizer over its parameters, and the built-in digits with their
    classes and channels. Other data is scanned when the run starts, which a dry run should not
    wait for; a hub model (its config is on the hub) is built then too. ``fresh`` (not a
    resume): ``--epochs`` and ``--warmup-epochs`` are converted to steps as the run will
    (:func:`_dry_run_lengths`), and ``--stop-after`` checked against a length so counted;
    ``resume``: the run folder a resume keeps recorded regularizer options of (said, as the
    resume says it)."""
    from robustrep.tasks.common.weights import HUB_PREFIX

    from torch import nn

    from .optim import build_optimizer
    from .task import build_regularizers
    from .train import dry_run_model
    from robustrep.tasks.common.regularizer_record import kept_on_resume

    from .config import OPTION_FIELDS
    kept, note = (kept_on_resume(Path(resume), cfg, cfg.regularizers(), OPTION_FIELDS)
                  if resume is not None else (None, None))
    if note:
        print(note, file=sys.stderr)
    regs = build_regularizers(cfg, kept)  # --reg-options the classes refuse: ConfigError
    data = None
    if cfg.dataset == "digits":  # --classes the digits lack: DataError
        from .data import build_datasets
        data = build_datasets(cfg)[2]
    if cfg.model.startswith(HUB_PREFIX):  # its config.json may need the network
        model = nn.Linear(1, 1)
    else:  # a model, --mean/--std or --drop-path it refuses: ConfigError
        classes, channels = (data.num_classes, data.channels) if data else (None, None)
        model = dry_run_model(cfg, classes, channels)
    try:
        build_optimizer(cfg, model)  # a name timm cannot build: ConfigError
    except ConfigError as err:  # one for the GPU the config names: not this machine's to say
        if cfg.device == "cpu" or "CUDA" not in str(err):
            raise
    if fresh:
        _dry_run_lengths(cfg, data, getattr(regs.get("adversarial inputs"), "replays", 1))
        if cfg.epochs is not None and cfg.steps is not None:  # counted from the digits just now
            check_stop_after(stop_after, 0, cfg.steps, cfg.length_text("steps"))


def _dry_run_lengths(cfg: ClassifyConfig, data: Any, replays: int) -> None:
    """The steps of ``--epochs``/``--warmup-epochs`` in the printed config where the dry run has
    read the data (the built-in digits), as the run converts them; elsewhere they are null and a
    note on stderr says they are counted when the run reads the data. (No note with the digits:
    ``ood bench`` reads the dry run's output, both streams, as the config's JSON.)"""
    import sys

    from .lengths import EPOCHS_OF
    given = [f for f, e in EPOCHS_OF.items() if getattr(cfg, e) is not None]
    if not given:
        return
    if data is None:
        said = ", ".join(cfg.length_text(f).split(" (")[0] for f in given)
        for field in given:
            setattr(cfg, field, None)  # printed as null: not the placeholder the run replaces
        print(f"note: {said}: counted in steps when the run reads the {cfg.dataset} data (its "
              f"size decides the batches per epoch); the printed {' and '.join(given)} are null",
              file=sys.stderr)
        return
    from robustrep.tasks.common.batches import check_global_batch
    from robustrep.tasks.common.distributed import world_size_from_env
    world = world_size_from_env()
    check_global_batch(data.train_size, cfg.batch_size, world)
    cfg.resolve_epochs(data.train_size, world, replays)


def _default(name: str) -> Any:
    """``classify eval``'s default for option ``name``: what a user who left it unset has."""
    field = EvalOptions.__dataclass_fields__[name]
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _check_attack_options(args: argparse.Namespace) -> None:
    """An attack or a PGD length given twice (was a traceback deep in the progress bar), PGD
    without a length, and attack options with no attack they act on (accepted without effect)."""
    from robustrep.tasks.common.options import unique
    attacks = unique(args.attacks, "--attacks", "attack")
    unique(args.pgd_steps, "--pgd-steps", "step count")
    if "pgd" in attacks and not args.pgd_steps:
        raise UserError("--attacks pgd needs at least one --pgd-steps count (e.g. 10 20)")
    given = {"--pgd-steps": args.pgd_steps != _default("pgd_steps"),
             "--pgd-step-size": args.pgd_step_size is not None}
    for flag, changed in given.items():
        if changed and "pgd" not in attacks:
            raise UserError(f"{flag} applies only with --attacks pgd (attacks: "
                            f"{','.join(attacks) or 'none'})")
    for name in ("eps", "norm", "n_attack"):
        if not attacks and getattr(args, name) != _default(name):
            raise UserError(f"--{name.replace('_', '-')} applies only with an attack (--attacks "
                            f"none was given)")
    # a corruption or severity twice was computed twice and shown once
    unique(args.corruptions, "--corruptions", "corruption")
    unique(args.severities, "--severities", "severity")
    if not args.corruptions and not args.cifar_c and args.severities != _default("severities"):
        raise UserError("--severities applies only with corruptions (--corruptions or "
                        "--cifar-c; none were given)")
    if args.robustbench is None:
        for name in ("threat_model", "model_dir"):  # RobustBench's alone (was ignored: Linf)
            if getattr(args, name) != _default(name):
                raise UserError(f"--{name.replace('_', '-')} applies only with --robustbench "
                                f"NAME" + (" (the attacks' norm is --norm)"
                                           if name == "threat_model" else ""))


def run_eval(args: argparse.Namespace) -> int:
    _check_attack_options(args)  # before torch is imported: that alone takes seconds
    from robustrep.tasks.common.runtime import resolve_device

    from .eval_table import format_table
    from .evaluate import evaluate_run, robustbench_options
    resolve_device(args.device)
    foreign = (robustbench_options(args) if args.robustbench is not None
               else model_options(args, args.run))
    # as in run_train: the user's mistakes are UserErrors where they are found (a run folder,
    # weights or data refused), a missing file robustrep names is one line (the common
    # handler's), and any other ValueError is a bug with its traceback
    from robustrep.metrics.robust import RadiusError
    try:
        report = evaluate_run(
            args.run, foreign=foreign, eps=args.eps, attacks=args.attacks, norm=args.norm,
            pgd_steps=args.pgd_steps, pgd_step_size=args.pgd_step_size,
            n_attack=args.n_attack or None, corruptions=args.corruptions,
            severities=args.severities, cifar_c_root=args.cifar_c,
            bins=args.bins, max_samples=args.max_samples, batch_size=args.batch_size,
            seed=args.seed, use_ema=not args.no_ema, device=args.device,
            data_root=args.data_root, out=args.out, progress_bar=not args.quiet)
    except RadiusError as err:  # an L2 eps wider than the images: known once they are read
        raise UserError(f"--eps: {err}") from None
    print(format_table(report))
    if isinstance(report.get("step"), int) and isinstance(report.get("steps"), int) \
            and report["step"] < report["steps"]:
        print(f"note: {args.run} is unfinished: this is its checkpoint at step {report['step']} "
              f"of {report['steps']}")
    print(f"report: {Path(report['files']['report'])}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from .export import export_run
    line, note = export_run(args.run, args.out, use_ema=not args.no_ema)
    print(line)
    if note:
        print(note, file=sys.stderr)
    return 0
