"""What a run's numbers were trained and measured with: a run's options (``config.json``, and
its regularizers' in ``regularizers.json``), and a classifier run's settings read from the
records of its ``classify eval`` (``eval/report.json``) and ``ood score``
(``ood/results.json``).

The page averages each metric over the runs of a report; a run trained by hand with other
options (another ``--lr``, ``--cutmix-alpha``...) or evaluated or scored again with other
settings (another ``--eps``, ``--severities``, ``--pgd-step-size``, other OOD sets, another
``--seed``, ``--max-samples``...) measured something else under the same name. Each option or
setting that changes the numbers is one entry here, named as the line that leaves such a run
out names it (:func:`differences`); a setting a record lacks (an older version's) reads
``unrecorded``.
"""

from __future__ import annotations

import json
import os
from typing import Any

UNRECORDED = "unrecorded"


# config.json options that may differ between the seeds of one cell: each changes no number
# the page shows, or changes them only as another seed does
UNCOMPARED = frozenset({
    "seed",  # what tells the seeds of a cell apart
    "out",  # the run's own folder
    "log", "log_every", "ckpt_every", "keep_ckpts",  # what is written when, not what is computed
    # which processes load the batches, not which batches: classify's order and draws follow the
    # step and its generator; gan's disk datasets draw at most a flip, as another seed would
    "workers", "num_workers",
    # where and how the same steps run: rounding differs, as on another machine, not the method
    "device", "compile", "channels_last",
})
# classify train's evaluations during training read the weights and nothing else (no random
# draw of the training's generator), and the report's numbers are classify eval's; gan train's
# eval_every sets the steps of the FID curve the page pools, and stays compared
CLASSIFY_UNCOMPARED = frozenset({"eval_every"})


def train_settings(config: dict[str, Any], history: list[dict[str, Any]] | None,
                   task: str) -> dict[str, str]:
    """What a run was trained with: every option of its ``config.json`` but :data:`UNCOMPARED`
    (``config.json lr``), and each option and class of each regularizer its
    ``regularizers.json`` ``history`` records (``regularizers.json cutmix alpha``): its own alpha
    and the core defaults, which config.json leaves null; None: that file is unreadable."""
    skip = UNCOMPARED | (CLASSIFY_UNCOMPARED if task == "classify" else frozenset())
    out = {f"config.json {k}": _config_text(k, v) for k, v in config.items() if k not in skip}
    if history is None:
        out["regularizers.json"] = "unreadable"
        return out
    values: dict[str, dict[str, str]] = {}
    for entry in history:
        for name, reg in entry["regularizers"].items():
            # not "source", the sha256 of the class's module: any edit to that file (its
            # documentation, another class) changes it, and no other code's version is compared
            fields = {"class": reg.get("class"), **(reg.get("options") or {})}
            for option, value in fields.items():
                steps = values.setdefault(f"regularizers.json {name} {option}", {})
                steps[str(entry["step"])] = _config_text(option, value)
    for key, steps in values.items():  # one value, or each with the step it ran from
        kinds = set(steps.values())
        out[key] = (kinds.pop() if len(kinds) == 1 and len(steps) == len(history) else
                    ", ".join(f"{v} from step {s}" for s, v in steps.items()))
    return out


def _config_text(key: str, value: Any) -> str:
    """An option's value as the line names it (null: the default); a data_root by the folder it
    names, an absolute path resolved (a trailing slash, a link), a relative one as written (its
    working directory is not recorded)."""
    if key == "data_root" and isinstance(value, str):
        path = os.path.expanduser(value)
        return os.path.realpath(path) if os.path.isabs(path) else os.path.normpath(path)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def radius(report: dict[str, Any]) -> str:
    """The attacks' threat model, ``Linf eps 8/255`` (the 1/255 grid as a fraction, as
    ``classify eval`` says it), or ``none`` when no attack ran (its eps is null)."""
    eps = report.get("eps")
    if "eps" not in report:
        return UNRECORDED
    if not isinstance(eps, (int, float)) or isinstance(eps, bool):
        return "none"
    from robustrep.metrics.robust import eps_text
    norm = report.get("norm")
    return f"{norm} eps {eps_text(eps, str(norm))}"


def eval_settings(report: dict[str, Any], attacks: list[str], images: str) -> dict[str, str]:
    """The settings of a ``classify eval`` record: attacks, samples, radius, each attack's own
    convention (its steps and step size), the images, the corruptions and severities, the
    released CIFAR-C files, the seed (PGD's starts, the corruptions' noise), the weights and the
    ECE bins. ``attacks``: its summary's attack columns; ``images``: its clean metrics' images."""
    n_attack = report.get("n_attack", report.get("n"))
    out = {"classify eval attacks": ", ".join(a.removesuffix("_acc") for a in attacks) or "none",
           "classify eval attacked samples": _text(n_attack),
           "classify eval radius": radius(report), "classify eval images": images}
    conventions = report.get("robust_convention")
    if isinstance(conventions, dict):  # the radius ends each: said once, above
        cut = f", {report.get('norm')} eps="
        out.update({f"classify eval {name}": str(text).split(cut)[0]
                    for name, text in sorted(conventions.items())})
    table = report.get("corruptions")
    if isinstance(table, dict):
        out["classify eval corruptions"] = ", ".join(sorted(table)) or "none"
        levels = {s for row in table.values() if isinstance(row, dict) for s in row}
        out["classify eval severities"] = ", ".join(sorted(levels, key=_level)) or "none"
    else:
        out["classify eval corruptions"] = UNRECORDED
    cifar_c = report.get("cifar_c")
    out["classify eval CIFAR-C"] = (str(cifar_c.get("convention")) if isinstance(cifar_c, dict)
                                    else "none")
    robust = report.get("robust") if isinstance(report.get("robust"), dict) else {}
    if any(isinstance(r, dict) and r.get("attack") not in ("pgd", "fgsm")
           for r in robust.values()):  # AutoAttack's random draws follow its batches
        out["classify eval attack batch"] = _text(report.get("attack_batch"))
    out["classify eval seed"] = _text(report.get("seed"))
    out["classify eval weights"] = _weights(report)
    out["classify eval ECE bins"] = _bins(report.get("clean"))
    return out


def ood_settings(record: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    """The settings of an ``ood score`` record: the OOD sets and detectors of its rows (what its
    cells average over), the ID and fit data, the samples of each (``--max-samples``,
    ``--max-fit``), the detectors' parameters, the features (maps, resize, amp), the seed, the
    weights and OpenOOD's lists."""
    out = {"ood score OOD sets": ", ".join(sorted({str(r.get("ood")) for r in rows})) or "none",
           "ood score detectors": ", ".join(sorted({str(r.get("detector")) for r in rows}))
           or "none"}
    for key, name in (("id", "ID data"), ("fit_data", "fit data"), ("params", "parameters"),
                      ("feature_maps", "feature maps"), ("resize", "resize"), ("amp", "amp"),
                      ("seed", "seed"), ("openood", "OpenOOD"), ("ood_specs", "OOD set specs"),
                      ("groups", "groups")):
        value = record.get(key, UNRECORDED)
        out[f"ood score {name}"] = (json.dumps(value, sort_keys=True)
                                    if isinstance(value, (dict, list)) else _text(value))
    out["ood score samples"] = _ood_samples(record.get("sizes"))
    out["ood score weights"] = _weights(record)
    return out


def _ood_samples(sizes: Any) -> str:
    """ID test and fit images and the largest OOD set: what ``--max-samples`` and ``--max-fit``
    change (each OOD set's own size follows from its name and those)."""
    if not isinstance(sizes, dict):
        return UNRECORDED
    ood = [v for k, v in sizes.items() if k not in ("id_test", "id_train")
           and isinstance(v, int)]
    return (f"{_text(sizes.get('id_test'))} ID test, {_text(sizes.get('id_train'))} ID fit, at "
            f"most {max(ood) if ood else 0} a set")


def _weights(record: dict[str, Any]) -> str:
    """The weights scored: which (``model``, a checkpoint), of which step, EMA or not."""
    if not any(k in record for k in ("weights", "step", "ema")):
        return UNRECORDED
    ema = " (EMA)" if record.get("ema") else ""
    return f"{_text(record.get('weights'))}{ema} at step {_text(record.get('step'))}"


def _bins(clean: Any) -> str:
    """The ECE's bin count, from the reliability bins' edges the record holds."""
    bins = clean.get("bins") if isinstance(clean, dict) else None
    edges = bins.get("edges") if isinstance(bins, dict) else None
    return str(len(edges) - 1) if isinstance(edges, list) and edges else UNRECORDED


def _text(value: Any) -> str:
    return UNRECORDED if value is None or value == UNRECORDED else str(value)


def _level(severity: str) -> tuple[int, str]:
    return (int(severity), "") if str(severity).isdigit() else (99, str(severity))


def differences(mine: dict[str, str], usual: dict[str, str]) -> list[str]:
    """Each setting of ``mine`` that differs from ``usual``: ``name value (the others: value)``,
    a long value cut to the words that differ."""
    out = []
    for name in dict.fromkeys([*usual, *mine]):
        a, b = mine.get(name, UNRECORDED), usual.get(name, UNRECORDED)
        if a != b:
            a, b = _differing_words(a, b)
            out.append(f"{name} {a} (the others: {b})")
    return out


def _differing_words(a: str, b: str) -> tuple[str, str]:
    """``a`` and ``b`` without the words they share at both ends (one word kept before the
    difference as its context, "…" for each cut): two attack conventions differ in a step."""
    wa, wb = a.split(" "), b.split(" ")
    if len(wa) < 12 or len(wb) < 12:  # a short value is read whole
        return a, b
    start = 0
    while start < min(len(wa), len(wb)) and wa[start] == wb[start]:
        start += 1
    end = 0
    while end < min(len(wa), len(wb)) - start and wa[-1 - end] == wb[-1 - end]:
        end += 1
    start = max(0, start - 1)

    def cut(words: list[str]) -> str:
        middle = " ".join(words[start:len(words) - end])
        return ("… " if start else "") + middle + (" …" if end else "")
    return cut(wa), cut(wb)
