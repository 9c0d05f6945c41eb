"""The driver of the official AutoAttack code: Croce & Hein, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks", ICML 2020 (arXiv 2003.01690),
run through the authors' own implementation (``fra31/auto-attack``, installed as the
``pyautoattack`` package, the code RobustBench depends on).

:func:`run_autoattack` calls ``AutoAttack(version='standard')``, or a custom version with the
standard settings for one APGD component alone or for a model of fewer than 4 classes
(:func:`aa_attacks` picks the components), and returns the labels the model gives the attacked
images. Progress is reported from inside each batch (:func:`_report_batches`: pyautoattack
reports nothing while one ``perturb`` call runs, many minutes for FAB-T or Square on a CPU) by
wrappers that only count model calls and read the clock, so the attack computes what the
unwrapped one does.

Departures from calling ``AutoAttack(version='standard')`` directly, none changing a 10-class
result: with ``C < 10`` classes APGD-T and FAB-T target all ``C - 1`` other classes (the standard
9 would index past the logits), and with ``C < 4`` APGD-T is left out (its targeted DLR loss reads
the 4th-largest logit); the returned ``convention`` says so. AutoAttack's own warnings (a
randomised or dynamic defence, Square beating the white-box attacks) are returned in ``flags``
instead of being logged to the console.

The metric that runs it, with the checks and conventions every attack shares and the quick
PGD/FGSM checks, is :mod:`robustrep.metrics.robust`, which imports this module (and its
:func:`predict_logits`); this module imports nothing from it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._names import ATTACK_NAMES

__all__ = ["REPORT_EVERY_S", "aa_attacks", "predict_logits", "run_autoattack"]

_AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


def run_autoattack(model: nn.Module, x: Tensor, y: Tensor, attack: str, eps: float, norm: str,
                   batch_size: int, seed: int, device: torch.device, progress=None,
                   n_correct: int = 0) -> tuple[Tensor, str, tuple[str, ...]]:
    """Run the official AutoAttack (or one of its APGD components); returns ``y_adv``."""
    AutoAttack, version = _import_autoattack()
    n_classes = int(predict_logits(model, x[:1], device).shape[1])
    attacks, note = aa_attacks(attack, n_classes)
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
    names = ", ".join(ATTACK_NAMES[a] for a in attacks)
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
            fooled = int((predict_logits(model, adv, device).argmax(1) != y.to(device)).sum())
        tracker.batch_ends(fooled)
        return adv

    component.perturb = perturb_and_report
    setattr(component, attr, counted)


def aa_attacks(attack: str, n_classes: int) -> tuple[list[str], str]:
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


def predict_logits(model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
    return model(x.to(device)).float()
