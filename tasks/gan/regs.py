"""``--reg``: which core regularizers a run uses, built from the config.

Each seed method is a core object from ``robustrep`` plugged into the D and G steps
(``tasks/gan/steps.py``). Methods act in three places, and a combination takes at most one per
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
from robustrep.adversarial import FreePerturbation
from robustrep.mixing import SampleMix
from robustrep.tasks.common.config import ConfigError

METHODS = ("adaptivemix", "mixup", "cutmix", "srmix", "dat", "asgan", "rpgan")
GROUPS = {"D function": ("adaptivemix", "rpgan"), "D inputs": ("dat", "asgan"),
          "extra D term": ("mixup", "cutmix", "srmix")}
INPUT_RANGE = (-1.0, 1.0)


def input_range(cfg) -> tuple[float, float] | None:
    """Where perturbed inputs are checked and clamped: images live in [-1, 1]; 2-D points are
    unbounded, and so are StyleGAN2's fakes (its G ends in a linear toRGB with no tanh, as in
    stylegan2-ada, so a fake may leave [-1, 1] and must not be clamped into it)."""
    if cfg.dataset in ("ring", "grid") or cfg.arch == "stylegan2":
        return None
    return INPUT_RANGE


def parse_regs(text: str, arch: str = "dcgan") -> tuple[str, ...]:
    """``"adaptivemix,asgan"`` -> ``("adaptivemix", "asgan")``; ``"none"`` -> ``()``.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or a combination that
            takes two methods from the same place (see the module docstring).
    """
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    if names in ((), ("none",)):
        return ()
    for name in names:
        if name not in METHODS:
            raise ConfigError(f"unknown --reg {name!r}; valid: none, {', '.join(METHODS)} "
                              f"(or a comma-separated combination such as adaptivemix,asgan)")
    if len(set(names)) != len(names):
        raise ConfigError(f"--reg {text!r} names a method twice")
    for place, members in GROUPS.items():
        both = [n for n in names if n in members]
        if len(both) > 1:
            raise ConfigError(f"--reg {text!r} combines {' and '.join(both)}, which act in the "
                              f"same place ({place}); take at most one of {', '.join(members)}")
    if {"cutmix", "srmix"} & set(names) and arch == "mlp":
        raise ConfigError("cutmix and srmix paste image regions; on 2-D points use mixup")
    return names


def _given(**kwargs: Any) -> dict[str, Any]:
    """Drop None values so the core constructor's defaults apply (timm's create_model rule)."""
    return {k: v for k, v in kwargs.items() if v is not None}


@dataclass
class Regs:
    """The regularizer objects of one run; ``None`` where a method is off."""

    names: tuple[str, ...]
    adaptivemix: AdaptiveMix | None = None
    am_g_shrink: bool = True
    mix: SampleMix | None = None
    mix_mode: str = "add"
    mix_weight: float = 1.0
    dat: dict[str, Any] | None = None
    asgan: dict[str, Any] | None = None
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
        regs.adaptivemix = AdaptiveMix(**_given(
            alpha=cfg.am_alpha, noise_std=cfg.am_noise_std, distance=cfg.am_distance,
            mode=cfg.am_mode, weight=cfg.am_weight, per_sample=cfg.am_per_sample,
            fuse_passes=_fuse_passes(cfg)))
    kind = next((n for n in names if n in GROUPS["extra D term"]), None)
    if kind is not None:
        regs.mix = SampleMix(kinds=(kind,), **_given(
            alpha=cfg.mix_alpha, prob=cfg.mix_prob, per_sample=cfg.mix_per_sample,
            smoothing=cfg.mix_smoothing))
    if "dat" in names:
        regs.dat = _given(t=cfg.dat_t, eps=cfg.dat_eps)
    if "asgan" in names:
        regs.asgan = _given(eps=cfg.asgan_eps, steps=cfg.asgan_steps, norm=cfg.asgan_norm)
        if cfg.asgan_free:
            regs.free = FreePerturbation(input_range=input_range(cfg), **_given(
                eps=cfg.asgan_eps if cfg.asgan_eps is not None else _asgan_default_eps(),
                norm=cfg.asgan_norm))
    return regs


def _fuse_passes(cfg) -> bool | None:
    """One trunk call on ``cat([x, x_mix])`` where that is exact: the StyleGAN2 D has no batch
    statistics in its trunk (minibatch-std is in the head)."""
    return True if cfg.arch == "stylegan2" else None


def _asgan_default_eps() -> float:
    import inspect

    from robustrep.adversarial import asgan_perturb
    return inspect.signature(asgan_perturb).parameters["eps"].default
