"""The table ``classify eval`` prints (:func:`format_table`): each figure beside what it was
measured on, as ``report.json`` records it.

- the clean accuracy names the weights scored (``classifier_run.weights_label``, the words ``ood``
  prints too: ``EMA weights``, ``raw weights``, or a model from elsewhere's ``pretrained
  weights`` or ``RobustBench weights``): an EMA's accuracy may be far from the raw weights' the
  training log shows, and only the json said which;
- the attacks run on the first ``n_attack`` images: their rows follow that count and the clean
  accuracy on those same images (the attacks' ``clean_acc``), the one a robust accuracy is read
  against; the clean accuracy above is the whole split's;
- the ECE row names its number of equal-width bins;
- a line under the rows says that the accuracies (the corruption cells ``s1=`` too) and the ECE
  are fractions in [0, 1], and that the mCE is unnormalised;
- every figure has 4 decimals (the corruption cells had 3), and the attacks are named as their
  papers and the conventions below the table name them (``FGSM``, ``PGD-10``, ``APGD-CE``; the
  report's keys are ``fgsm``, ``pgd10``, ``apgd-ce``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robustrep._names import ATTACK_NAMES
from robustrep.metrics.robust import eps_text
from robustrep.tasks.common.classifier_run import weights_label

LABEL = 34  # the label column: "clean top-1 (RobustBench weights)" and a space



def attack_name(key: str) -> str:
    """The printed name of a report's attack key: ``pgd10`` -> ``PGD-10``, ``fgsm`` -> ``FGSM``."""
    if key.startswith("pgd") and key[3:].isdigit():
        return f"PGD-{key[3:]}"
    return ATTACK_NAMES.get(key, key)


def _row(label: str, value: str) -> str:
    return f"{label:<{LABEL}} {value}"


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the summary and the per-severity corruption accuracies."""
    s = report["summary"]
    lines = [_row("metric", "value"), f"{'-' * LABEL} {'-' * 8}",
             _row(f"images ({report.get('split', 'test')})", str(report.get("n", "-")))]
    conv = report.get("input_convention")
    if isinstance(conv, dict) and "mean" in conv:  # a --model's came from timm's config unless
        lines.append(_row("inputs in [0, 1]; mean, std",  # given: shown, not only saved
                          f"{_numbers(conv['mean'])}; {_numbers(conv.get('std', []))}"))
    weights = weights_label(report)
    bins = len(report["clean"]["bins"]["count"]) if "clean" in report else None
    lines += [_row("clean top-1" + (f" ({weights})" if weights else ""), f"{s['clean_acc']:.4f}"),
              _row("NLL", f"{s['nll']:.4f}"),
              _row("ECE" + (f" ({bins} bins)" if bins else ""), f"{s['ece']:.4f}")]
    lines += _attack_rows(report) + _corruption_rows(report) + [_units(report)]
    # each names its attack first, as the rows above do
    lines += list(report.get("robust_convention", {}).values())
    return "\n".join(lines)


def _attack_rows(report: dict[str, Any]) -> list[str]:
    """The count of attacked images, the clean accuracy on them, and each attack's robust
    accuracy on them."""
    adversarial, robust = report.get("adversarial") or {}, report.get("robust") or {}
    if not adversarial:
        return []
    n, n_attack = report.get("n"), report.get("n_attack")
    norm = report.get("norm") or "Linf"
    eps = eps_text(report.get("eps") or 8 / 255, norm)
    rows = [_row("attacked images", f"all {n}" if n_attack == n else f"first {n_attack} of {n}")]
    clean = next((r["clean_acc"] for r in robust.values() if "clean_acc" in r), None)
    if clean is not None:  # every attack's: the same model on the same images
        rows.append(_row("  clean top-1", f"{clean:.4f}"))
    rows += [_row(f"  {attack_name(key)} ({norm} {eps})", f"{value:.4f}")
             for key, value in adversarial.items()]
    return rows


def _corruption_rows(report: dict[str, Any]) -> list[str]:
    rows = [_row(name, _severities(per)) for name, per in report.get("corruptions", {}).items()]
    if report.get("corruption_summary"):
        cs = report["corruption_summary"]
        rows += [_row("corruption mean acc", f"{cs['mean_acc']:.4f}"),
                 _row("mCE / relative mCE", f"{cs['mce']:.4f} / {cs['relative_mce']:.4f}")]
    if "cifar_c" in report:  # the released files' own rows (they were in report.json alone)
        cc = report["cifar_c"]
        rows += [_row(f"CIFAR-C {name}", _severities(per))
                 for name, per in cc.get("accuracy", {}).items()]
        rows += [_row("CIFAR-C mean acc", f"{cc['mean_acc']:.4f}"),
                 _row("CIFAR-C mCE / rel. mCE", f"{cc['mce']:.4f} / {cc['relative_mce']:.4f}")]
    return rows


def _severities(per: dict[str, float]) -> str:
    """``s1=0.9312 s5=0.4100``: one corruption's accuracy at each severity."""
    return " ".join(f"s{k}={v:.4f}" for k, v in per.items())


def _units(report: dict[str, Any]) -> str:
    """One line under the rows saying what the figures are: the accuracies printed as bare
    fractions, the corruption cells ``s1=0.3281`` that did not say they are accuracies, and an
    mCE that did not say it is unnormalised (docs/metrics.md)."""
    parts = ["accuracies and ECE are fractions in [0, 1]"]
    if report.get("corruptions") or "cifar_c" in report:
        parts.append("sN: accuracy at corruption severity N")
    if report.get("corruptions") and "cifar_c" in report:
        parts.append("rows named by a corruption alone: corrupted on the fly; CIFAR-C rows: the "
                     "released files")
    if report.get("corruption_summary") or "cifar_c" in report:
        parts.append("mCE, relative mCE: unnormalised (no AlexNet baseline)")
    return "; ".join(parts)


def _numbers(values: Sequence[float]) -> str:
    return " ".join(f"{v:g}" for v in values)
