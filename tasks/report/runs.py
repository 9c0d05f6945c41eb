"""The runs behind a report: planned, executed through the programs' own CLI, and read back.

Each run is one or more ``robustrep`` commands executed in a fresh Python process
(:mod:`robustrep.tasks.common.launch`). A run whose
result file already exists is read, not repeated, so an interrupted report restarts where it
stopped, and ``--collect`` reads folders written earlier by hand.

GAN runs train the ``digits-dcgan`` preset (FID/KID/precision/recall on digits-CNN features) and,
outside ``--quick``, the ``grid-mlp`` preset (modes covered on the 25-Gaussian grid). Classifier
runs train the ``digits-ood`` preset (digits 0-4), then ``classify eval`` scores clean accuracy,
ECE, PGD robust accuracy and corruptions, and ``ood score`` scores the OOD detectors on the same
run, so one classifier serves both tasks.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.launch import run_robustrep


@dataclass(frozen=True)
class Settings:
    """What one report trains; ``quick`` and ``full`` below are the two documented sizes."""

    gan_regs: tuple[str, ...]
    classify_regs: tuple[str, ...]
    seeds: tuple[int, ...]
    gan_steps: int
    grid_steps: int  # 0: no 2-D grid runs
    classify_steps: int
    classify_model: str = "test_resnet"
    detectors: str = "MaxSoftmax,EnergyBased,Mahalanobis,KNN"
    attack_samples: int = 200


# Sizes measured on a 2-core CPU with 2 jobs (README): --quick about 4 minutes; the default about
# 15 (estimated from the quick run's per-run costs: a digits GAN run of 400 steps takes 30-65 s
# with its evaluation, a classifier run with eval and OOD scoring about 30 s).
FULL = Settings(gan_regs=("none", "adaptivemix", "mixup", "dat", "asgan", "rpgan"),
                classify_regs=("none", "mixup", "cutmix", "adaptivemix", "pgd", "fgsm"),
                seeds=(0, 1, 2), gan_steps=400, grid_steps=1000, classify_steps=100)
QUICK = Settings(gan_regs=("none", "adaptivemix"), classify_regs=("none", "adaptivemix"),
                 seeds=(0, 1, 2), gan_steps=300, grid_steps=0, classify_steps=80,
                 attack_samples=100)


@dataclass
class Run:
    """One (task, regularizer, seed) and the commands that produce its result file."""

    task: str  # "gan", "grid" or "classify"
    reg: str
    seed: int
    folder: Path
    commands: list[list[str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(p.is_file() for p in result_files(self))


def result_files(run: Run) -> list[Path]:
    if run.task == "classify":
        return [run.folder / "eval" / "report.json", run.folder / "ood" / "results.json"]
    return [run.folder / "metrics.jsonl"]


def plan(settings: Settings, out: Path) -> list[Run]:
    runs = []
    for seed in settings.seeds:
        for reg in settings.gan_regs:
            runs.append(_gan_run("gan", "digits-dcgan", reg, seed, settings.gan_steps, out))
            if settings.grid_steps and reg not in ("cutmix", "srmix"):  # no image regions
                runs.append(_gan_run("grid", "grid-mlp", reg, seed, settings.grid_steps, out))
        for reg in settings.classify_regs:
            runs.append(_classify_run(settings, reg, seed, out))
    return runs


def _gan_run(task: str, preset: str, reg: str, seed: int, steps: int, out: Path) -> Run:
    folder = out / "runs" / task / f"{reg}-seed{seed}"
    cmd = ["gan", "train", "--preset", preset, "--reg", reg, "--seed", str(seed),
           "--steps", str(steps), "--eval-every", "0", "--ckpt-every", str(steps),
           "--log-every", str(max(1, steps // 10)), "--out", str(folder), "--quiet"]
    return Run(task, reg, seed, folder, [cmd])


def _classify_run(settings: Settings, reg: str, seed: int, out: Path) -> Run:
    folder = out / "runs" / "classify" / f"{reg}-seed{seed}"
    steps = settings.classify_steps
    train = ["classify", "train", "--preset", "digits-ood", "--model", settings.classify_model,
             "--reg", reg, "--seed", str(seed), "--steps", str(steps), "--eval-every", "0",
             "--ckpt-every", str(steps), "--log-every", str(max(1, steps // 10)),
             "--out", str(folder), "--quiet"]
    evaluate = ["classify", "eval", str(folder), "--attacks", "pgd",
                "--max-samples", str(settings.attack_samples), "--quiet"]
    score = ["ood", "score", str(folder), "--detectors", settings.detectors, "--quiet",
             "--no-plots"]
    return Run("classify", reg, seed, folder, [train, evaluate, score])


def execute(runs: list[Run], jobs: int, log: Path, progress=None) -> list[str]:
    """Run every command of the unfinished runs, ``jobs`` runs at a time; return the failures."""
    todo = [r for r in runs if not r.done]
    log.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def one(run: Run) -> None:
        for argv in run.commands:
            if run_robustrep(argv, log) != 0:
                failures.append(f"{run.task}/{run.reg}/seed{run.seed}: robustrep "
                                f"{' '.join(argv[:2])} failed (see {log})")
                break
        if progress is not None:
            progress.update(1)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))
    return failures


# ---------------------------------------------------------------------------------------------
# reading results back


def collect(runs: list[Run]) -> list[dict[str, Any]]:
    """One flat record per finished run: task, reg, seed and its metrics."""
    records = []
    for run in runs:
        if not run.done:
            continue
        read = _read_classify if run.task == "classify" else _read_gan
        records.append({"task": run.task, "reg": run.reg, "seed": run.seed, **read(run.folder)})
    return records


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_gan(folder: Path) -> dict[str, Any]:
    records = _jsonl(folder / "metrics.jsonl")
    final = next((r for r in reversed(records)
                  if "fid" in r or "modes_covered" in r), {})
    keys = ("fid", "kid", "precision", "recall", "modes_covered", "high_quality", "kl_uniform")
    out = {k: final[k] for k in keys if isinstance(final.get(k), (int, float))}
    out["step_seconds"] = _seconds_per_step(records, "train_s")
    return out


def _read_classify(folder: Path) -> dict[str, Any]:
    report = json.loads((folder / "eval" / "report.json").read_text())
    out = {k: v for k, v in report.get("summary", {}).items() if isinstance(v, (int, float))}
    ood = json.loads((folder / "ood" / "results.json").read_text())
    for row in ood.get("results", []):
        for metric, value in row.items():
            if isinstance(value, (int, float)) and metric not in ("detector", "ood"):
                key = f"ood/{row['detector']}/{metric}"
                out.setdefault(key, []).append(value)
    out = {k: (sum(v) / len(v) if isinstance(v, list) else v) for k, v in out.items()}
    records = _jsonl(folder / "metrics.jsonl") if (folder / "metrics.jsonl").is_file() else []
    out["step_seconds"] = _seconds_per_step(records, "time")
    return out


def _seconds_per_step(records: list[dict[str, Any]], clock: str) -> float | None:
    """Training seconds per step between the first and the last logged step."""
    timed = [r for r in records if isinstance(r.get(clock), (int, float)) and "step" in r]
    if len(timed) < 2 or timed[-1]["step"] <= timed[0]["step"]:
        return None
    return (timed[-1][clock] - timed[0][clock]) / (timed[-1]["step"] - timed[0]["step"])


def check_out(out: Path) -> None:
    """The report folder must be writable before any run starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"report folder {out} is not writable ({err.strerror}); "
                        f"choose another --out") from None
