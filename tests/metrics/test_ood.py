"""OOD metrics against sklearn, pytorch-ood and hand-computed FPRs at 95% TPR (both conventions)."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (auc, average_precision_score, precision_recall_curve,
                             roc_auc_score, roc_curve)

from robustrep.metrics import ood_metrics
from robustrep.metrics.ood import fpr_at_tpr, fpr_keys


def _scores(seed=0, n_id=120, n_ood=80, shift=1.0):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.cat([torch.randn(n_id, generator=gen),
                        torch.randn(n_ood, generator=gen) + shift])
    is_ood = torch.cat([torch.zeros(n_id, dtype=torch.bool), torch.ones(n_ood, dtype=torch.bool)])
    perm = torch.randperm(n_id + n_ood, generator=gen)
    return scores[perm].double(), is_ood[perm]


def test_matches_sklearn():
    scores, is_ood = _scores()
    scores = scores.round(decimals=1)  # ties, which every metric must handle alike
    out = ood_metrics(scores, is_ood)
    s, t = scores.numpy(), is_ood.numpy()
    assert out["AUROC"] == pytest.approx(roc_auc_score(t, s), abs=1e-12)
    # AUPR-OUT: OOD positive, ranked by score; AUPR-IN: ID positive, ranked by -score
    prec, rec, _ = precision_recall_curve(t, s)
    assert out["AUPR-OUT"] == pytest.approx(auc(rec, prec), abs=1e-12)
    prec, rec, _ = precision_recall_curve(~t, -s)
    assert out["AUPR-IN"] == pytest.approx(auc(rec, prec), abs=1e-12)
    assert out["AP-OUT"] == pytest.approx(average_precision_score(t, s), abs=1e-12)
    assert out["AP-IN"] == pytest.approx(average_precision_score(~t, -s), abs=1e-12)
    fpr, tpr, thr = roc_curve(t, s)
    np.testing.assert_array_equal(out["roc"]["fpr"], fpr)
    np.testing.assert_array_equal(out["roc"]["tpr"], tpr)
    np.testing.assert_array_equal(out["roc"]["thresholds"], thr)
    assert "AUTC" in out


def test_fpr95_hand_computation():
    gen = torch.Generator().manual_seed(1)
    id_scores = torch.rand(40, generator=gen, dtype=torch.float64)
    ood_scores = torch.rand(20, generator=gen, dtype=torch.float64) + 0.3
    scores = torch.cat([id_scores, ood_scores])
    is_ood = torch.arange(60) >= 40
    # 95% of 20 OOD = 19 flagged: the highest threshold doing that is the 2nd-lowest OOD score
    threshold = ood_scores.sort().values[1]
    expected = float((id_scores >= threshold).double().mean())
    assert 0 < expected < 1
    assert ood_metrics(scores, is_ood)["fpr95_ood_tpr"] == pytest.approx(expected, abs=1e-12)
    # at 90%: 18 flagged, the 3rd-lowest OOD score
    threshold = ood_scores.sort().values[2]
    got = ood_metrics(scores, is_ood, fpr_at=0.9)["fpr90_ood_tpr"]
    assert got == pytest.approx(float((id_scores >= threshold).double().mean()), abs=1e-12)


def test_separable_and_shuffled():
    scores = torch.cat([torch.linspace(0, 1, 50), torch.linspace(2, 3, 30)])
    is_ood = torch.arange(80) >= 50
    out = ood_metrics(scores, is_ood)
    assert out["AUROC"] == 1.0 and out["fpr95_ood_tpr"] == 0.0 and out["fpr95_id_tpr"] == 0.0
    assert out["AUPR-IN"] == pytest.approx(1.0) and out["AUPR-OUT"] == pytest.approx(1.0)
    # the same scores with OOD meaning *low* score: perfectly wrong
    assert ood_metrics(-scores, is_ood)["AUROC"] == 0.0
    gen = torch.Generator().manual_seed(2)
    noise = torch.rand(4000, generator=gen)
    labels = torch.rand(4000, generator=gen) < 0.5
    assert ood_metrics(noise, labels)["AUROC"] == pytest.approx(0.5, abs=0.03)


def test_accepts_numpy_and_integer_labels():
    scores, is_ood = _scores(seed=3)
    ref = ood_metrics(scores, is_ood)
    got = ood_metrics(scores.numpy(), is_ood.long().numpy())
    assert got["AUROC"] == pytest.approx(ref["AUROC"])
    assert got["fpr95_ood_tpr"] == pytest.approx(ref["fpr95_ood_tpr"])
    assert got["fpr95_id_tpr"] == pytest.approx(ref["fpr95_id_tpr"])


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="both ID and OOD"):
        ood_metrics(torch.randn(10), torch.zeros(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="same shape"):
        ood_metrics(torch.randn(10), torch.zeros(9, dtype=torch.bool))
    with pytest.raises(ValueError, match="0/1"):
        ood_metrics(torch.randn(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="0/1"):
        ood_metrics(torch.randn(3), torch.tensor([0.0, 1.0, 0.5]))


def test_float_zero_one_labels_count_as_booleans():
    # Was: refused ("booleans or 0/1 integers"), though numpy and sklearn labels often are floats
    scores = torch.randn(20, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 2
    got, want = ood_metrics(scores, labels.double()), ood_metrics(scores, labels.bool())
    numbers = [k for k, v in want.items() if isinstance(v, float)]
    assert "AUROC" in numbers and all(got[k] == want[k] for k in numbers)


def _fpr_at_first_tpr(y_true, score, level=0.95):
    # OpenOOD v1.5's rule, on the full curve: fpr[argmax(tpr >= level)]
    fpr, tpr, _ = roc_curve(y_true, score, drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= level)])


@pytest.mark.parametrize("seed", range(5))
def test_both_fpr95_conventions_match_sklearn_roc_curve_with_ties(seed):
    scores, is_ood = _scores(seed=seed, n_id=97, n_ood=61, shift=1.0)
    scores = scores.round(decimals=1)  # many ties, across the two classes too
    assert len(scores.unique()) < 60
    out = ood_metrics(scores, is_ood)
    s, t = scores.numpy(), is_ood.numpy()
    # ID positive, ranked by -score: OOD accepted when 95% of ID are accepted
    assert out["fpr95_id_tpr"] == _fpr_at_first_tpr(~t, -s)
    # OOD positive, ranked by score: ID flagged when 95% of OOD are flagged
    assert out["fpr95_ood_tpr"] == _fpr_at_first_tpr(t, s)
    assert out["fpr95_id_tpr"] != out["fpr95_ood_tpr"]  # two different numbers on these scores
    assert _fpr_at_first_tpr(~t, -s, 0.8) == ood_metrics(scores, is_ood, 0.8)["fpr80_id_tpr"]


def test_fpr95_ood_tpr_is_pytorch_ood_fpr95tpr():
    from pytorch_ood.metrics import OODMetrics
    for seed in range(3):
        scores, is_ood = _scores(seed=seed)
        scores = scores.round(decimals=1)
        ref = OODMetrics().update(scores, torch.where(is_ood, -1, 0)).compute()["FPR95TPR"]
        out = ood_metrics(scores, is_ood)
        assert out["fpr95_ood_tpr"] == pytest.approx(float(ref), abs=1e-12)
        assert "FPR95TPR" not in out  # only the explicit names are reported


def test_fpr95_id_tpr_hand_computation():
    # 20 ID scores 0..19, OOD scores 15.5 .. 24.5: 95% of ID (19 of 20) are accepted at
    # score <= 18, which accepts the OOD scores 15.5, 16.5, 17.5 -> 3 of 10.
    id_scores = torch.arange(20, dtype=torch.float64)
    ood_scores = torch.arange(10, dtype=torch.float64) + 15.5
    scores = torch.cat([id_scores, ood_scores])
    is_ood = torch.arange(30) >= 20
    out = ood_metrics(scores, is_ood)
    assert out["fpr95_id_tpr"] == pytest.approx(0.3, abs=1e-12)
    # flag 95% of OOD (10 of 10 with 9.5 < 10 needed): threshold 15.5 flags ID 16..19 -> 4/20
    assert out["fpr95_ood_tpr"] == pytest.approx(0.2, abs=1e-12)


# --- what mutation testing found unpinned: the rank search at float boundaries, names ---

@pytest.mark.parametrize("n, tpr, k", [
    (25, 0.28, 7),                       # 0.28 * 25 = 7.000000000000001: ceil overshoots to 8
    (3, math.nextafter(1 / 3, 1), 2),    # 3 * tpr rounds to 1.0, but 1 / 3 < tpr: needs 2
    (5, 0.2, 1),                         # the fewest: one positive
    (4, 1.0, 4),                         # every positive
])
def test_fpr_at_tpr_finds_the_fewest_positives_as_roc_curve(n, tpr, k):
    # roc_curve's tpr is k / n in floating point; the threshold is the k-th highest positive
    positive = torch.arange(n, 0, -1, dtype=torch.float64)  # n, n-1, ..., 1
    negative = torch.arange(n + 1, dtype=torch.float64) + 0.5  # one negative between each pair
    want = float((negative >= n + 1 - k).double().mean())
    assert fpr_at_tpr(positive, negative, tpr) == want
    if tpr == 0.28:  # the default rate is 95%: 24 of the 25 positives
        assert fpr_at_tpr(positive, negative) == float((negative >= 2).double().mean())
    labels = np.r_[np.ones(n, bool), np.zeros(n + 1, bool)]
    assert want == _fpr_at_first_tpr(labels, np.r_[positive.numpy(), negative.numpy()], tpr)


def test_fpr_at_tpr_takes_integer_scores_and_refuses_a_boolean_rate():
    assert fpr_at_tpr(torch.tensor([3, 2, 1]), torch.tensor([2, 0]), 1.0) == 0.5
    with pytest.raises(ValueError, match=r"^tpr must be a number in \(0, 1\], got True$"):
        fpr_at_tpr(torch.rand(3), torch.rand(3), True)


def test_fpr_keys_name_the_level():
    assert fpr_keys() == ("fpr95_id_tpr", "fpr95_ood_tpr")
    assert fpr_keys(0.995) == ("fpr99_5_id_tpr", "fpr99_5_ood_tpr")
    scores, is_ood = _scores(seed=4)
    out = ood_metrics(scores, is_ood, fpr_at=0.995)
    assert {"fpr99_5_id_tpr", "fpr99_5_ood_tpr"} <= set(out)


def test_ood_metrics_names_each_bad_argument():
    scores, is_ood = torch.randn(4), torch.tensor([0, 1, 0, 1])
    with pytest.raises(TypeError, match="^scores must be a torch.Tensor, got list$"):
        ood_metrics(scores.tolist(), is_ood)
    with pytest.raises(TypeError, match="^is_ood must be a torch.Tensor, got list$"):
        ood_metrics(scores, is_ood.tolist())
    with pytest.raises(ValueError, match="^is_ood must hold booleans or 0/1 values$"):
        ood_metrics(scores, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"^fpr_at must be a number in \(0, 1\], got 1.5$"):
        ood_metrics(scores, is_ood, fpr_at=1.5)
