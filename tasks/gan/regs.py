"""``--reg``: which core regularizers a run uses, built from the config.

Each seed method is a core object from ``robustrep`` plugged into the D and G steps
(``tasks/gan/steps.py``). Names, places and combinations come from the registry
(:mod:`robustrep.registry`); methods act in three places, and a combination takes at most one per
place:

=============  ===============================  ==============================================
place          methods                          what changes
=============  ===============================  ==============================================
D function     adaptivemix, rpgan               D's logit (AdaptiveMix: h(z_lin) + h(z_mix);
                                                RP-GAN: K projected discriminators)
D inputs       dat, asgan                       D trains on perturbed reals (and fakes, DAT)
extra D term   mixup, cutmix, srmix             a real-by-fake mixed batch with a mixed loss
=============  ===============================  ==============================================

So ``adaptivemix,asgan`` or ``rpgan,dat,srmix`` are accepted; ``dat,asgan`` (both perturb the
reals), ``mixup,cutmix`` (one mixing policy per run) and ``adaptivemix,rpgan`` (an ensemble has no
single trunk to shrink) are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustrep.adaptivemix import AdaptiveMix
from robustrep.adversarial import ASGAN, DAT, FreePerturbation
from robustrep.mixing import SampleMix
from robustrep.registry import create_regularizer, list_regularizers, parse_combination
from robustrep.registry import regularizer_info
from robustrep.tasks.common.config import ConfigError

METHODS = tuple(list_regularizers("gan"))
INPUT_RANGE = (-1.0, 1.0)


def place(name: str) -> str:
    """Where method ``name`` acts in the GAN program (the registry's ``acts["gan"]``)."""
    return regularizer_info(name).acts["gan"]


def input_range(cfg) -> tuple[float, float] | None:
    """Where perturbed inputs are checked and clamped: images live in [-1, 1]; 2-D points are
    unbounded, and so are StyleGAN2's fakes (its G ends in a linear toRGB with no tanh, as in
    stylegan2-ada, so a fake may leave [-1, 1] and must not be clamped into it)."""
    if cfg.dataset in ("ring", "grid") or cfg.arch == "stylegan2":
        return None
    return INPUT_RANGE


def parse_regs(text: str, arch: str = "dcgan") -> tuple[str, ...]:
    """``"adaptivemix,asgan"`` -> ``("adaptivemix", "asgan")``; ``"none"`` -> ``()``.

    The registry's grammar (:func:`robustrep.registry.parse_combination`), plus the one rule of
    this program: CutMix and SRMix paste image regions, which 2-D points do not have.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or a combination that
            takes two methods from the same place (see the module docstring).
    """
    try:
        names = parse_combination(text, "gan")
    except ValueError as err:
        raise ConfigError(f"--reg: {err}") from None
    if {"cutmix", "srmix"} & set(names) and arch == "mlp":
        raise ConfigError("cutmix and srmix paste image regions; on 2-D points use mixup")
    return names


@dataclass
class Regs:
    """The regularizer objects of one run; ``None`` where a method is off."""

    names: tuple[str, ...]
    adaptivemix: AdaptiveMix | None = None
    am_g_shrink: bool = True
    mix: SampleMix | None = None
    mix_mode: str = "add"
    mix_weight: float = 1.0
    dat: DAT | None = None
    asgan: ASGAN | None = None
    asgan_mode: str = "replace"
    free: FreePerturbation | None = None
    ensemble: bool = False

    def state_dict(self) -> dict[str, Any]:
        return {"free": self.free.state_dict() if self.free is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.free is not None and state.get("free") is not None:
            self.free.load_state_dict(state["free"])


def build_regs(cfg) -> Regs:
    """Build the core objects named by ``cfg.reg`` with the config's hyperparameters."""
    names = parse_regs(cfg.reg, cfg.arch)
    regs = Regs(names, am_g_shrink=cfg.am_g_shrink, mix_mode=cfg.mix_mode,
                mix_weight=cfg.mix_weight, asgan_mode=cfg.asgan_mode, ensemble="rpgan" in names)
    if "adaptivemix" in names:
        regs.adaptivemix = create_regularizer(
            "adaptivemix", alpha=cfg.am_alpha, noise_std=cfg.am_noise_std,
            distance=cfg.am_distance, mode=cfg.am_mode, weight=cfg.am_weight,
            per_sample=cfg.am_per_sample, fuse_passes=_fuse_passes(cfg))
    kind = next((n for n in names if place(n) == "extra D term"), None)
    if kind is not None:
        regs.mix = create_regularizer(kind, alpha=cfg.mix_alpha, prob=cfg.mix_prob,
                                      per_sample=cfg.mix_per_sample, smoothing=cfg.mix_smoothing)
    # None is a value for input_range (unbounded data), not "unset": it is set after building,
    # since create_regularizer drops None options.
    rng = input_range(cfg)
    if "dat" in names:
        regs.dat = create_regularizer("dat", t=cfg.dat_t, eps=cfg.dat_eps)
        regs.dat.input_range = rng
    if "asgan" in names:
        regs.asgan = create_regularizer("asgan", eps=cfg.asgan_eps, steps=cfg.asgan_steps,
                                        norm=cfg.asgan_norm, loss=cfg.loss)
        regs.asgan.input_range = rng
        if cfg.asgan_free:
            regs.free = FreePerturbation(regs.asgan.eps, norm=regs.asgan.norm, input_range=rng)
    return regs


def _fuse_passes(cfg) -> bool | None:
    """One trunk call on ``cat([x, x_mix])`` where that is exact: the StyleGAN2 D has no batch
    statistics in its trunk (minibatch-std is in the head)."""
    return True if cfg.arch == "stylegan2" else None
