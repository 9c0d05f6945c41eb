import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adversarial import pgd
from robustrep.tasks.classify.corruptions import CORRUPTIONS, corrupt
from robustrep.tasks.classify.evaluate import evaluate_model, evaluate_run, robust_accuracy
from robustrep.tasks.common.classifier import create_classifier


def _fixed_model_and_data():
    torch.manual_seed(0)
    model = create_classifier("test_resnet", 3, in_chans=1).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(12, 1, 16, 16, generator=g), torch.randint(0, 3, (12,), generator=g)
    # Make the labels the model's own predictions so clean accuracy is 1 and attacks can bite.
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, [(x[:6], y[:6]), (x[6:], y[6:])]


def reference_pgd(model, x, y, eps, alpha, steps, generator):
    """Plain Linf PGD with a uniform random start (Madry et al.), written independently."""
    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
    return x_adv


def test_pgd_matches_an_independent_reference():
    model, batches = _fixed_model_and_data()
    eps, steps = 8 / 255, 10
    alpha = 2.5 * eps / steps
    ours = pgd(lambda v: F.cross_entropy(model(v), batches[0][1], reduction="none"),
               batches[0][0], eps, steps=steps, generator=torch.Generator().manual_seed(5))
    ref = reference_pgd(model, *batches[0], eps, alpha, steps, torch.Generator().manual_seed(5))
    assert torch.allclose(ours, ref, atol=1e-6)
    assert (ours - batches[0][0]).abs().max() <= eps + 1e-6
    # Robust accuracy through the eval path equals the reference's, batch by batch.
    gen = torch.Generator().manual_seed(3)
    ref_ok = 0
    for x, y in batches:
        x_adv = reference_pgd(model, x, y, eps, alpha, steps, gen)
        with torch.no_grad():
            ref_ok += int(((model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)).sum())
    got = robust_accuracy(model, batches, torch.device("cpu"), "pgd", eps, steps, seed=3)
    assert got == ref_ok / 12


def test_robust_accuracy_is_at_most_clean_and_drops_with_eps():
    model, batches = _fixed_model_and_data()
    report = evaluate_model(model, batches, eps=8 / 255, pgd_steps=(10,), corruptions=(),
                            severities=())
    clean = report["summary"]["clean_acc"]
    assert clean == 1.0
    assert report["summary"]["pgd10_acc"] <= clean and report["summary"]["fgsm_acc"] <= clean
    big = evaluate_model(model, batches, eps=0.5, pgd_steps=(10,), fgsm_attack=False,
                         corruptions=(), severities=())
    assert big["summary"]["pgd10_acc"] < clean
    assert not model.training


class _LookupModel(nn.Module):
    """Returns fixed logits; the pixel at [0, 0, 0] encodes the sample index."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("table", logits)
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        idx = (x[:, 0, 0, 0] * 100).round().long()
        return self.table[idx] + 0 * self.anchor


def test_ece_through_the_eval_path_matches_hand_computation():
    # Confidences 0.9 (right), 0.9 (wrong), 0.58 (right), 0.7 (right), 0.55 (wrong); 2 classes.
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.42, 0.58], [0.7, 0.3], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 1, 0, 0])
    x = torch.zeros(5, 1, 4, 4)
    x[:, 0, 0, 0] = torch.arange(5) / 100
    report = evaluate_model(_LookupModel(probs.log()), [(x, labels)], pgd_steps=(),
                            fgsm_attack=False, corruptions=(), severities=(), bins=5)
    # Bins of width 0.2: (0.4, 0.6] holds 0.58 and 0.55 -> conf 0.565, acc 0.5;
    # (0.6, 0.8] holds 0.7 -> conf 0.7, acc 1; (0.8, 1] holds 0.9, 0.9 -> conf 0.9, acc 0.5.
    hand = (2 / 5) * abs(0.565 - 0.5) + (1 / 5) * abs(0.7 - 1.0) + (2 / 5) * abs(0.9 - 0.5)
    assert report["clean"]["ece"] == pytest.approx(hand, abs=1e-6)  # float32 logits
    assert report["clean"]["acc"] == pytest.approx(3 / 5)
    assert report["clean"]["bins"]["count"] == [0, 0, 2, 1, 2]
    assert report["clean"]["nll"] == pytest.approx(float(-probs[range(5), labels].log().mean()))


def test_corruptions_are_deterministic_and_grow_with_severity():
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for name in CORRUPTIONS:
        a = corrupt(x, name, 3, torch.Generator().manual_seed(7))
        b = corrupt(x, name, 3, torch.Generator().manual_seed(7))
        assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
        dist = [(corrupt(x, name, s, torch.Generator().manual_seed(7)) - x).abs().mean()
                for s in (1, 3, 5)]
        assert dist[0] < dist[1] < dist[2], name
    flat = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(corrupt(flat, "gaussian_blur", 5), flat)
    assert torch.allclose(corrupt(flat, "contrast", 5), flat)
    with pytest.raises(ValueError, match="valid: gaussian_noise"):
        corrupt(x, "fog", 1)
    with pytest.raises(ValueError, match="1..5"):
        corrupt(x, "contrast", 6)


def test_eval_run_writes_report_and_diagram(trained_run, tmp_path):
    report = evaluate_run(trained_run, pgd_steps=(2,), severities=(1, 5), max_samples=16,
                          out=tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["summary"]["clean_acc"] == pytest.approx(report["summary"]["clean_acc"])
    assert set(saved["corruptions"]) == set(CORRUPTIONS)
    assert (tmp_path / "eval" / "reliability.png").stat().st_size > 0
    assert saved["weights"] == "ema" and saved["n"] == 16
