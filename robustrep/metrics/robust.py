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

- ``apgd-ce`` / ``apgd-t``: one component of the standard version alone (same settings);
- ``pgd``: Madry et al., ICLR 2018, :func:`robustrep.adversarial.pgd` (random start, ``steps``
  steps of ``2.5 * eps / steps`` unless ``step_size`` is given);
- ``fgsm``: Goodfellow et al., ICLR 2015, :func:`robustrep.adversarial.fgsm` (one step of ``eps``).

Conventions shared by all attacks: inputs lie in [0, 1] (any normalisation is inside the model),
the model returns logits, ``eps`` is measured in [0, 1] pixel units (8/255 Linf and 0.5 L2 are the
usual CIFAR-10 radii), and a sample the model gets wrong clean is never robust, so robust accuracy
never exceeds clean accuracy. The model is evaluated in eval mode; its weights, gradients, buffers
and training flag, and torch's global random state, are as they were afterwards.

Departures from calling ``AutoAttack(version='standard')`` directly, none changing a 10-class
result: with ``C < 10`` classes APGD-T and FAB-T target all ``C - 1`` other classes (the standard
9 would index past the logits), and with ``C < 4`` APGD-T is left out (its targeted DLR loss reads
the 4th-largest logit); the returned ``convention`` says so. AutoAttack's own warnings (a
randomised or dynamic defence, Square beating the white-box attacks) are returned in ``flags``
instead of being logged to the console.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._names import ATTACKS, NORMS  # declared without torch for the command line
from robustrep._validate import check_choice, check_nonneg, check_positive, logits_tensor

__all__ = ["ATTACKS", "NORMS", "RadiusError", "RobustAccuracy", "check_l2_radius",
           "robust_accuracy"]

_AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
_AA_NAMES = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square"}


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
        progress: called after each batch an AutoAttack component attacked, and every few
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
                                                         step_size, batch_size, seed, device)
            robust = correct & ~fooled
        else:
            y_adv, convention, flags = _autoattack(model, x, y, attack, eps, norm, batch_size,
                                                   seed, device, progress, int(correct.sum()))
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
                     device: torch.device) -> tuple[Tensor, str, tuple[str, ...]]:
    """PGD or FGSM per batch; returns the per-sample 'fooled' flags and the convention."""
    from robustrep.adversarial import classifier_loss, fgsm, pgd

    ours = norm.lower()
    starts = _random_starts(x, eps, ours, seed) if attack == "pgd" else None
    fooled = []
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


def _autoattack(model: nn.Module, x: Tensor, y: Tensor, attack: str, eps: float, norm: str,
                batch_size: int, seed: int, device: torch.device, progress=None,
                n_correct: int = 0) -> tuple[Tensor, str, tuple[str, ...]]:
    """Run the official AutoAttack (or one of its APGD components); returns ``y_adv``."""
    AutoAttack, version = _import_autoattack()
    n_classes = int(_predict_logits(model, x[:1], device).shape[1])
    attacks, note = _aa_attacks(attack, n_classes)
    if attack == "autoattack" and not note:
        adversary = AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed,
                               device=device)
    else:
        adversary = AutoAttack(model, norm=norm, eps=eps, version="custom", attacks=attacks,
                               seed=seed, device=device)
        # The standard version's settings for each component (the custom defaults differ:
        # 5 APGD-CE restarts).
        adversary.apgd.n_restarts = 1
        adversary.apgd_targeted.n_restarts = 1
        adversary.fab.n_restarts = 1
        adversary.square.n_queries = 5000
    targets = min(9, n_classes - 1)
    adversary.apgd_targeted.n_target_classes = targets
    adversary.fab.n_target_classes = targets
    adversary.verbose = False
    if progress is not None:
        _report_batches(adversary, model, device, progress, n_correct, int(y.numel()))
    with _captured_warnings(adversary.logger) as flags:
        _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    names = ", ".join(_AA_NAMES[a] for a in attacks)
    if attack == "autoattack":
        convention = f"AutoAttack standard ({names}{note}; fra31/auto-attack via pyautoattack " \
                     f"{version})"
    else:
        convention = (f"{names} alone (AutoAttack standard settings; fra31/auto-attack via "
                      f"pyautoattack {version}; not the full AutoAttack)")
    return y_adv.cpu(), convention, tuple(flags)


def _component_name(part: str, component: Any) -> str:
    if part == "apgd":
        return f"apgd-{component.loss}"
    if part == "fab":
        return "fab-t" if component.targeted else "fab"
    return {"apgd_targeted": "apgd-t"}.get(part, part)


REPORT_EVERY_S = 5.0  # at most one report from inside a batch in this many seconds


def _calls_per_batch(part: str, component: Any) -> int:
    """The model calls one ``perturb`` of ``component`` makes on a batch when no sample is fooled
    before the last iteration (read off pyautoattack 0.2's loops; fewer when all are fooled):
    one clean forward, then per run (restart, or target class times restart) APGD its start
    and ``n_iter`` steps (APGD-T one more forward to pick the target); FAB two per iteration (a
    gradient, then the prediction), a clean prediction before and a check after (targeted, one
    more forward to pick the target); Square its start, ``n_queries`` queries and a check."""
    if part == "apgd":
        return 1 + component.n_restarts * (component.n_iter + 1)
    if part == "apgd_targeted":
        return 1 + component.n_target_classes * component.n_restarts * (component.n_iter + 2)
    if part == "fab":
        targets = component.n_target_classes if component.targeted else 1
        run = 2 * component.n_iter + (3 if component.targeted else 2)
        return 1 + targets * component.n_restarts * run
    return 1 + component.n_restarts * (component.n_queries + 2)  # square


def _report_batches(adversary: Any, model: nn.Module, device: torch.device,
                    progress: Callable[[dict[str, Any]], None], robust: int, n: int,
                    clock: Callable[[], float] = time.monotonic) -> None:
    """Call ``progress`` after each batch an AutoAttack component attacked and, at most every
    :data:`REPORT_EVERY_S` seconds, from inside the batch: pyautoattack reports nothing while it
    runs, and one ``perturb`` call (one batch of the samples still robust) of FAB-T (9 targets x
    100 iterations) or Square (5000 queries) takes many minutes on a CPU.

    Each component's ``perturb`` is wrapped to count the samples it fooled, and its model
    callable (``model`` in APGD, ``predict`` in FAB and Square) to count its calls: inside a
    batch, ``done`` adds the batch's share estimated as the calls so far over
    :func:`_calls_per_batch` (at most 0.99: a batch is done when ``perturb`` returns). The
    wrappers only count and read the clock (no tensor, no random draw): the attack computes
    exactly what the unwrapped one does."""
    tracker = _BatchProgress(progress, robust, n, clock)
    for part in ("apgd", "apgd_targeted", "fab", "square"):
        _wrap_component(part, getattr(adversary, part), tracker, model, device)


class _BatchProgress:
    """What :func:`_report_batches`' wrappers share: the component running and the samples it
    has done, the current batch's size and model calls, and when the last report went out."""

    def __init__(self, progress: Callable[[dict[str, Any]], None], robust: int, n: int,
                 clock: Callable[[], float]):
        self.progress, self.n, self.clock = progress, n, clock
        self.robust = robust  # samples robust so far
        self.attack: str | None = None
        self.last = clock()
        self.start, self.total, self.done = 0.0, 0, 0  # of the component running
        self.calls, self.batch, self.expected = 0, 0, 0  # of its batch

    def report(self, done: float) -> None:
        self.last = now = self.clock()
        pace = (now - self.start) / done if done > 0 else 0.0
        self.progress({"attack": self.attack, "done": done, "total": self.total,
                       "robust": self.robust, "n": self.n,
                       "eta_s": pace * max(0.0, self.total - done)})

    def batch_starts(self, attack: str, batch: int, expected_calls: int) -> None:
        if self.attack != attack:  # a new component starts on the samples still robust
            self.attack, self.done, self.total, self.start = attack, 0, self.robust, self.clock()
        self.calls, self.batch, self.expected = 0, batch, expected_calls

    def model_called(self) -> None:
        self.calls += 1
        if self.clock() - self.last >= REPORT_EVERY_S:
            share = min(self.calls / self.expected, 0.99)
            self.report(self.done + share * self.batch)

    def batch_ends(self, fooled: int) -> None:
        self.done += self.batch
        self.robust -= fooled
        self.report(self.done)


def _wrap_component(part: str, component: Any, tracker: _BatchProgress, model: nn.Module,
                    device: torch.device) -> None:
    """Wrap ``component``'s ``perturb`` and its model callable so that they tell ``tracker``."""
    perturb = component.perturb
    attr = "model" if part.startswith("apgd") else "predict"
    forward = getattr(component, attr)

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        tracker.model_called()
        return out

    def perturb_and_report(x: Tensor, y: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        # read here: AutoAttack sets FAB's targeted and restarts just before the call
        tracker.batch_starts(_component_name(part, component), int(y.shape[0]),
                             _calls_per_batch(part, component))
        adv = perturb(x, y, *args, **kwargs)
        with torch.no_grad():
            fooled = int((_predict_logits(model, adv, device).argmax(1) != y.to(device)).sum())
        tracker.batch_ends(fooled)
        return adv

    component.perturb = perturb_and_report
    setattr(component, attr, counted)


def _aa_attacks(attack: str, n_classes: int) -> tuple[list[str], str]:
    """The AutoAttack components to run, and a note on any departure from the standard set."""
    if attack != "autoattack":
        if attack == "apgd-t" and n_classes < 4:
            raise ValueError(f"attack 'apgd-t' needs at least 4 classes (its targeted DLR loss "
                             f"reads the 4th-largest logit); the model has {n_classes}")
        return [attack], ""
    if n_classes < 4:
        return [a for a in _AA_STANDARD if a != "apgd-t"], \
            f"; APGD-T left out: {n_classes} classes, it needs 4"
    return list(_AA_STANDARD), ""


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
    return {part: cost[part] for part in _aa_attacks(attack, n_classes)[0]}


def _import_autoattack():
    try:
        import pyautoattack
    except ImportError as err:
        raise ImportError("robust accuracy under AutoAttack needs the official implementation: "
                          "pip install pyautoattack (fra31/auto-attack)") from err
    return pyautoattack.AutoAttack, pyautoattack.__version__


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextlib.contextmanager
def _captured_warnings(logger: logging.Logger) -> Iterator[list[str]]:
    """Collect the logger's warnings; with a handler attached, Python's last-resort console
    handler stays silent (a library must not print)."""
    sink: list[str] = []
    handler = _ListHandler(sink)
    logger.addHandler(handler)
    try:
        yield sink
    finally:
        logger.removeHandler(handler)


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


def _predict_logits(model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
    return model(x.to(device)).float()


def _predict(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    return torch.cat([_predict_logits(model, xb, device).argmax(1).cpu()
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
