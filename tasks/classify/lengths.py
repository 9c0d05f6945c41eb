"""A run's lengths given in passes over the training set (``--epochs``, ``--warmup-epochs``,
timm's train.py's) instead of optimizer steps: which fields pair up, their conversion to steps
once the training set's size is known, and the command line's rules between the two ways.

Apart from ``config.py``: one idea, used by the config (``ClassifyConfig.resolve_epochs``), the
command line (``cli.py``) and a resume (``train.py``), which keeps the saved steps.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from robustrep.tasks.common.config import ConfigError

if TYPE_CHECKING:  # config.py imports this module: ClassifyConfig is only named in annotations
    from robustrep.tasks.classify.config import ClassifyConfig

# The lengths a run may give in passes over the data (timm's train.py's) instead of steps.
EPOCHS_OF = {"steps": "epochs", "warmup_steps": "warmup_epochs"}


def epochs_to_steps(epochs: int, train_size: int, batch_size: int, world_size: int = 1,
                    grad_accum: int = 1, replays: int = 1) -> int:
    """Optimizer steps of ``epochs`` passes over ``train_size`` images. A pass is the sampler's
    epoch (``tasks/common/batches.py`` ``StepBatches``): ``train_size // (batch_size x
    world_size)`` batches, each image in at most one of them, the last partial batch dropped
    (timm's training loader, ``drop_last=True``, has the same ``len(loader)``). Each batch takes
    ``replays`` sampler steps and an update takes ``grad_accum`` of them; a last update that
    the passes do not fill takes its remaining batches from the next pass (ceil), as timm's
    ``updates_per_epoch`` rounds up."""
    batches = train_size // (batch_size * world_size) * replays
    return -(-epochs * batches // grad_accum)


def lengths_given_once(overrides: dict[str, Any]) -> None:
    """A length given both in steps and in epochs on one command line is refused."""
    for field, epochs_field in EPOCHS_OF.items():
        if overrides.get(field) is not None and overrides.get(epochs_field) is not None:
            flags = [f"--{f.replace('_', '-')}" for f in (field, epochs_field)]
            raise ConfigError(f"{flags[0]} and {flags[1]} are two ways to give one length: "
                              f"give {flags[0]} (optimizer steps) or {flags[1]} (passes over "
                              f"the training set), not both")


def flags_decide_lengths(cfg: ClassifyConfig, overrides: dict[str, Any]) -> ClassifyConfig:
    """``cfg`` with the command line's ``--steps`` (``--warmup-steps``) deciding over a config
    file's epochs, as every flag decides over the file; the file's steps give way to
    ``--epochs`` by themselves (epochs set the steps when the data is read)."""
    cleared = {epochs_field: None for field, epochs_field in EPOCHS_OF.items()
               if overrides.get(field) is not None and getattr(cfg, epochs_field) is not None}
    return replace(cfg, **cleared) if cleared else cfg
