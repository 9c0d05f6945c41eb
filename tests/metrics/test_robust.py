"""robust_accuracy: AutoAttack through the official code, PGD/FGSM, and the shared conventions."""

import pytest
import torch
from torch import nn

from robustrep.metrics import robust_accuracy
from robustrep.metrics.robust import eps_text

pyautoattack = pytest.importorskip("pyautoattack")


def _tiny_model(classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(),
                         nn.Linear(16, classes)).eval()


def _data(model: nn.Module, n: int = 12, wrong: int = 0):
    """Images the model gets right (labels = its predictions), except the first ``wrong``."""
    x = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:wrong] = (y[:wrong] + 1) % 10
    return x, y


def _direct(model, x, y, eps, norm, version="standard", attacks=None, seed=0, bs=250):
    """pyautoattack called as its README shows; robust = label kept on the returned images."""
    adversary = pyautoattack.AutoAttack(model, norm=norm, eps=eps, version=version,
                                        attacks=attacks, seed=seed, device="cpu")
    if version == "custom":
        adversary.apgd.n_restarts = 1
    adversary.logger.disabled = True
    x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=bs)
    with torch.no_grad():
        assert torch.equal(model(x_adv).argmax(1), y_adv)
    return (y_adv == y).float().mean().item()


@pytest.fixture(scope="module")
def standard():
    """One standard AutoAttack run (Linf 8/255) on 5 images, 1 wrong clean (about 7 s: Square's
    5000 queries and FAB-T's 9 targets run on every survivor)."""
    model = _tiny_model()
    x, y = _data(model, n=5, wrong=1)
    model.train()  # robust_accuracy must evaluate in eval mode and restore this
    rng_before = torch.get_rng_state()
    result = robust_accuracy(model, [(x[:2], y[:2]), (x[2:], y[2:])], "autoattack",
                             eps=8 / 255, norm="Linf", seed=0, batch_size=5)
    rng_kept = torch.equal(torch.get_rng_state(), rng_before)
    return model, x, y, result, rng_kept


def test_autoattack_equals_the_official_code_called_directly(standard):
    model, x, y, result, _ = standard
    assert result.n == 5 and result.attack == "autoattack"
    assert result.robust_acc == pytest.approx(_direct(_tiny_model(), x, y, 8 / 255, "Linf", bs=5))
    assert 0 < result.robust_acc < result.clean_acc  # the attack bites, but not everything
    assert "AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square" in result.convention
    assert f"pyautoattack {pyautoattack.__version__}" in result.convention
    assert result.convention.endswith("Linf eps=8/255")


def test_autoattack_leaves_model_and_global_rng_as_they_were(standard):
    model, _, _, _, rng_kept = standard
    assert model.training  # mode restored
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert rng_kept  # pyautoattack seeds torch's global generator; we fork it


def test_autoattack_is_at_most_pgd20_and_never_counts_clean_wrong_samples(standard):
    model, x, y, result, _ = standard
    pgd20 = robust_accuracy(model, (x, y), "pgd", eps=8 / 255, steps=20)
    assert result.robust_acc <= pgd20.robust_acc <= pgd20.clean_acc
    assert result.clean_acc == pytest.approx(4 / 5)
    assert not result.robust[:1].any() and not result.correct[:1].any()
    assert bool((result.robust <= result.correct).all())


class _FooledOnlyOnTheGrid(nn.Module):
    """Wrong on the clean images (pixel [0, 0, 1] exactly 0.5), right on any perturbed copy.

    The sample index is read from pixel [0, 0, 0] in steps of 0.1, far above eps. Gradients are
    zero, so a PGD with random start returns a perturbed image the model classifies correctly:
    only the clean-correct rule keeps such a sample out of the robust count.
    """

    def __init__(self, y: torch.Tensor, classes: int = 10):
        super().__init__()
        self.register_buffer("right", nn.functional.one_hot(y, classes).float() * 5)
        self.register_buffer("wrong", nn.functional.one_hot((y + 1) % classes, classes) * 5.)
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        idx = (x[:, 0, 0, 0] * 10).round().long()
        clean = (x[:, 0, 0, 1] == 0.5)[:, None]
        return torch.where(clean, self.wrong[idx], self.right[idx]) + 0 * x.sum() * self.anchor


def test_pgd_never_counts_clean_wrong_samples():
    y = torch.tensor([3, 1, 4, 1])
    x = torch.full((4, 1, 2, 2), 0.5)
    x[:, 0, 0, 0] = torch.arange(4) / 10
    model = _FooledOnlyOnTheGrid(y)
    result = robust_accuracy(model, (x, y), "pgd", eps=8 / 255)
    assert result.clean_acc == 0.0
    assert result.robust_acc == 0.0


def test_pgd_moves_the_clean_wrong_images_to_correct_ones():
    # The premise of the test above: the perturbed images are classified correctly.
    from robustrep.adversarial import pgd
    y = torch.tensor([3, 1, 4, 1])
    x = torch.full((4, 1, 2, 2), 0.5)
    x[:, 0, 0, 0] = torch.arange(4) / 10
    model = _FooledOnlyOnTheGrid(y)
    x_adv = pgd(lambda v: model(v).sum(1), x, 8 / 255, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(x_adv).argmax(1), y)


def test_l2_apgd_equals_the_official_code_and_shrinks_with_eps():
    model = _tiny_model()
    x, y = _data(model, n=16)
    ours = robust_accuracy(model, (x, y), "apgd-ce", eps=0.3, norm="l2", seed=3)
    assert ours.norm == "L2" and ours.convention.endswith("L2 eps=0.3")
    assert ours.robust_acc == pytest.approx(
        _direct(model, x, y, 0.3, "L2", version="custom", attacks=["apgd-ce"], seed=3))
    assert 0 < ours.robust_acc < 1
    assert robust_accuracy(model, (x, y), "apgd-ce", eps=0.0, norm="L2").robust_acc == 1.0
    big = robust_accuracy(model, (x, y), "pgd", eps=3.0, norm="L2", steps=20)
    assert big.robust_acc < ours.robust_acc


def test_apgd_t_equals_the_official_code_and_is_at_most_apgd_ce():
    model = _tiny_model()
    x, y = _data(model, n=8, wrong=2)
    ours = robust_accuracy(model, [(x[:5], y[:5]), (x[5:], y[5:])], "apgd-t", eps=6 / 255)
    assert ours.robust_acc == pytest.approx(
        _direct(model, x, y, 6 / 255, "Linf", version="custom", attacks=["apgd-t"]))
    assert ours.robust_acc <= robust_accuracy(model, (x, y), "apgd-ce", eps=6 / 255).robust_acc
    assert "APGD-T alone" in ours.convention


def test_fewer_than_four_classes_leaves_out_apgd_t_and_says_so():
    model = _tiny_model(classes=3)
    x = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    result = robust_accuracy(model, (x, y), "apgd-ce", eps=8 / 255)
    assert result.n == 6
    with pytest.raises(ValueError, match="at least 4 classes"):
        robust_accuracy(model, (x, y), "apgd-t")


def test_arguments_are_checked():
    model = _tiny_model()
    x, y = _data(model, n=4)
    with pytest.raises(ValueError, match="attack must be one of"):
        robust_accuracy(model, (x, y), "cw")
    with pytest.raises(ValueError, match="norm must be one of 'Linf', 'L2'"):
        robust_accuracy(model, (x, y), "pgd", norm="L1")
    with pytest.raises(ValueError, match="no samples"):
        robust_accuracy(model, [], "pgd")
    assert eps_text(8 / 255) == "8/255" and eps_text(0.5) == "0.5"
    assert eps_text(2.0, "L2") == "2" and eps_text(128 / 255, "L2") == "0.501961"  # not /255


def test_attack_steps_follow_the_standard_autoattack_settings():
    from robustrep.metrics.robust import attack_steps
    assert attack_steps("autoattack", 10) == {"apgd-ce": 100, "apgd-t": 900, "fab-t": 900,
                                              "square": pytest.approx(5000 / 3)}
    # three classes: APGD-T left out (it needs 4), FAB-T on the 2 other classes
    assert list(attack_steps("autoattack", 3)) == ["apgd-ce", "fab-t", "square"]
    assert attack_steps("autoattack", 3)["fab-t"] == 200
    assert attack_steps("apgd-t", 100) == {"apgd-t": 900}
    assert attack_steps("pgd", 10, steps=7) == {"pgd": 7} and attack_steps("fgsm", 10) == {
        "fgsm": 1}


def test_each_modules_own_mode_is_restored():
    # Was: model.train(was_training) on exit, which switched a frozen (eval) submodule of a
    # model being trained back to training
    model = _tiny_model()
    x, y = _data(model, n=4)
    model.train()
    model[1].eval()
    robust_accuracy(model, (x, y), attack="fgsm", eps=8 / 255)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]


def test_float_labels_are_refused_not_truncated():
    # Was: y = [1.7, ...] silently became class 1
    model = _tiny_model()
    x, y = _data(model, n=4)
    with pytest.raises(TypeError, match="batch 0: y must hold integer class labels"):
        robust_accuracy(model, (x, y.float() + 0.7), attack="fgsm", eps=8 / 255)
