"""Options both trainers share, declared once.

``shared("seed")`` is the config field (default, help, choices, range) that ``gan train`` and
``classify train`` both declare; a program passes only what differs for it (its default
schedule, e.g. ``shared("eval_every", 500)``). Regularizer options come from the registry
(:func:`robustrep.tasks.common.regularizers.reg_option`): their help is the class's docstring
and their default ``None``, the class's own.
"""

from __future__ import annotations

from typing import Any

from robustrep._names import AMP_CHOICES
from robustrep.tasks.common.config import NONNEG, option
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


def shared(name: str, default: Any = _KEEP, help: str | None = None) -> Any:
    """The config field of shared option ``name``; ``default``/``help`` where a program's
    differ (its run length sets its schedules)."""
    base_default, base_help, choices, bounds = SHARED[name]
    return option(base_default if default is _KEEP else default, help or base_help, choices,
                  **bounds)
