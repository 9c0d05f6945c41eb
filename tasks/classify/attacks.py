"""The adversarial half of ``robustrep classify eval``: which attacks run, an estimate of their
time before they start, and their progress in sample-steps.

The attacks themselves are :func:`robustrep.metrics.robust_accuracy`: AutoAttack standard (Croce &
Hein, ICML 2020, the official ``fra31/auto-attack`` code), its APGD components, PGD (Madry et al.,
ICLR 2018) and FGSM, Linf or L2 in [0, 1] pixel space. Here they are planned, timed and reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from robustrep.metrics.robust import ATTACKS, attack_steps, robust_accuracy
from robustrep.tasks.common.progress import duration, progress


def first_samples(data: Iterable, n: int | None) -> tuple[Tensor, Tensor]:
    """The first ``n`` samples of ``data`` (all when None) as one pair of CPU tensors."""
    xs, ys, have = [], [], 0
    for x, y in data:
        if n is not None and have >= n:
            break
        take = len(y) if n is None else min(len(y), n - have)
        xs.append(x[:take].float().cpu())
        ys.append(torch.as_tensor(y)[:take].long().cpu())
        have += take
    return torch.cat(xs), torch.cat(ys)


def attack_jobs(attacks: Sequence[str], pgd_steps: Sequence[int]) -> list[tuple[str, str, int]]:
    """(report key, attack, steps) for each attack; ``pgd`` once per step count."""
    jobs = []
    for attack in attacks:
        if attack not in ATTACKS:
            raise ValueError(f"attack must be one of {', '.join(ATTACKS)}; got {attack!r}")
        if attack == "pgd":
            jobs += [(f"pgd{steps}", "pgd", steps) for steps in pgd_steps]
        else:
            jobs.append((attack, attack, 20))
    return jobs


def adversarial_report(model: nn.Module, data: Iterable, attacks: Sequence[str], eps: float,
                       norm: str, n_classes: int, pgd_steps: Sequence[int] = (10, 20),
                       pgd_step_size: float | None = None, n_attack: int | None = None,
                       seed: int = 0, show_progress: bool = False,
                       batch_size: int = 250) -> dict[str, dict[str, Any]]:
    """One :func:`robust_accuracy` result per attack on the first ``n_attack`` samples,
    ``batch_size`` at a time."""
    x, y = first_samples(data, n_attack)
    jobs = attack_jobs(attacks, pgd_steps)
    bar = progress(1, desc="eval attacks", unit="sample-steps", enabled=show_progress)
    work = AttackWork([(key, attack_steps(attack, n_classes, steps)) for key, attack, steps
                       in jobs], len(x), bar)
    out = {}
    for key, attack, steps in jobs:
        result = robust_accuracy(model, (x, y), attack, eps, norm, steps=steps,
                                 step_size=pgd_step_size, seed=seed, batch_size=batch_size,
                                 progress=work.report if show_progress else None)
        out[key] = result.as_dict()
        work.finish()
    bar.close()
    return out


class AttackWork:
    """The attacks' progress in sample-steps (the time of one gradient step on one sample; each
    part's iterations weighted by their measured cost, a Square query 0.75, a FAB-T iteration
    3). Each attack plans its samples times its steps
    (:func:`robustrep.metrics.robust.attack_steps`); an AutoAttack component, once it starts,
    plans only the samples still robust, so the total shrinks as samples are fooled and the
    bar's estimate is the work left at the pace so far. (A count of attacks sat on one long
    step while its estimate grew: "ETA 4h07m" for a 6-minute AutoAttack.)"""

    def __init__(self, plans: list[tuple[str, dict[str, float]]], n: int, bar) -> None:
        self.plans, self.n, self.bar = dict(plans), n, bar
        self.todo = list(self.plans)  # attacks not finished; the first is running
        self.finished = 0.0  # the work of the finished attacks
        self._reset()
        self._show()

    def _reset(self) -> None:
        self.part: str | None = None  # the running AutoAttack component
        self.before = 0.0  # the running attack's work in its earlier components
        self.work = 0.0  # the running attack's work so far
        self.left: float | None = None  # its work left (None: no report yet, the whole plan)

    def _plan(self, key: str) -> float:
        return self.n * sum(self.plans[key].values())

    def report(self, state: dict[str, Any]) -> None:
        """:func:`robust_accuracy`'s callback, after each batch an AutoAttack component
        attacked and every few seconds inside one (``done`` fractional: the batch's share
        estimated from its model calls, so the bar moves inside a batch of many minutes)."""
        key, part = self.todo[0], state["attack"]
        if part != self.part:  # a component starts, on the samples still robust
            self.part, self.before = part, self.work
        steps = self.plans[key]
        later = list(steps)[list(steps).index(part) + 1:]
        done = min(float(state["done"]), state["total"])
        self.work = self.before + done * steps[part]
        self.left = ((state["total"] - done) * steps[part]
                     + state["robust"] * sum(steps[p] for p in later))
        # whole samples: a batch's share shows in the bar's count, not as 37.4 samples; the
        # component named only inside AutoAttack ("square=square 0/8" for a lone one)
        count = f"{math.floor(done)}/{state['total']}"
        self.bar.set_postfix({key: count if key.startswith(part) else f"{part} {count}",
                              "robust": f"{state['robust']}/{state['n']}"}, refresh=False)
        self._show()

    def finish(self) -> None:
        """The running attack is done: its work is what it reported (its plan for PGD/FGSM,
        which report nothing while they run)."""
        key = self.todo.pop(0)
        self.finished += self.work if self.part is not None else self._plan(key)
        self._reset()
        self._show()

    def _show(self) -> None:
        waiting = self.todo[1:] if self.left is not None else self.todo
        total = (self.finished + self.work + (self.left or 0.0)
                 + sum(self._plan(k) for k in waiting))
        self.bar.total = max(1, round(total))
        self.bar.update(round(self.finished + self.work) - self.bar.n)


SLOW_SECONDS = 120.0  # estimates above this are printed before the attacks start


def expected_attack_seconds(model: nn.Module, x: Tensor, device: torch.device,
                            jobs: list[tuple[str, str, int]], n_classes: int) -> float:
    """Upper estimate of the attacks' seconds: one timed gradient step per sample (forward and
    backward to the input, the weights frozen as the attacks freeze them), times the
    sample-steps each attack costs (:func:`robustrep.metrics.robust.attack_steps`, measured
    costs; every sample counted in every AutoAttack component, though fooled ones leave)."""
    batch = x[:min(len(x), 32)].to(device).requires_grad_(True)
    weights = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in weights:  # no weight gradients: the attacks compute none (and leave no .grad)
            p.requires_grad_(False)
        model(batch).sum().backward()  # warm-up (allocations, kernels)
        times = []
        for _ in range(5):  # the median: one timing on a busy machine was off by 60x either way
            start = time.perf_counter()
            model(batch).sum().backward()
            times.append(time.perf_counter() - start)
    finally:
        for p in weights:
            p.requires_grad_(True)
    per_sample = sorted(times)[2] / len(batch)
    steps = sum(sum(attack_steps(attack, n_classes, k).values()) for _, attack, k in jobs)
    return per_sample * steps * len(x)


def slow_attacks_note(jobs: list[tuple[str, str, int]], n: int, seconds: float,
                      device: torch.device) -> str:
    """The line printed before attacks that may take long, with only the options that would
    make these attacks faster (it said "--attacks pgd" to a run of PGD alone)."""
    attacks = {attack for _, attack, _ in jobs}
    pgd = [steps for _, attack, steps in jobs if attack == "pgd"]
    faster = []
    if attacks - {"pgd", "fgsm"}:  # AutoAttack or an APGD component: 100+ steps a sample
        faster.append("--attacks pgd")
    if sum(pgd) > 1:
        faster.append(f"fewer or shorter --pgd-steps (now {' '.join(map(str, pgd))})")
    if n > 1:
        faster.append(f"a smaller --n-attack (now {n})")
    return (f"classify eval: the attacks ({', '.join(k for k, _, _ in jobs)}) on {n} images "
            f"may take up to {duration(seconds)} on {device} (fewer samples stay robust in "
            f"practice)" + (f"; faster: {', '.join(faster)}" if faster else ""))
