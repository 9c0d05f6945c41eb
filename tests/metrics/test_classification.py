"""Accuracy / NLL against torch, ECE against a hand computation and a loop reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustrep.metrics import accuracy, expected_calibration_error, nll


def test_accuracy_topk_matches_manual():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    top1 = (logits.argmax(1) == y).float().mean()
    ranks = (logits > logits.gather(1, y[:, None])).sum(1)  # classes strictly above the label
    top5 = (ranks < 5).float().mean()
    assert accuracy(logits, y) == pytest.approx(float(top1))
    a1, a5 = accuracy(logits, y, topk=(1, 5))
    assert float(a1) == pytest.approx(float(top1)) and float(a5) == pytest.approx(float(top5))
    assert 0 < float(top1) < float(top5) < 1
    assert float(accuracy(logits, y, topk=10)) == 1.0


def test_accuracy_refuses_nan_logits_and_ranks_infinite_ones():
    # NaN has no rank: topk counted a [nan, 0] row as class 0, a share that looked plausible
    for logits in (torch.tensor([[float("nan"), 0.0]]), torch.full((5, 5), float("nan"))):
        with pytest.raises(ValueError, match="logits hold NaN, which has no rank"):
            accuracy(logits, torch.zeros(len(logits), dtype=torch.long))
    inf = torch.tensor([[0.0, float("inf")], [float("-inf"), 0.0]])
    assert float(accuracy(inf, torch.tensor([1, 1]))) == 1.0


def test_nll_matches_cross_entropy():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 7, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 7, (32,), generator=gen)
    manual = -logits.log_softmax(1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(nll(logits, y), manual.mean())
    torch.testing.assert_close(nll(logits, y, reduction="none"), manual)
    assert nll(logits.half(), y).dtype == torch.float32
    torch.testing.assert_close(nll(logits.float(), y), F.cross_entropy(logits.float(), y))


def _hand_probs():
    probs = torch.tensor([
        [0.40, 0.30, 0.20, 0.10],  # conf .40, pred 0, y 0: correct, bin (.25, .5]
        [0.10, 0.45, 0.30, 0.15],  # conf .45, pred 1, y 2: wrong,   bin (.25, .5]
        [0.50, 0.20, 0.20, 0.10],  # conf .50 (upper edge, included), pred 0, y 0: correct
        [0.10, 0.10, 0.70, 0.10],  # conf .70, pred 2, y 2: correct, bin (.5, .75]
        [0.90, 0.05, 0.03, 0.02],  # conf .90, pred 0, y 1: wrong,   bin (.75, 1]
        [0.00, 0.00, 0.20, 0.80],  # conf .80, pred 3, y 3: correct, bin (.75, 1]
    ], dtype=torch.float64)
    return probs, torch.tensor([0, 2, 0, 2, 1, 3])


def test_ece_hand_computation():
    probs, y = _hand_probs()
    # bin 1: conf (.40+.45+.50)/3 = .45, acc 2/3; bin 2: .70 vs 1; bin 3: .85 vs 1/2
    expected = (3 * abs(0.45 - 2 / 3) + 1 * 0.30 + 2 * 0.35) / 6  # = 0.275
    for out in (expected_calibration_error(probs, y, n_bins=4, from_logits=False),
                expected_calibration_error(probs.log(), y, n_bins=4)):
        assert float(out["ece"]) == pytest.approx(expected, abs=1e-12)
        assert out["bin_count"].tolist() == [0, 3, 1, 2]
        conf, acc = out["bin_confidence"], out["bin_accuracy"]
        assert math.isnan(conf[0]) and math.isnan(acc[0])
        torch.testing.assert_close(conf[1:], torch.tensor([0.45, 0.70, 0.85], dtype=torch.float64))
        torch.testing.assert_close(acc[1:], torch.tensor([2 / 3, 1.0, 0.5], dtype=torch.float64))
        torch.testing.assert_close(out["bin_edges"],
                                   torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=torch.float64))


def _loop_ece(logits, y, n_bins):
    # the (lower, upper] binning of Guo et al.'s temperature-scaling code, written as a loop
    probs = logits.double().softmax(1)
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    ece = 0.0
    for m in range(n_bins):
        lower, upper = m / n_bins, (m + 1) / n_bins
        inside = (conf > lower) & (conf <= upper)
        if inside.any():
            ece += inside.double().mean() * (conf[inside].mean() - correct[inside].mean()).abs()
    return float(ece)


def test_ece_matches_loop_reference():
    gen = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(500, 10, generator=gen)
    y = torch.randint(0, 10, (500,), generator=gen)
    got = expected_calibration_error(logits, y)  # 15 bins
    assert float(got["ece"]) == pytest.approx(_loop_ece(logits, y, 15), abs=1e-12)
    assert int(got["bin_count"].sum()) == 500


def test_ece_zero_when_confident_and_right():
    logits = torch.eye(5) * 100.0
    out = expected_calibration_error(logits, torch.arange(5))
    assert float(out["ece"]) == pytest.approx(0.0, abs=1e-12)


def test_rejects_bad_input():
    with pytest.raises(TypeError, match="int64"):
        accuracy(torch.randn(4, 3), torch.zeros(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="same N"):
        nll(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds"):
        accuracy(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), topk=4)


@pytest.mark.parametrize("metric", [accuracy, nll, expected_calibration_error])
def test_labels_past_the_classes_and_empty_input_are_refused(metric):
    # Was: accuracy 0.0 and an ECE for label 14 of 3 classes, NaN for no samples, and nll a
    # torch IndexError
    with pytest.raises(ValueError, match=r"y holds labels outside \[0, 3\) .*max 14"):
        metric(torch.randn(2, 3), torch.tensor([0, 14]))
    with pytest.raises(ValueError, match="y holds labels outside"):
        metric(torch.randn(2, 3), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="holds no samples"):
        metric(torch.randn(0, 3), torch.zeros(0, dtype=torch.long))


def test_ece_of_probabilities_refuses_logits_given_by_mistake():
    # Was: from_logits=False trusted any values: logits gave an ECE of 2.07
    y = torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match="must be a probability distribution"):
        expected_calibration_error(torch.rand(5, 3) * 3, y, from_logits=False)
    probs = torch.randn(5, 3).softmax(1)
    assert torch.allclose(expected_calibration_error(probs, y, from_logits=False)["ece"],
                          expected_calibration_error(probs.log(), y)["ece"])
