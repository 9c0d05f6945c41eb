"""Free adversarial training: one perturbation carried across training steps.

Shafahi, Najibi, Ghiasi, Xu, Dickerson, Studer, Davis, Taylor & Goldstein, "Adversarial training
for free!", NeurIPS 2019; reference code ``mahyarnajibi/FreeAdversarialTraining``
(``main_free.py``). Each minibatch is replayed ``m`` times; every replay's one backward pass gives
the parameter gradients and the input gradient that steps the perturbation, so the attack costs
no extra pass.

The perturbation runs on the machinery of :mod:`robustrep.adversarial` (its section "Input
ranges" holds here: classifier images in ``[0, 1]`` by default, ``None`` for unbounded inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from robustrep._validate import (check_choice, check_in_range, check_nonneg, check_positive,
                                 check_range, check_tensor, options_repr)
from robustrep.adversarial import (_INPUT_RANKS, NORMS, _check_autograd,
                                   _check_eps_scale, _clamp, _direction, _project, training_eps)
from robustrep.registry import register_regularizer


@register_regularizer("free", paper="Shafahi et al., Adversarial training for free!, NeurIPS 2019",
                      acts={"classify": "adversarial inputs"})
class FreePerturbation:
    """A perturbation carried across training steps ("free" adversarial training).

    Shafahi et al., "Adversarial training for free!", NeurIPS 2019. Usage, per minibatch (replaying
    it ``m`` times is the caller's loop, as ``n_repeats`` in the reference)::

        x_adv = free.attach(x)            # leaf: clamp(x + delta), requires grad
        loss = criterion(model(x_adv), y)
        opt.zero_grad(); loss.backward()  # one backward: parameter grads AND x_adv.grad
        free.update(x_adv)                # delta += step * sign(x_adv.grad); project on the ball
        opt.step()

    ``delta`` ascends the loss the caller minimises. It is kept for the largest batch seen; a
    smaller batch uses and updates its first rows (the reference slices its global noise the same
    way), and a change of per-sample shape restarts it from zero. A loss scaled by ``GradScaler``
    is fine: the sign (Linf) and the normalised direction (L2) ignore the scale.

    Departure from ``main_free.py``: there the noise is the leaf and the input is clamped after
    adding it, so clamped pixels get no gradient; here the clamped input is the leaf, so its
    gradient is used everywhere (the ball projection still bounds ``delta``).

    ``input_range`` defaults to ``[0, 1]`` (classifier images); ``attach`` checks that the clean
    batch lies in it. ``None`` means unbounded inputs: no check, no clamp. ``eps`` defaults to
    8/255 for Linf, the paper's CIFAR-10 radius, and 0.5 for L2 (RobustBench's L2 radius).

    As the ``classify`` adversarial-inputs regularizer ``free`` (:mod:`robustrep.api`),
    ``adversarial_inputs`` is :meth:`attach`, ``after_backward`` is :meth:`update`, and the
    program trains ``replays`` times on each batch (``m`` of the paper).

    Args:
        eps: radius of the perturbation ball (None: 8/255 for Linf, 0.5 for L2).
        step_size: step of ``delta`` per update (default ``eps``).
        norm: ``"linf"`` or ``"l2"``.
        input_range: where inputs are checked and clamped (None: unbounded).
        replays: minibatch replays ``m`` the training program runs per batch.
    """

    none_is_a_value = ("input_range",)  # None: unbounded inputs

    def __init__(self, eps: float | None = None, step_size: float | None = None,
                 norm: Literal["linf", "l2"] = "linf",
                 input_range: tuple[float, float] | None = (0.0, 1.0), replays: int = 4):
        eps = training_eps(eps, norm)
        check_nonneg("eps", eps)
        if step_size is not None:
            check_nonneg("step_size", step_size)
        check_choice("norm", norm, NORMS)
        self.input_range = None if input_range is None else check_range("input_range", input_range)
        _check_eps_scale(eps, norm, self.input_range)
        self.eps = float(eps)
        self.step_size = self.eps if step_size is None else float(step_size)
        self.norm = norm
        check_positive("replays", replays, integer=True)
        self.replays = int(replays)
        self.delta: Tensor | None = None

    def adversarial_inputs(self, loss_fn: Callable[[Tensor], Tensor] | None, x: Tensor,
                           generator: torch.Generator | None = None, *,
                           model: nn.Module | None = None) -> Tensor:
        """:meth:`attach` (no attack pass: the perturbation comes from the last backward)."""
        return self.attach(x)

    def after_backward(self, x_adv: Tensor) -> None:
        self.update(x_adv)

    def attach(self, x: Tensor) -> Tensor:
        """Return the leaf ``clamp(x + delta)`` that requires grad; feed it to the model."""
        _check_autograd()  # an inference tensor as delta would poison every later step
        check_tensor("x", x, ndim=_INPUT_RANKS, min_batch=1, floating=True)
        check_in_range("x", x, self.input_range)
        batch = x.shape[0]
        d = self.delta
        if d is None or d.shape[1:] != x.shape[1:]:
            d = torch.zeros_like(x, memory_format=torch.contiguous_format)
        elif d.shape[0] < batch:
            d = torch.cat([d, d.new_zeros((batch - d.shape[0], *d.shape[1:]))])
        self.delta = d.to(device=x.device, dtype=x.dtype)
        return _clamp(x.detach() + self.delta[:batch], self.input_range).requires_grad_(True)

    def update(self, x_adv: Tensor) -> None:
        """Step ``delta`` along ``x_adv.grad`` (after the caller's backward) and project it."""
        check_tensor("x_adv", x_adv, ndim=_INPUT_RANKS, min_batch=1, floating=True)
        if x_adv.grad is None:
            raise ValueError("x_adv.grad is None: pass the tensor attach() (as a regularizer, "
                             "adversarial_inputs) returned, after a backward pass of a loss "
                             "computed from it")
        d = self.delta
        if d is None or d.shape[1:] != x_adv.shape[1:] or d.shape[0] < x_adv.shape[0]:
            raise ValueError(f"x_adv has shape {tuple(x_adv.shape)} but the perturbation holds "
                             f"{None if d is None else tuple(d.shape)}; call attach() first")
        with torch.no_grad():
            rows = d[:x_adv.shape[0]]
            stepped = rows + self.step_size * _direction(x_adv.grad.to(rows.dtype), self.norm)
            rows.copy_(_project(stepped, self.eps, self.norm))

    def reset(self) -> None:
        self.delta = None

    def state_dict(self) -> dict[str, Any]:
        return {"delta": None if self.delta is None else self.delta.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        delta = state.get("delta") if isinstance(state, dict) else None
        if not isinstance(state, dict) or (delta is not None and not isinstance(delta, Tensor)):
            raise TypeError("state must be a dict with 'delta' a tensor or None, as state_dict() "
                            f"returns; got {type(state).__name__}")
        self.delta = None if delta is None else delta.detach().clone()

    __repr__ = options_repr
