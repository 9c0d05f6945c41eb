"""Public entry points refuse bad input with a ValueError naming the argument (not an error from
inside torch or sklearn, and not a silent 0.0 or nan)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from robustrep.metrics import expected_calibration_error, frechet_distance, ood_metrics
from robustrep.metrics.fid import polynomial_mmd2
from robustrep.metrics.ood import fpr_at_tpr
from robustrep.metrics.robust import robust_accuracy
from robustrep.registry import parse_combination


def _data(labels):
    return torch.rand(len(labels), 1, 4, 4), torch.tensor(labels)


@pytest.mark.parametrize("outputs, labels, message", [
    (1, [0, 0], r"model must return logits \[B, C\] with C >= 2 classes .* shape \(1, 1\)"),
    (3, [0, 3], r"data labels must lie in 0\.\.2 \(the model's 3 outputs\); got labels in 0\.\.3"),
    (3, [-1, 2], r"data labels must lie in 0\.\.2"),
])
def test_robust_accuracy_checks_outputs_and_labels(outputs, labels, message):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, outputs))
    with pytest.raises(ValueError, match=message):
        robust_accuracy(model, _data(labels), attack="fgsm", eps=0.1)


def test_ood_metrics_refuses_non_finite_scores():
    with pytest.raises(ValueError, match=r"scores must be finite; 1 of 4 are NaN or inf"):
        ood_metrics(torch.tensor([0.1, math.inf, 0.3, 0.9]), torch.tensor([0, 0, 1, 1]))


def test_ece_refuses_empty_and_nan():
    with pytest.raises(ValueError, match="logits_or_probs holds no samples"):
        expected_calibration_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="logits_or_probs holds NaN or \\+inf"):
        expected_calibration_error(torch.tensor([[math.nan, 0.0]]), torch.tensor([0]))


def test_frechet_distance_refuses_empty_and_nan():
    with pytest.raises(ValueError, match=r"mu1 is empty"):
        frechet_distance(np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="mu2 must be finite"):
        frechet_distance(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))


def test_parse_combination_names_an_unknown_program():
    with pytest.raises(ValueError, match=r"program must be one of 'classify', 'gan'.*got 'bogus'"):
        parse_combination("mixup", "bogus")


def test_robust_accuracy_reports_progress_inside_an_autoattack_component():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    x, y = torch.rand(16, 1, 4, 4), torch.randint(0, 4, (16,))
    calls = []
    result = robust_accuracy(model, (x, y), "apgd-ce", eps=0.02, batch_size=2,
                             progress=calls.append)
    assert calls and {c["attack"] for c in calls} == {"apgd-ce"}
    assert all(a["done"] < b["done"] for a, b in zip(calls, calls[1:]))  # batch by batch
    assert calls[-1]["done"] == calls[-1]["total"] == int(result.correct.sum())
    assert calls[-1]["robust"] == int(result.robust.sum()) and calls[-1]["eta_s"] == 0
    assert all(c["n"] == 16 and c["eta_s"] >= 0 for c in calls)


@pytest.mark.parametrize("args, message", [
    ((torch.rand(5), torch.rand(5), 1.5), r"^tpr must be a number in \(0, 1\], got 1\.5"),
    ((torch.rand(5), torch.rand(5), math.nan), r"^tpr must be a number in \(0, 1\], got nan"),
    ((torch.rand(5), torch.rand(5), 0), r"^tpr must be a number in \(0, 1\], got 0"),
    ((torch.zeros(0), torch.rand(5), 0.95), "^positive must hold at least one score"),
    ((torch.rand(5), torch.rand(2, 3), 0.95), "^negative must have rank 1"),
    ((torch.rand(5), torch.tensor([0.1, math.nan]), 0.95), "^negative must be finite; 1 of 2"),
])
def test_fpr_at_tpr_names_bad_input(args, message):
    # These were an IndexError, a numpy conversion error or a silent 0.0.
    with pytest.raises(ValueError, match=message):
        fpr_at_tpr(*args)


def test_fpr_at_tpr_takes_numpy_like_ood_metrics():
    pos, neg = np.array([0.9, 0.8, 0.7, 0.1]), np.array([0.75, 0.2, 0.05])
    assert fpr_at_tpr(pos, neg, 0.75) == fpr_at_tpr(torch.from_numpy(pos), torch.from_numpy(neg),
                                                    0.75) == 1 / 3


@pytest.mark.parametrize("which", ["sigma1", "sigma2"])
def test_frechet_distance_refuses_a_matrix_that_is_no_covariance(which):
    # -I used to have its negative eigenvalues clamped to zero and gave FID 0.0.
    mu, cov = torch.zeros(2), torch.eye(2)
    sigmas = {"sigma1": cov, "sigma2": cov, which: -cov}
    with pytest.raises(ValueError, match=f"^{which} is not a covariance matrix: it has the "
                                         "negative eigenvalue -1"):
        frechet_distance(mu, sigmas["sigma1"], mu, sigmas["sigma2"])


def test_frechet_distance_accepts_rank_deficient_covariances():
    feats = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cov = torch.cov(feats.T)  # rank 2 in 6 dimensions: rounding gives eigenvalues just below 0
    assert frechet_distance(feats.mean(0), cov, feats.mean(0), cov) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("degree", [-1, 0, 2.5])
def test_polynomial_mmd2_checks_degree(degree):
    x = torch.rand(4, 3)
    with pytest.raises((TypeError, ValueError), match="^degree must be"):
        polynomial_mmd2(x, x, degree=degree)
