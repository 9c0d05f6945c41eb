"""StyleGAN2's lazy regularisation (Karras et al. 2020, app. B; stylegan2-ada's ``loss.py`` and
``training_loop.py``): R1 and the path-length penalty (eq. 4) as their own optimizer steps after
the main D and G steps, every ``r1_every`` D and ``pl_every`` G iterations, with the loss scaled by
the interval; the optimizers' lr and betas are adjusted by ``interval / (interval + 1)``
(:func:`lazy_adam_kwargs`) so the extra steps do not speed up training.

``lazy_reg`` switches the separate steps on (by default for stylegan2, :func:`lazy_enabled`).
:func:`d_reg_step` and :func:`g_reg_step` are stylegan2-ada's ``Dreg`` and ``Greg`` phases, which
:mod:`robustrep.tasks.gan.steps` runs after its ``Dmain`` and ``Gmain``; the settings
(:func:`pl_settings`, :func:`optimizer_intervals`) also size the optimizers ``gan train`` builds.
The schedule, the optimizer arithmetic and the penalty are one technique, kept apart from the
phases of a step; stylegan2-ada's ``loss.py`` defaults (path length, style mixing, which the main
G step uses too) are here with them.

``steps.py`` imports this module, so the two phases import its step primitives (``r1_term``,
``backward_step``, ``sample_z``) inside themselves: no import cycle.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:  # steps.py imports this module: StepContext is only named in annotations
    from robustrep.tasks.gan.steps import StepContext


PL_WEIGHT, PL_EVERY, PL_DECAY, PL_BATCH_SHRINK = 2.0, 4, 0.01, 2  # stylegan2-ada loss.py
STYLE_MIXING = 0.9


def _or(value, default):
    return default if value is None else value


def style_mixing(cfg) -> float:
    """The probability of mixing two ws in G's training forward (stylegan2-ada's 0.9)."""
    return _or(cfg.style_mixing, STYLE_MIXING)


def lazy_enabled(cfg) -> bool:
    """Regularisers as their own optimizer steps: ``lazy_reg``, by default on for stylegan2."""
    return _or(cfg.lazy_reg, cfg.arch == "stylegan2")


def lazy_r1(ctx: StepContext) -> bool:
    return lazy_enabled(ctx.cfg) and ctx.cfg.r1_every > 1


def pl_settings(cfg) -> tuple[float, int]:
    """(weight, interval) of the path-length penalty; weight 0 off G's other than StyleGAN2."""
    if cfg.arch != "stylegan2":
        return 0.0, 1
    return _or(cfg.pl_weight, PL_WEIGHT), _or(cfg.pl_every, PL_EVERY)


def lazy_ratio(interval: int) -> float:
    """``interval / (interval + 1)``: the fraction of optimizer steps that are main steps."""
    return interval / (interval + 1) if interval > 1 else 1.0


def lazy_adam_kwargs(lr: float, betas: tuple[float, float], interval: int) -> dict[str, Any]:
    """Adam lr and betas for a lazily regularised network (Karras et al. 2020, app. B):
    ``lr * c`` and ``beta ** c`` with ``c = interval / (interval + 1)``, so that
    ``interval + 1`` optimizer steps move the weights as ``interval`` plain steps would."""
    c = lazy_ratio(interval)
    return {"lr": lr * c, "betas": (betas[0] ** c, betas[1] ** c)}


def optimizer_intervals(cfg) -> tuple[int, int]:
    """(G, D) regularisation intervals the optimizers are adjusted for (1 = no adjustment)."""
    if not lazy_enabled(cfg):
        return 1, 1
    return pl_settings(cfg)[1] if cfg.arch == "stylegan2" else 1, cfg.r1_every


def d_reg_step(ctx: StepContext, x_real: Tensor) -> dict[str, Tensor]:
    """Lazy R1 as its own D update, every ``r1_every`` D steps (stylegan2-ada's ``Dreg``)."""
    from robustrep.tasks.gan.steps import backward_step, r1_due, r1_term  # no cycle

    if not lazy_r1(ctx) or not r1_due(ctx):
        return {}
    ctx.opt_d.zero_grad(set_to_none=True)
    with torch.autocast(ctx.device.type, enabled=False):
        r1 = r1_term(ctx, x_real)
    backward_step(ctx, r1, ctx.D, ctx.opt_d)
    return {"d/r1": r1.detach()}


def pl_loss(img: Tensor, ws: Tensor, noise: Tensor, pl_mean: Tensor,
            decay: float) -> tuple[Tensor, Tensor]:
    """``mean((|J_w^T y| - a)^2)`` and the new running mean ``a`` (detached).

    ``a = pl_mean.lerp(mean length, decay)`` keeps its graph inside the penalty, so the gradient
    also flows through this batch's share of the mean, as stylegan2-ada's ``loss.py`` (which
    stores ``pl_mean.detach()`` but penalises against the undetached lerp)."""
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    mean = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - mean).square().mean(), mean.detach()


def path_length_penalty(ctx: StepContext, batch: int) -> Tensor:
    """``(|J_w^T y| - a)^2`` with ``y ~ N(0, I) / sqrt(H W)`` and ``a`` the running mean of the
    lengths (decay ``pl_decay``), on ``batch // pl_batch_shrink`` fakes (Karras et al. 2020,
    eq. 4). Updates ``G.pl_mean``."""
    from robustrep.tasks.gan.steps import sample_z  # no cycle

    cfg, G = ctx.cfg, ctx.G
    n = max(1, batch // _or(cfg.pl_batch_shrink, PL_BATCH_SHRINK))
    ws = G.mapping_mixed(sample_z(ctx, n), style_mixing=style_mixing(ctx.cfg),
                         generator=ctx.gens["z"])
    img = G.synthesis(ws)
    y = torch.randn(img.shape, generator=ctx.gens["reg"], device=img.device, dtype=img.dtype)
    y = y / math.sqrt(img.shape[2] * img.shape[3])
    loss, mean = pl_loss(img, ws, y, G.pl_mean, _or(cfg.pl_decay, PL_DECAY))
    with torch.no_grad():
        G.pl_mean.copy_(mean)
    return loss


def g_reg_step(ctx: StepContext, batch: int, iteration: int) -> dict[str, Tensor]:
    """Path length as its own G update every ``pl_every`` iterations (``Greg``), loss scaled by
    the interval; without lazy steps it is still only taken every ``pl_every`` iterations."""
    from robustrep.tasks.gan.steps import backward_step  # no cycle

    weight, every = pl_settings(ctx.cfg)
    if weight <= 0 or iteration % every != 0:
        return {}
    ctx.opt_g.zero_grad(set_to_none=True)
    with torch.autocast(ctx.device.type, enabled=False):
        pl = weight * every * path_length_penalty(ctx, batch)
    backward_step(ctx, pl, ctx.G, ctx.opt_g)
    return {"g/pl": pl.detach()}
