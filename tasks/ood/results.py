"""The results of ``robustrep ood score``: each detector's scores and metrics per OOD set,
and the rows its tables hold.

Metrics follow pytorch-ood's ``OODMetrics`` and OpenOOD v1.5 (higher score = more OOD), computed
by :func:`robustrep.metrics.ood.ood_metrics`; the two FPR@95 conventions are named by
:func:`legend`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common.runfiles import write_csv

METRICS = ("AUROC", "AUPR-IN", "AUPR-OUT", "fpr95_id_tpr", "fpr95_ood_tpr")
# what each metric means, in whichever unit the file or the terminal gives it (legend)
_CONVENTIONS = ("Scores: higher = more OOD. AUROC and AUPR-OUT take OOD as the positive class, "
                "AUPR-IN takes ID (higher is better). "
                "fpr95_id_tpr: share of OOD samples accepted at the threshold accepting 95% of ID "
                "samples (Hendrycks & Gimpel, ODIN, OpenOOD v1.0); fpr95_ood_tpr: share of ID "
                "samples flagged at the threshold flagging 95% of OOD samples (pytorch-ood, "
                "OpenOOD v1.5). Lower is better.")
# The JSON and CSV files keep the metrics (and ID accuracies) as fractions; the terminal and
# the Markdown tables show percent, as papers do. Each says its own unit: results.json said
# "percent" beside its fractions.
UNITS = "fraction of 1"
IN_PERCENT = "in percent"
AS_FRACTIONS = "as fractions of 1 (0.95 = 95%)"
CSV_UNIT = "_fraction"  # the suffix of a CSV's metric columns: a CSV has no other place for it


def legend(unit: str) -> str:
    """The conventions of the metrics, ending with their unit (:data:`IN_PERCENT` or
    :data:`AS_FRACTIONS`)."""
    return f"{_CONVENTIONS} Metrics and accuracies {unit}."


def write_fraction_csv(path: Path, rows: list[dict[str, Any]], fields: list[str],
                       metrics: Sequence[str]) -> Path:
    """``rows`` as CSV with each column of ``metrics`` named with its unit (``AUROC_fraction``);
    the rows keep their keys (the JSON's, which a later call reads back)."""
    name = {f: f + CSV_UNIT if f in metrics else f for f in fields}
    return write_csv(path, [{name[k]: v for k, v in r.items()} for r in rows],
                     [name[f] for f in fields])


@dataclass
class DetectorResult:
    """Scores of one detector: the ID test set and each OOD set (float64 CPU tensors)."""

    name: str
    id_scores: torch.Tensor | None = None
    ood_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    roc: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    error: str | None = None
    fit_seconds: float = 0.0
    score_seconds: float = 0.0


@dataclass
class ScoreResult:
    detectors: dict[str, DetectorResult]
    ood_names: list[str]
    id_accuracy: float | None
    sizes: dict[str, int]
    extract_seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # e.g. near/far -> OOD set names
    # rows of earlier calls in the same output folder (results.json), and what to tell the user
    previous: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One row per detector and OOD set: detector, ood, the metrics (NaN on failure); then
        one row per detector and group of OOD sets (``near-OOD (mean)``) with their means."""
        out = []
        for det in self.detectors.values():
            for ood in self.ood_names:
                row = {"detector": det.name, "ood": ood}
                values = det.metrics.get(ood, {})
                row.update({m: values.get(m, math.nan) for m in METRICS})
                row["error"] = det.error or ""
                out.append(row)
            for group, names in self.groups.items():
                row = {"detector": det.name, "ood": group_row_name(group)}
                for m in METRICS:
                    vals = [det.metrics[n][m] for n in names if n in det.metrics]
                    row[m] = sum(vals) / len(vals) if vals and len(vals) == len(names) else math.nan
                row["error"] = det.error or ""
                out.append(row)
        return out

    def merged_rows(self) -> list[dict[str, Any]]:
        """The earlier calls' rows with those measured again replaced in place, then the new
        rows: what results.* hold."""
        new = {(r["detector"], r["ood"]): r for r in self.rows()}
        kept = [new.pop((r["detector"], r["ood"]), r) for r in self.previous]
        return kept + list(new.values())

    def replaced(self) -> list[str]:
        now = {(r["detector"], r["ood"]) for r in self.rows()}
        return [f"{r['detector']}/{r['ood']}" for r in self.previous
                if (r["detector"], r["ood"]) in now]


def group_row_name(group: str) -> str:
    return f"{group}-OOD (mean)"


def compute_metrics(id_scores: torch.Tensor, ood_scores: torch.Tensor
                    ) -> tuple[dict[str, float], tuple[Any, Any]]:
    """The metrics (and the ROC points) of ID vs OOD scores (higher score = more OOD)."""
    from robustrep.metrics.ood import ood_metrics
    scores = torch.cat([id_scores, ood_scores]).double()
    is_ood = torch.cat([torch.zeros(len(id_scores), dtype=torch.bool),
                        torch.ones(len(ood_scores), dtype=torch.bool)])
    if not torch.isfinite(scores).all():
        raise ValueError(f"{int((~torch.isfinite(scores)).sum())} scores are NaN or infinite")
    with warnings.catch_warnings():
        # AUTC (not reported here) warns on constant scores; the others are still defined.
        warnings.filterwarnings("ignore", message="AUTC is undefined")
        out = ood_metrics(scores, is_ood)
    return {m: float(out[m]) for m in METRICS}, (out["roc"]["fpr"], out["roc"]["tpr"])
