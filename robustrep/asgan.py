"""AS-GAN: adversarial training of a GAN discriminator on perturbed reals.

Adversarial Symmetric GANs (Liu et al., Neural Networks 133, 2021, arXiv 1912.09670). No code
was published; the reconstruction (a PGD/FGSM attack on D's real-side loss, pushing reals towards
"fake") and our choices where the paper is silent are documented on :func:`asgan_perturb`.

:class:`ASGAN` is its registered ``gan`` D-inputs regularizer; with ``free=True`` it carries the
perturbation across steps as free adversarial training does
(:class:`~robustrep.adversarial.FreePerturbation`).

The attack is :func:`robustrep.adversarial.pgd`; the sections "The model is left untouched"
(input gradients only, buffers kept by :func:`~robustrep.adversarial.preserve_bn_stats`,
detached outputs) and "Input ranges" (checked and clamped; here ``[-1, 1]`` by default, GAN
images, ``None`` for unbounded inputs) of that module's docstring hold here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from robustrep._validate import (check_bool, check_choice, check_nonneg, check_tensor,
                                 options_repr)
from robustrep.adversarial import _check_settings, _owner_module, pgd
from robustrep.free import FreePerturbation
from robustrep.losses import LOSSES, loss_real
from robustrep.registry import register_regularizer


def asgan_perturb(d_fn: Callable[[Tensor], Tensor], x_real: Tensor, loss: str = "ns",
                  eps: float = 0.05, steps: int = 1, norm: str = "linf",
                  input_range: tuple[float, float] | None = (-1.0, 1.0),
                  step_size: float | None = None, random_start: bool | None = None,
                  generator: torch.Generator | None = None, *,
                  model: nn.Module | None = None) -> Tensor:
    """AS-GAN: perturb reals to increase D's loss on them (Liu et al., Neural Networks 2021).

    Reconstruction (AS-GAN has no public code): vanilla GANs already train D on fakes that G moved
    adversarially; AS-GAN adds the symmetric case, D trained on reals moved to *increase*
    ``loss_real(D(x), loss)``, i.e. towards "fake". ``steps=1`` is a plain FGSM step (no random
    start, step ``eps``), which matches the paper's reported +25% cost per iteration; ``steps > 1``
    is PGD (random start and step ``2.5 * eps / steps`` unless given). Whether the adversarial
    reals replace or join the clean ones in the D loss is the task's decision.

    ``eps=0.05`` (Linf, in the [-1, 1] image scale, about 6.4/255 in [0, 1] units) is our choice:
    the paper's value could not be read. It sits just below the usual 8/255 of adversarial
    training, as the aim is a more robust D, not a robust classifier.

    ``x_real`` must lie in ``input_range`` (default ``[-1, 1]``, GAN images); pass
    ``input_range=None`` for unbounded data such as 2-D points (no check, no clamp).

    Returns the detached adversarial reals.
    """
    check_choice("loss", loss, LOSSES)
    check_nonneg("steps", steps, integer=True)
    if random_start is None:
        random_start = steps > 1
    if step_size is None and steps == 1:
        step_size = eps

    def loss_fn(x: Tensor) -> Tensor:
        scores = d_fn(x)
        if not isinstance(scores, Tensor):  # else losses names "logits", not the caller's d_fn
            raise TypeError(f"d_fn(x_real) must return a tensor of scores, got "
                            f"{type(scores).__name__}")
        return loss_real(scores, loss)

    return pgd(loss_fn, x_real, eps, step_size=step_size, steps=steps, norm=norm,
               random_start=random_start, input_range=input_range, generator=generator,
               model=_owner_module(d_fn, model))


@register_regularizer("asgan", paper="Liu et al., AS-GAN, Neural Networks 2021",
                      acts={"gan": "D inputs"})
class ASGAN:
    """Adversarial training of D on reals only (see :func:`asgan_perturb`).

    ``gan`` D inputs (:mod:`robustrep.api`). ``mode``: ``"replace"`` (D sees the perturbed reals
    instead of the clean ones) or ``"add"`` (both). ``free``: a perturbation carried across
    steps (a :class:`FreePerturbation` of radius ``eps``), updated from D's own backward, with no
    attack pass of its own; checkpointed through ``state_dict``. It takes one step per batch, so
    ``steps`` other than 1 is refused beside it, and the caller must call
    :meth:`after_backward` after each D backward: without it the perturbation stays 0 and D
    trains on the clean reals.

    Args:
        eps: perturbation radius in input units ([-1, 1] images).
        steps: attack steps (1 = FGSM).
        norm: ``"linf"`` or ``"l2"``.
        loss: adversarial loss kind the attack ascends on D's real side.
        input_range: where perturbed reals are clamped (None: unbounded).
        mode: replace: D sees the perturbed reals instead of the clean ones; add: both.
        free: a perturbation carried across steps, updated from D's backward (no attack pass).
    """

    none_is_a_value = ("input_range",)  # None: unbounded inputs

    def __init__(self, eps: float = 0.05, steps: int = 1, norm: Literal["linf", "l2"] = "linf",
                 loss: str = "ns",
                 input_range: tuple[float, float] | None = (-1.0, 1.0), mode: str = "replace",
                 free: bool = False):
        check_choice("mode", mode, ("replace", "add"))
        check_bool("free", free)
        check_choice("loss", loss, LOSSES)
        # a wrong option fails when the object is built, not at its first step
        _check_settings(eps, None, steps, norm, input_range, False)
        if free and steps != 1:  # the default passes: the programs drop what is unset
            raise ValueError(f"steps={steps} does nothing with free=True (free training takes "
                             f"one step per batch, from D's own backward); drop steps or free")
        self.eps, self.steps, self.norm, self.loss = eps, steps, norm, loss
        self.input_range, self.mode, self.free = input_range, mode, free
        self._carried: FreePerturbation | None = None

    @property
    def keeps_clean(self) -> bool:
        return self.mode == "add"

    def _carrier(self) -> FreePerturbation:
        if self._carried is None:  # built on use: input_range may be set after construction
            self._carried = FreePerturbation(self.eps, norm=self.norm,
                                             input_range=self.input_range)
        return self._carried

    def d_inputs(self, d_fn: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        if self.free:
            return self._carrier().attach(x_real), x_fake
        return self(d_fn, x_real, generator, model=model), x_fake

    def after_backward(self, real: Tensor) -> None:
        """Free mode: step the carried perturbation along ``real.grad``; ``real`` is the batch
        :meth:`d_inputs` returned, after the backward of D's loss on it."""
        if not self.free:
            return
        check_tensor("real", real)
        if real.grad is None:  # FreePerturbation's own message names attach(), never called here
            raise ValueError("real.grad is None: pass after_backward the real batch d_inputs "
                             "returned, after the backward pass of a D loss computed from it")
        self._carrier().update(real)

    def state_dict(self) -> dict[str, Any]:
        return self._carrier().state_dict() if self.free else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.free and state:
            self._carrier().load_state_dict(state)

    def __call__(self, d_fn: Callable[[Tensor], Tensor], x_real: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: nn.Module | None = None) -> Tensor:
        return asgan_perturb(d_fn, x_real, loss=self.loss, eps=self.eps, steps=self.steps,
                             norm=self.norm, input_range=self.input_range, generator=generator,
                             model=model)

    __repr__ = options_repr
