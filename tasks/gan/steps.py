"""The D and G steps, composed from the core regularizers in named phases.

One training iteration is ``n_dis`` calls of :func:`d_step` and one :func:`g_step`. A D step:

1. ``fake_batch``: fakes from G (no grad).
2. ``d_inputs``: what D trains on. DAT replaces both sides by ``dat_perturb`` outputs (the
   reference trains D on perturbed samples only); AS-GAN perturbs the reals with
   ``asgan_perturb`` (or, in free mode, with the carried ``FreePerturbation``) and either
   replaces the clean reals (default) or adds a term on them.
3. ``d_loss_adv``: the adversarial loss on D's logits. The logit is ``D(x)``, AdaptiveMix's
   ``h(z_lin) + h(z_mix)`` (reference mode; each side mixed within itself, plus its shrinkage
   term), or the RP-GAN ensemble's ``[B, K]`` logits through ``ensemble_d_loss``.
4. ``d_loss_mix``: Mixup/CutMix/SRMix of reals by fakes (``SampleMix(x_real, x_b=x_fake)``)
   scored with ``mixed_gan_loss`` = ``lam * loss_real + (1 - lam) * loss_fake``. Our choice is
   ``mix_mode="add"`` (the clean real/fake terms stay, the mixed term is added with
   ``mix_weight``); ``"replace"`` drops the clean terms. Takamoto & Morishita do not say which
   (methods.md 2.2); "add" keeps D's clean signal, so the mixed batch only shapes D between the
   two sides. G's loss never sees mixed samples.
5. ``d_penalties``: WGAN-GP (Wasserstein loss) and lazy R1, through the eager D. R1 is taken on
   the logit the D loss uses, so with AdaptiveMix on the mixed logit, as the reference. With the
   RP-GAN ensemble both penalties differentiate the sum of the members' logits.

A G step scores fresh fakes with the same logit function. With AdaptiveMix, G also minimises the
shrinkage on its fakes (reference ``loss.py``; ``am_g_shrink=False`` turns it off).

Attacks (DAT, AS-GAN) run on the plain ``D(x)``, also when AdaptiveMix shapes the D loss: the
perturbation is a property of the input, and D's plain logit is the function it should be robust
in. Each phase returns named loss terms (detached for logging) and the total to backpropagate.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robustrep import losses
from robustrep.adversarial import asgan_perturb, dat_perturb
from robustrep.mixing import mixed_gan_loss
from robustrep.projection import ensemble_d_loss, ensemble_g_loss
from robustrep.tasks.common.distributed import all_reduce_grads
from robustrep.tasks.common.runtime import autocast
from robustrep.tasks.gan.regs import Regs, input_range


@dataclass
class StepContext:
    """Everything a step touches. ``g_fn``/``d_fn`` may be compiled; ``G``/``D`` stay eager."""

    cfg: Any
    G: nn.Module
    D: nn.Module
    g_fn: Any
    d_fn: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    regs: Regs
    gens: dict[str, torch.Generator]
    device: torch.device
    channels_last: bool = False
    d_steps: int = 0  # D steps taken so far (lazy R1 schedule)
    terms: dict[str, Tensor] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.cfg.loss

    def amp(self):
        return autocast(self.device, self.cfg.amp)


# ---------------------------------------------------------------------------------------------
# shared pieces


def sample_z(ctx: StepContext, n: int) -> Tensor:
    return torch.randn(n, ctx.G.z_dim, generator=ctx.gens["z"], device=ctx.device)


def _to_input(ctx: StepContext, x: Tensor) -> Tensor:
    if ctx.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def fake_batch(ctx: StepContext, n: int) -> Tensor:
    """Fakes for the D step: no graph into G."""
    with torch.no_grad(), ctx.amp():
        return _to_input(ctx, ctx.g_fn(sample_z(ctx, n)).float())


def d_logits(ctx: StepContext, x: Tensor, eager: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """The logit the losses use, and AdaptiveMix's terms when it is on."""
    if ctx.regs.adaptivemix is not None:
        out = ctx.regs.adaptivemix(ctx.D, x, generator=ctx.gens["reg"])
        return out["logits"], {"shrink": out["loss"]}
    return (ctx.D(x) if eager else ctx.d_fn(x)), {}


def _member_means(fn, logits: Tensor, kind: str) -> Tensor:
    """Per-member batch means ``[K]`` of a per-sample loss on ensemble logits ``[B, K]``."""
    return fn(logits.reshape(-1), kind).view_as(logits).mean(0)


def real_term(ctx: StepContext, logits: Tensor) -> Tensor:
    """D's loss on samples it should call real (an ensemble: the reference's half-sum)."""
    if ctx.regs.ensemble:
        return 0.5 * _member_means(losses.loss_real, logits, ctx.kind).sum()
    return losses.loss_real(logits, ctx.kind).mean()


def fake_term(ctx: StepContext, logits: Tensor) -> Tensor:
    if ctx.regs.ensemble:
        return 0.5 * _member_means(losses.loss_fake, logits, ctx.kind).sum()
    return losses.loss_fake(logits, ctx.kind).mean()


def _plain_d(ctx: StepContext):
    return lambda x: ctx.d_fn(x)


# ---------------------------------------------------------------------------------------------
# D phases


@dataclass
class DInputs:
    real: Tensor
    fake: Tensor
    clean_real: Tensor
    free_leaf: Tensor | None = None


def d_inputs(ctx: StepContext, x_real: Tensor, x_fake: Tensor) -> DInputs:
    """Perturbed inputs for DAT / AS-GAN; the clean batches otherwise."""
    regs, rng = ctx.regs, input_range(ctx.cfg)
    if regs.dat is not None:
        with ctx.amp():
            xr, xf = dat_perturb(_plain_d(ctx), x_real, x_fake, input_range=rng, model=ctx.D,
                                 **regs.dat)
        return DInputs(xr, xf, x_real)
    if regs.free is not None:
        leaf = regs.free.attach(x_real)
        return DInputs(leaf, x_fake, x_real, free_leaf=leaf)
    if regs.asgan is not None:
        with ctx.amp():
            xr = asgan_perturb(_plain_d(ctx), x_real, loss=ctx.kind, input_range=rng,
                               generator=ctx.gens["reg"], model=ctx.D, **regs.asgan)
        return DInputs(xr, x_fake, x_real)
    return DInputs(x_real, x_fake, x_real)


def d_loss_adv(ctx: StepContext, inp: DInputs) -> dict[str, Tensor]:
    """Adversarial loss on (possibly perturbed) reals and fakes, plus AdaptiveMix shrinkage."""
    with ctx.amp():
        lr, extra_r = d_logits(ctx, inp.real)
        lf, extra_f = d_logits(ctx, inp.fake)
    terms: dict[str, Tensor] = {}
    if ctx.regs.ensemble:
        terms["d/adv"] = ensemble_d_loss(lr.float(), lf.float(), ctx.kind)
    else:
        terms["d/real"] = real_term(ctx, lr.float())
        terms["d/fake"] = fake_term(ctx, lf.float())
    if extra_r:
        terms["d/am_shrink"] = extra_r["shrink"] + extra_f["shrink"]
    if ctx.regs.asgan is not None and ctx.regs.asgan_mode == "add":
        with ctx.amp():
            lc, extra_c = d_logits(ctx, inp.clean_real)
        terms["d/real_clean"] = real_term(ctx, lc.float())
        if extra_c:
            terms["d/am_shrink"] = terms["d/am_shrink"] + extra_c["shrink"]
    return terms


def d_loss_mix(ctx: StepContext, x_real: Tensor, x_fake: Tensor) -> dict[str, Tensor]:
    """Real-by-fake Mixup/CutMix/SRMix scored with the mixed loss (Takamoto & Morishita 2021)."""
    if ctx.regs.mix is None:
        return {}
    mixed = ctx.regs.mix(x_real, x_b=x_fake, generator=ctx.gens["reg"])
    with ctx.amp():
        logits = ctx.d_fn(_to_input(ctx, mixed.x)).float()
    if ctx.regs.ensemble:
        k = logits.shape[1]
        per = mixed_gan_loss(logits.reshape(-1), mixed.lam.repeat_interleave(k), ctx.kind)
        loss = 0.5 * per.view_as(logits).mean(0).sum()
    else:
        loss = mixed_gan_loss(logits, mixed.lam, ctx.kind).mean()
    weight = 1.0 if ctx.regs.mix_mode == "replace" else ctx.regs.mix_weight
    return {"d/mix": weight * loss}


def d_penalties(ctx: StepContext, x_real: Tensor, x_fake: Tensor) -> dict[str, Tensor]:
    """WGAN-GP and lazy R1, in fp32 through the eager D (no double backward under compile)."""
    cfg, terms = ctx.cfg, {}
    with torch.autocast(ctx.device.type, enabled=False):
        if cfg.loss == "wasserstein" and cfg.gp_weight > 0:
            gp = losses.gradient_penalty(lambda x: _sum_members(ctx.D(x)), x_real, x_fake,
                                         generator=ctx.gens["reg"])
            terms["d/gp"] = cfg.gp_weight * gp.mean()
        if cfg.r1_gamma > 0 and ctx.d_steps % cfg.r1_every == 0:
            x = x_real.detach().requires_grad_(True)
            logits, _ = d_logits(ctx, x, eager=True)
            r1 = losses.r1_penalty(_sum_members(logits), x)
            terms["d/r1"] = 0.5 * cfg.r1_gamma * cfg.r1_every * r1.mean()
    return terms


def _sum_members(logits: Tensor) -> Tensor:
    return logits.sum(1) if logits.dim() == 2 else logits


def _backward_step(ctx: StepContext, total: Tensor, module: nn.Module,
                   opt: torch.optim.Optimizer) -> None:
    ctx.scaler.scale(total).backward()
    all_reduce_grads(module)
    ctx.scaler.step(opt)
    ctx.scaler.update()


def d_step(ctx: StepContext, x_real: Tensor) -> dict[str, Tensor]:
    """One D update; returns the detached loss terms (``d/total`` included)."""
    x_real = _to_input(ctx, x_real)
    x_fake = fake_batch(ctx, x_real.shape[0])
    ctx.opt_d.zero_grad(set_to_none=True)
    inp = d_inputs(ctx, x_real, x_fake)
    terms = {} if _mix_replaces(ctx) else d_loss_adv(ctx, inp)
    terms.update(d_loss_mix(ctx, inp.clean_real, x_fake))
    terms.update(d_penalties(ctx, x_real, x_fake))
    total = sum(terms.values())
    _backward_step(ctx, total, ctx.D, ctx.opt_d)
    if inp.free_leaf is not None:
        ctx.regs.free.update(inp.free_leaf)
    ctx.d_steps += 1
    terms["d/total"] = total
    return {k: v.detach() for k, v in terms.items()}


def _mix_replaces(ctx: StepContext) -> bool:
    return ctx.regs.mix is not None and ctx.regs.mix_mode == "replace"


# ---------------------------------------------------------------------------------------------
# G phase


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """No parameter grads for ``module`` inside the block (D during the G step)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def g_loss_adv(ctx: StepContext, x_fake: Tensor) -> dict[str, Tensor]:
    with ctx.amp():
        logits, extra = d_logits(ctx, x_fake)
    logits = logits.float()
    if ctx.regs.ensemble:
        terms = {"g/adv": ensemble_g_loss(logits, ctx.kind)}
    else:
        terms = {"g/adv": losses.g_loss(logits, ctx.kind).mean()}
    if extra and ctx.regs.am_g_shrink:
        terms["g/am_shrink"] = extra["shrink"]
    return terms


def g_step(ctx: StepContext, batch: int) -> dict[str, Tensor]:
    """One G update on fresh fakes; returns the detached loss terms (``g/total`` included)."""
    ctx.opt_g.zero_grad(set_to_none=True)
    with _frozen(ctx.D):
        with ctx.amp():
            x_fake = _to_input(ctx, ctx.g_fn(sample_z(ctx, batch)))
        terms = g_loss_adv(ctx, x_fake)
        total = sum(terms.values())
        _backward_step(ctx, total, ctx.G, ctx.opt_g)
    terms["g/total"] = total
    return {k: v.detach() for k, v in terms.items()}


def train_iteration(ctx: StepContext, next_real) -> dict[str, Tensor]:
    """``n_dis`` D steps then one G step; ``next_real()`` returns this process's next batch."""
    terms: dict[str, Tensor] = {}
    for _ in range(ctx.cfg.n_dis):
        x_real = next_real()
        terms = d_step(ctx, x_real)
    terms.update(g_step(ctx, x_real.shape[0]))
    return terms
