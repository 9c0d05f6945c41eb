"""``robustrep classify eval RUN``: clean, calibration, adversarial and corruption metrics.

For the evaluation split of a run (or any model and dataset, through :func:`evaluate_model`):

- clean top-1 accuracy and NLL (:mod:`robustrep.metrics.classification`);
- expected calibration error with equal-width bins (Guo et al., ICML 2017) and a reliability
  diagram;
- robust accuracy from :func:`robustrep.metrics.robust_accuracy`, on the first ``n_attack``
  samples: AutoAttack standard (Croce & Hein, ICML 2020, the official ``fra31/auto-attack`` code)
  by default, the number comparable with RobustBench; ``pgd`` (PGD-``steps`` for each of
  ``pgd_steps``), ``fgsm``, ``apgd-ce`` and ``apgd-t`` as quicker checks. Linf or L2, in [0, 1]
  pixel space (the normalisation is inside the model); a sample is robust only when classified
  correctly both clean and attacked. The report names each attack's convention;
- accuracy, mCE and relative mCE under the on-the-fly corruptions of :mod:`robustrep.corruptions`
  (8 of CIFAR-10-C's 15, same formulas) and, with ``cifar_c=ROOT``, under the released
  CIFAR-10-C / CIFAR-100-C files (all 15 corruptions x 5 severities,
  :mod:`robustrep.data.cifar_c`), the numbers comparable with published tables.

Randomness (attack starts, noise) comes from generators seeded with ``seed``: a report is
reproducible on the same device. The corruptions' noise is drawn per 64 images, the same for
any ``--batch-size``, and PGD's starts for the whole set at once; AutoAttack draws per attack
batch (``attack_batch`` in the report).
The model is evaluated in eval mode; attacks never change its weights or BatchNorm statistics.

A report names the run it evaluated (``run``, its resolved path; null for a model from
elsewhere), and ``--out`` never replaces another run's report (:func:`_check_same_run`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._validate import logits_tensor
from robustrep.corruptions import CORRUPTIONS, SEVERITIES, corrupt, mean_corruption_error
from robustrep.data.cifar_c import CIFAR_C_CORRUPTIONS, cifar_c, cifar_c_files
from robustrep.metrics.classification import accuracy, expected_calibration_error, nll
from robustrep.metrics.robust import eps_text
from robustrep.tasks.common import runtime
from robustrep.tasks.common.errors import DataError, UserError
from robustrep.tasks.common.plots import bar_table, reliability_diagram
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.rundir import jsonable
from robustrep.tasks.common.eval_records import check_same_run
from robustrep.tasks.common.runfiles import write_text_atomic

from .attacks import (SLOW_SECONDS, adversarial_report, attack_jobs, expected_attack_seconds,
                      first_samples, slow_attacks_note)
from .config import DEFAULT_CORRUPTIONS, DEFAULT_N_ATTACK  # declared without torch (the CLI)

DEFAULT_EPS = {"Linf": 8 / 255, "L2": 0.5}  # RobustBench's CIFAR-10 radii
CIFAR_C_DATASETS = ("cifar10", "cifar100")


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
        n_c = len(CIFAR_C_CORRUPTIONS) * len(SEVERITIES) if cifar_c_root is not None else 0
        with progress(1 + len(corruptions) * len(severities) + n_c, initial=1, desc="eval",
                      enabled=progress_bar) as bar:
            report.update(_corruption_section(model, data, device, corruptions, severities,
                                              seed, report["clean"]["acc"], bar,
                                              attack_batch))
            if cifar_c_root is not None:
                report["cifar_c"] = _cifar_c_section(model, cifar_c_root, device, report, bar)
    finally:
        model.train(was_training)
    report["summary"] = _summary(report)
    return report


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
                     report: dict[str, Any], bar) -> dict[str, Any]:
    # the first n rows of each file are the corrupted first n test images: the clean set's
    n = report["n"]
    table = cifar_c_accuracy(model, root, device, max_samples=n, bar=bar)
    return {"root": str(root), "n": n, "accuracy": table,
            **mean_corruption_error(table, report["clean"]["acc"]),
            "convention": f"released CIFAR-C files, 15 corruptions x 5 severities, the first {n} "
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


def evaluate_run(run: str | Path | None, eps: float | None = None,
                 attacks: Sequence[str] = ("autoattack",),
                 norm: str = "Linf", pgd_steps: Sequence[int] = (10, 20),
                 pgd_step_size: float | None = None, n_attack: int | None = DEFAULT_N_ATTACK,
                 corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
                 severities: Sequence[int] = SEVERITIES, cifar_c_root: str | None = None,
                 bins: int = 15, max_samples: int | None = None, batch_size: int = 256,
                 seed: int = 0, use_ema: bool = True, device: str = "auto",
                 data_root: str | None = None, out: str | Path | None = None,
                 progress_bar: bool = False,
                 foreign: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the classifier of a run folder on its evaluation split; write report + plots.

    ``foreign`` (``run`` None): a model no run made, as :func:`robustrep.tasks.common.weights.
    model_options` describes it (``load_model`` keywords plus ``dataset``/``classes``), or a
    RobustBench model (``robustbench`` key); the report goes to a new folder.
    """
    from .data import eval_loader
    out, claim = _check_outputs(run, foreign, out, eps, norm, data_root)  # before any work
    dev = runtime.resolve_device(device)
    model, config = _load(run, foreign, dev, use_ema)
    eval_set, info = _eval_set(run, foreign, config, cifar_c_root, data_root, eps, norm)
    data = eval_loader(eval_set, batch_size, max_samples=max_samples)
    try:
        report = evaluate_model(model, data, dev, eps, attacks, norm, pgd_steps, pgd_step_size,
                                n_attack, corruptions, severities, cifar_c_root, bins, seed,
                                progress_bar, attack_batch=batch_size)
    except (RuntimeError, MemoryError) as err:
        raise _out_of_memory(err, dev, batch_size) from None
    # resolved: a relative RUN named another run from another working folder (check_same_run)
    report.update(run=None if run is None else str(Path(run).resolve()), model=config["model"],
                  weights=config["weights"], step=config.get("step"), steps=config.get("steps"),
                  dataset=config["dataset"], split=info.eval_split, reg=config.get("reg"),
                  seed=seed,
                  input_convention=_input_convention(model, config.get("norm_source")))
    out = Path(out) if out is not None else Path(run) / "eval"
    _write_checked(report, out, run, foreign, claim)
    return report


def _check_outputs(run: str | Path | None, foreign: dict[str, Any] | None,
                   out: str | Path | None, eps: float | None, norm: str,
                   data_root: str | None) -> tuple[str | Path | None, bool]:
    """The options checked before the model loads, and the folder the report goes to
    (``--out``, RUN/eval, or for a model no run made a new ``runs/eval/<model>-<time>``, made
    only at the end: the returned flag)."""
    from .config import check_linf_eps

    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.common.runlock import check_not_training
    check_linf_eps(eps, norm)  # --eps 8 meant as 8/255
    _check_data_root(run, foreign, data_root)
    claim = foreign is not None and out is None
    if foreign is not None:
        out = _new_out(out, foreign["name"])
    check_writable(Path(out) if out is not None else Path(run) / "eval", "--out")
    if out is not None:
        check_not_training(out)  # RUN/eval is no run's folder
    # an earlier report there may be replaced, never a user's files (RUN/eval by default too)
    check_replaceable((Path(out) if out is not None else Path(run) / "eval") / "report.json",
                      ("clean", "summary"), "classify eval",
                      "--out" if out is not None else "the run's report folder",
                      companions=("reliability.png", "corruptions.png"))
    if out is not None and not claim:  # nor another run's report (RUN/eval is RUN's own)
        _check_same_run(Path(out) / "report.json", run, foreign)
    return out, claim


def _eval_set(run: str | Path | None, foreign: dict[str, Any] | None, config: dict[str, Any],
              cifar_c_root: str | None, data_root: str | None, eps: float | None,
              norm: str) -> tuple[Any, Any]:
    """``(dataset, data info)`` the model is scored on: a run's held-out share, a model from
    elsewhere the whole folder; checked to fit the model (one line) before the long work, and
    the notes on what was assumed said."""
    from .config import ClassifyConfig, saved_config
    from .data import build_datasets

    from robustrep.metrics.robust import check_l2_radius

    from robustrep.tasks.common.config import from_dict
    from robustrep.tasks.common.foreign_model import default_norm_note
    from robustrep.tasks.common.rundir import check_run_program
    if cifar_c_root is not None:
        _check_cifar_c(config, cifar_c_root)
    fields = {k: v for k, v in saved_config(config).items()
              if k in ClassifyConfig.__dataclass_fields__}
    if data_root is not None:
        fields["data_root"] = data_root
    source = "the --model options" if run is None else str(Path(run) / "config.json")
    if run is not None:  # a --plugin method named as resume names it, not as a bad --reg
        check_run_program(fields, ClassifyConfig, run, "classify")
    cfg = from_dict(ClassifyConfig, fields, source=source)  # a bad saved value names the file
    _, eval_set, info = build_datasets(cfg, _head_source(foreign), evaluating=True,
                                       whole_folder=foreign is not None)
    if eps is not None:  # an L2 radius wider than the images, before the clean pass
        check_l2_radius(eps, norm, eval_set[0][0].shape)
    notes = [wide_head_note(foreign, config, info),
             foreign and default_norm_note(foreign, config, "classify eval")]  # timm's, unsaid
    for note in filter(None, notes):
        print(f"note: {note}", file=sys.stderr)
    return eval_set, info


def _write_checked(report: dict[str, Any], out: Path, run: str | Path | None,
                   foreign: dict[str, Any] | None, claim: bool) -> None:
    """Write ``report`` and its diagrams into ``out`` under the folder's lock, checked again
    there (another call may have written meanwhile), and say what it replaced."""
    from robustrep.tasks.common.runlock import output_lock
    if claim:  # another call started in the same second may have made it: one folder each
        from robustrep.tasks.common.output_paths import claim_new_folder
        out = claim_new_folder(out)
    with output_lock(out):  # another eval into it waits; a killed one's temp files are removed
        _check_same_run(out / "report.json", run, foreign)  # written there meanwhile
        earlier = _earlier_report(out / "report.json")  # before any file there is replaced
        note = replaced_note(out / "report.json", report, earlier)
        report["files"] = _write_report(report, out, report["model"])
        _remove_stale_diagrams(out, earlier, report["files"])
    if note:
        print(f"note: {note}", file=sys.stderr)


def _check_data_root(run: str | Path | None, foreign: dict[str, Any] | None,
                     data_root: str | None) -> None:
    """``--data-root`` for data read from no folder (the built-in digits), refused before the
    model loads, as ``classify train`` refuses it (and ``ood score``, with the same line). It
    was refused only after the model had loaded (``--pretrained`` weights fetched first), and a
    run's user was told to set ``--dataset``, which ``classify eval RUN`` refuses."""
    from robustrep.tasks.common.dataroot import check_data_root
    from robustrep.tasks.common.options import MODEL_DATASETS
    check_data_root(data_root, run, foreign["dataset"] if foreign is not None else None,
                    model_choices=MODEL_DATASETS)  # --model takes no lsun, zip


def _out_of_memory(err: BaseException, device: torch.device, batch_size: int) -> BaseException:
    """A UserError naming ``--batch-size`` for a failed allocation (an attack's batch holds its
    gradients too, so AutoAttack can fail where the clean pass fitted: it was torch's
    traceback); any other error as it was."""
    from robustrep.tasks.common.errors import is_allocation_failure
    if not is_allocation_failure(err):
        return err
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(f"out of memory on {device} with {batch_size} images at a time ({first}); "
                     f"give a smaller --batch-size (now {batch_size})")


def wide_head_note(foreign: dict[str, Any] | None, config: dict[str, Any], info) -> str | None:
    """A model from elsewhere with more outputs than the whole dataset has classes: its answers
    past them are never right (an ImageNet head on CIFAR-10 scores ~0 without a word). Not
    with ``--classes``, where a head of every class scored on a subset is the point."""
    if foreign is None or foreign.get("classes") is not None or info.data_classes is None:
        return None
    outputs, classes = int(config["num_classes"]), info.data_classes
    if outputs <= classes:
        return None
    return (f"the model has {outputs} outputs and {config['dataset']} {classes} classes: its "
            f"answers {classes}..{outputs - 1} count as wrong (weights of a head for other "
            f"data?)")


def _head_source(foreign: dict[str, Any] | None) -> str | None:
    """Where a model from elsewhere has its outputs from (None: a run's, which its config
    names), for the line refusing a head too small for the data."""
    if foreign is None:
        return None
    given = foreign.get("num_classes")
    return f"--num-classes {given}" if given is not None else "its head, from the weights"


def _write_report(report: dict[str, Any], out: Path, model: str) -> dict[str, str]:
    """``report.json`` and its diagrams in ``out``; the files, by name. The report first: a
    diagram without it is taken for a user's file (check_replaceable), and a stop between the
    writes left RUN/eval refused to the next ``classify eval RUN``."""
    b = report["clean"]["bins"]
    files = {"report": str(out / "report.json"), "reliability": str(out / "reliability.png")}
    if report["corruptions"]:
        files["corruptions"] = str(out / "corruptions.png")
    write_text_atomic(files["report"], json.dumps(jsonable({**report, "files": files}),
                                                  indent=2) + "\n")
    reliability_diagram(b["confidence"], b["accuracy"], b["count"], files["reliability"],
                        report["clean"]["ece"], title=model)
    if report["corruptions"]:
        rows = {name: {f"s{s}": (v, 0.0) for s, v in per.items()}
                for name, per in report["corruptions"].items()}
        bar_table(rows, files["corruptions"], title="accuracy under corruptions")
    return files


def _input_convention(model: Any, norm_source: dict[str, str] | None = None) -> dict[str, Any]:
    """What the numbers were measured on: images in [0, 1] (the attacks' eps and the
    corruptions act there), then the model's own normalisation, and where each of its mean and
    std came from (``norm_source`` of load_run/load_model; none for RobustBench's)."""
    stats = {k: [round(float(v), 6) for v in getattr(model, k).flatten()] for k in ("mean", "std")
             if isinstance(getattr(model, k, None), torch.Tensor)}
    if norm_source:
        stats["norm_source"] = norm_source
    return {"range": [0.0, 1.0], **stats,
            "text": "inputs in [0, 1], where eps and the corruptions act; the model "
                    "normalises them with its (x - mean) / std"}


def _numbers(values: Sequence[float]) -> str:
    return " ".join(f"{v:g}" for v in values)


def _measured(report: dict[str, Any]) -> str:
    summary = report.get("summary")
    accs = sorted(k for k, v in (summary if isinstance(summary, dict) else {}).items()
                  if k.endswith("_acc") and k not in ("clean_acc", "robust_acc")
                  and isinstance(v, (int, float)) and math.isfinite(v))  # robust_acc: a repeat
    if not accs:
        return f"clean accuracy only on {report.get('n')} samples"
    n, n_attack = report.get("n"), report.get("n_attack", report.get("n"))
    attacked = {f"{a}_acc" for a in (report.get("robust") or {})}  # on the first n_attack
    groups = ([(accs, n)] if n_attack == n else
              [([a for a in accs if a in attacked], n_attack),
               ([a for a in accs if a not in attacked], n)])
    return ", ".join(f"{', '.join(names)} on {k} samples" for names, k in groups if names)


# What a report evaluated: an earlier report of another model, checkpoint or data replaced in
# the same folder is said, with what differs (as ood score says of the rows it replaces).
_SUBJECT = ("run", "model", "weights", "step", "dataset", "split")


def _earlier_report(path: Path) -> dict[str, Any] | None:
    """The report an earlier ``classify eval`` wrote at ``path`` (check_replaceable has made
    sure one there is ours), or None: none, or not one (any more)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none, or damaged: nothing to compare
        return None
    return old if isinstance(old, dict) and {"clean", "summary"} <= old.keys() else None


def replaced_note(path: Path, report: dict[str, Any],
                  old: dict[str, Any] | None) -> str | None:
    """What the earlier report ``old`` at ``path`` held, when this one evaluates another model
    or data, or measures otherwise: a reader of the folder (``robustrep report --collect``)
    would mix the two without a word."""
    if old is None:
        return None
    from robustrep.tasks.common.eval_records import as_own_run, setting_changes
    diff = setting_changes(as_own_run(old, report), report, _SUBJECT)
    if diff:
        return (f"{path} replaced: it held the report of another evaluation ({'; '.join(diff)}); "
                f"give --out a new folder to keep both")
    if _measured(old) == _measured(report):
        return None
    return f"{path} replaced: it held {_measured(old)}; this one holds {_measured(report)}"


def _check_same_run(path: Path, run: str | Path | None,
                    foreign: dict[str, Any] | None) -> None:
    """The earlier report at ``path`` is replaced only when it evaluated ``run`` (or a model from
    elsewhere: :func:`replaced_note` says which) (:func:`eval_records.check_same_run`)."""
    flag = foreign and f"--{'robustbench' if 'robustbench' in foreign else 'model'}"
    check_same_run(_earlier_report(path), path.parent, run, "an eval report",
                   foreign and f"{flag} {foreign['name']}")


def _remove_stale_diagrams(out: Path, old: dict[str, Any] | None, files: dict[str, str]) -> None:
    """Remove the earlier report's ``corruptions.png`` when this report draws none (evaluated
    without corruptions): left there, it was read as this report's."""
    drawn = old.get("files") if old is not None else None
    if isinstance(drawn, dict) and "corruptions" in drawn and "corruptions" not in files:
        (out / "corruptions.png").unlink(missing_ok=True)


def _new_out(out: str | Path | None, name: str) -> Path:
    """The report folder of a model from elsewhere: ``--out`` or a new runs/eval/<model>-<time>.
    An earlier report in ``--out`` is replaced as a run's is (check_replaceable: one a
    ``classify eval`` wrote, never a user's file of its name); it was refused, while
    ``classify eval RUN`` replaced RUN/eval/report.json."""
    from robustrep.tasks.common.weights import default_out
    if out is None:  # claimed when the report is written, under another name if taken
        return default_out(name, "eval")
    return Path(out)


def _load(run, foreign: dict[str, Any] | None, device, use_ema: bool):
    """``(model, config)`` of a run folder, of a model from elsewhere, or of RobustBench."""
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.common.foreign_model import load_model, run_checkpoint_note
    from robustrep.tasks.common.options import no_ema_note
    if foreign is None:
        model, config = load_run(run, device, use_ema=use_ema)
        no_ema_note(run, use_ema, bool(config.get("ema_decay")))  # EMA on: the checkpoint has it
        return model, config
    fields = {k: foreign[k] for k in ("dataset", "classes", "image_size")}
    if "robustbench" in foreign:
        model, config = robustbench_model(foreign, device)
    else:
        model, config = load_model(**{k: v for k, v in foreign.items()
                                      if k not in ("dataset", "classes")}, device=device,
                                   use_ema=use_ema)
        note = run_checkpoint_note(foreign, config.pop("checkpoint_config"), "classify eval")
        if note:
            print(f"note: {note}", file=sys.stderr)
    return model, {**config, **fields}


def robustbench_options(args) -> dict[str, Any]:
    """``--robustbench NAME``: checked before any work (the optional package, the dataset)."""
    import importlib.util
    if importlib.util.find_spec("robustbench") is None:
        # its PyPI release pins timm==1.0.9 (below our floor) and imports autoattack, which
        # pyautoattack does not provide; its GitHub version has neither problem
        raise UserError("--robustbench needs the robustbench package, from GitHub (its PyPI "
                        "release pins timm==1.0.9): pip install "
                        "'git+https://github.com/RobustBench/robustbench.git@78fcc9e'")
    if args.run is not None or args.model is not None:
        raise UserError("--robustbench NAME replaces RUN and --model; give one of them")
    if args.dataset not in CIFAR_C_DATASETS:
        raise UserError(f"--robustbench evaluates on --dataset cifar10 or cifar100; got "
                        f"{args.dataset!r}")
    from robustrep.tasks.common.download import DownloadError, offline_reason
    # RobustBench keeps MODEL_DIR/DATASET/THREAT/NAME.pt and fetches it when absent
    local = Path(args.model_dir) / args.dataset / args.threat_model / f"{args.robustbench}.pt"
    reason = offline_reason()
    if reason and not local.is_file():
        raise DownloadError(f"--robustbench {args.robustbench}: {local} is missing and downloads "
                            f"are off ({reason}); place RobustBench's checkpoint there")
    return {"name": args.robustbench, "robustbench": args.threat_model,
            "model_dir": args.model_dir, "dataset": args.dataset, "classes": None,
            "image_size": 32}


def robustbench_model(foreign: dict[str, Any], device) -> tuple[nn.Module, dict[str, Any]]:
    """A RobustBench zoo model from its local model folder (``robustbench.utils.load_model``,
    RobustBench/robustbench; its models take [0, 1] images and normalise inside, as ours)."""
    from robustbench.utils import load_model as rb_load
    try:
        model = rb_load(model_name=foreign["name"], model_dir=foreign["model_dir"],
                        dataset=foreign["dataset"], threat_model=foreign["robustbench"])
    except Exception as err:  # the package's own errors: unknown name, missing file
        raise UserError(f"--robustbench {foreign['name']}: {' '.join(str(err).split())}") from None
    classes = 100 if foreign["dataset"] == "cifar100" else 10
    config = {"model": f"robustbench:{foreign['name']}", "num_classes": classes, "channels": 3,
              "mean": [0.0] * 3, "std": [1.0] * 3, "image_size": 32,
              "weights": f"robustbench {foreign['robustbench']}"}
    return model.to(device).eval(), config


def _check_cifar_c(config: dict[str, Any], root: str | Path) -> None:
    """``--cifar-c`` needs a CIFAR run on every class, evaluated on the test split (the files
    corrupt it), and every released file (checked before any work)."""
    dataset = config.get("dataset")
    if dataset not in CIFAR_C_DATASETS:
        raise UserError(f"--cifar-c needs a run trained on cifar10 or cifar100; this run's "
                        f"dataset is {dataset!r}")
    if config.get("classes") is not None:
        raise UserError(f"--cifar-c: the files hold every {dataset} class, and this run was "
                        f"trained on classes {config['classes']} (its labels are renumbered); "
                        f"evaluate a run trained on every class")
    if (config.get("val_fraction") or 0) > 0:
        raise UserError(f"--cifar-c: this run's clean accuracy is on a held-out part of the "
                        f"training split (val_fraction {config['val_fraction']}), and the files "
                        f"corrupt the test split, so their mCE would compare other images")
    try:
        files = cifar_c_files(root)
    except FileNotFoundError as err:
        raise DataError(f"--cifar-c {root}: {err}") from None
    size = _cifar_c_image_size(root, files)
    if config.get("channels") != 3:  # was a traceback after the clean pass and the attacks
        raise UserError(f"--cifar-c: the files hold RGB images and the model takes "
                        f"{config.get('channels')} channel(s)")
    if config.get("image_size") not in (None, size):  # was a negative relative mCE
        raise UserError(f"--cifar-c: the files hold {size}x{size} images and the clean "
                        f"accuracy is on {config['image_size']}x{config['image_size']} "
                        f"(image_size), so their mCE would compare other resolutions; "
                        f"evaluate a model at {size}x{size} (--image-size {size} with --model)")


def _cifar_c_image_size(root: str | Path, files: dict[str, Path]) -> int:
    """The side of the files' images, each file checked against the released layout (uint8
    ``[5 N, H, W, 3]``, ``5 N`` labels) from its header alone, before any work."""
    import numpy as np
    try:
        n_labels = len(np.load(files["labels"], mmap_mode="r"))
        shapes = {name: np.load(path, mmap_mode="r") for name, path in files.items()
                  if name != "labels"}
    except (OSError, ValueError) as err:
        raise DataError(f"--cifar-c {root}: a file is not a readable .npy array "
                        f"({' '.join(str(err).split())})") from None
    sides = set()
    for name, images in shapes.items():
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or \
                len(images) != n_labels or len(images) % len(SEVERITIES) or \
                images.shape[1] != images.shape[2]:
            raise DataError(f"--cifar-c {root}: {name}.npy holds {images.dtype} "
                            f"{list(images.shape)}; expected the released layout, uint8 "
                            f"[5 x N, H, H, 3] with as many labels in labels.npy "
                            f"({n_labels})")
        sides.add(int(images.shape[1]))
    if len(sides) > 1:
        raise DataError(f"--cifar-c {root}: the files hold images of several sizes "
                        f"({', '.join(map(str, sorted(sides)))})")
    return sides.pop()


def check_cifar_c_labels(root: str | Path, labels: Tensor) -> None:
    """The files' first ``len(labels)`` rows of each severity must be the evaluated images,
    which the released ``labels.npy`` (the test labels, repeated per severity) shows: files
    shorter than the clean set were scored on fewer images than the clean accuracy (and said
    to be "the first n images"), and CIFAR-10-C under a cifar100 run, or files in another
    order, gave an mCE of other images."""
    import numpy as np
    file = np.load(cifar_c_files(root, ())["labels"], mmap_mode="r")  # a missing one named
    per, n = len(file) // len(SEVERITIES), len(labels)
    if per < n:
        raise DataError(f"--cifar-c {root}: the files hold {per} images per severity and the "
                        f"clean accuracy is on {n}, so their mCE would compare other images; "
                        f"give --max-samples {per}, or the complete files")
    want = labels.cpu().numpy()
    for s in range(len(SEVERITIES)):
        got = np.asarray(file[s * per:s * per + n], dtype=np.int64)
        wrong = np.flatnonzero(got != want)
        if wrong.size:
            i = int(wrong[0])
            raise DataError(f"--cifar-c {root}: labels.npy does not list the evaluated images' "
                            f"labels in order (severity {s + 1}, image {i}: {got[i]} in the "
                            f"file, {want[i]} in the data); give the corrupted test split of "
                            f"this dataset (CIFAR-10-C for cifar10, CIFAR-100-C for cifar100)")


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the summary and the per-severity corruption accuracies."""
    s = report["summary"]
    lines = [f"{'metric':<28} value", f"{'-' * 28} {'-' * 8}",
             f"{'images (' + str(report.get('split', 'test')) + ')':<28} {report.get('n', '-')}",
             f"{'clean top-1':<28} {s['clean_acc']:.4f}",
             f"{'NLL':<28} {s['nll']:.4f}",
             f"{'ECE':<28} {s['ece']:.4f}"]
    conv = report.get("input_convention")
    if isinstance(conv, dict) and "mean" in conv:  # a --model's came from timm's config unless
        lines.insert(3, f"{'inputs in [0, 1]; mean, std':<28} "  # given: shown, not only saved
                        f"{_numbers(conv['mean'])}; {_numbers(conv.get('std', []))}")
    norm = report.get("norm") or "Linf"
    eps = eps_text(report.get("eps") or 8 / 255, norm)
    for key, value in report.get("adversarial", {}).items():
        name = key.replace("pgd", "PGD-") if key.startswith("pgd") else key
        lines.append(f"{f'{name} ({norm} {eps})':<28} {value:.4f}")
    if report.get("adversarial"):
        lines.append(f"{'  attacked samples':<28} {report['n_attack']}")
    for name, per in report.get("corruptions", {}).items():
        cells = " ".join(f"s{k}={v:.3f}" for k, v in per.items())
        lines.append(f"{name:<28} {cells}")
    if report.get("corruption_summary"):
        cs = report["corruption_summary"]
        lines.append(f"{'corruption mean acc':<28} {cs['mean_acc']:.4f}")
        lines.append(f"{'mCE / relative mCE':<28} {cs['mce']:.4f} / {cs['relative_mce']:.4f}")
    if "cifar_c" in report:
        cc = report["cifar_c"]
        lines.append(f"{'CIFAR-C mean acc':<28} {cc['mean_acc']:.4f}")
        lines.append(f"{'CIFAR-C mCE / rel. mCE':<28} {cc['mce']:.4f} / "
                     f"{cc['relative_mce']:.4f}")
    for key, conv in report.get("robust_convention", {}).items():
        lines.append(f"[{key}] {conv}")
    return "\n".join(lines)
