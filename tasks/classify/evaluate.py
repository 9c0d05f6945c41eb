"""``robustrep classify eval RUN``: clean, calibration, adversarial and corruption metrics.

For the evaluation split of a run (or any model and dataset, through :func:`evaluate_model`):

- clean top-1 accuracy and NLL (:mod:`robustrep.metrics.classification`);
- expected calibration error with equal-width bins (Guo et al., ICML 2017) and a reliability
  diagram;
- robust accuracy under Linf PGD (Madry et al., ICLR 2018; random start, ``steps`` steps of
  ``2.5 * eps / steps`` by default) and FGSM (Goodfellow et al., ICLR 2015) from
  :mod:`robustrep.adversarial`, in [0, 1] pixel space (the normalisation is inside the model).
  As RobustBench counts it, a sample is robust when it is classified correctly both clean and
  attacked, so robust accuracy never exceeds clean accuracy;
- accuracy under the in-house corruptions of :mod:`.corruptions` at each severity.

Randomness (PGD starts, noise) comes from generators seeded with ``seed``: a report is
reproducible. The model is evaluated in eval mode; attacks never change its weights or BatchNorm
statistics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep.adversarial import fgsm, pgd
from robustrep.metrics.classification import accuracy, expected_calibration_error, nll
from robustrep.tasks.common import distributed as dist
from robustrep.tasks.common.plots import bar_table, reliability_diagram
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.rundir import _jsonable

from .corruptions import CORRUPTIONS, SEVERITIES, corrupt

DEFAULT_EPS = 8 / 255


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
        logits.append(model(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


def calibration(logits: Tensor, labels: Tensor, bins: int = 15) -> dict[str, Any]:
    """Accuracy, NLL, ECE and per-bin reliability data from logits."""
    cal = expected_calibration_error(logits, labels, n_bins=bins)
    return {
        "acc": float(accuracy(logits, labels)),
        "nll": float(nll(logits, labels)),
        "ece": float(cal["ece"]),
        "bins": {
            "edges": cal["bin_edges"].tolist(),
            "confidence": cal["bin_confidence"].tolist(),
            "accuracy": cal["bin_accuracy"].tolist(),
            "count": cal["bin_count"].tolist(),
        },
    }


def _loss_fn(model: nn.Module, y: Tensor):
    def loss_fn(x: Tensor) -> Tensor:
        return F.cross_entropy(model(x).float(), y, reduction="none")
    return loss_fn


def robust_accuracy(model: nn.Module, data: Iterable, device: torch.device, attack: str,
                    eps: float = DEFAULT_EPS, steps: int = 10, step_size: float | None = None,
                    seed: int = 0) -> float:
    """Share of samples classified correctly both clean and under ``attack`` ("pgd"/"fgsm")."""
    gen = torch.Generator(device).manual_seed(seed)
    robust = total = 0
    for x, y in _batches(data, device):
        if attack == "pgd":
            x_adv = pgd(_loss_fn(model, y), x, eps, step_size=step_size, steps=steps,
                        random_start=True, generator=gen, model=model)
        elif attack == "fgsm":
            x_adv = fgsm(_loss_fn(model, y), x, eps, model=model)
        else:
            raise ValueError(f"attack must be 'pgd' or 'fgsm'; got {attack!r}")
        with torch.no_grad():
            ok = (model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)
        robust += int(ok.sum())
        total += y.numel()
    return robust / max(total, 1)


def corruption_accuracy(model: nn.Module, data: Iterable, device: torch.device, name: str,
                        severity: int, seed: int = 0) -> float:
    """Top-1 accuracy on ``data`` corrupted by ``name`` at ``severity`` (seeded, reproducible)."""
    offset = sorted(CORRUPTIONS).index(name) * 10 + severity
    gen = torch.Generator(device).manual_seed(seed * 1000 + offset)
    logits, labels = predict(model, data, device, lambda x: corrupt(x, name, severity, gen))
    return float(accuracy(logits, labels))


def evaluate_model(model: nn.Module, data: Sequence | Iterable, device: str | torch.device = "cpu",
                   eps: float = DEFAULT_EPS, pgd_steps: Sequence[int] = (10, 20),
                   pgd_step_size: float | None = None, fgsm_attack: bool = True,
                   corruptions: Sequence[str] = tuple(CORRUPTIONS),
                   severities: Sequence[int] = SEVERITIES, bins: int = 15, seed: int = 0,
                   progress_bar: bool = False) -> dict[str, Any]:
    """Every metric of the report for ``model`` (images in [0, 1] -> logits) on ``data``.

    ``data`` is a re-iterable of ``(images, labels)`` batches (a list or a DataLoader).
    """
    device = torch.device(device)
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    was_training = model.training
    model.eval()
    jobs = 1 + len(pgd_steps) + int(fgsm_attack) + len(corruptions) * len(severities)
    bar = progress(jobs, desc="eval", enabled=progress_bar)
    logits, labels = predict(model, data, device)
    report: dict[str, Any] = {"n": int(labels.numel()), "eps": eps,
                              "clean": calibration(logits, labels, bins)}
    bar.update(1)
    adv: dict[str, float] = {}
    for steps in pgd_steps:
        adv[f"pgd{steps}"] = robust_accuracy(model, data, device, "pgd", eps, steps,
                                             pgd_step_size, seed)
        bar.update(1)
    if fgsm_attack:
        adv["fgsm"] = robust_accuracy(model, data, device, "fgsm", eps, seed=seed)
        bar.update(1)
    report["adversarial"] = adv
    corr: dict[str, dict[str, float]] = {}
    for name in corruptions:
        corr[name] = {}
        for s in severities:
            corr[name][str(s)] = corruption_accuracy(model, data, device, name, s, seed)
            bar.update(1)
    bar.close()
    report["corruptions"] = corr
    values = [v for per in corr.values() for v in per.values()]
    report["summary"] = {
        "clean_acc": report["clean"]["acc"], "nll": report["clean"]["nll"],
        "ece": report["clean"]["ece"], **{f"{k}_acc": v for k, v in adv.items()},
        "corruption_acc": sum(values) / len(values) if values else math.nan,
    }
    model.train(was_training)
    return report


def evaluate_run(run: str | Path, eps: float = DEFAULT_EPS, pgd_steps: Sequence[int] = (10, 20),
                 pgd_step_size: float | None = None, fgsm: bool = True,
                 corruptions: Sequence[str] = tuple(CORRUPTIONS),
                 severities: Sequence[int] = SEVERITIES, bins: int = 15,
                 max_samples: int | None = None, batch_size: int = 256, seed: int = 0,
                 use_ema: bool = True, device: str = "auto", data_root: str | None = None,
                 out: str | Path | None = None, progress_bar: bool = False) -> dict[str, Any]:
    """Evaluate the classifier of a run folder on its evaluation split; write report + plots."""
    from .config import ClassifyConfig
    from .data import build_datasets, eval_loader
    from robustrep.tasks.common.classifier import load_run

    from robustrep.tasks.common.rundir import check_writable
    check_writable(Path(out) if out is not None else Path(run) / "eval", "--out")  # before work
    dev = dist.resolve_device(device)
    model, config = load_run(run, dev, use_ema=use_ema)
    fields = {k: v for k, v in config.items() if k in ClassifyConfig.__dataclass_fields__}
    if data_root is not None:
        fields["data_root"] = data_root
    cfg = ClassifyConfig(**fields)
    _, eval_set, info = build_datasets(cfg)
    data = eval_loader(eval_set, batch_size, max_samples=max_samples)
    report = evaluate_model(model, data, dev, eps, pgd_steps, pgd_step_size, fgsm, corruptions,
                            severities, bins, seed, progress_bar)
    report.update(run=str(run), model=config["model"], weights=config["weights"],
                  dataset=config["dataset"], split=info.eval_split, reg=config.get("reg"),
                  seed=seed)
    out = Path(out) if out is not None else Path(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    b = report["clean"]["bins"]
    files = {"report": str(out / "report.json"),
             "reliability": str(reliability_diagram(
                 b["confidence"], b["accuracy"], b["count"], out / "reliability.png",
                 report["clean"]["ece"], title=config["model"]))}
    if report["corruptions"]:
        rows = {name: {f"s{s}": (v, 0.0) for s, v in per.items()}
                for name, per in report["corruptions"].items()}
        files["corruptions"] = str(bar_table(rows, out / "corruptions.png",
                                             title="accuracy under corruptions"))
    report["files"] = files
    Path(files["report"]).write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    return report


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the summary and the per-severity corruption accuracies."""
    s = report["summary"]
    eps = report.get("eps", DEFAULT_EPS)
    lines = [f"{'metric':<28} value", f"{'-' * 28} {'-' * 8}",
             f"{'clean top-1':<28} {s['clean_acc']:.4f}",
             f"{'NLL':<28} {s['nll']:.4f}",
             f"{'ECE':<28} {s['ece']:.4f}"]
    for key, value in report.get("adversarial", {}).items():
        name = key.replace("pgd", "PGD-") if key.startswith("pgd") else key.upper()
        lines.append(f"{f'{name} (eps {eps * 255:.3g}/255)':<28} {value:.4f}")
    for name, per in report.get("corruptions", {}).items():
        cells = " ".join(f"s{k}={v:.3f}" for k, v in per.items())
        lines.append(f"{name:<28} {cells}")
    if report.get("corruptions"):
        lines.append(f"{'corruption mean':<28} {s['corruption_acc']:.4f}")
    return "\n".join(lines)
