"""Restoring an optimizer on resume while keeping the config's hyperparameters.

``torch.optim.Optimizer.load_state_dict`` restores the saved param groups, learning rate and
betas included; a resume that lowers ``--lr-d`` (the advice a diverged run gives) would otherwise
be silently undone. The optimizer is built from the resumed config first, so its param groups hold
the hyperparameters the user asked for; :func:`load_optimizer_state` loads the saved state
(moments, step counts) and puts those hyperparameters back. PyTorch documents ``param_groups`` as
the place to change them during training (``torch.optim`` docs, "per-parameter options").
Schedules are rebuilt from the resumed config and set to the restored step by their owner.
"""

from __future__ import annotations

from typing import Any

import torch


def optimizer_hparams(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Every hyperparameter of each param group: all keys but ``params`` and the step counters
    some optimizers keep there (timm's Lookahead ``lookahead_step``, Adan's and Lamb's ``step``),
    which are state: a fresh optimizer's 0 would restart the counter."""
    return [{k: v for k, v in group.items() if k != "params" and not k.endswith("step")}
            for group in opt.param_groups]


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load ``state`` into ``opt``, keeping the hyperparameters ``opt`` was built with: learning
    rate (and a schedule's ``initial_lr``), betas, momentum, weight decay."""
    wanted = optimizer_hparams(opt)
    opt.load_state_dict(state)
    for group, hp in zip(opt.param_groups, wanted):
        group.update(hp)
