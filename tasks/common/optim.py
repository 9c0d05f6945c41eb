"""Restoring an optimizer (and its schedule) on resume while keeping the config's hyperparameters.

``torch.optim.Optimizer.load_state_dict`` restores the saved param groups, learning rate and
betas included, and ``LambdaLR.load_state_dict`` restores the saved base learning rates; a resume
that lowers ``--lr-d`` (the advice a diverged run gives) would otherwise be silently undone. The
optimizer is built from the resumed config first, so its param groups hold the hyperparameters
the user asked for; :func:`load_optimizer_state` loads the saved state (moments, step counts) and
puts those hyperparameters back. PyTorch documents ``param_groups`` as the place to change them
during training (``torch.optim`` docs, "per-parameter options").
"""

from __future__ import annotations

from typing import Any

import torch


def optimizer_hparams(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Every hyperparameter of each param group (all keys but ``params``)."""
    return [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any],
                         scheduler: Any | None = None,
                         scheduler_state: dict[str, Any] | None = None) -> None:
    """Load ``state`` into ``opt`` (and ``scheduler_state`` into ``scheduler``), keeping the
    hyperparameters ``opt`` was built with: learning rate, betas, momentum, weight decay.

    With a ``LambdaLR`` schedule, its base learning rates become the configured ones and the
    current learning rate is recomputed at the restored step, so a changed ``lr``, ``steps`` or
    ``warmup_steps`` takes effect from the first resumed step.
    """
    if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        raise TypeError(f"load_optimizer_state knows LambdaLR schedules; got "
                        f"{type(scheduler).__name__}")
    wanted = optimizer_hparams(opt)
    opt.load_state_dict(state)
    for group, hp in zip(opt.param_groups, wanted):
        group.update(hp)
    if scheduler is None:
        return
    if scheduler_state is not None:
        scheduler.load_state_dict(scheduler_state)
    scheduler.base_lrs = [hp.get("initial_lr", hp["lr"]) for hp in wanted]
    for group, base, factor in zip(opt.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in opt.param_groups]
