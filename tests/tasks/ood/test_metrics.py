"""The OOD program's metrics equal sklearn's on the same scores (OOD = positive class)."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from robustrep.tasks.ood.results import compute_metrics


def _scores(shift, n_id=300, n_ood=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n_id, generator=gen, dtype=torch.float64),
            torch.randn(n_ood, generator=gen, dtype=torch.float64) + shift)


@pytest.mark.parametrize("shift", [0.0, 1.0, -0.5])
def test_metrics_equal_sklearn(shift):
    s_id, s_ood = _scores(shift)
    m, (fpr, tpr) = compute_metrics(s_id, s_ood)
    s = torch.cat([s_id, s_ood]).numpy()
    is_ood = np.r_[np.zeros(len(s_id), bool), np.ones(len(s_ood), bool)]
    assert m["AUROC"] == pytest.approx(roc_auc_score(is_ood, s), abs=1e-12)
    # AUPR-OUT: OOD positive ranked by the score; AUPR-IN: ID positive ranked by -score. The
    # areas are trapezoidal (pytorch-ood); average_precision_score is the step-wise sum, close by.
    prec, rec, _ = precision_recall_curve(is_ood, s)
    assert m["AUPR-OUT"] == pytest.approx(auc(rec, prec), abs=1e-12)
    assert m["AUPR-OUT"] == pytest.approx(average_precision_score(is_ood, s), abs=0.02)
    prec, rec, _ = precision_recall_curve(~is_ood, -s)
    assert m["AUPR-IN"] == pytest.approx(auc(rec, prec), abs=1e-12)
    assert m["AUPR-IN"] == pytest.approx(average_precision_score(~is_ood, -s), abs=0.02)
    # FPR@95 by hand, OOD positive: the threshold is the k-th largest OOD score, k = ceil(0.95 n)
    k = math.ceil(0.95 * len(s_ood) - 1e-9)
    threshold = torch.sort(s_ood, descending=True).values[k - 1]
    assert m["fpr95_ood_tpr"] == pytest.approx(float((s_id >= threshold).double().mean()),
                                               abs=1e-12)
    # ID positive: keep the k lowest-scored ID samples, count the OOD ones at or below them
    k = math.ceil(0.95 * len(s_id) - 1e-9)
    threshold = torch.sort(s_id).values[k - 1]
    assert m["fpr95_id_tpr"] == pytest.approx(float((s_ood <= threshold).double().mean()),
                                              abs=1e-12)
    assert fpr[0] == 0 and tpr[-1] == 1


def test_positive_class_is_ood():
    s_id, s_ood = _scores(shift=4.0)
    m, _ = compute_metrics(s_id, s_ood)
    assert m["AUROC"] > 0.99 and m["fpr95_ood_tpr"] < 0.05 and m["fpr95_id_tpr"] < 0.05
    flipped, _ = compute_metrics(-s_id, -s_ood)
    assert flipped["AUROC"] == pytest.approx(1 - m["AUROC"], abs=1e-12)


def test_non_finite_scores_rejected():
    s_id, s_ood = _scores(0.0)
    s_ood[3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        compute_metrics(s_id, s_ood)
