"""StyleGAN2's G-EMA by images seen (Karras et al. 2020; stylegan2-ada's ``training_loop.py``):
the decay of one step follows a half-life of ``ema_kimg`` thousand images, shortened to
``ema_rampup`` times the images seen while ramping up (:func:`ema_beta`); the update blends the
parameters and copies the buffers (:func:`ema_update`).

``gan train`` uses it when ``ema_kimg`` is set, timm's EMA by step
(:func:`robustrep.tasks.common.runtime.make_ema`) otherwise. A module of its own: the EMA is no
phase of a D or G step (:mod:`robustrep.tasks.gan.steps`); the training loop calls it after them.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch: int, nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """StyleGAN2's G-EMA decay for one step: a half-life of ``ema_kimg`` thousand images, at
    most ``ema_rampup * nimg`` while ramping up (``nimg`` = images seen before this step)."""
    half_life = ema_kimg * 1000
    if ema_rampup is not None:
        half_life = min(half_life, nimg * ema_rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = model + beta * (ema - model)`` on parameters; buffers are copied (the reference)."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
