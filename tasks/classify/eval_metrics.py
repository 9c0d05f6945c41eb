"""Every metric of a ``classify eval`` report, of a model on a loader (:func:`evaluate_model`):

- clean top-1 accuracy and NLL (:mod:`robustrep.metrics.classification`);
- expected calibration error with equal-width bins (Guo et al., ICML 2017) and the reliability
  data of its diagram;
- robust accuracy from :func:`robustrep.metrics.robust_accuracy`, on the first ``n_attack``
  samples: AutoAttack standard (Croce & Hein, ICML 2020, the official ``fra31/auto-attack`` code)
  by default, the number comparable with RobustBench; ``pgd`` (PGD-``steps`` for each of
  ``pgd_steps``), ``fgsm`` and one AutoAttack component alone (``apgd-ce``, ``apgd-t``, ``fab-t``,
  ``square``) as quicker checks. Linf or L2, in [0, 1] pixel space (the normalisation is inside
  the model); a sample is robust only when classified correctly both clean and attacked. The
  report names each attack's convention (the attacks are planned and timed in :mod:`.attacks`);
- accuracy, mCE and relative mCE under the on-the-fly corruptions of :mod:`robustrep.corruptions`
  (8 of CIFAR-10-C's 15, same formulas) and, with ``cifar_c_root``, under the released
  CIFAR-10-C / CIFAR-100-C files (all 15 corruptions x 5 severities,
  :mod:`robustrep.data.cifar_c`), the numbers comparable with published tables.

Randomness (attack starts, noise) comes from generators seeded with ``seed``: a report is
reproducible on the same device. The corruptions' noise is drawn per 64 images, the same for
any ``--batch-size``, and PGD's starts for the whole set at once; AutoAttack draws per attack
batch (``attack_batch`` in the report).
The model is evaluated in eval mode; attacks never change its weights or BatchNorm statistics.
Apart from the command (:mod:`.evaluate`), so a library caller measures any model and data.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._validate import logits_tensor
from robustrep.corruptions import CORRUPTIONS, SEVERITIES, corrupt, mean_corruption_error
from robustrep.data.cifar_c import CIFAR_C_CORRUPTIONS, cifar_c
from robustrep.metrics.classification import accuracy, expected_calibration_error, nll
from robustrep.tasks.common.progress import progress

from .attacks import (SLOW_SECONDS, adversarial_report, attack_jobs, expected_attack_seconds,
                      first_samples, slow_attacks_note)
from .cifar_c_checks import check_cifar_c_labels
from .config import DEFAULT_CORRUPTIONS, DEFAULT_N_ATTACK  # declared without torch (the CLI)

DEFAULT_EPS = {"Linf": 8 / 255, "L2": 0.5}  # RobustBench's CIFAR-10 radii


def _batches(data: Iterable, device: torch.device):
    for x, y in data:
        yield x.to(device).float(), torch.as_tensor(y).to(device).long()


@torch.no_grad()
def predict(model: nn.Module, data: Iterable, device: torch.device,
            transform=None) -> tuple[Tensor, Tensor]:
    """Logits and labels of ``model`` over ``data`` (optionally transformed), on the CPU."""
    logits, labels = [], []
    for x, y in _batches(data, device):
        if transform is not None:
            x = transform(x)
        logits.append(logits_tensor(model(x), "the metrics and attacks").float().cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


def calibration(logits: Tensor, labels: Tensor, bins: int = 15) -> dict[str, Any]:
    """Accuracy, NLL, ECE and per-bin reliability data from logits. An empty bin's mean
    confidence and accuracy are None (null in report.json; its count is 0): they were NaN,
    written as the string "nan"."""
    cal = expected_calibration_error(logits, labels, n_bins=bins)
    count = cal["bin_count"].tolist()
    return {
        "acc": float(accuracy(logits, labels)),
        "nll": float(nll(logits, labels)),
        "ece": float(cal["ece"]),
        "bins": {
            "edges": cal["bin_edges"].tolist(),
            "confidence": _filled(cal["bin_confidence"].tolist(), count),
            "accuracy": _filled(cal["bin_accuracy"].tolist(), count),
            "count": count,
        },
    }


def _filled(values: list[float], count: list[int]) -> list[float | None]:
    return [v if n > 0 else None for v, n in zip(values, count)]


# The corruptions draw their noise on consecutive blocks of this many images, whatever the
# batches of the data: drawn per batch, impulse noise's two draws interleaved by batch, and
# severity 5 on digits read 0.894 at --batch-size 64 and 0.916 at 256.
NOISE_BLOCK = 64


def corruption_accuracy(model: nn.Module, data: Iterable, device: torch.device, name: str,
                        severity: int, seed: int = 0, batch_size: int | None = None) -> float:
    """Top-1 accuracy on ``data`` corrupted by ``name`` at ``severity``: seeded, and the same
    for any batching of ``data`` (the noise is drawn per :data:`NOISE_BLOCK` images, on
    ``device``'s generator); the model sees ``batch_size`` images at a time (None: the
    block)."""
    offset = sorted(CORRUPTIONS).index(name) * 10 + severity
    gen = torch.Generator(device).manual_seed(seed * 1000 + offset)
    corrupted = ((corrupt(x, name, severity, gen), y)
                 for x, y in _blocks(_batches(data, device), NOISE_BLOCK))
    logits, labels = predict(model, _blocks(corrupted, batch_size or NOISE_BLOCK), device)
    return float(accuracy(logits, labels))


def _blocks(batches: Iterable, size: int):
    """The samples of ``(x, y)`` ``batches`` re-cut into consecutive blocks of ``size`` (the
    last one shorter), in order."""
    xs, ys, have = [], [], 0
    for x, y in batches:
        xs.append(x)
        ys.append(y)
        have += len(y)
        if have < size:
            continue
        x_all, y_all = torch.cat(xs), torch.cat(ys)
        cut = have - have % size
        for i in range(0, cut, size):
            yield x_all[i:i + size], y_all[i:i + size]
        xs, ys, have = [x_all[cut:]], [y_all[cut:]], have - cut
    if have:
        yield torch.cat(xs), torch.cat(ys)


def cifar_c_accuracy(model: nn.Module, root: str | Path, device: torch.device,
                     corruptions: Sequence[str] = CIFAR_C_CORRUPTIONS,
                     severities: Sequence[int] = SEVERITIES, batch_size: int = 256,
                     max_samples: int | None = None, bar=None) -> dict[str, dict[str, float]]:
    """Accuracy on the released CIFAR-C files per corruption and severity."""
    table: dict[str, dict[str, float]] = {}
    for name in corruptions:
        table[name] = {}
        for s in severities:
            x, y = cifar_c(root, name, s)
            x, y = x[:max_samples], y[:max_samples]
            logits, labels = predict(model, zip(x.split(batch_size), y.split(batch_size)), device)
            table[name][str(s)] = float(accuracy(logits, labels))
            if bar is not None:
                bar.update(1)
    return table


def evaluate_model(model: nn.Module, data: Sequence | Iterable, device: str | torch.device = "cpu",
                   eps: float | None = None, attacks: Sequence[str] = ("autoattack",),
                   norm: str = "Linf", pgd_steps: Sequence[int] = (10, 20),
                   pgd_step_size: float | None = None, n_attack: int | None = DEFAULT_N_ATTACK,
                   corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
                   severities: Sequence[int] = SEVERITIES, cifar_c_root: str | Path | None = None,
                   bins: int = 15, seed: int = 0, progress_bar: bool = False,
                   attack_batch: int = 250) -> dict[str, Any]:
    """Every metric of the report for ``model`` (images in [0, 1] -> logits) on ``data``;
    the attacks and the corrupted images' forwards run ``attack_batch`` images at a time
    (``--batch-size``; recorded as ``attack_batch`` with the attacks, as AutoAttack's random
    draws follow it; PGD's starts do not).

    ``data`` is a re-iterable of ``(images, labels)`` batches (a list or a DataLoader). ``eps``
    defaults to 8/255 (Linf) or 0.5 (L2); attacks run on the first ``n_attack`` samples (None:
    all). ``cifar_c_root`` adds the released CIFAR-C files (the model must take 32x32 RGB).
    """
    device = torch.device(device)
    norm = "Linf" if str(norm).lower() == "linf" else "L2" if str(norm).lower() == "l2" else norm
    eps = DEFAULT_EPS.get(norm, 8 / 255) if eps is None else eps
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    jobs = attack_jobs(attacks, pgd_steps)
    if progress_bar:  # the clean pass and the attacks had run seconds to minutes unannounced
        print(f"classify eval: {_plan_line(jobs, n_attack, corruptions, severities, cifar_c_root)}",
              file=sys.stderr, flush=True)
    was_training = model.training
    model.eval()
    try:
        logits, labels = predict(model, data, device)
        # no attack, no radius: a recorded eps would read as a threat model that was evaluated
        report: dict[str, Any] = {"n": int(labels.numel()), "eps": eps if jobs else None,
                                  "norm": norm if jobs else None,
                                  "clean": calibration(logits, labels, bins)}
        n_classes = int(logits.shape[1])
        if cifar_c_root is not None:  # before the attacks, which may take hours
            check_cifar_c_labels(cifar_c_root, labels)
        if progress_bar and jobs:
            _note_slow_attacks(model, data, device, jobs, n_attack, n_classes)
        robust = adversarial_report(model, data, attacks, eps, norm, n_classes, pgd_steps,
                                    pgd_step_size, n_attack, seed, progress_bar, attack_batch)
        report.update(_robust_section(robust))
        if robust:  # AutoAttack's random draws follow the batches
            report["attack_batch"] = attack_batch
        # the corruptions' bar starts after the attacks (its pace is one pass over the data per
        # step); the clean pass is its first step, done
        n_c = len(CIFAR_C_CORRUPTIONS) * len(severities) if cifar_c_root is not None else 0
        with progress(1 + len(corruptions) * len(severities) + n_c, initial=1, desc="eval",
                      enabled=progress_bar) as bar:
            report.update(_corruption_section(model, data, device, corruptions, severities,
                                              seed, report["clean"]["acc"], bar,
                                              attack_batch))
            if cifar_c_root is not None:
                report["cifar_c"] = _cifar_c_section(model, cifar_c_root, device, report,
                                                     severities, bar)
    finally:
        model.train(was_training)
    report["summary"] = _summary(report)
    return report


def _plan_line(jobs, n_attack: int | None, corruptions: Sequence[str],
               severities: Sequence[int], cifar_c_root: str | Path | None) -> str:
    """What the evaluation does, in order: ``the clean pass, then pgd10, pgd20 on the first 1000
    images, then 8 corruptions x 5 severities``."""
    parts = ["the clean pass"]
    if jobs:
        on = f"the first {n_attack} images (all, if fewer)" if n_attack is not None \
            else "every image"
        parts.append(f"{', '.join(key for key, _, _ in jobs)} on {on}")
    if corruptions and severities:
        parts.append(f"{len(corruptions)} corruption{'s' * (len(corruptions) > 1)} x "
                     f"{len(severities)} severit{'ies' if len(severities) > 1 else 'y'}")
    if cifar_c_root is not None:
        parts.append(f"the CIFAR-C files in {cifar_c_root}")
    return ", then ".join(parts)


def _note_slow_attacks(model: nn.Module, data, device: torch.device, jobs, n_attack: int | None,
                       n_classes: int) -> None:
    """Say before the attacks start when they will take long, and how to make them shorter."""
    x_attack, _ = first_samples(data, n_attack)
    seconds = expected_attack_seconds(model, x_attack, device, jobs, n_classes)
    if seconds > SLOW_SECONDS:
        print(slow_attacks_note(jobs, len(x_attack), seconds, device), file=sys.stderr,
              flush=True)


def _robust_section(robust: dict[str, dict]) -> dict[str, Any]:
    return {"robust": robust,
            "adversarial": {k: v["robust_acc"] for k, v in robust.items()},
            "n_attack": next(iter(robust.values()))["n"] if robust else 0,
            "robust_convention": {k: v["convention"] for k, v in robust.items()}}


def _corruption_section(model: nn.Module, data, device: torch.device, corruptions, severities,
                        seed: int, clean_acc: float, bar,
                        batch_size: int | None = None) -> dict[str, Any]:
    """Accuracy under each on-the-fly corruption and severity, and their mCE when there are any."""
    corr: dict[str, dict[str, float]] = {}
    for name in corruptions:
        corr[name] = {}
        for s in severities:
            corr[name][str(s)] = corruption_accuracy(model, data, device, name, s, seed,
                                                     batch_size)
            bar.update(1)
    section: dict[str, Any] = {"corruptions": corr}
    if corr and severities:
        section["corruption_summary"] = {
            **mean_corruption_error(corr, clean_acc),
            "convention": f"on the fly (robustrep.corruptions, make_cifar_c.py formulas), "
                          f"{_which_corruptions(corr)}, severities "
                          f"{','.join(map(str, severities))}; unnormalised mCE over them all"}
    return section


def _cifar_c_section(model: nn.Module, root: str | Path, device: torch.device,
                     report: dict[str, Any], severities: Sequence[int], bar) -> dict[str, Any]:
    # the first n rows of each file are the corrupted first n test images: the clean set's;
    # --severities as for the corruptions on the fly (it was ignored here: all 5 were scored)
    n = report["n"]
    table = cifar_c_accuracy(model, root, device, severities=severities, max_samples=n, bar=bar)
    which = ("5 severities" if tuple(severities) == tuple(SEVERITIES) else
             f"severities {','.join(map(str, severities))}")
    return {"root": str(root), "n": n, "accuracy": table,
            **mean_corruption_error(table, report["clean"]["acc"]),
            "convention": f"released CIFAR-C files, 15 corruptions x {which}, the first {n} "
                          f"images of each (those of the clean accuracy); unnormalised mCE (the "
                          f"CIFAR practice); relative mCE against this report's clean error"}


def _which_corruptions(corr: dict[str, Any]) -> str:
    """How many of the chosen corruptions are CIFAR-10-C's 15, and which are not."""
    extra = [c for c in corr if c not in CIFAR_C_CORRUPTIONS]
    return (f"{len(corr) - len(extra)} of the 15 CIFAR-10-C corruptions"
            + (f" and {len(extra)} extra ({', '.join(extra)})" if extra else ""))


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    clean = report["clean"]
    summary: dict[str, Any] = {"clean_acc": clean["acc"], "nll": clean["nll"], "ece": clean["ece"]}
    for key, value in report["adversarial"].items():
        summary[f"{key.replace('-', '_')}_acc"] = value
    if report["adversarial"]:  # the worst case over the attacks run (RobustBench's reading)
        headline = min(report["adversarial"], key=report["adversarial"].get)
        summary["robust_acc"] = report["adversarial"][headline]
        summary["robust_attack"] = headline
    cs = report.get("corruption_summary")
    summary["corruption_acc"] = cs["mean_acc"] if cs else None  # none evaluated
    if cs:
        summary["mce"], summary["relative_mce"] = cs["mce"], cs["relative_mce"]
    if "cifar_c" in report:
        for key in ("mce", "relative_mce", "mean_acc"):
            summary[f"cifar_c_{key}"] = report["cifar_c"][key]
    return summary
