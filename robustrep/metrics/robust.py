"""Robust accuracy: the share of samples classified correctly both clean and under attack.

Headline attack: **AutoAttack**, Croce & Hein, "Reliable evaluation of adversarial robustness with
an ensemble of diverse parameter-free attacks", ICML 2020 (arXiv 2003.01690), run through the
authors' own implementation (``fra31/auto-attack``, installed as the ``pyautoattack`` package,
the code RobustBench depends on). The *standard* version runs, in order, APGD-CE (100 iterations,
1 restart), APGD-T (targeted DLR loss, 100 iterations, 9 target classes), FAB-T (9 target
classes) and Square (5000 queries), each only on the samples every earlier attack failed on, so
a sample counts as robust only if it survives all four: the worst case per sample. This is the
convention of the RobustBench leaderboards (Croce et al., NeurIPS 2021 Datasets and Benchmarks).

Quick checks, not comparable with published robust accuracies:

- ``apgd-ce`` / ``apgd-t`` / ``fab-t`` / ``square``: one component of the standard version alone
  (same settings). Square (Andriushchenko et al., ECCV 2020) queries only the model's outputs, so
  a robust accuracy under it well below APGD-CE's points to masked gradients;
- ``pgd``: Madry et al., ICLR 2018, :func:`robustrep.adversarial.pgd` (random start, ``steps``
  steps of ``2.5 * eps / steps`` unless ``step_size`` is given);
- ``fgsm``: Goodfellow et al., ICLR 2015, :func:`robustrep.adversarial.fgsm` (one step of ``eps``).

Conventions shared by all attacks: inputs lie in [0, 1] (any normalisation is inside the model),
the model returns logits, ``eps`` is measured in [0, 1] pixel units (8/255 Linf and 0.5 L2 are the
usual CIFAR-10 radii), and a sample the model gets wrong clean is never robust, so robust accuracy
never exceeds clean accuracy. The model is evaluated in eval mode; its weights, gradients, buffers
and training flag, and torch's global random state, are as they were afterwards.

How the official code is called, its progress reports from inside a batch, and its departures
from ``AutoAttack(version='standard')`` for fewer than 10 classes (said in ``convention``; its
warnings come back in ``flags``) are in :mod:`robustrep.metrics.autoattack`: the metric with the
checks every attack shares is one idea, driving fra31/auto-attack another. This module imports
that one, never the reverse.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._names import ATTACKS, NORMS  # declared without torch for the command line
from robustrep._validate import check_choice, check_nonneg, check_positive, logits_tensor
from robustrep.metrics.autoattack import aa_attacks, predict_logits, run_autoattack

__all__ = ["ATTACKS", "NORMS", "RadiusError", "RobustAccuracy", "check_l2_radius",
           "robust_accuracy"]


class RadiusError(ValueError):
    """An ``eps`` whose ball holds every image in [0, 1] (an L2 radius above ``sqrt(C*H*W)``,
    found once the images' shape is known). A ValueError; a class of its own so that a program
    can name its option in one line."""


@dataclass(frozen=True)
class RobustAccuracy:
    """The result of :func:`robust_accuracy`.

    ``correct`` and ``robust`` hold one flag per sample (on the CPU): correct clean, and correct
    clean *and* under the attack. ``convention`` names the attack, its implementation and the
    threat model in one line, for reports. ``flags`` holds AutoAttack's reliability warnings.
    """

    clean_acc: float
    robust_acc: float
    n: int
    attack: str
    eps: float
    norm: str
    convention: str
    correct: Tensor = field(repr=False)
    robust: Tensor = field(repr=False)
    flags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The scalars and strings (no per-sample flags), ready for JSON."""
        return {"clean_acc": self.clean_acc, "robust_acc": self.robust_acc, "n": self.n,
                "attack": self.attack, "eps": self.eps, "norm": self.norm,
                "convention": self.convention, "flags": list(self.flags)}


def robust_accuracy(model: nn.Module, data: Iterable | tuple[Tensor, Tensor],
                    attack: str = "autoattack", eps: float = 8 / 255, norm: str = "Linf", *,
                    steps: int = 20, step_size: float | None = None, batch_size: int = 250,
                    seed: int = 0, progress: Callable[[dict[str, Any]], None] | None = None
                    ) -> RobustAccuracy:
    """Clean and robust accuracy of ``model`` on ``data`` under ``attack``.

    Args:
        model: images in [0, 1] -> logits ``[B, C]``. Runs on the device of its parameters.
        data: a pair of tensors ``(x [N, ...], y [N])`` or an iterable of such batches (a list,
            a DataLoader).
        attack: one of :data:`ATTACKS` (see the module docstring).
        eps: radius of the threat model in [0, 1] pixel units: at most 1 (Linf) or
            ``sqrt(C*H*W)`` (L2; :class:`RadiusError`), beyond which the ball holds every image.
        norm: ``"Linf"`` or ``"L2"`` (case-insensitive).
        steps, step_size: PGD's iteration count and step (``2.5 * eps / steps`` by default).
        batch_size: samples per forward/attack batch.
        seed: seeds AutoAttack's attacks and PGD's random starts; same seed, same result. PGD
            draws the whole set's starts at once: a sample starts at the same point at any
            ``batch_size``.
        progress: called after each batch PGD or FGSM attacked (``done`` whole samples, of
            ``total`` ``n``), and after each batch an AutoAttack component attacked and every few
            seconds inside one, with ``attack`` (the component), ``done`` and ``total``
            (samples of this component; only samples still robust enter it; inside a batch
            ``done`` is fractional, the batch's share estimated from the model calls made),
            ``robust`` (samples robust so far, of ``n``; known after each batch) and ``eta_s``
            (seconds left in this component, from its pace so far).
    """
    norm = _check_attack_settings(attack, eps, norm, steps, batch_size, seed)
    x, y = _collect(data)
    # every attack assumes [0, 1] (AutoAttack clamps to it: 0-255 images would give a silently
    # wrong robust accuracy); checked before the clean pass, not after it
    _check_images(x)
    check_l2_radius(eps, norm, x.shape[1:])
    device = _model_device(model)
    with _evaluating(model, device):
        _check_outputs(model, x, y, device)
        correct = _predict(model, x, batch_size, device) == y
        if attack in ("pgd", "fgsm"):
            fooled, convention, flags = _gradient_attack(model, x, y, attack, eps, norm, steps,
                                                         step_size, batch_size, seed, device,
                                                         progress, correct)
            robust = correct & ~fooled
        else:
            y_adv, convention, flags = run_autoattack(model, x, y, attack, eps, norm,
                                                      batch_size, seed, device, progress,
                                                      int(correct.sum()))
            robust = correct & (y_adv == y)
    n = int(y.numel())
    return RobustAccuracy(clean_acc=int(correct.sum()) / n,
                          robust_acc=int(robust.sum()) / n, n=n, attack=attack,
                          eps=float(eps), norm=norm, convention=f"{convention}, {norm} eps="
                          f"{eps_text(eps, norm)}", correct=correct, robust=robust, flags=flags)


def _check_attack_settings(attack: str, eps: float, norm: str, steps: int, batch_size: int,
                           seed: int) -> str:
    """:func:`robust_accuracy`'s settings checked; returns ``norm`` spelt as :data:`NORMS`."""
    check_choice("attack", attack, ATTACKS)
    norm = _check_norm(norm)
    check_nonneg("eps", eps)
    check_positive("steps", steps, integer=True)
    check_positive("batch_size", batch_size, integer=True)
    check_nonneg("seed", seed, integer=True)
    from robustrep.adversarial import _check_eps_scale
    _check_eps_scale(eps, norm.lower(), _IMAGE_RANGE)  # 8 meant as 8/255
    return norm


def eps_text(eps: float, norm: str = "Linf") -> str:
    """``8/255`` for Linf radii on the 1/255 grid (pixel levels), else the plain number (an L2
    radius of 2 is no "510/255")."""
    k = eps * 255
    on_grid = norm.lower() == "linf" and 0 < eps <= 1 and abs(k - round(k)) < 1e-6
    return f"{round(k)}/255" if on_grid else f"{eps:g}"


# --- attacks ------------------------------------------------------------------------------------

def _gradient_attack(model: nn.Module, x: Tensor, y: Tensor, attack: str, eps: float, norm: str,
                     steps: int, step_size: float | None, batch_size: int, seed: int,
                     device: torch.device,
                     progress: Callable[[dict[str, Any]], None] | None = None,
                     correct: Tensor | None = None) -> tuple[Tensor, str, tuple[str, ...]]:
    """PGD or FGSM per batch; returns the per-sample 'fooled' flags and the convention.
    ``progress`` is told after each batch (``correct``: the clean pass's, for the robust
    count), as AutoAttack's components tell theirs."""
    from robustrep.adversarial import classifier_loss, fgsm, pgd

    ours = norm.lower()
    starts = _random_starts(x, eps, ours, seed) if attack == "pgd" else None
    fooled = []
    # robust as AutoAttack counts it: the clean-correct, less those fooled so far
    right = correct if correct is not None else torch.ones(len(x), dtype=torch.bool)
    robust, done = int(right.sum()), 0
    for i, (xb, yb) in enumerate(_chunks(batch_size, device, x, y)):
        loss_fn = classifier_loss(model, yb)
        if attack == "pgd":
            start = starts[i * batch_size:(i + 1) * batch_size].to(device)
            x_adv = pgd(loss_fn, xb, eps, step_size=step_size, steps=steps, norm=ours,
                        random_start=True, model=model, delta_init=start)
        else:
            x_adv = fgsm(loss_fn, xb, eps, norm=ours, model=model)
        with torch.no_grad():
            fooled.append((model(x_adv).argmax(1) != yb).cpu())
        if progress is not None:
            robust -= int((right[done:done + len(yb)] & fooled[-1]).sum())
            done += len(yb)
            progress({"attack": attack, "done": done, "total": len(x), "n": len(x),
                      "robust": robust})
    if attack == "pgd":
        size = 2.5 * eps / steps if step_size is None else step_size
        convention = (f"PGD-{steps} (Madry et al. 2018; robustrep.adversarial.pgd, random start, "
                      f"step {size:.4g}; a quick check, not comparable with AutoAttack)")
    else:
        convention = "FGSM (Goodfellow et al. 2015; one step of eps, no random start)"
    return torch.cat(fooled), convention, ()


def _random_starts(x: Tensor, eps: float, norm: str, seed: int) -> Tensor:
    """PGD's random start of every sample of ``x`` (on the CPU), drawn for the whole set in one
    call and sliced per batch: with one seed a sample starts at the same point at any batch
    size, and on any device. Drawn per batch from one generator, an L2 start depended on the
    batch size: the draw takes a batch's directions, then its radii, so the two interleave
    batch by batch; and torch.randn on the CPU fills a draw of 16 values or more by another
    method (vectorised Box-Muller) than a smaller one, so randn(a) then randn(b) is not
    randn(a + b). (torch.rand does split on the CPU; a CUDA generator's Philox offset advances
    per call in rounded steps, so there no draw need split.) Per-sample generators would be
    exact too, at one draw per sample; this costs one tensor the size of ``x``, which is whole
    on the CPU already."""
    from robustrep.adversarial import _random_delta
    return _random_delta(x, eps, norm, torch.Generator().manual_seed(seed))


# Sample-steps one iteration (PGD step, APGD/FAB iteration, Square query) costs per sample, a
# sample-step being the time of one forward+backward of one sample to its input with the weights
# frozen (what tasks/classify/attacks.py times, on a batch of 32). Measured on this project's
# 2-core Intel Xeon CPU (shared: 1 thread, CPU seconds, median of 3-5 repeats of (T(k_hi) -
# T(k_lo)) / (k_hi - k_lo) per sample, eps 1e-4 so that no sample is fooled), for timm resnet10t
# on 1x32x32 (the digits default) / timm test_resnet 3x32x32 / wrn16_2 3x32x32:
#   PGD 0.99 / 1.23 / 1.09; APGD-CE 1.13 / 1.24 / 1.03; APGD-T 1.11 / 1.42 / 1.01 (per target);
#   FAB-T 1.78 / 2.86 / 1.62 (per target: a gradient, a second forward and the projection);
#   Square 0.52 / 0.56 / 0.42 (a forward and its bookkeeping; a bare forward is 0.48 / 0.46 /
#   0.40). Rounded up, with room for attack batches of 256, slower per sample than the timed 32
# (1.5x for wrn16_2; 0.8x for resnet10t): the estimate stays an upper one. The costs before
# (1 per iteration, 1/3 per query) were exceeded about 3x by a CPU run. Tiny models (an MLP on
# 3x4x4) are all per-call overhead, 4-19 sample-steps an iteration at a batch of 32, beyond this
# estimate, but they take seconds on 500 samples, far below the two minutes that print it.
_IMAGE_RANGE = (0.0, 1.0)  # the inputs every attack here takes (AutoAttack clamps to it)
_COST = {"pgd": 1.25, "apgd": 1.5, "fab": 3.0, "square": 0.75}


def attack_steps(attack: str, n_classes: int, steps: int = 20) -> dict[str, float]:
    """The sample-steps (the time of one gradient step on one sample) one sample costs in each
    part of ``attack``, in the order they run, from the measured cost of an iteration of each
    (``_COST``): PGD ``steps`` steps, FGSM one step and two forwards (clean and checked);
    AutoAttack's standard components (Croce & Hein 2020; fra31/auto-attack) APGD-CE 100
    iterations, APGD-T and FAB-T 100 per target class (``min(9, n_classes - 1)``), Square
    5000 queries. AutoAttack's are for a sample still robust when its component starts (fooled
    ones leave)."""
    if attack in ("pgd", "fgsm"):
        return {attack: _COST["pgd"] * steps if attack == "pgd" else 2.0}
    targets = min(9, n_classes - 1)
    cost = {"apgd-ce": 100 * _COST["apgd"], "apgd-t": 100 * targets * _COST["apgd"],
            "fab-t": 100 * targets * _COST["fab"], "square": 5000 * _COST["square"]}
    return {part: cost[part] for part in aa_attacks(attack, n_classes)[0]}


# --- data and model plumbing --------------------------------------------------------------------

def _check_norm(norm: Any) -> str:
    if not isinstance(norm, str) or norm.lower() not in ("linf", "l2"):
        raise ValueError(f"norm must be one of 'Linf', 'L2'; got {norm!r}")
    return "Linf" if norm.lower() == "linf" else "L2"


def _collect(data: Any) -> tuple[Tensor, Tensor]:
    """All of ``data`` as one float image tensor and one int64 label tensor, on the CPU."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, Tensor) for t in data):
        batches = [tuple(data)]
    else:
        batches = list(data)
    xs, ys = [], []
    for i, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise TypeError(f"data must be a pair (x, y) of tensors or an iterable of (x, y) "
                            f"batches; batch {i} is a {type(batch).__name__}")
        xb, yb = batch[0], torch.as_tensor(batch[1])
        if not isinstance(xb, Tensor) or xb.dim() < 2 or yb.dim() != 1 or \
                len(xb) != len(yb):
            single = " (one sample, not a batch: wrap a Dataset in a torch.utils.data." \
                     "DataLoader)" if yb.dim() == 0 else ""
            raise ValueError(f"batch {i}: expected x [B, ...] and y [B], got "
                             f"{tuple(getattr(xb, 'shape', ()))} and {tuple(yb.shape)}{single}")
        if yb.is_floating_point() or yb.is_complex() or yb.dtype == torch.bool:
            raise TypeError(f"batch {i}: y must hold integer class labels, got dtype {yb.dtype}")
        xs.append(xb.detach().float().cpu())
        ys.append(yb.long().cpu())
    if not xs or sum(len(t) for t in ys) == 0:
        raise ValueError("data holds no samples")
    return torch.cat(xs), torch.cat(ys)


def _check_images(x: Tensor) -> None:
    low, high = float(x.min()), float(x.max())
    if not (_IMAGE_RANGE[0] <= low and high <= _IMAGE_RANGE[1]):  # NaN fails too
        raise ValueError(f"data's x must be images in [0, 1] (the attacks clamp to it), got "
                         f"values in [{low:.4g}, {high:.4g}]; divide 0-255 pixels by 255, and "
                         f"normalise inside the model")


def check_l2_radius(eps: float, norm: str, image_shape: Sequence[int]) -> None:
    """Refuse an L2 ``eps`` wider than the cube's diagonal ``sqrt(C*H*W)`` of images shaped
    ``image_shape`` (``C, H, W``): that ball holds every image in [0, 1], the L2 counterpart
    of an Linf eps above 1, a radius meant in other units (0-255). Below it any radius may be
    meant (an L2 sweep to 8 on CIFAR-10), and none is questioned.

    Raises:
        RadiusError: the radius is wider (a ValueError).
    """
    dim = math.prod(image_shape)
    if str(norm).lower() == "l2" and eps > dim ** 0.5:
        shape = "x".join(map(str, image_shape))
        raise RadiusError(f"eps={eps:g} is wider than the largest L2 distance between two "
                          f"images in [0, 1] of shape {shape} (sqrt({dim}) = {dim ** 0.5:.4g}): "
                          f"the ball holds every image; an L2 radius is in [0, 1] pixel units "
                          f"(0.5 is the usual CIFAR-10 radius)")


def _chunks(batch_size: int, device: torch.device,
            *tensors: Tensor) -> Iterator[tuple[Tensor, ...]]:
    """``tensors`` (one sample per row) cut into batches of ``batch_size``, on ``device``."""
    for i in range(0, len(tensors[0]), batch_size):
        yield tuple(t[i:i + batch_size].to(device) for t in tensors)


@torch.no_grad()
def _check_outputs(model: nn.Module, x: Tensor, y: Tensor, device: torch.device) -> None:
    """The model gives a logits tensor ``[B, C]`` with C >= 2 and every label is one of its
    classes (else torch's IndexError would come from deep inside an attack)."""
    out = logits_tensor(model(x[:1].to(device))).float()
    if out.dim() != 2 or out.shape[1] < 2:
        raise ValueError(f"model must return logits [B, C] with C >= 2 classes (the attacks "
                         f"change the predicted class); it returned shape {tuple(out.shape)}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= out.shape[1]:
        raise ValueError(f"data labels must lie in 0..{out.shape[1] - 1} (the model's "
                         f"{out.shape[1]} outputs); got labels in {low}..{high}")


def _predict(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    return torch.cat([predict_logits(model, xb, device).argmax(1).cpu()
                      for (xb,) in _chunks(batch_size, device, x)])


def _model_device(model: Any) -> torch.device:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    return first.device if first is not None else torch.device("cpu")


@contextlib.contextmanager
def _evaluating(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode, frozen parameters (FAB calls ``backward``, which would write ``.grad``) and a
    forked global RNG (pyautoattack calls ``torch.manual_seed``); all restored on exit."""
    # every module's own flag: a BatchNorm frozen inside a model being trained stays frozen
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    cuda = [device.index or 0] if device.type == "cuda" else []
    model.eval()
    try:
        with torch.random.fork_rng(devices=cuda):
            for p, _ in flags:
                p.requires_grad_(False)
            yield
    finally:
        for p, requires in flags:
            p.requires_grad_(requires)
        for m, training in modes:
            m.training = training
