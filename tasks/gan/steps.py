"""The D and G steps, composed from the core regularizers in named phases.

One training iteration is ``n_dis`` calls of :func:`d_step` and one :func:`g_step`. A D step:

1. ``fake_batch``: fakes from G (no grad).
Regularizers act in four places and are called only through their place's protocol
(:mod:`robustrep.api`; built by ``regs.build_regs``), never by name:

2. ``d_inputs``: what D trains on: the D-inputs regularizer's ``d_inputs`` (DAT perturbs both
   sides, the reference trains D on perturbed samples only; AS-GAN perturbs the reals, or in
   free mode carries a perturbation across steps) and, when it ``keeps_clean``, a further real
   term on the clean reals.
3. ``d_loss_adv``: the adversarial loss on D's logits. The logit is ``D(x)`` or the D-function
   regularizer's ``d_logits`` (AdaptiveMix's ``h(z_lin) + h(z_mix)``, plus its loss, logged as
   ``d/<term>``); a registered discriminator's ``[B, K]`` logits (the RP-GAN ensemble) go
   through the ensemble losses.
4. ``d_loss_mix``: the extra-D-term regularizer's ``extra_d_term`` (Mixup/CutMix/SRMix of reals
   by fakes scored with ``mixed_gan_loss`` = ``lam * loss_real + (1 - lam) * loss_fake``); our
   default mode "add" keeps the clean real/fake terms and adds the mixed one times its weight,
   "replace" (``replaces_clean``) drops them. Takamoto & Morishita do not say which
   (methods.md 2.2); "add" keeps D's clean signal, so the mixed batch only shapes D between the
   two sides. G's loss never sees mixed samples.
5. ``d_aux``: the D-auxiliary-task regularizer's ``d_aux_loss`` on the clean reals (SSGAN's
   rotation loss, InfoMax-GAN's InfoNCE; its head lives in the D it wrapped at build time),
   logged ``d/<term>``; G's step adds its ``g_aux_loss`` on the fakes as ``g/<term>``.
6. ``d_penalties``: WGAN-GP (Wasserstein loss) and lazy R1, through the eager D. R1 is taken on
   the logit the D loss uses, so with AdaptiveMix on the mixed logit, as the reference. When R1
   is due in a step whose pass over the clean reals is eager, it is taken from that pass
   (:func:`r1_in_main_pass`; with a D-function regularizer, from the very logit of the loss).
   With an ensemble both penalties differentiate the sum of the members' logits.

A G step scores fresh fakes with the same logit function; G also minimises the D-function
regularizer's loss on its fakes when it says so (``g_term``; AdaptiveMix as its reference
``loss.py``, off with ``am_g_shrink=False``).

StyleGAN2 (``arch stylegan2``, Karras et al. 2020, stylegan2-ada's ``training_loop.py``): fakes
come from ``mapping_mixed`` (style mixing), the phases run in stylegan2-ada's order
(:func:`stylegan2_iteration`), and with lazy regularisation R1 and the path-length penalty are
their own optimizer steps after the main D and G steps (``Dreg``, ``Greg``). Those steps, their
schedule and the optimizers' adjustment are one technique of their own, in
:mod:`robustrep.tasks.gan.lazy_reg`; the G-EMA by images, which no step calls, is in
:mod:`robustrep.tasks.gan.ema`. This module holds the phases of a step and the iterations.

DiffAugment (``--diffaugment``, Zhao et al. 2020) transforms every batch D scores (reals, fakes,
mixed batches, R1's reals) inside :func:`d_logits`/:func:`d_loss_mix`, in D and G steps alike.
ADA (``--augment ada|fixed``, Karras et al. 2020, ``robustrep/ada.py``) is applied at the same
place, after DiffAugment when both are on; D's logits of the reals in the D loss feed its
overfitting heuristic, and ``p`` is adjusted after each iteration (:func:`ada_step`).

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
from robustrep.ada import AdaptiveP, ada_augment
from robustrep.adversarial import preserve_bn_stats
from robustrep.diffaugment import diff_augment
from robustrep.mixing import mixed_gan_loss
from robustrep.projection import (ensemble_fake_loss, ensemble_g_loss, ensemble_mixed_loss,
                                  ensemble_real_loss)
from robustrep.tasks.common.distributed import all_reduce_grads, all_reduce_sum
from robustrep.tasks.common.regularizers import checked_loss
from robustrep.tasks.common.runtime import autocast, to_input
from robustrep.tasks.gan.lazy_reg import d_reg_step, g_reg_step, lazy_r1, style_mixing
from robustrep.tasks.gan.regs import Regs


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
    reuse_r1: bool = True  # R1 from the main pass when it can (tests compare both ways)
    ada: AdaptiveP | None = None  # ADA's probability and heuristic (--augment)
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


def generate(ctx: StepContext, n: int) -> Tensor:
    """``n`` fakes through ``g_fn`` (:func:`g_forward`; compiled with ``--compile``)."""
    return ctx.g_fn(sample_z(ctx, n))


def g_forward(cfg, G: nn.Module, generator: torch.Generator):
    """G's training forward ``z -> fakes``, the ``g_fn`` the D and G steps call: ``G`` itself,
    or for StyleGAN2 style-mixed ws (its draws from ``generator``, the z stream) then the
    synthesis. ``--compile`` compiles it whole (the draws with ``generator`` are graph breaks:
    dynamo runs them eagerly, so they are the eager draws). The path-length penalty runs the
    eager ``G``: AOTAutograd has no double backward."""
    if cfg.arch != "stylegan2":
        return G
    mixing = style_mixing(cfg)

    def forward(z: Tensor) -> Tensor:
        return G.synthesis(G.mapping_mixed(z, style_mixing=mixing, generator=generator))
    return forward


def fake_batch(ctx: StepContext, n: int) -> Tensor:
    """Fakes for the D step: no graph into G."""
    with torch.no_grad(), ctx.amp():
        return to_input(generate(ctx, n).float(), ctx.device, ctx.channels_last)


def augment(ctx: StepContext, x: Tensor) -> Tensor:
    """DiffAugment before D when ``--diffaugment`` is set, then ADA when ``--augment`` is
    (both differentiable, so G learns through them); the draws come from the step generator
    ``reg``."""
    if ctx.cfg.diffaugment:
        x = to_input(diff_augment(x, ctx.cfg.diffaugment, generator=ctx.gens["reg"]), ctx.device,
                     ctx.channels_last)
    if ctx.ada is not None and ctx.ada.p > 0:
        x = to_input(ada_augment(x, ctx.ada.p, generator=ctx.gens["reg"]), ctx.device,
                     ctx.channels_last)
    return x


def build_ada(cfg) -> AdaptiveP | None:
    """ADA's state for ``--augment ada`` (adaptive) or ``fixed`` (``target=None``)."""
    if cfg.augment == "none":
        return None
    options = {"p": cfg.augment_p, "target": cfg.ada_target, "interval": cfg.ada_interval,
               "kimg": cfg.ada_kimg}
    state = AdaptiveP(**{k: v for k, v in options.items() if v is not None})
    if cfg.augment == "fixed":
        state.target = None
    return state


def ada_step(ctx: StepContext) -> dict[str, Tensor]:
    """After an iteration: sum the heuristic over processes, let ADA adjust p by the reals D saw
    in it (``n_dis`` global batches; the reference's one batch when ``n_dis`` is 1); log p."""
    if ctx.ada is None:
        return {}
    ada = ctx.ada
    if ada.adaptive and (ada.iterations + 1) % ada.interval == 0:
        totals = all_reduce_sum(torch.tensor([ada.sign_sum, float(ada.count)], device=ctx.device))
        ada.sign_sum, ada.count = float(totals[0]), int(totals[1])
    ada.step(ctx.cfg.n_dis * ctx.cfg.batch_size)
    return {"ada/p": torch.full((), ada.p, device=ctx.device)}  # with the other terms


def d_logits(ctx: StepContext, x: Tensor, eager: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """The logit the losses use, and the D-function regularizer's loss (``{"term": loss}``)."""
    x = augment(ctx, x)
    if ctx.regs.d_function is not None:
        logits, loss = ctx.regs.d_function.d_logits(ctx.D, x, generator=ctx.gens["reg"])
        return logits, {"term": loss}
    return (ctx.D(x) if eager else ctx.d_fn(x)), {}


def real_term(ctx: StepContext, logits: Tensor) -> Tensor:
    """D's loss on samples it should call real (an ensemble: the reference's half-sum)."""
    if ctx.regs.ensemble:
        return ensemble_real_loss(logits, ctx.kind)
    return losses.loss_real(logits, ctx.kind).mean()


def fake_term(ctx: StepContext, logits: Tensor) -> Tensor:
    if ctx.regs.ensemble:
        return ensemble_fake_loss(logits, ctx.kind)
    return losses.loss_fake(logits, ctx.kind).mean()


def mixed_term(ctx: StepContext, logits: Tensor, lam: Tensor) -> Tensor:
    """D's loss on samples that are ``lam`` real (per sample), as the real and fake terms."""
    if ctx.regs.ensemble:
        return ensemble_mixed_loss(logits, lam, ctx.kind)
    return mixed_gan_loss(logits, lam, ctx.kind).mean()


@dataclass
class DLoss:
    """The :class:`robustrep.api.DLoss` of this run, for the extra D term."""

    ctx: StepContext

    def real(self, logits: Tensor) -> Tensor:
        return real_term(self.ctx, logits)

    def fake(self, logits: Tensor) -> Tensor:
        return fake_term(self.ctx, logits)

    def mixed(self, logits: Tensor, lam: Tensor) -> Tensor:
        return mixed_term(self.ctx, logits, lam)


def _plain_d(ctx: StepContext):
    return lambda x: ctx.d_fn(x)


# ---------------------------------------------------------------------------------------------
# D phases


@dataclass
class DInputs:
    real: Tensor
    fake: Tensor
    clean_real: Tensor


def d_inputs(ctx: StepContext, x_real: Tensor, x_fake: Tensor) -> DInputs:
    """The D-inputs regularizer's batches (on the plain D); the clean batches otherwise. D's
    buffers (BatchNorm statistics, spectral-norm vectors) are kept whatever the regularizer
    does: the built-in attacks keep them, a plugin's need not."""
    reg = ctx.regs.d_inputs
    if reg is None:
        return DInputs(x_real, x_fake, x_real)
    with ctx.amp(), preserve_bn_stats(ctx.D):
        xr, xf = reg.d_inputs(_plain_d(ctx), x_real, x_fake, ctx.gens["reg"], model=ctx.D)
    return DInputs(xr, xf, x_real)


def d_loss_adv(ctx: StepContext, inp: DInputs, r1: bool = False) -> dict[str, Tensor]:
    """Adversarial loss on (possibly perturbed) reals and fakes, plus AdaptiveMix shrinkage.

    ``r1=True`` (see :func:`r1_in_main_pass`) also takes R1 from the reals' logits of this pass,
    instead of a pass of its own."""
    real = inp.real.detach().requires_grad_(True) if r1 else inp.real
    with ctx.amp():
        lr, extra_r = d_logits(ctx, real)
        lf, extra_f = d_logits(ctx, inp.fake)
    terms = {"d/real": real_term(ctx, lr.float()), "d/fake": fake_term(ctx, lf.float())}
    name = _d_function_term(ctx)
    if ctx.ada is not None:
        ctx.ada.accumulate(lr)
    if extra_r:
        terms[name] = extra_r["term"] + extra_f["term"]
    if r1:
        terms["d/r1"] = r1_term(ctx, real, logits=lr)
    if ctx.regs.d_inputs is not None and ctx.regs.d_inputs.keeps_clean:
        with ctx.amp():
            lc, extra_c = d_logits(ctx, inp.clean_real)
        terms["d/real_clean"] = real_term(ctx, lc.float())
        if extra_c:
            terms[name] = terms[name] + extra_c["term"]
    return terms


def _d_function_term(ctx: StepContext, side: str = "d") -> str:
    return f"{side}/{getattr(ctx.regs.d_function, 'term', 'd_function')}"


def d_loss_mix(ctx: StepContext, x_real: Tensor, x_fake: Tensor) -> dict[str, Tensor]:
    """The extra-D-term regularizer's loss (e.g. real-by-fake Mixup/CutMix/SRMix scored with
    the mixed loss, Takamoto & Morishita 2021), logged as ``d/<term>``."""
    reg = ctx.regs.extra_d_term
    if reg is None:
        return {}

    def score(x: Tensor) -> Tensor:
        with ctx.amp():
            return ctx.d_fn(augment(ctx, to_input(x, ctx.device, ctx.channels_last))).float()

    loss = checked_loss(reg.extra_d_term(score, x_real, x_fake, DLoss(ctx),
                                         generator=ctx.gens["reg"]), reg, "extra_d_term")
    return {f"d/{getattr(reg, 'term', 'extra')}": loss}


def d_penalties(ctx: StepContext, x_real: Tensor, x_fake: Tensor,
                r1: bool = True) -> dict[str, Tensor]:
    """WGAN-GP and lazy R1, in fp32 through the eager D (no double backward under compile).

    ``r1=False`` leaves R1 to the main pass (:func:`r1_in_main_pass`) or its own step
    (:func:`d_reg_step`)."""
    cfg, terms = ctx.cfg, {}
    with torch.autocast(ctx.device.type, enabled=False):
        if cfg.loss == "wasserstein" and cfg.gp_weight > 0:
            gp = losses.gradient_penalty(lambda x: _sum_members(ctx.D(x)), x_real, x_fake,
                                         generator=ctx.gens["reg"])
            terms["d/gp"] = cfg.gp_weight * gp.mean()
        if r1 and r1_due(ctx):
            terms["d/r1"] = r1_term(ctx, x_real)
    return terms


def r1_due(ctx: StepContext) -> bool:
    return ctx.cfg.r1_gamma > 0 and ctx.d_steps % ctx.cfg.r1_every == 0


def r1_in_main_pass(ctx: StepContext, inp: DInputs) -> bool:
    """Whether this D step takes R1 from the D loss's own pass over the reals, as stylegan2-ada's
    ``Dboth`` phase does: R1 is due and not lazy, that pass is eager (a D-function regularizer
    runs D eagerly; a plain D when not compiled) and sees the clean reals (no D-inputs
    regularizer changed them), and the clean terms are not replaced by an extra D term. With
    AdaptiveMix this saves a second lam, partners and two trunk passes; R1 is then on the very
    mixed logit the loss uses. Not under fp16
    autocast: the unscaled input gradient could underflow there (R1's own pass runs in fp32)."""
    eager = ctx.regs.d_function is not None or ctx.d_fn is ctx.D
    return (ctx.reuse_r1 and eager and ctx.cfg.amp != "fp16" and not lazy_r1(ctx)
            and r1_due(ctx) and inp.real is inp.clean_real and not _mix_replaces(ctx))


def r1_term(ctx: StepContext, x_real: Tensor, logits: Tensor | None = None) -> Tensor:
    """``gamma / 2 * ||grad_x logit||^2 * r1_every``; the logit is the one the D loss uses.

    ``logits`` given: they are D's logits of ``x_real`` (which requires grad) from the main pass;
    otherwise D is run on the reals here."""
    if logits is None:
        x_real = x_real.detach().requires_grad_(True)
        logits, _ = d_logits(ctx, x_real, eager=True)
    r1 = losses.r1_penalty(_sum_members(logits.float()), x_real)
    return 0.5 * ctx.cfg.r1_gamma * ctx.cfg.r1_every * r1.mean()


def _sum_members(logits: Tensor) -> Tensor:
    return logits.sum(1) if logits.dim() == 2 else logits


def backward_step(ctx: StepContext, total: Tensor, module: nn.Module,
                   opt: torch.optim.Optimizer) -> None:
    ctx.scaler.scale(total).backward()
    all_reduce_grads(module)
    _fp16_grads_finite(ctx, module)
    ctx.scaler.step(opt)
    ctx.scaler.update()


def d_step(ctx: StepContext, x_real: Tensor) -> dict[str, Tensor]:
    """One D update; returns the detached loss terms (``d/total`` included)."""
    x_real = to_input(x_real, ctx.device, ctx.channels_last)
    x_fake = fake_batch(ctx, x_real.shape[0])
    ctx.opt_d.zero_grad(set_to_none=True)
    inp = d_inputs(ctx, x_real, x_fake)
    r1_main = r1_in_main_pass(ctx, inp)
    terms = {} if _mix_replaces(ctx) else d_loss_adv(ctx, inp, r1=r1_main)
    terms.update(d_loss_mix(ctx, inp.clean_real, x_fake))
    terms.update(d_aux(ctx, x_real))
    terms.update(d_penalties(ctx, x_real, x_fake, r1=not (lazy_r1(ctx) or r1_main)))
    total = sum(terms.values())
    backward_step(ctx, total, ctx.D, ctx.opt_d)
    if ctx.regs.d_inputs is not None:
        ctx.regs.d_inputs.after_backward(inp.real)
    terms.update(d_reg_step(ctx, x_real))
    ctx.d_steps += 1
    terms["d/total"] = total
    return {k: v.detach() for k, v in terms.items()}


def _fp16_grads_finite(ctx: StepContext, module: nn.Module) -> None:
    """With StyleGAN2's fp16 blocks and no loss scaler, NaN and inf gradients become 0 and
    +-1e5, as stylegan2-ada's ``training_loop.py`` (``misc.nan_to_num``) does."""
    if not getattr(ctx.cfg, "fp16_res", None) or ctx.scaler.is_enabled():
        return
    for p in module.parameters():
        if p.grad is not None:
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


def d_aux(ctx: StepContext, x_real: Tensor) -> dict[str, Tensor]:
    """The D auxiliary task's loss on the clean, unaugmented reals (``d/<term>``): DAT's
    reference keeps SSGAN's and InfoMax-GAN's terms on the clean reals."""
    aux = ctx.regs.aux_task
    if aux is None:
        return {}
    with ctx.amp():
        return {f"d/{aux.term}": aux.d_aux_loss(ctx.D, x_real).float()}


def _mix_replaces(ctx: StepContext) -> bool:
    return ctx.regs.extra_d_term is not None and ctx.regs.extra_d_term.replaces_clean


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
    if extra and ctx.regs.d_function.g_term:
        terms[_d_function_term(ctx, "g")] = extra["term"]
    aux = ctx.regs.aux_task
    if aux is not None:  # on the fakes as generated (no augmentation), as d_aux's reals
        with ctx.amp():
            terms[f"g/{aux.term}"] = aux.g_aux_loss(ctx.D, x_fake).float()
    return terms


def g_step(ctx: StepContext, batch: int) -> dict[str, Tensor]:
    """One G update on fresh fakes; returns the detached loss terms (``g/total`` included)."""
    ctx.opt_g.zero_grad(set_to_none=True)
    with _frozen(ctx.D):
        with ctx.amp():
            x_fake = to_input(generate(ctx, batch), ctx.device, ctx.channels_last)
        terms = g_loss_adv(ctx, x_fake)
        total = sum(terms.values())
        backward_step(ctx, total, ctx.G, ctx.opt_g)
    terms["g/total"] = total
    return {k: v.detach() for k, v in terms.items()}


def train_iteration(ctx: StepContext, next_real) -> dict[str, Tensor]:
    """``n_dis`` D steps then one G step; ``next_real()`` returns this process's next batch.

    StyleGAN2 runs in stylegan2-ada's order instead (:func:`stylegan2_iteration`). Either way
    ADA's p is adjusted once the iteration is done."""
    iterate = stylegan2_iteration if _is_stylegan(ctx) else d_then_g_iteration
    terms = iterate(ctx, next_real)
    terms.update(ada_step(ctx))
    return terms


def d_then_g_iteration(ctx: StepContext, next_real) -> dict[str, Tensor]:
    """``n_dis`` D steps, then G's main step and its lazy penalty when due."""
    terms: dict[str, Tensor] = {}
    iteration = ctx.d_steps // ctx.cfg.n_dis  # the G step's index (PL schedule)
    for _ in range(ctx.cfg.n_dis):
        x_real = next_real()
        terms = d_step(ctx, x_real)
    terms.update(g_step(ctx, x_real.shape[0]))
    terms.update(g_reg_step(ctx, x_real.shape[0], iteration))
    return terms


# ---------------------------------------------------------------------------------------------
# StyleGAN2: the phase order


def _is_stylegan(ctx: StepContext) -> bool:
    return ctx.cfg.arch == "stylegan2"


def stylegan2_iteration(ctx: StepContext, next_real) -> dict[str, Tensor]:
    """stylegan2-ada's phase order (``training_loop.py``: G phases before D phases): Gmain, Greg
    (path length, when due), then ``n_dis`` times Dmain and Dreg (lazy R1, when due), so D sees
    fakes of the G just updated. G's batch size is that of the first real batch."""
    iteration = ctx.d_steps // ctx.cfg.n_dis  # the G step's index (PL schedule)
    x_real = next_real()
    terms = g_step(ctx, x_real.shape[0])
    terms.update(g_reg_step(ctx, x_real.shape[0], iteration))
    for i in range(ctx.cfg.n_dis):
        terms.update(d_step(ctx, x_real if i == 0 else next_real()))
    return terms
