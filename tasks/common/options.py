"""Options several programs share, declared once.

``shared("seed")`` is the config field (default, help, choices, range) that ``gan train`` and
``classify train`` both declare (:data:`SHARED`), and that the other commands (``classify
eval``, ``ood score``, ``gan sample``...) declare too, beside the options only commands share
(:data:`COMMANDS`: ``--batch-size``, ``--quiet``, ``--out``...). A program passes only what
differs for it (its default schedule, e.g. ``shared("eval_every", 500)``, or where ``--out``
goes by default). :class:`ModelOptions` are the options of a classifier from elsewhere
(``classify eval`` and ``ood score`` instead of a run folder). Regularizer options come from the registry
(:func:`robustrep.tasks.common.regularizers.reg_option`): their help is the class's docstring
and their default ``None``, the class's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustrep._names import AMP_CHOICES
from robustrep.tasks.common.config import NONNEG, POSITIVE, UNIT, option
from robustrep.tasks.common.sinks import LOG_CHOICES

_KEEP = object()

# name -> (default, help, choices, bounds); the same flag means the same thing in every program
SHARED: dict[str, tuple[Any, str, tuple | None, dict[str, Any]]] = {
    "data_root": (None, "folder of a dataset read from disk (cifar10/cifar100, svhn, "
                        "imagefolder, lsun, celeba), or a stylegan2-ada dataset .zip",
                  None, {}),
    "reg": ("none", "regularizers, comma-separated (one per place; see --help sections below)",
            None, {}),
    "reg_options": (None, "options of the --reg methods that no other flag sets, by method: "
                          "{\"toy\": {\"weight\": 0.5}} (the --NAME-OPTION flags below write "
                          "here)", None, {}),
    "seed": (0, "seed of every random number generator", None, NONNEG),
    "log": ("jsonl", "metrics sinks: jsonl (metrics.jsonl only) or tensorboard (also "
                     "RUN/tensorboard; pip install 'robustrep[tensorboard]') or wandb (pip install "
                     "'robustrep[wandb]')", LOG_CHOICES, {}),
    "device": ("auto", "auto, cpu, cuda or cuda:N", None, {}),
    "amp": ("off", "autocast precision", AMP_CHOICES, {}),
    "channels_last": (False, "channels-last memory format (faster convs on GPU)", None, {}),
    "compile": (False, "torch.compile the networks' main forward (penalties stay eager)", None,
                {}),
    "eval_every": (None, "evaluate every N steps (0 = only at the end)", None, NONNEG),
    "ckpt_every": (None, "write a checkpoint every N steps (0 = only at the end)", None, NONNEG),
    "log_every": (None, "log the training losses every N steps (0 = only at the end)", None,
                  NONNEG),
}


# The options of the commands that are not trainers (eval, score, bench, sample, report): the same
# flag means the same thing, with the same range and help, in every command that has it.
COMMANDS: dict[str, tuple[Any, str, tuple | None, dict[str, Any]]] = {
    "batch_size": (256, "images per forward pass", None, {"min": 1}),
    "workers": (0, "DataLoader worker processes", None, NONNEG),
    "quiet": (False, "no progress bars", None, {}),
    "no_ema": (False, "use the raw weights, not their EMA copy (a GAN's G, not G-EMA)", None, {}),
    "out": (None, "where the command writes its files", None, {}),
    "seeds": ([0, 1, 2], "seeds of the training runs (one run per seed)", None, NONNEG),
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


MODEL_GROUP = "a model from elsewhere (instead of RUN)"
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


@dataclass(kw_only=True)
class ProgressOptions:
    """``--quiet`` of the trainers, whose other flags are their config's fields."""

    quiet: bool = shared("quiet")
