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


# --- what mutation testing found unpinned: the bin count, names, boundaries, devices ---

def _gaps_of_both_signs(n=400, classes=5):
    # Random labels leave every bin over-confident, and then the ECE is mean(conf) - acc for any
    # binning; here the model is right more often than its confidence says where that is high.
    gen = torch.Generator().manual_seed(3)
    logits = 2 * torch.randn(n, classes, generator=gen, dtype=torch.float64)
    conf, pred = logits.softmax(1).max(1)
    right = torch.rand(n, generator=gen, dtype=torch.float64) < (1.5 * conf - 0.2).clamp(0, 1)
    return logits, torch.where(right, pred, (pred + 1) % classes)


def test_ece_matches_loop_reference_where_the_binning_matters():
    logits, y = _gaps_of_both_signs()
    for n_bins in (7, 15, 16):
        got = expected_calibration_error(logits, y, n_bins=n_bins)["ece"]
        assert float(got) == pytest.approx(_loop_ece(logits, y, n_bins), abs=1e-12)
    default = expected_calibration_error(logits, y)  # Guo et al.'s 15 bins
    assert float(default["ece"]) == pytest.approx(_loop_ece(logits, y, 15), abs=1e-12)
    assert float(default["ece"]) != pytest.approx(_loop_ece(logits, y, 16), abs=1e-3)
    assert default["bin_count"].shape == (15,)


def test_ece_of_one_sample_and_under_another_default_device():
    out = expected_calibration_error(torch.tensor([[0.7, 0.3]], dtype=torch.float64),
                                     torch.tensor([1]), from_logits=False)
    assert float(out["ece"]) == pytest.approx(0.7, abs=1e-12)  # conf 0.7, wrong
    logits, y = _gaps_of_both_signs(60)
    want = expected_calibration_error(logits, y, n_bins=4)
    with torch.device("meta"):  # the bins are made beside the inputs, not on the default device
        got = expected_calibration_error(logits, y, n_bins=4)
    for key in ("ece", "bin_edges", "bin_count"):
        assert got[key].device.type == "cpu"
        torch.testing.assert_close(got[key], want[key])


@pytest.mark.parametrize("probs, accepted", [
    ([[1.0, 0.0], [0.0, 1.0]], True),            # one-hot rows: 1 is a probability
    ([[0.5, 0.5004]], True),                     # a sum within 1e-3 of 1 (float32 rounding)
    ([[0.5, 0.502]], False),                     # ... but not 2e-3
    ([[0.5, 0.5, 0.5]], False),                  # in [0, 1], summing to 1.5
    ([[1.5, -0.5]], False),                      # summing to 1, outside [0, 1]
    ([[1.0005, 0.0]], False),                    # within the sum tolerance, above 1
])
def test_ece_probabilities_must_be_distributions(probs, accepted):
    probs = torch.tensor(probs, dtype=torch.float64)
    y = torch.zeros(len(probs), dtype=torch.long)
    if accepted:
        expected_calibration_error(probs, y, from_logits=False)
        return
    message = ("^with from_logits=False each row of logits_or_probs must be a probability "
               r"distribution \(values in \[0, 1\] summing to 1\); for logits pass "
               "from_logits=True$")
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probs, y, from_logits=False)


def test_ece_messages_name_the_bins_and_non_finite_input():
    probs, y = torch.full((2, 2), 0.5), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="^n_bins must be > 0, got 0$"):
        expected_calibration_error(probs, y, n_bins=0)
    with pytest.raises(TypeError, match="^n_bins must be a positive int, got float$"):
        expected_calibration_error(probs, y, n_bins=4.0)
    with pytest.raises(ValueError, match=r"^logits_or_probs holds NaN or \+inf; give finite logits "
                                         r"\(-inf allowed\) or probabilities$"):
        expected_calibration_error(torch.tensor([[0.0, float("inf")]]), y[:1])


@pytest.mark.parametrize("metric, name", [(accuracy, "logits"), (nll, "logits"),
                                          (expected_calibration_error, "logits_or_probs")])
def test_input_checks_name_the_argument(metric, name):
    logits, y = torch.randn(2, 3), torch.tensor([0, 2])
    with pytest.raises(TypeError, match=f"^{name} must be a torch.Tensor, got list$"):
        metric(logits.tolist(), y)
    with pytest.raises(TypeError, match=f"^{name} must be a floating-point tensor, got dtype "
                                        "torch.int64$"):
        metric(logits.long(), y)
    with pytest.raises(ValueError, match=rf"^{name} must have rank 2, got rank 1 with shape "
                                         r"\(3,\)$"):
        metric(logits[0], y[:1])
    with pytest.raises(TypeError, match="^y must be a torch.Tensor, got list$"):
        metric(logits, y.tolist())
    with pytest.raises(ValueError, match=r"^y must have rank 1, got rank 2"):
        metric(logits, y[:, None])
    with pytest.raises(ValueError, match=rf"^tensors must be on the same device, got {name} on "
                                         r"meta, y on cpu$"):
        metric(logits.to("meta"), y)
    # the last class is a label; one past it is not
    metric(logits, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=rf"^y holds labels outside \[0, 3\) \(the {name} "
                                         r"columns\): min 0, max 3$"):
        metric(logits, torch.tensor([0, 3]))


def test_accuracy_and_nll_messages():
    logits, y = torch.randn(2, 3), torch.tensor([0, 2])
    with pytest.raises(ValueError, match="^topk must be > 0, got 0$"):
        accuracy(logits, y, topk=(1, 0))
    with pytest.raises(TypeError, match="^topk must be a positive int, got float$"):
        accuracy(logits, y, topk=(1, 2.0))
    with pytest.raises(ValueError, match=r"^logits hold NaN, which has no rank; give finite "
                                         r"logits \(\+-inf allowed\)$"):
        accuracy(torch.full((2, 3), float("nan")), y)
    with pytest.raises(ValueError, match="^reduction must be one of 'mean', 'sum', 'none'; "
                                         "got 'max'$"):
        nll(logits, y, reduction="max")
    torch.testing.assert_close(nll(logits, y, reduction="sum"),
                               F.cross_entropy(logits, y, reduction="sum"))


def test_ece_from_logits_takes_a_bool_only():
    # "false" is truthy: probabilities were softmaxed a second time, an ECE of the wrong thing.
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = torch.tensor([0, 1, 1])
    for value in ("false", 0, None):
        with pytest.raises(TypeError, match=f"^from_logits must be a bool, got "
                                            f"{type(value).__name__}$"):
            expected_calibration_error(probs, y, from_logits=value)
