"""What a classifier run's numbers were measured with, read from the records of its ``classify
eval`` (``eval/report.json``) and ``ood score`` (``ood/results.json``).

The page averages each metric over the runs of a report; a run evaluated or scored again by hand
with other settings (another ``--eps``, ``--severities``, ``--pgd-step-size``, other OOD sets,
another ``--seed``, ``--max-samples``...) measured something else under the same name. Each
setting that changes the numbers is one entry here, named as the line that leaves such a run
out names it (:func:`differences`); a setting a record lacks (an older version's) reads
``unrecorded``.
"""

from __future__ import annotations

import json
from typing import Any

UNRECORDED = "unrecorded"


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
