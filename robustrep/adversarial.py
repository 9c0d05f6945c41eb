"""Input perturbations for adversarial training that leave the model itself untouched.

The classifier attacks, and the machinery every attack shares (buffers kept, input gradients,
the module behind a loss function, range and dtype checks). The discriminator's adversarial
training, DAT and AS-GAN, runs on this machinery from its own modules.

Methods and references:

- :func:`fgsm`: Goodfellow et al., ICLR 2015; with ``random_start`` it is "FGSM with random start"
  (Wong, Rice & Kolter, "Fast is better than free", ICLR 2020; ``locuslab/fast_adversarial``):
  uniform start in the ball, step ``1.25 * eps``.
- :func:`pgd`: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
  ICLR 2018: signed (Linf) or normalised (L2) gradient ascent, projected on the eps ball.
- :class:`~robustrep.free.FreePerturbation` (:mod:`robustrep.free`): "Adversarial training for
  free!" (Shafahi et al., NeurIPS 2019; ``mahyarnajibi/FreeAdversarialTraining``): the
  perturbation is carried across steps and updated from the input gradient of the backward pass
  the training step makes anyway.
- :mod:`robustrep.dat`: :func:`~robustrep.dat.dat_perturb` and :class:`~robustrep.dat.DAT`,
  Direct Adversarial Training (Li et al., IEEE TETCI 2023).
- :mod:`robustrep.asgan`: :func:`~robustrep.asgan.asgan_perturb` and
  :class:`~robustrep.asgan.ASGAN`, Adversarial Symmetric GANs (Liu et al., Neural Networks 2021).

These five names were defined here before, and can still be imported from here
(``from robustrep.adversarial import dat_perturb``).

**The model is left untouched.** Every attack here, in :mod:`robustrep.dat` and in
:mod:`robustrep.asgan`

1. takes gradients with ``torch.autograd.grad`` with respect to the input only, so no parameter
   ``.grad`` is written and autograd skips the weight-gradient kernels;
2. runs its forwards inside :func:`preserve_bn_stats`: an attack forward in training mode would
   otherwise update the BatchNorm running statistics once per attack step with statistics of
   perturbed inputs, which the evaluation-mode model would then use;
3. returns detached tensors.

The model's mode is the caller's: in training mode the attack sees the same (batch-statistics)
function the training loss sees. Attack functions take a ``loss_fn``/``d_fn`` callable; its
module (the ``model`` keyword, the callable itself when it is an ``nn.Module``, the owner of a
bound method, or the modules a function or lambda reads from its closure or its globals) is the
one whose BatchNorm statistics are kept and whose device is checked; where none is found, the
statistics of every module the attack's forwards call are kept.

**Input ranges.** Every attack clamps its output to ``input_range`` and checks that the clean
inputs already lie in it (a ``ValueError`` names the range found and the range expected; the check
reads two extremes, one host synchronisation per call). The defaults follow the two conventions of
the programs: :func:`fgsm`, :func:`pgd` and :class:`~robustrep.free.FreePerturbation` assume
classifier images in ``[0, 1]``; :func:`~robustrep.dat.dat_perturb` and
:func:`~robustrep.asgan.asgan_perturb` assume GAN images in ``[-1, 1]``. ``input_range=None`` means
unbounded inputs: no check and no clamp (2-D points, normalised features). Hyperparameters
(``eps``, ``t``, ``step_size``) must be finite; inputs must have the dtype of the model's
parameters unless autocast is on. In half precision (bf16, fp16) the ball holds up to the dtype's
rounding: ``x + delta`` is rounded to the input's dtype, so a bf16 pixel in [0.5, 1) may sit up to
half a bf16 step (2**-9) outside ``eps`` (0.0332 for 8/255 = 0.0314); attack float32 copies where
the radius must hold exactly.
"""

from __future__ import annotations

import contextlib
import dis
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep._validate import (check_bool, check_choice, check_generator, check_in_range,
                                 check_model_dtype, check_nonneg, check_probabilities,
                                 check_range, check_same_device, check_tensor, first_tensor,
                                 options_repr)
from robustrep.registry import register_regularizer

NORMS = ("linf", "l2")  # the annotations spell them out: the registry reads them from the source
# the training radius when none is given, by norm: RobustBench's CIFAR-10 threat models (an L2
# ball of 8/255 is 16 times smaller than the one the L2 evaluation attacks)
TRAINING_EPS = {"linf": 8 / 255, "l2": 0.5}


def training_eps(eps: float | None, norm: str) -> float:
    """``eps``, or the norm's :data:`TRAINING_EPS` when None (a wrong norm is named first)."""
    check_choice("norm", norm, NORMS)
    return TRAINING_EPS[norm] if eps is None else eps
_INPUT_RANKS = (2, 3, 4, 5)
_TINY = 1e-12


@contextlib.contextmanager
def preserve_bn_stats(model: nn.Module | None) -> Iterator[None]:
    """Restore every buffer of ``model`` on exit: BatchNorm statistics, spectral-norm vectors.

    A training-mode forward updates more than BatchNorm's ``running_mean``/``running_var``/
    ``num_batches_tracked``: spectral norm advances its power-iteration vectors (``weight_u`` of
    ``nn.utils.spectral_norm``, ``_u``/``_v`` of the parametrization, and the per-member vectors
    of :class:`robustrep.projection.GroupedSpectralNorm`). All buffers are snapshotted and copied
    back in place, so references held elsewhere (DDP buffer broadcast) stay valid. The outputs
    inside the block are unchanged: train-mode BatchNorm still normalises with batch statistics.

    ``None`` keeps the buffers of every module called inside the block, each snapshotted before
    its first call (a forward pre-hook on all modules, removed on exit): the attacks pass it when
    no module can be found behind their loss function (a trainer's ``self.model`` inside a lambda,
    a dict of models), whose statistics would otherwise drift without a word.
    """
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or None, got {type(model).__name__}")
    saved: dict[int, tuple[Tensor, Tensor]] = {}
    seen: set[int] = set()

    def keep(module: nn.Module, *_: Any) -> None:
        if id(module) in seen:
            return
        seen.update(id(m) for m in module.modules())
        for buf in module.buffers():
            saved.setdefault(id(buf), (buf, buf.clone()))

    if model is not None:
        keep(model)
        handle = None
    else:  # global hooks run before the module's own (spectral_norm's power step is one)
        handle = nn.modules.module.register_module_forward_pre_hook(keep)
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()
        with torch.no_grad():
            for buf, value in saved.values():
                buf.copy_(value)


def classifier_loss(model: Callable[[Tensor], Tensor], y: Tensor,
                    context: Callable[[], Any] | None = None) -> Callable[[Tensor], Tensor]:
    """The loss an attack on a classifier maximises: per-sample cross-entropy of the labels ``y``.

    ``context`` (e.g. an autocast factory) wraps the forward; the loss itself is computed in
    float32, so a bf16 forward still gives fp32 input gradients' directions. ``y`` holds class
    indices ``[B]`` (or probabilities ``[B, K]``, as ``F.cross_entropy`` takes: rows of values
    >= 0 summing to 1, checked on CPU tensors).
    """
    _check_labels(y)
    target = y if y.is_floating_point() else y.long()  # cross_entropy refuses int32 indices

    def loss_fn(x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.dim() and x.shape[0] != y.shape[0]:
            raise ValueError(f"classifier_loss: x has a batch of {x.shape[0]} but y holds "
                             f"{y.shape[0]} labels; build the loss with the batch's own y")
        with context() if context is not None else contextlib.nullcontext():
            logits = model(x)
        return F.cross_entropy(logits.float(), target, reduction="none")
    return loss_fn


def _check_labels(y: Any) -> None:
    """Class indices [B] or probabilities [B, K], checked once when the loss is built (inside
    an attack, cross_entropy's own error would come from the attack's first forward)."""
    check_tensor("y", y, ndim=(1, 2))
    if y.dim() == 1 and (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool):
        raise TypeError(f"y must hold integer class indices [B] (or float probabilities "
                        f"[B, K]), got dtype {y.dtype}; pass y.long()")
    if y.dim() == 2 and not y.is_floating_point():
        raise TypeError(f"y of shape {tuple(y.shape)} must be float probabilities [B, K] (or "
                        f"integer class indices [B]), got dtype {y.dtype}")
    if y.dim() == 2:
        check_probabilities("y", y)


def fgsm(loss_fn: Callable[[Tensor], Tensor], x: Tensor, eps: float, norm: str = "linf",
         input_range: tuple[float, float] | None = (0.0, 1.0), random_start: bool = False,
         step_size: float | None = None, generator: torch.Generator | None = None, *,
         model: nn.Module | None = None) -> Tensor:
    """One gradient-ascent step on ``loss_fn`` inside the eps ball (FGSM).

    ``random_start=True`` is FGSM with random start (Wong et al. 2020): uniform start in the ball,
    default step ``1.25 * eps``, then projection back on the ball. Without it the default step is
    ``eps``. ``loss_fn(x)`` returns a per-sample or scalar loss to maximise. ``x`` must lie in
    ``input_range`` (default ``[0, 1]``, classifier images; ``None``: unbounded, no clamp).
    Returns a detached tensor within the ball and ``input_range``.
    """
    rng, module = _check_attack(loss_fn, x, eps, step_size, 1, norm, input_range, random_start,
                                generator, model)
    if eps == 0:
        return x.detach()
    if step_size is None:
        step_size = 1.25 * eps if random_start else eps
    return _attack(loss_fn, x, eps, step_size, 1, norm, random_start, rng, generator, module)


def pgd(loss_fn: Callable[[Tensor], Tensor], x: Tensor, eps: float,
        step_size: float | None = None, steps: int = 10, norm: str = "linf",
        random_start: bool = True, input_range: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None, *, model: nn.Module | None = None,
        delta_init: Tensor | None = None) -> Tensor:
    """Projected gradient ascent on ``loss_fn`` in the Linf or L2 eps ball (Madry et al. 2018).

    Each step moves by ``step_size`` along ``sign(grad)`` (Linf) or ``grad / ||grad||`` per sample
    (L2), projects on the ball around ``x`` and clamps to ``input_range``. ``step_size`` defaults to
    ``2.5 * eps / steps``. ``random_start`` starts uniformly in the Linf ball, or uniformly in
    the L2 ball (Gaussian direction, radius ``eps * U ** (1 / d)``), drawn from ``generator``:
    first ``x``'s shape of uniforms (Linf) or normals (L2), then (L2) one uniform per sample.
    ``delta_init`` (shaped like ``x``, on its device) is that start's offset from ``x``, given
    instead of drawn: a caller attacking a set in batches draws the whole set's starts at once
    and passes each batch its slice, so that a sample's start does not depend on the batch it
    falls in (:func:`robustrep.metrics.robust_accuracy` does). A start outside the ball is
    projected by the first step. ``eps == 0`` or ``steps == 0`` returns ``x`` (detached). ``x``
    must lie in ``input_range`` (default ``[0, 1]``, classifier images; ``None``: unbounded, no
    clamp). Returns a detached tensor.
    """
    rng, module = _check_attack(loss_fn, x, eps, step_size, steps, norm, input_range,
                                random_start, generator, model)
    _check_delta_init(delta_init, x, random_start)
    if eps == 0 or steps == 0:
        return x.detach()
    if step_size is None:
        step_size = 2.5 * eps / steps
    return _attack(loss_fn, x, eps, step_size, steps, norm, random_start, rng, generator, module,
                   delta_init)


# --- helpers ------------------------------------------------------------------------------------

def _attack(loss_fn: Callable[[Tensor], Tensor], x: Tensor, eps: float, step_size: float,
            steps: int, norm: str, random_start: bool, rng: tuple[float, float] | None,
            generator: torch.Generator | None, module: nn.Module | None,
            delta_init: Tensor | None = None) -> Tensor:
    """The FGSM/PGD loop: ascend, project on the ball around ``x``, clamp to the range."""
    x0 = x.detach()
    x_adv = x0
    if random_start:
        delta = _random_delta(x0, eps, norm, generator) if delta_init is None else delta_init
        x_adv = _clamp(x0 + delta.detach().to(x0.dtype), rng)
    with preserve_bn_stats(module), torch.enable_grad():
        for _ in range(steps):
            grad = _input_grad(loss_fn, x_adv)
            stepped = x_adv + step_size * _direction(grad, norm)
            x_adv = _clamp(x0 + _project(stepped - x0, eps, norm), rng)
    return x_adv.detach()


def _input_grad(loss_fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    _check_autograd()
    x = x.detach().requires_grad_(True)
    loss = loss_fn(x)
    if not isinstance(loss, Tensor) or not loss.requires_grad:
        raise ValueError("loss_fn(x) must return a tensor that depends on x with grad, got "
                         f"{type(loss).__name__}" + ("" if not isinstance(loss, Tensor)
                                                     else " without grad"))
    if loss.dim() > 0 and loss.numel() != x.shape[0]:  # logits [B, K]: their sum is no loss
        raise ValueError(f"loss_fn(x) must return a per-sample loss [{x.shape[0]}] or a "
                         f"scalar, got shape {tuple(loss.shape)}; for a classifier, pass "
                         f"robustrep.adversarial.classifier_loss(model, y)")
    (grad,) = torch.autograd.grad(loss.float().sum(), x, allow_unused=True)
    if grad is None:
        raise ValueError("loss_fn(x) does not depend on x")
    return grad


def _direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm: ``sign`` (Linf) or ``g / ||g||`` per sample (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / _norms(grad).clamp_min(_TINY)


def _project(delta: Tensor, eps: float, norm: str) -> Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _norms(delta).clamp_min(_TINY)).clamp(max=1.0)


def _norms(t: Tensor) -> Tensor:
    """Per-sample L2 norm, shaped ``[B, 1, ...]`` to broadcast against ``t``."""
    return t.flatten(1).float().norm(dim=1).to(t.dtype).view(-1, *([1] * (t.dim() - 1)))


def _random_delta(x: Tensor, eps: float, norm: str, generator: torch.Generator | None) -> Tensor:
    """Uniform sample of the Linf ball, or of the L2 ball (direction x radius ``eps U^(1/d)``)."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * eps
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    dim = x[0].numel()
    radius = eps * torch.rand(x.shape[0], generator=generator, device=x.device,
                              dtype=x.dtype) ** (1.0 / dim)
    return direction / _norms(direction).clamp_min(_TINY) * radius.view(-1, *([1] * (x.dim() - 1)))


def _check_delta_init(delta_init: Any, x: Tensor, random_start: bool) -> None:
    """A given random start: a float tensor shaped like ``x`` on its device, with
    ``random_start`` on (off, the start would be dropped without a word)."""
    if delta_init is None:
        return
    if not random_start:
        raise ValueError("delta_init is a random start: pass random_start=True (the default) "
                         "with it, or leave it out")
    check_tensor("delta_init", delta_init, floating=True)
    if delta_init.shape != x.shape:
        raise ValueError(f"delta_init must have x's shape {tuple(x.shape)}, got "
                         f"{tuple(delta_init.shape)}")
    check_same_device(x=x, delta_init=delta_init)


def _clamp(x: Tensor, rng: tuple[float, float] | None) -> Tensor:
    return x if rng is None else x.clamp(rng[0], rng[1])


def _check_autograd() -> None:
    """An attack needs input gradients, which ``torch.inference_mode`` rules out (``no_grad``
    is fine: the attacks turn grad on)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError("adversarial inputs need autograd, which torch.inference_mode() turns "
                           "off; call the attack outside it (torch.no_grad() is fine)")


def _owner_module(fn: Any, model: nn.Module | None) -> nn.Module | None:
    """The module behind ``fn``: ``model`` if given, ``fn`` itself, a bound method's owner, or
    the modules a function or lambda refers to (:func:`_referenced_modules`)."""
    if model is not None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module or None, got {type(model).__name__}")
        return model
    if isinstance(fn, nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, nn.Module):
        return owner
    found = _referenced_modules(fn)
    return found[0] if len(found) == 1 else nn.ModuleList(found) if found else None


def _referenced_modules(fn: Any) -> list[nn.Module]:
    """The modules a plain function reads: its closure's (``classifier_loss(model, y)``) and the
    globals its code names (``lambda x: F.cross_entropy(model(x), y)`` in a script), so that
    their buffers are kept without ``model=``."""
    code, found = getattr(fn, "__code__", None), {}
    if code is None:
        return []
    cells = [cell.cell_contents for cell in (fn.__closure__ or ()) if _filled(cell)]
    names = getattr(fn, "__globals__", {})
    for value in cells + [names[n] for n in _global_names(code) if n in names]:
        if isinstance(value, nn.Module):
            found.setdefault(id(value), value)
    return list(found.values())


def _global_names(code: Any) -> set[str]:
    """The global names ``code`` (and the functions defined in it) loads. Not ``co_names``,
    which holds attribute names too: ``self.model(x)`` would name an unrelated global
    ``model``, whose buffers would be kept while the attacked model's drift."""
    found = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            found |= _global_names(const)
    return found


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell: a name not bound yet
        return False
    return True


def _check_settings(eps: float, step_size: float | None, steps: int, norm: str,
                    input_range: Any, random_start: bool) -> tuple[float, float] | None:
    """The attack's settings (fgsm/pgd per call; :class:`PGD`/:class:`FGSM` once, when built,
    so a wrong option fails before training rather than at its first step)."""
    check_nonneg("eps", eps)
    if step_size is not None:
        check_nonneg("step_size", step_size)
    check_nonneg("steps", steps, integer=True)
    check_choice("norm", norm, NORMS)
    check_bool("random_start", random_start)
    rng = None if input_range is None else check_range("input_range", input_range)
    _check_eps_scale(eps, norm, rng)
    return rng


def _check_eps_scale(eps: float, norm: str, rng: tuple[float, float] | None) -> None:
    """An Linf ball wider than the input range holds every input: eps given in 0-255 units
    (8 meant as 8/255) would give noise clamped to the range, reported as an attack."""
    if norm == "linf" and rng is not None and eps > rng[1] - rng[0]:
        raise ValueError(f"eps={eps:g} is wider than input_range [{rng[0]:g}, {rng[1]:g}]: an "
                         f"Linf radius is in the inputs' units (8/255 = {8 / 255:.4g} for "
                         f"images in [0, 1]), at most {rng[1] - rng[0]:g}")


def _check_attack(loss_fn: Any, x: Tensor, eps: float, step_size: float | None, steps: int,
                  norm: str, input_range: Any, random_start: bool,
                  generator: torch.Generator | None,
                  model: nn.Module | None) -> tuple[tuple[float, float] | None, nn.Module | None]:
    """Checks shared by fgsm/pgd; return the checked range and the module behind ``loss_fn``."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    check_tensor("x", x, ndim=_INPUT_RANKS, min_batch=1, floating=True)
    rng = _check_settings(eps, step_size, steps, norm, input_range, random_start)
    check_generator(generator, x.device)
    check_in_range("x", x, rng)
    module = _owner_module(loss_fn, model)
    check_same_device(x=x, model=first_tensor(module))
    check_model_dtype("x", x, module)
    return rng, module


# Thin classes over the functions above: hyperparameters in the constructor, inputs in the call,
# so the registry can build every method by name (``create_regularizer("pgd", steps=10)``).


class _TrainingAttack:
    """What PGD and FGSM share as classify adversarial-inputs regularizers (robustrep.api): one
    fresh attack per batch, nothing carried to the next."""

    none_is_a_value = ("input_range",)  # None: unbounded inputs
    replays = 1  # one pass per batch

    __repr__ = options_repr

    def __init__(self, eps: float | None, steps: int, step_size: float | None, norm: str,
                 random_start: bool, input_range: tuple[float, float] | None):
        eps = training_eps(eps, norm)
        _check_settings(eps, step_size, steps, norm, input_range, random_start)
        self.eps, self.step_size, self.norm = eps, step_size, norm
        self.random_start, self.input_range = random_start, input_range

    def adversarial_inputs(self, loss_fn: Callable[[Tensor], Tensor], x: Tensor,
                           generator: torch.Generator | None = None, *,
                           model: nn.Module | None = None) -> Tensor:
        return self(loss_fn, x, generator, model=model)

    def after_backward(self, x_adv: Tensor) -> None:
        pass


@register_regularizer("pgd", paper="Madry et al., Towards Deep Learning Models Resistant to "
                      "Adversarial Attacks, ICLR 2018", acts={"classify": "adversarial inputs"})
class PGD(_TrainingAttack):
    """PGD adversarial training inputs (see :func:`pgd`); images in ``input_range``.

    Args:
        eps: radius of the training perturbation in [0, 1] pixels (None: 8/255 for Linf, 0.5
            for L2, RobustBench's CIFAR-10 threat models).
        steps: attack steps (Madry et al. use 7).
        step_size: attack step (None: 2.5 * eps / steps).
        norm: ``"linf"`` or ``"l2"``.
        random_start: start from a uniform draw in the ball.
        input_range: where inputs are clamped.
    """

    def __init__(self, eps: float | None = None, steps: int = 7, step_size: float | None = None,
                 norm: Literal["linf", "l2"] = "linf", random_start: bool = True,
                 input_range: tuple[float, float] | None = (0.0, 1.0)):
        super().__init__(eps, steps, step_size, norm, random_start, input_range)
        self.steps = steps

    def __call__(self, loss_fn: Callable[[Tensor], Tensor], x: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: nn.Module | None = None) -> Tensor:
        return pgd(loss_fn, x, self.eps, step_size=self.step_size, steps=self.steps,
                   norm=self.norm, random_start=self.random_start, input_range=self.input_range,
                   generator=generator, model=model)


@register_regularizer("fgsm", paper="Wong et al., Fast is better than free, ICLR 2020",
                      acts={"classify": "adversarial inputs"})
class FGSM(_TrainingAttack):
    """FGSM adversarial training inputs, with random start by default (see :func:`fgsm`).

    Args:
        eps: radius of the training perturbation in [0, 1] pixels (None: 8/255 for Linf, 0.5
            for L2, RobustBench's CIFAR-10 threat models).
        step_size: attack step (None: 1.25 * eps with a random start, as Wong et al.).
        norm: ``"linf"`` or ``"l2"``.
        random_start: start from a uniform draw in the ball.
        input_range: where inputs are clamped.
    """

    def __init__(self, eps: float | None = None, step_size: float | None = None,
                 norm: Literal["linf", "l2"] = "linf", random_start: bool = True,
                 input_range: tuple[float, float] | None = (0.0, 1.0)):
        super().__init__(eps, 1, step_size, norm, random_start, input_range)

    def __call__(self, loss_fn: Callable[[Tensor], Tensor], x: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: nn.Module | None = None) -> Tensor:
        return fgsm(loss_fn, x, self.eps, norm=self.norm, input_range=self.input_range,
                    random_start=self.random_start, step_size=self.step_size,
                    generator=generator, model=model)


# DAT, AS-GAN and free adversarial training were defined here before they had modules of their
# own; their names stay importable from this module (the README's examples, code written
# before). They are resolved on first use (PEP 562) rather than imported at the end of this file:
# robustrep.dat, robustrep.asgan and robustrep.free import this module, so an eager import here
# would fail whenever one of them is imported first (this module would then ask a
# half-initialised robustrep.dat for ``DAT``).
_MOVED = {"dat_perturb": "robustrep.dat", "DAT": "robustrep.dat",
          "FreePerturbation": "robustrep.free",
          "asgan_perturb": "robustrep.asgan", "ASGAN": "robustrep.asgan"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
