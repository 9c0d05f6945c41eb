"""DAT: Direct Adversarial Training of a GAN discriminator on its reals and fakes.

Li et al., "A New Perspective on Stabilizing GANs Training: Direct Adversarial Training",
IEEE TETCI 2023 (arXiv 2008.09041). Reference code: ``iceli1007/DAT-GAN``,
``torch_mimicry/nets/gan/gan.py::advtrain_step``.

:func:`dat_perturb` moves each side's mean D score towards the other side's; :class:`DAT` is its
registered ``gan`` D-inputs regularizer (``create_regularizer("dat", t=1.0)``).

The attack runs on the machinery of :mod:`robustrep.adversarial`; the sections "The model is
left untouched" (input gradients only, buffers kept by
:func:`~robustrep.adversarial.preserve_bn_stats`, detached outputs) and "Input ranges" (checked
and clamped; here ``[-1, 1]`` by default, GAN images, ``None`` for unbounded inputs) of its
docstring hold here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._validate import (check_bool, check_in_range, check_model_dtype, check_nonneg,
                                 check_range, check_same_device, check_same_dtype, check_tensor,
                                 first_tensor, options_repr)
from robustrep.adversarial import (_INPUT_RANKS, _check_autograd, _clamp, _owner_module,
                                   preserve_bn_stats)
from robustrep.registry import register_regularizer


def dat_perturb(d_fn: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor, t: float = 1.0,
                eps: float | None = None,
                input_range: tuple[float, float] | None = (-1.0, 1.0), clamp_real: bool = True,
                *, model: nn.Module | None = None) -> tuple[Tensor, Tensor]:
    """DAT step: move each side's mean D score towards the other side's (Li et al., TETCI 2023).

    With ``mr = mean D(x_real)`` and ``mf = mean D(x_fake)`` held fixed::

        g_f = grad |mean D(x_fake) - mr|  w.r.t. x_fake;   x_fake_adv = clamp(x_fake - clip(g_f, t))
        g_r = grad |mean D(x_real) - mf|  w.r.t. x_real;   x_real_adv = x_real - clip(g_r, t)

    where ``clip(g, t)`` clamps each element to ``[-t, t]`` (reference ``t = 1``). The objective is
    a *batch mean*, so the raw step is ``(1 / N) dD(x_i)/dx_i``: it shrinks with the batch size, as
    in the reference, and is usually far below the clip. Fakes are pushed up towards the real mean
    and reals down towards the fake mean; the ``|.|`` reverses the push when the means cross.

    Departures from ``gan.py::advtrain_step``:

    - The reference runs two clean forwards only to read ``mr`` and ``mf``; here the attack
      forwards give them (same inputs, same values), and one ``autograd.grad`` call returns both
      input gradients (the two objectives do not share inputs). This changes no value.
    - ``clamp_real=True`` (the default) clamps the adversarial reals to ``input_range`` before D
      sees them, as the reference's SSGAN and InfoMax-GAN copies do; its SNGAN ``gan.py`` clamps
      only after D is evaluated, which is ``clamp_real=False``. This can change D's inputs
      (by at most the step, itself a batch mean and usually far below the clip).

    Bounded variant (``eps`` given, not in the reference): the same targeted direction with an
    FGSM-like step ``eps * sign(g)``, which bounds the perturbation in Linf by ``eps`` and does
    not depend on the batch size; ``t`` is then unused.

    ``x_real`` and ``x_fake`` must lie in ``input_range`` (default ``[-1, 1]``, GAN images);
    pass ``input_range=None`` for unbounded data such as 2-D points (no check, no clamp).

    Returns ``(x_real_adv, x_fake_adv)``, detached.
    """
    rng = _check_dat(d_fn, x_real, x_fake, t, eps, input_range, clamp_real)
    module = _owner_module(d_fn, model)
    check_same_device(x_real=x_real, x_fake=x_fake, model=first_tensor(module))
    check_model_dtype("x_real", x_real, module)
    if (eps if eps is not None else t) == 0:
        return x_real.detach(), x_fake.detach()
    _check_autograd()
    g_real, g_fake = _gap_gradients(d_fn, module, x_real, x_fake)

    def step(g: Tensor) -> Tensor:
        return g.clamp(-t, t) if eps is None else eps * g.sign()

    x_fake_adv = _clamp(x_fake.detach() - step(g_fake), rng)
    x_real_adv = x_real.detach() - step(g_real)
    return (_clamp(x_real_adv, rng) if clamp_real else x_real_adv), x_fake_adv


def _gap_gradients(d_fn: Callable[[Tensor], Tensor], module: nn.Module | None, x_real: Tensor,
                   x_fake: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_r, g_f)`` of :func:`dat_perturb`: the input gradients of both sides' gaps to the
    other side's mean score, held fixed, from one ``autograd.grad`` call."""
    xr = x_real.detach().requires_grad_(True)
    xf = x_fake.detach().requires_grad_(True)
    with preserve_bn_stats(module), torch.enable_grad():
        d_real = _float_mean(d_fn(xr), "d_fn(x_real)")
        d_fake = _float_mean(d_fn(xf), "d_fn(x_fake)")
        gap = (d_fake - d_real.detach()).abs() + (d_real - d_fake.detach()).abs()
        # a D run under no_grad or on detached inputs gives scores without a graph, which
        # autograd.grad refuses in words that name neither d_fn nor its inputs
        g_real, g_fake = (torch.autograd.grad(gap, (xr, xf), allow_unused=True)
                          if gap.requires_grad else (None, None))
    if g_real is None or g_fake is None:
        raise ValueError("d_fn(x) must depend on x with grad for both x_real and x_fake (a D "
                         "run under torch.no_grad(), or on x.detach(), gives none)")
    return g_real, g_fake


@register_regularizer("dat", paper="Li et al., A New Perspective on Stabilizing GANs Training: "
                      "Direct Adversarial Training, IEEE TETCI 2023", acts={"gan": "D inputs"})
class DAT:
    """Symmetric adversarial training of D on reals and fakes (see :func:`dat_perturb`).

    ``gan`` D inputs (:mod:`robustrep.api`): D trains on the perturbed reals and fakes only.

    Args:
        t: gradient clip of the reference step (1.0 in the reference).
        eps: bounded variant, an Linf step eps*sign(g) (None = the reference clipped step).
        input_range: where perturbed inputs are clamped (None: unbounded).
        clamp_real: clamp the perturbed reals too.
    """

    none_is_a_value = ("input_range",)  # None: unbounded inputs
    keeps_clean = False

    def __init__(self, t: float = 1.0, eps: float | None = None,
                 input_range: tuple[float, float] | None = (-1.0, 1.0), clamp_real: bool = True):
        _check_dat_settings(t, eps, input_range, clamp_real)  # a wrong option fails when built
        self.t, self.eps, self.input_range, self.clamp_real = t, eps, input_range, clamp_real

    def __call__(self, d_fn: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor, *,
                 model: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        return dat_perturb(d_fn, x_real, x_fake, t=self.t, eps=self.eps,
                           input_range=self.input_range, clamp_real=self.clamp_real, model=model)

    def d_inputs(self, d_fn: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        return self(d_fn, x_real, x_fake, model=model)

    def after_backward(self, real: Tensor) -> None:
        pass

    __repr__ = options_repr


# --- checks ------------------------------------------------------------------------------------

def _check_dat_settings(t: float, eps: float | None, input_range: Any,
                        clamp_real: bool) -> tuple[float, float] | None:
    """DAT's settings (per call, and once when :class:`DAT` is built)."""
    check_nonneg("t", t)
    if eps is not None:
        check_nonneg("eps", eps)
    check_bool("clamp_real", clamp_real)
    return None if input_range is None else check_range("input_range", input_range)


def _check_dat(d_fn: Any, x_real: Tensor, x_fake: Tensor, t: float, eps: float | None,
               input_range: Any, clamp_real: bool) -> tuple[float, float] | None:
    if not callable(d_fn):
        raise TypeError(f"d_fn must be callable, got {type(d_fn).__name__}")
    check_tensor("x_real", x_real, ndim=_INPUT_RANKS, min_batch=1, floating=True)
    check_tensor("x_fake", x_fake, ndim=_INPUT_RANKS, min_batch=1, floating=True)
    if x_real.shape[1:] != x_fake.shape[1:]:
        raise ValueError("x_real and x_fake must have the same per-sample shape, got "
                         f"{tuple(x_real.shape)} and {tuple(x_fake.shape)}")
    check_same_dtype(x_real=x_real, x_fake=x_fake)
    rng = _check_dat_settings(t, eps, input_range, clamp_real)
    check_in_range("x_real", x_real, rng)
    check_in_range("x_fake", x_fake, rng)
    return rng


def _float_mean(out: Any, name: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a tensor of scores, got {type(out).__name__}")
    return out.float().mean()

