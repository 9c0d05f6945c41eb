"""Options several programs share, declared once.

``shared("seed")`` is the config field (default, help, choices, range) that ``gan train`` and
``classify train`` both declare (:data:`SHARED`), and that the other commands (``classify
eval``, ``ood score``, ``gan sample``...) declare too, beside the options only commands share
(:data:`COMMANDS`: ``--batch-size``, ``--quiet``, ``--out``...). A program passes only what
differs for it (its default schedule, e.g. ``shared("eval_every", 500)``, or where ``--out``
goes by default). :class:`ModelOptions` are the options of a classifier from elsewhere
(``classify eval`` and ``ood score`` instead of a run folder). Regularizer options come from
the registry (:func:`robustrep.tasks.common.regularizers.reg_option`): their help is the
class's docstring and their default ``None``, the class's own. :class:`TrainRunOptions` are
the trainers' run flags (``--preset``, ``--config``, ``--out``, ``--resume``, ``--stop-after``,
``--dry-run``, ``--download``, ``--quiet``), the same in ``gan train`` and ``classify train``;
:func:`run_to_resume` says which run folder a resume continues, or refuses it in one line.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustrep._names import AMP_CHOICES
from robustrep.tasks.common.config import NONNEG, POSITIVE, UNIT, ConfigError, option
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.sinks import LOG_CHOICES

_KEEP = object()

DEVICES = "auto, cpu, cuda or cuda:N"  # the words --device accepts (check_device's pattern)

# numpy's generators take seeds below 2**32 (torch's below 2**64)
SEED_RANGE = {"min": 0, "max": 2**32 - 1}

# name -> (default, help, choices, bounds); the same flag means the same thing in every program
SHARED: dict[str, tuple[Any, str, tuple | None, dict[str, Any]]] = {
    "data_root": (None, "where --dataset is read from on disk: its folder, or a stylegan2-ada "
                        "dataset .zip where --dataset takes one (--dataset lists them)",
                  None, {}),
    "reg": ("none", "regularizers, comma-separated (one per place; see --help sections below)",
            None, {}),
    "reg_options": (None, "options of the --reg methods by method, where no other flag sets "
                          "them or one method's own value overrides a shared flag "
                          "(--cutmix-alpha): {\"toy\": {\"weight\": 0.5}} (the --NAME-OPTION "
                          "flags below write here)", None, {}),
    "seed": (0, "seed of every random number generator", None, SEED_RANGE),
    "log": ("jsonl", "metrics sinks: jsonl (metrics.jsonl only) or tensorboard (also "
                     "RUN/tensorboard; pip install 'robustrep[tensorboard]') or wandb (pip install "
                     "'robustrep[wandb]')", LOG_CHOICES, {}),
    "device": ("auto", DEVICES, None, {}),
    "amp": ("off", "autocast precision", AMP_CHOICES, {}),
    "channels_last": (False, "channels-last memory format (faster convs on GPU)", None, {}),
    "compile": (False, "torch.compile the networks' main forward (penalties stay eager)", None,
                {}),
    "eval_every": (None, "evaluate every N steps (0 = only at the end)", None, NONNEG),
    "ckpt_every": (None, "write a checkpoint every N steps (0 = only at the end)", None, NONNEG),
    "keep_ckpts": (3, "step checkpoints kept beside latest.pt: the newest N (0 = every one, as "
                      "stylegan2-ada keeps its snapshots)", None, NONNEG),
    "log_every": (None, "log the training losses every N steps (0 = only at the end)", None,
                  NONNEG),
}


# The options of the commands that are not trainers (eval, score, bench, sample, report): the same
# flag means the same thing, with the same range and help, in every command that has it.
COMMANDS: dict[str, tuple[Any, str, tuple | None, dict[str, Any]]] = {
    "batch_size": (256, "images per forward pass", None, {"min": 1}),
    # None: a worker per spare core, as gan's --num-workers (timm's train.py takes 4 always)
    "workers": (None, "DataLoader worker processes for data read from disk (None = auto: "
                      "min(4, CPUs - 1), 0 on <= 2 CPUs; data held in memory needs none)",
                None, NONNEG),
    "quiet": (False, "no progress bars", None, {}),
    "no_ema": (False, "use the raw weights, not their EMA copy", None, {}),
    "out": (None, "where the command writes its files", None, {}),
    "seeds": ([0, 1, 2], "seeds, each giving one result: a training run (ood bench, report) or an "
                         "image (gan sample: z drawn as stylegan2-ada's generate.py draws it); "
                         "0-2 is 0,1,2", None,
              {**SEED_RANGE, "ranges": True}),
}


def shared(name: str, default: Any = _KEEP, help: str | None = None,
           default_help: str | None = None, **cli: Any) -> Any:
    """The config field of shared option ``name``; ``default``/``help`` where a program's
    differ (its run length sets its schedules); ``default_help`` says in words what the default
    ``None`` stands for in this command (``--out``: ``RUN/eval``); ``cli``: how it looks on the
    command line (``metavar="DIR"``; see :func:`~robustrep.tasks.common.config.option`)."""
    base_default, base_help, choices, bounds = (SHARED | COMMANDS)[name]
    text = help or base_help
    if default_help is not None:
        text = f"{text} (default: {default_help})"
    return option(base_default if default is _KEEP else default, text, choices, **bounds, **cli)


def check_device(name: str, amp: str | None = "off") -> str:
    """``--device name`` lower-cased, checked with ``--amp`` from the words alone (no torch).

    A name that is not one of :data:`DEVICES`, an ``--amp`` outside ``AMP_CHOICES`` and
    ``--amp fp16`` with ``--device cpu`` are :class:`ConfigError` s naming the flag, answered
    before a command imports torch. What needs torch (is there a GPU, does ``auto`` mean CPU)
    is :func:`robustrep.tasks.common.runtime.resolve_device`'s, which calls this again with
    the device it resolved.
    """
    name = str(name).strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ConfigError(f"--device must be {DEVICES}; got {name!r}")
    amp = "off" if amp is None else amp
    if amp not in AMP_CHOICES:
        raise ConfigError(f"--amp must be one of {', '.join(AMP_CHOICES)}; got {amp!r}")
    if amp == "fp16" and name == "cpu":
        raise ConfigError("--amp fp16 needs a CUDA device; on CPU use --amp bf16 or --amp off")
    return name


MODEL_GROUP = "a model from elsewhere (instead of RUN)"
# The datasets a classifier run may be trained on (classify train's --dataset), and those of them
# read from a folder (--data-root): the digits are built in.
CLASSIFIER_DATASETS = ("digits", "cifar10", "cifar100", "svhn", "imagefolder", "lsun", "zip")
ROOTED_DATASETS = tuple(d for d in CLASSIFIER_DATASETS if d != "digits")
MODEL_DATASETS = ("digits", "cifar10", "cifar100", "svhn", "imagefolder")


def _model(default: Any, help: str, choices: tuple | None = None, **more: Any) -> Any:
    return option(default, help, choices, group=MODEL_GROUP, **more)


@dataclass(kw_only=True)
class ModelOptions:
    """``--model`` with ``--pretrained`` or ``--checkpoint``, and the data and normalisation a
    model from elsewhere needs (a run folder records them in its config.json); the ranges are
    ``classify train``'s for the same options."""

    model: str | None = _model(None, "timm model name, hf-hub:ORG/NAME or a local timm folder",
                               metavar="NAME")
    pretrained: bool = _model(False, "the model's own pretrained weights (Hugging Face "
                                     "cache/hub), head kept")
    checkpoint: str | None = _model(None, "a state dict from any trainer (.pth/.pt/.safetensors; "
                                          "module./model. prefixes and state_dict/model "
                                          "wrappers handled)", metavar="FILE")
    num_classes: int | None = _model(None, "head outputs (default: from the weights)", min=2)
    dataset: str = _model("digits", "the model's in-distribution data", MODEL_DATASETS)
    classes: list[int] | None = _model(None, "the subset of class labels the model was trained "
                                             "on", **NONNEG)
    image_size: int = _model(32, "input side the data is resized to", min=1)
    channels: int | None = _model(None, "input channels (default: the weights')", (1, 3))
    mean: list[float] | None = _model(None, "input normalisation mean per channel (default: "
                                            "the model's pretrained_cfg)", **UNIT)
    std: list[float] | None = _model(None, "input normalisation std per channel (default: the "
                                           "model's pretrained_cfg)", **POSITIVE)


# ---------------------------------------------------------------------------------------------
# The trainers' run flags: how a run starts, where it goes, when it stops. Not config fields (a
# run's config.json does not hold them); the same names, meaning and help in ``gan train`` and
# ``classify train``. A program adds only its own words (:func:`run_option`'s ``detail``).

# the value of `--resume` given alone: continue the --out folder. Not "": an empty path is
# refused (`--resume "$RUN"` with RUN unset), and argparse converts this value like a typed one.
RESUME_OUT = "<the --out folder>"

# name -> (help, how the flag looks: option()'s keywords)
RUN: dict[str, tuple[str, dict[str, Any]]] = {
    "preset": ("a named set of options; --config and the flags override it",
               {"metavar": "NAME"}),
    "config": ("a .json/.yaml file of options; they override the preset, the flags override "
               "them", {"metavar": "FILE"}),
    "out": ("the run folder", {"flags": ("--out", "--run-dir"), "metavar": "RUN"}),
    "resume": ("continue RUN (--resume alone: the --out folder) from its latest checkpoint, in "
               "the same folder, with its saved config",
               {"metavar": "RUN", "bare": RESUME_OUT}),
    "stop_after": ("stop after step N with a checkpoint, as if interrupted (--resume continues "
                   "the run)", {"metavar": "N", "min": 1}),
    "dry_run": ("check the options, build the regularizers and print the resolved config; "
                "train nothing, write nothing. Not checked: this machine (a GPU, the data "
                "files), so a config can be checked where it will not run", {}),
    "download": ("fetch the dataset (cifar10, cifar100, svhn: torchvision's download) into "
                 "--data-root first; not with ROBUSTREP_OFFLINE=1", {}),
}


def run_option(name: str, detail: str | None = None, default_help: str | None = None) -> Any:
    """The field of run flag ``name``; ``detail``: a program's own words after the shared help
    (its presets, the options its resume may change); ``default_help``: what the default stands
    for in this program (its default preset, its default run folder)."""
    text, cli = RUN[name]
    text = f"{text}; {detail}" if detail else text
    if default_help is not None:
        text = f"{text} (default: {default_help})"
    return option(False if name in ("dry_run", "download") else None, text, **cli)


@dataclass(kw_only=True)
class TrainRunOptions:
    """The run flags of ``gan train`` and ``classify train`` (a program's subclass adds its own
    words to ``--preset``, ``--out`` and ``--resume``, and flags only it has)."""

    preset: str | None = run_option("preset")
    config: str | None = run_option("config")
    out: str | None = run_option("out")
    resume: str | None = run_option("resume")
    stop_after: int | None = run_option("stop_after")
    dry_run: bool = run_option("dry_run")
    download: bool = run_option("download")
    quiet: bool = shared("quiet")


def resumable_detail(resumable: tuple[str, ...]) -> str:
    """``--resume``'s words for a program: the options a resume may change."""
    return "may change: " + ", ".join("--" + n.replace("_", "-") for n in resumable)


def run_to_resume(args: Any, defining: tuple[str, ...] = ("preset", "config")) -> str | None:
    """The run folder ``--resume`` continues, or None (a new run); checked before any work.

    ``--resume RUN``, or ``--resume`` alone with ``--out RUN``. ``--resume RUN`` with another
    ``--out``, a bare ``--resume`` without ``--out``, or a flag that defines a new run
    (``defining``: ``--preset``, ``--config``...) beside ``--resume`` is a one-line ConfigError.
    """
    if args.resume is None:
        return None
    if args.resume == RESUME_OUT:
        if args.out is None:
            raise ConfigError("--resume alone continues the --out folder; give --resume RUN or "
                              "--out RUN")
        run = args.out
    else:
        run = args.resume
        if args.out is not None and not _same_folder(args.out, run):
            raise ConfigError(f"--resume {run} and --out {args.out} name two run folders; give "
                              f"one (--resume RUN, or --resume with --out RUN)")
    if any(getattr(args, name) is not None for name in defining):
        flags = "/".join("--" + n.replace("_", "-") for n in defining)
        raise ConfigError(f"--resume continues a run with its saved config; drop {flags}")
    bare = args.resume == RESUME_OUT
    if hasattr(args, "init") and str(run).lower().endswith(".pkl") and Path(run).is_file():
        # stylegan2-ada's --resume NET.pkl starts a run from a network; here that is --init
        raise ConfigError(f"--resume {run} is a network pickle, not a run folder: start a new "
                          f"run from it with --init {run} (stylegan2-ada's --resume NET.pkl)")
    check_run_folder(run, "--out" if bare else "--resume",
                     "--resume {run} continues it from its checkpoints/latest.pt")
    return run


# what a checkpoint file is named (a run's step_*.pt and latest.pt, timm's .pth)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


def check_run_folder(path: Any, what: str, checkpoint_use: str,
                     expected: str = "a folder holding config.json and checkpoints/") -> Path:
    """``path`` when it is a folder; else one line saying that it does not exist, or that it is
    a file, not a run folder (was: "is not a robustrep run folder: no config.json" for both).
    A file named like a checkpoint is answered with ``checkpoint_use``, what the command does
    with a run's checkpoint: its ``{run}`` is the run folder holding the file (when it lies in a
    ``checkpoints/`` folder; else ``RUN``), ``{name}`` its name there (else the path given) and
    ``{file}`` the path given.

    ``what``: the option or argument (``--resume``, ``RUN``; empty where argparse names it);
    ``expected``: what a run folder is, in the command's words.
    """
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    named = f"{what} {path}" if what else str(path)
    if not folder.exists():
        raise RunFolderError(f"{named} does not exist (expected {expected})")
    message = f"{named} is a file, not a run folder (expected {expected})"
    if folder.suffix.lower() in CHECKPOINT_SUFFIXES:
        in_run = folder.parent.name == "checkpoints"
        use = checkpoint_use.format(run=folder.parent.parent if in_run else "RUN",
                                    name=folder.name if in_run else path, file=path)
        message += f"; for a checkpoint give its run folder: {use}"
    raise RunFolderError(message)


# what a classify run's checkpoint file is given as (classify eval, ood score: RUN)
RUN_CHECKPOINT_USE = "{run}; or, for one no robustrep run wrote, --model NAME --checkpoint {file}"


def refuse_file_run(run: str) -> None:
    """``RUN`` of ``classify eval`` and ``ood score`` that is a file, refused as the command line
    is parsed: their default output folder RUN/eval (RUN/ood) was refused first, as if --out
    had named a file's subfolder. A missing RUN is named when the run is read (a placeholder
    RUN stands in the option checks' tests)."""
    if Path(run).expanduser().is_file():
        check_run_folder(run, "", RUN_CHECKPOINT_USE)


def check_lsun_classes(text: str | None, dataset: str | None = None) -> None:
    """``--lsun-classes`` checked with the other options (gan and classify configs): its names
    were checked only when the databases were opened, after the run's data and network. The
    reader's own checks (:func:`robustrep.data.lsun.parse_classes`: empty items, a database
    twice), then each name against the databases torchvision's LSUN reads. ``dataset`` lsun
    without it: the line names the option (the reader's said "needs classes")."""
    if text is None and dataset == "lsun":
        raise ConfigError("--dataset lsun reads the databases --lsun-classes names: give "
                          "--lsun-classes NAME[,NAME...], each ROOT/NAME_lmdb (e.g. "
                          "church_outdoor_train)")
    if text is None:
        return
    from robustrep.data.lsun import CATEGORIES, OBJECTS_ADVICE, SPLITS, parse_classes
    try:
        names = parse_classes(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None  # "lsun classes ...": the option in words
    for name in [] if isinstance(names, str) else names:  # a split alone: every category
        category, _, split = name.rpartition("_")
        if category not in CATEGORIES or split not in SPLITS:
            raise ConfigError(
                f"--lsun-classes: {name!r} is no LSUN database; accepted: CATEGORY_SPLIT names, "
                f"comma-separated (CATEGORY: {', '.join(CATEGORIES)}; SPLIT: "
                f"{', '.join(SPLITS)}; e.g. church_outdoor_train), or one SPLIT alone "
                f"(that split of every category); {OBJECTS_ADVICE} (--dataset imagefolder "
                f"--data-root DIR)")


def check_stop_after(stop_after: int | None, step: int, steps: int | None = None,
                     length: str | None = None) -> None:
    """Refuse a ``--stop-after`` a resumed run has already passed (nothing would be trained),
    or one at or past ``steps`` (the run would end anyway: it would stop nothing). ``length``:
    how the user gave the run's length (``--epochs 3 (84 steps)``; default ``--steps N``)."""
    if stop_after is not None and stop_after <= step:
        raise ConfigError(f"--stop-after {stop_after}: the run is already at step {step}; give a "
                          f"later step, or drop --stop-after to train to the end")
    if stop_after is not None and steps is not None and stop_after >= steps:
        raise ConfigError(f"--stop-after {stop_after} is not before the run's end "
                          f"({length or f'--steps {steps}'}): it would stop nothing; give a step "
                          f"below {steps}, or drop it")


def resume_step(run: Any, stop_after: int | None) -> int:
    """The step a resume of ``run`` goes on from, for ``--stop-after`` checked before
    ``--dry-run`` says yes as the resume checks it once its checkpoint is loaded: read without
    the tensors, from the last step file where ``latest.pt`` is missing (the resume restores
    it). 0 for a fresh run, without ``--stop-after`` (torch is not imported then), or where no
    checkpoint reads (the resume says why)."""
    if run is None or stop_after is None:
        return 0
    from robustrep.tasks.common.checkpoint import (last_step_checkpoint, latest_checkpoint,
                                                   saved_step)
    folder = Path(run) / "checkpoints"
    return saved_step(latest_checkpoint(folder) or last_step_checkpoint(folder)) or 0


def check_more_to_train(run: Any, step: int, steps: int) -> None:
    """Refuse to resume a finished run at its own length: no step would be trained, yet its
    config would record the options given (a --lr no step used) and its final evaluation be
    logged twice. A run stopped during its final evaluation (no ``finished.json``) goes on."""
    from robustrep.tasks.common.run_records import FINISHED
    if step >= steps and (Path(run) / FINISHED).is_file():
        raise ConfigError(f"{run} is finished (step {step} of {steps}): nothing to train; give "
                          f"--steps above {step} to train it further")


def stopped_note(program: str, stop_after: int | None, steps: int, run: Any) -> str | None:
    """What ``--stop-after`` left, and how to continue (None: the run went to its end)."""
    if stop_after is None or stop_after >= steps:
        return None
    from robustrep.tasks.common.distributed import world_size_from_env
    from robustrep.tasks.common.plugins import resume_flags
    world = world_size_from_env()
    how = f" under torchrun with {world} processes, as this run" if world > 1 else ""
    return (f"stopped after step {stop_after} of {steps} (--stop-after), with a checkpoint; "
            f"continue with: robustrep {program} train {resume_flags(run)}{how}")


def no_ema_note(run: Any, use_ema: bool, has_ema: bool,
                why: str = "trained with ema_decay 0") -> None:
    """A note on stderr when ``--no-ema`` asks for the raw weights of a run (or a checkpoint
    file) that keeps no EMA copy (``why``): they are its only weights, given without
    ``--no-ema`` too. A note, not a refusal: timm's ``load_checkpoint`` falls back to the raw
    weights the same way, and a loop over runs may pass ``--no-ema`` to each."""
    note = no_ema_text(run, use_ema, has_ema, why)
    if note:
        import sys
        print(note, file=sys.stderr)


def no_ema_text(run: Any, use_ema: bool, has_ema: bool,
                why: str = "trained with ema_decay 0") -> str | None:
    """The line :func:`no_ema_note` prints (None: nothing to say), for a caller that says it
    later (a weights file's notes wait until the model is built from it)."""
    if use_ema or has_ema:
        return None
    return (f"note: --no-ema: {run} keeps no EMA copy ({why}); its raw weights, the only "
            f"ones, are used, as they would be without --no-ema")


def unique(values: Any, option: str, what: str) -> tuple:
    """``values`` (``--seeds``, a list of settings) with each value once; a value given twice
    would be counted as two agreeing runs (a zero spread), so it is a ConfigError naming it."""
    values = list(values)
    seen: set = set()
    for value in values:  # one pass: pairs took minutes for gan sample --seeds 0-49999 (fid50k)
        key = value if isinstance(value, Hashable) else repr(value)
        if key in seen:
            raise ConfigError(f"{option}: {what} {value} is given twice; give each {what} once")
        seen.add(key)
    return tuple(values)


def _same_folder(a: str, b: str) -> bool:
    """Whether two paths name one folder (relative or absolute, ``~``, a link)."""
    from pathlib import Path
    a_path, b_path = Path(a).expanduser(), Path(b).expanduser()
    if a_path.exists() and b_path.exists():
        return a_path.samefile(b_path)
    return a_path.absolute() == b_path.absolute()
