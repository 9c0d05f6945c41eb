"""``evaluate_model`` (tasks/classify/eval_metrics.py): the clean, calibration, adversarial and
corruption numbers of a model on a loader, against hand computations and references."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adversarial import pgd
from robustrep.metrics import robust_accuracy
from robustrep.tasks.classify.eval_metrics import evaluate_model
from robustrep.tasks.common.classifier import create_classifier

from .conftest import Threshold


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
    got = robust_accuracy(model, batches, "pgd", eps, steps=steps, batch_size=6, seed=3)
    assert got.robust_acc == ref_ok / 12


def test_robust_accuracy_is_at_most_clean_and_drops_with_eps():
    model, batches = _fixed_model_and_data()
    report = evaluate_model(model, batches, eps=8 / 255, attacks=("pgd", "fgsm"),
                            pgd_steps=(10,), corruptions=(), severities=())
    clean = report["summary"]["clean_acc"]
    assert clean == 1.0
    assert report["summary"]["pgd10_acc"] <= clean and report["summary"]["fgsm_acc"] <= clean
    # the headline is the worst case over the attacks, whatever their order
    worst = min(("pgd10", "fgsm"), key=lambda k: report["summary"][f"{k}_acc"])
    assert report["summary"]["robust_attack"] == worst
    assert report["summary"]["robust_acc"] == report["summary"][f"{worst}_acc"]
    report["adversarial"] = {"fgsm": 0.5, "pgd10": 0.2}  # FGSM listed first: PGD is the headline
    from robustrep.tasks.classify.eval_metrics import _summary
    assert (_summary(report)["robust_attack"], _summary(report)["robust_acc"]) == ("pgd10", 0.2)
    assert report["robust_convention"]["pgd10"].startswith("PGD-10 (Madry")
    big = evaluate_model(model, batches, eps=0.5, attacks=("pgd",), pgd_steps=(10,),
                         corruptions=(), severities=())
    assert big["summary"]["pgd10_acc"] < clean
    assert not model.training


def test_attacks_run_on_the_first_n_attack_samples_only():
    model, batches = _fixed_model_and_data()
    report = evaluate_model(model, batches, eps=0.5, attacks=("pgd",), pgd_steps=(10,),
                            n_attack=5, corruptions=(), severities=())
    assert report["n_attack"] == 5 and report["robust"]["pgd10"]["n"] == 5
    alone = robust_accuracy(model, (batches[0][0][:5], batches[0][1][:5]), "pgd", 0.5, steps=10)
    assert report["summary"]["pgd10_acc"] == alone.robust_acc
    with pytest.raises(ValueError, match="attack must be one of"):
        evaluate_model(model, batches, attacks=("cw",), corruptions=())
    # the attacks take --batch-size (was always 250, whatever a GPU could hold)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
    evaluate_model(model, batches, eps=0.5, attacks=("pgd",), pgd_steps=(2,), n_attack=5,
                   corruptions=(), severities=(), attack_batch=2)
    hook.remove()
    assert 5 not in seen and {2, 1} <= set(seen)  # the 5 attacked images: 2 + 2 + 1


def test_a_failed_evaluation_gives_the_model_back_in_its_own_mode(monkeypatch):
    """evaluate_model puts the model in eval mode; an error mid-way (an attack, a corruption
    file) left a training model there, so a library caller's next training step ran without
    dropout or batch-norm updates."""
    model, batches = _fixed_model_and_data()
    model.train()

    def fails(*args, **kwargs):
        assert not model.training  # the attacks see an eval-mode model
        raise RuntimeError("out of memory")

    monkeypatch.setattr("robustrep.tasks.classify.eval_metrics.adversarial_report", fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate_model(model, batches, attacks=("pgd",), corruptions=())
    assert model.training


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
    report = evaluate_model(_LookupModel(probs.log()), [(x, labels)], attacks=(),
                            corruptions=(), severities=(), bins=5)
    # Bins of width 0.2: (0.4, 0.6] holds 0.58 and 0.55 -> conf 0.565, acc 0.5;
    # (0.6, 0.8] holds 0.7 -> conf 0.7, acc 1; (0.8, 1] holds 0.9, 0.9 -> conf 0.9, acc 0.5.
    hand = (2 / 5) * abs(0.565 - 0.5) + (1 / 5) * abs(0.7 - 1.0) + (2 / 5) * abs(0.9 - 0.5)
    assert report["clean"]["ece"] == pytest.approx(hand, abs=1e-6)  # float32 logits
    assert report["clean"]["acc"] == pytest.approx(3 / 5)
    assert report["clean"]["bins"]["count"] == [0, 0, 2, 1, 2]
    assert report["clean"]["nll"] == pytest.approx(float(-probs[range(5), labels].log().mean()))


def test_corruption_report_gives_mce_from_the_per_severity_table():
    model, batches = _fixed_model_and_data()
    report = evaluate_model(model, batches, attacks=(), corruptions=("contrast", "brightness"),
                            severities=(1, 5))
    table, cs = report["corruptions"], report["corruption_summary"]
    errors = [1 - table[c][s] for c in ("contrast", "brightness") for s in ("1", "5")]
    assert cs["mce"] == pytest.approx(sum(errors) / 4)
    assert cs["relative_mce"] == pytest.approx(cs["mce"] - (1 - report["clean"]["acc"]))
    assert report["summary"]["mce"] == cs["mce"]


def test_cifar_c_through_the_eval_path_on_fake_files(tmp_path):
    """Released layout, 4 images per severity; the model's answer depends on the pixel value."""
    import numpy as np
    from robustrep.data.cifar_c import CIFAR_C_CORRUPTIONS
    labels = np.tile(np.array([0, 1, 0, 1], dtype=np.uint8), 5)
    np.save(tmp_path / "labels.npy", labels)
    for k, name in enumerate(CIFAR_C_CORRUPTIONS):
        # Image value v: the model predicts class 1 iff v > 127. Severity s: the first
        # min(s, 4) - 1 images get the wrong side, the same for every corruption.
        images = np.zeros((20, 32, 32, 3), dtype=np.uint8)
        for s in range(5):
            for i in range(4):
                right = 255 if labels[i] == 1 else 0
                images[s * 4 + i] = (255 - right) if i < min(s, 3) else right
        np.save(tmp_path / f"{name}.npy", images)

    x = torch.zeros(4, 3, 32, 32)
    x[1::2] = 1.0
    report = evaluate_model(Threshold(), [(x, torch.tensor([0, 1, 0, 1]))], attacks=(),
                            corruptions=(), cifar_c_root=tmp_path)
    acc = report["cifar_c"]["accuracy"]
    assert acc["fog"] == {"1": 1.0, "2": 0.75, "3": 0.5, "4": 0.25, "5": 0.25}
    # Every corruption has error mean(0, .25, .5, .75, .75) = 0.45; clean error 0.
    assert report["cifar_c"]["mce"] == pytest.approx(0.45)
    assert report["cifar_c"]["relative_mce"] == pytest.approx(0.45)
    assert report["summary"]["cifar_c_mce"] == pytest.approx(0.45)
    # the clean set's first 2 images: the files' first 2 rows of each severity, not all 4
    # (was: every row, so the relative mCE compared other images)
    first = evaluate_model(Threshold(), [(x[:2], torch.tensor([0, 1]))], attacks=(),
                           corruptions=(), cifar_c_root=tmp_path)
    assert first["cifar_c"]["n"] == 2 and "the first 2 images of each" in \
        first["cifar_c"]["convention"]
    assert first["cifar_c"]["accuracy"]["fog"] == {"1": 1.0, "2": 0.5, "3": 0.0, "4": 0.0,
                                                   "5": 0.0}
    # --severities as for the corruptions on the fly (was ignored: all 5 scored)
    two = evaluate_model(Threshold(), [(x, torch.tensor([0, 1, 0, 1]))], attacks=(),
                         corruptions=(), severities=(2, 3), cifar_c_root=tmp_path)
    assert two["cifar_c"]["accuracy"]["fog"] == {"2": 0.75, "3": 0.5}
    assert two["cifar_c"]["mce"] == pytest.approx(0.375)
    assert "15 corruptions x severities 2,3" in two["cifar_c"]["convention"]
    from robustrep.tasks.classify.eval_table import format_table
    table = format_table(two)  # the files' rows (were in report.json alone)
    assert "CIFAR-C fog" in table and "s2=0.7500 s3=0.5000" in table


def test_the_corruption_convention_counts_the_benchmarks_and_names_the_extras():
    """Was: "3 of the 15 CIFAR-10-C corruptions" for contrast, gaussian_blur and saturate, of
    which only contrast is one of the 15."""
    from robustrep.tasks.classify.eval_metrics import _which_corruptions
    assert _which_corruptions({"contrast": {}, "gaussian_blur": {}, "saturate": {}}) == (
        "1 of the 15 CIFAR-10-C corruptions and 2 extra (gaussian_blur, saturate)")
    assert _which_corruptions({"fog": {}, "contrast": {}}) == "2 of the 15 CIFAR-10-C corruptions"
