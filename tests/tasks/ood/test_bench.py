"""Bench aggregation: mean +- std over seeds, the table layout, and an honest findings line."""

import math

import pytest

from robustrep.tasks.ood.bench import _avg_over_ood, aggregate, findings, format_markdown


def _records():
    rows = []
    for reg, base in (("none", 0.80), ("adaptivemix", 0.90)):
        for seed, jitter in ((0, -0.01), (1, 0.0), (2, 0.01)):
            for ood in ("digits59", "gaussian"):
                rows.append({"reg": reg, "seed": seed, "detector": "KNN", "ood": ood,
                             "AUROC": base + jitter, "AUPR-IN": 0.5, "AUPR-OUT": 0.5,
                             "fpr95_id_tpr": 1 - base, "fpr95_ood_tpr": 0.9 - base, "error": ""})
    rows.append({"reg": "none", "seed": 0, "detector": "SHE", "ood": "digits59",
                 "AUROC": math.nan, "AUPR-IN": math.nan, "AUPR-OUT": math.nan,
                 "fpr95_id_tpr": math.nan, "fpr95_ood_tpr": math.nan, "error": "ValueError: x"})
    return rows


def test_aggregate_mean_and_sample_std():
    agg = aggregate(_records())
    mean, std = agg[("adaptivemix", "KNN", "gaussian")]["AUROC"]
    assert mean == pytest.approx(0.90) and std == pytest.approx(0.01)
    assert agg[("none", "SHE", "digits59")]["n"] == 0
    assert agg[("none", "SHE", "digits59")]["errors"] == ["ValueError: x"]


def test_table_and_findings():
    records = _records()
    agg = aggregate(records)
    regs, dets, oods = ["none", "adaptivemix"], ["KNN"], ["digits59", "gaussian"]
    avg = _avg_over_ood(records, regs, dets)
    assert avg[("none", "KNN")][0] == pytest.approx(0.80)
    text = findings(agg, regs, dets, oods)
    assert "+10.00 points" in text and "ahead by more than the combined seed std in 2" in text
    md = format_markdown(agg, avg, {"none": (0.99, 0.0), "adaptivemix": (0.98, 0.01)}, regs,
                         dets + ["SHE"], oods, {"n_seeds": 3, "seeds": [0, 1, 2],
                                                "model": "m", "steps": 5})
    assert "| digits59 | KNN | 80.0 ± 1.0 | 90.0 ± 1.0 |" in md
    # both FPR conventions get their own table, named by the rate held at 95%
    id_tpr, ood_tpr = md.index("## fpr95_id_tpr"), md.index("## fpr95_ood_tpr")
    assert "| digits59 | KNN | 20.0 ± 0.0 | 10.0 ± 0.0 |" in md[id_tpr:ood_tpr]
    assert "| digits59 | KNN | 10.0 ± 0.0 | 0.0 ± 0.0 |" in md[ood_tpr:]
    assert "| digits59 | SHE | failed |" in md and "## Failures" in md
