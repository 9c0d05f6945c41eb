"""robust_accuracy: AutoAttack through the official code, PGD/FGSM, and the shared conventions."""

import pytest
import torch
from torch import nn

from robustrep.metrics import robust_accuracy
from robustrep.metrics.robust import eps_text

pyautoattack = pytest.importorskip("pyautoattack")


def tiny_model(classes: int = 10, seed: int = 0, hidden: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes)).eval()


def tiny_data(model: nn.Module, n: int = 12, wrong: int = 0):
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
    if version == "custom":  # the standard version's settings (its custom defaults differ)
        adversary.apgd.n_restarts = 1
        adversary.fab.n_restarts = 1
        with torch.no_grad():  # and as many targets as there are other classes, up to 9
            targets = min(9, model(x[:1]).shape[1] - 1)
        adversary.fab.n_target_classes = adversary.apgd_targeted.n_target_classes = targets
    adversary.logger.disabled = True
    x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=bs)
    with torch.no_grad():
        assert torch.equal(model(x_adv).argmax(1), y_adv)
    return (y_adv == y).float().mean().item()


@pytest.fixture(scope="module")
def standard():
    """One standard AutoAttack run (Linf 8/255) on 5 images, 1 wrong clean (about 7 s: Square's
    5000 queries and FAB-T's 9 targets run on every survivor)."""
    model = tiny_model()
    x, y = tiny_data(model, n=5, wrong=1)
    model.train()  # robust_accuracy must evaluate in eval mode and restore this
    rng_before = torch.get_rng_state()
    result = robust_accuracy(model, [(x[:2], y[:2]), (x[2:], y[2:])], "autoattack",
                             eps=8 / 255, norm="Linf", seed=0, batch_size=5)
    rng_kept = torch.equal(torch.get_rng_state(), rng_before)
    return model, x, y, result, rng_kept


def test_autoattack_equals_the_official_code_called_directly(standard):
    model, x, y, result, _ = standard
    assert result.n == 5 and result.attack == "autoattack"
    assert result.robust_acc == pytest.approx(_direct(tiny_model(), x, y, 8 / 255, "Linf", bs=5))
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
    model = tiny_model()
    x, y = tiny_data(model, n=16)
    ours = robust_accuracy(model, (x, y), "apgd-ce", eps=0.3, norm="l2", seed=3)
    assert ours.norm == "L2" and ours.convention.endswith("L2 eps=0.3")
    assert ours.robust_acc == pytest.approx(
        _direct(model, x, y, 0.3, "L2", version="custom", attacks=["apgd-ce"], seed=3))
    assert 0 < ours.robust_acc < 1
    assert robust_accuracy(model, (x, y), "apgd-ce", eps=0.0, norm="L2").robust_acc == 1.0
    big = robust_accuracy(model, (x, y), "pgd", eps=3.0, norm="L2", steps=20)
    assert big.robust_acc < ours.robust_acc


def test_apgd_t_equals_the_official_code_and_is_at_most_apgd_ce():
    model = tiny_model()
    x, y = tiny_data(model, n=8, wrong=2)
    ours = robust_accuracy(model, [(x[:5], y[:5]), (x[5:], y[5:])], "apgd-t", eps=6 / 255)
    assert ours.robust_acc == pytest.approx(
        _direct(model, x, y, 6 / 255, "Linf", version="custom", attacks=["apgd-t"]))
    assert ours.robust_acc <= robust_accuracy(model, (x, y), "apgd-ce", eps=6 / 255).robust_acc
    assert "APGD-T alone" in ours.convention


@pytest.mark.parametrize("attack, name", [
    ("fab-t", "FAB-T"),
    pytest.param("square", "Square", marks=pytest.mark.slow)])  # 5000 queries a survivor: 6 s
def test_fab_t_and_square_alone_equal_the_official_code(attack, name):
    # A lone Square is the usual check for masked gradients (it reads only the outputs)
    model = tiny_model(classes=3)  # FAB-T then aims at 2 targets, not 9: 5x quicker
    x, y = tiny_data(model, n=6, wrong=1)
    ours = robust_accuracy(model, (x, y), attack, eps=24 / 255, seed=4)
    assert ours.robust_acc == pytest.approx(
        _direct(model, x, y, 24 / 255, "Linf", version="custom", attacks=[attack], seed=4))
    assert 0 < ours.robust_acc < ours.clean_acc
    assert ours.convention.startswith(f"{name} alone (AutoAttack standard settings")


def test_a_lone_square_runs_only_square_with_the_standard_queries(monkeypatch):
    seen = {}

    def run(adversary, x, y, batch_size):
        seen.update(attacks=adversary.attacks_to_run, queries=adversary.square.n_queries)
        return x, y

    monkeypatch.setattr(pyautoattack.AutoAttack, "run_standard_evaluation", run)
    model = tiny_model()
    x, y = tiny_data(model, n=4)
    assert robust_accuracy(model, (x, y), "square", eps=8 / 255).robust_acc == 1.0
    assert seen == {"attacks": ["square"], "queries": 5000}


def test_fewer_than_four_classes_leaves_out_apgd_t_and_says_so():
    model = tiny_model(classes=3)
    x = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    result = robust_accuracy(model, (x, y), "apgd-ce", eps=8 / 255)
    assert result.n == 6
    with pytest.raises(ValueError, match="at least 4 classes"):
        robust_accuracy(model, (x, y), "apgd-t")


def test_arguments_are_checked():
    model = tiny_model()
    x, y = tiny_data(model, n=4)
    with pytest.raises(ValueError, match="attack must be one of"):
        robust_accuracy(model, (x, y), "cw")
    with pytest.raises(ValueError, match="norm must be one of 'Linf', 'L2'"):
        robust_accuracy(model, (x, y), "pgd", norm="L1")
    with pytest.raises(ValueError, match="no samples"):
        robust_accuracy(model, [], "pgd")
    assert eps_text(8 / 255) == "8/255" and eps_text(0.5) == "0.5"
    assert eps_text(2.0, "L2") == "2" and eps_text(128 / 255, "L2") == "0.501961"  # not /255


def test_attack_steps_follow_the_standard_autoattack_settings():
    # iterations times their measured cost in sample-steps (APGD 1.5, FAB 3, a Square query
    # 0.75, a PGD step 1.25; counted before as 1 an iteration and 1/3 a query, a CPU run took
    # about 3x the printed estimate)
    from robustrep.metrics.robust import attack_steps
    assert attack_steps("autoattack", 10) == {"apgd-ce": 150, "apgd-t": 1350, "fab-t": 2700,
                                              "square": 3750}
    # three classes: APGD-T left out (it needs 4), FAB-T on the 2 other classes
    assert list(attack_steps("autoattack", 3)) == ["apgd-ce", "fab-t", "square"]
    assert attack_steps("autoattack", 3)["fab-t"] == 600
    assert attack_steps("apgd-t", 100) == {"apgd-t": 1350}
    assert attack_steps("pgd", 10, steps=8) == {"pgd": 10} and attack_steps("fgsm", 10) == {
        "fgsm": 2}


def test_each_modules_own_mode_is_restored():
    # Was: model.train(was_training) on exit, which switched a frozen (eval) submodule of a
    # model being trained back to training
    model = tiny_model()
    x, y = tiny_data(model, n=4)
    model.train()
    model[1].eval()
    robust_accuracy(model, (x, y), attack="fgsm", eps=8 / 255)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]


def test_float_labels_are_refused_not_truncated():
    # Was: y = [1.7, ...] silently became class 1
    model = tiny_model()
    x, y = tiny_data(model, n=4)
    with pytest.raises(TypeError, match="batch 0: y must hold integer class labels"):
        robust_accuracy(model, (x, y.float() + 0.7), attack="fgsm", eps=8 / 255)


def test_robust_accuracy_with_progress_is_the_one_without(monkeypatch):
    from robustrep.metrics import autoattack
    monkeypatch.setattr(autoattack, "REPORT_EVERY_S", 0.0)
    model = tiny_model()
    x, y = tiny_data(model, n=9, wrong=1)
    seen = []
    with_progress = robust_accuracy(model, (x, y), "apgd-ce", seed=2, batch_size=4,
                                    progress=seen.append)
    plain = robust_accuracy(model, (x, y), "apgd-ce", seed=2, batch_size=4)
    assert torch.equal(with_progress.robust, plain.robust) and len(seen) > 100
    assert 0 < plain.robust_acc < plain.clean_acc


class _Untouchable(nn.Module):
    """A model that fails the test if any forward runs: the check must come first."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1)

    def forward(self, x):
        raise AssertionError("the model ran before the arguments were checked")


@pytest.mark.parametrize("attack", ["pgd", "autoattack"])
def test_an_eps_in_0_255_units_is_refused_before_any_forward(attack):
    x = torch.rand(4, 3, 4, 4)
    with pytest.raises(ValueError, match=r"^eps=8 is wider than input_range \[0, 1\]"):
        robust_accuracy(_Untouchable(), (x, torch.zeros(4, dtype=torch.long)), attack, eps=8)


@pytest.mark.parametrize("attack", ["pgd", "fgsm", "autoattack", "apgd-ce", "apgd-t"])
def test_0_255_images_are_refused_before_the_clean_pass(attack):
    # Was: only PGD/FGSM checked; AutoAttack clamps its adversarial images to [0, 1], so 0-255
    # images gave a silently wrong robust accuracy
    x = torch.rand(4, 3, 4, 4) * 255
    with pytest.raises(ValueError, match=r"^data's x must be images in \[0, 1\] .* got values "
                                         r"in \[.*, .*\]; divide 0-255 pixels by 255"):
        robust_accuracy(_Untouchable(), (x, torch.zeros(4, dtype=torch.long)), attack)


def test_a_dataset_of_single_samples_is_told_to_use_a_dataloader():
    data = torch.utils.data.TensorDataset(torch.rand(4, 3, 4, 4),
                                          torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^batch 0: expected x \[B, ...\] and y \[B\], got "
                                         r"\(3, 4, 4\) and \(\) \(one sample, not a batch: wrap "
                                         r"a Dataset in a torch.utils.data.DataLoader\)$"):
        robust_accuracy(_Untouchable(), data, "pgd")


# --- what mutation testing found unpinned ---------------------------------------------------------

def test_as_dict_holds_the_scalars_and_strings_for_json():
    model = tiny_model()
    x, y = tiny_data(model, n=4, wrong=1)
    result = robust_accuracy(model, (x, y), "fgsm", eps=8 / 255)
    assert result.as_dict() == {
        "clean_acc": 0.75, "robust_acc": result.robust_acc, "n": 4, "attack": "fgsm",
        "eps": 8 / 255, "norm": "Linf",
        "convention": "FGSM (Goodfellow et al. 2015; one step of eps, no random start), Linf "
                      "eps=8/255",
        "flags": []}


def _reference_robust(model, x, y, attack, eps, batch_size, **kwargs):
    """robustrep.adversarial's attack called per batch, one generator for the whole run (Linf
    PGD only: torch.rand splits on the CPU, so these are the starts robust_accuracy draws for
    the whole set at once; L2 starts drawn per batch depend on the batch size)."""
    from robustrep.adversarial import classifier_loss, fgsm, pgd
    gen = torch.Generator().manual_seed(kwargs.pop("seed", 0))
    start = kwargs.pop("random_start", True)
    robust = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        loss_fn = classifier_loss(model, yb)
        if attack == "pgd":
            x_adv = pgd(loss_fn, xb, eps, random_start=start, generator=gen, **kwargs)
        else:
            x_adv = fgsm(loss_fn, xb, eps, **kwargs)
        with torch.no_grad():
            robust.append((model(xb).argmax(1) == yb) & (model(x_adv).argmax(1) == yb))
    return torch.cat(robust)


def test_pgd_and_fgsm_are_robustrep_adversarial_with_the_given_settings():
    model = tiny_model(hidden=32)
    x, y = tiny_data(model, n=24, wrong=2)
    eps, settings = 0.1, {"steps": 3, "step_size": 0.02, "seed": 5}
    got = robust_accuracy(model, (x, y), "pgd", eps=eps, batch_size=10, **settings)
    want = _reference_robust(model, x, y, "pgd", eps, 10, **settings)
    assert torch.equal(got.robust, want) and got.robust_acc == float(want.double().mean())
    # each setting matters on these images: the default step, 20 steps, another seed, no
    # random start, FGSM
    others = [_reference_robust(model, x, y, "pgd", eps, 10, steps=3, seed=5),
              _reference_robust(model, x, y, "pgd", eps, 10, steps=20, step_size=0.02, seed=5),
              _reference_robust(model, x, y, "pgd", eps, 10, steps=3, step_size=0.02, seed=6),
              _reference_robust(model, x, y, "pgd", eps, 10, steps=3, step_size=0.02, seed=5,
                                random_start=False),
              _reference_robust(model, x, y, "fgsm", eps, 10)]
    assert all(not torch.equal(o, want) for o in others)
    assert got.convention == ("PGD-3 (Madry et al. 2018; robustrep.adversarial.pgd, random "
                              "start, step 0.02; a quick check, not comparable with AutoAttack), "
                              "Linf eps=0.1")
    fgsm = robust_accuracy(model, (x, y), "fgsm", eps=eps, batch_size=10)
    assert torch.equal(fgsm.robust, others[-1])


def test_attack_steps_default_to_20_pgd_steps():
    from robustrep.metrics.robust import attack_steps
    assert attack_steps("pgd", 10) == {"pgd": 25.0}


@pytest.mark.parametrize("eps, norm, text", [
    (8 / 255, "Linf", "8/255"), (1.0, "Linf", "255/255"), (1 / 255, "linf", "1/255"),
    (0.0, "Linf", "0"),                    # no radius is no "0/255"
    (2.0, "Linf", "2"),                    # past the image range: a plain number
    (8 / 255 + 1e-4, "Linf", "0.0314725"),  # off the 1/255 grid
    (8 / 255, "L2", "0.0313725"),          # L2 radii are plain numbers
])
def test_eps_text_writes_linf_radii_on_the_pixel_grid_as_fractions(eps, norm, text):
    assert eps_text(eps, norm) == text


def test_norm_names_are_case_insensitive_and_written_canonically():
    from robustrep.metrics.robust import _check_norm
    assert _check_norm("LINF") == "Linf" and _check_norm("l2") == "L2"
    for bad in ("L1", 2, None):
        with pytest.raises(ValueError, match=f"^norm must be one of 'Linf', 'L2'; got {bad!r}$"):
            _check_norm(bad)


def test_pgd_default_step_and_an_l2_fgsm():
    model = tiny_model(hidden=32)
    x, y = tiny_data(model, n=24, wrong=2)
    got = robust_accuracy(model, (x, y), "pgd", eps=0.1, steps=4, seed=5, batch_size=10)
    assert "random start, step 0.0625;" in got.convention  # 2.5 * eps / steps
    want = _reference_robust(model, x, y, "pgd", 0.1, 10, steps=4, seed=5)
    assert torch.equal(got.robust, want)
    l2 = robust_accuracy(model, (x, y), "fgsm", eps=0.5, norm="L2", batch_size=10)
    want = _reference_robust(model, x, y, "fgsm", 0.5, 10, norm="l2")
    assert torch.equal(l2.robust, want)
    assert not torch.equal(want, _reference_robust(model, x, y, "fgsm", 0.5, 10))


# --- PGD's random starts, the model's outputs, an L2 radius beyond the images ------------------

def _pgd_per_sample(monkeypatch, model, x, y, norm, eps, batch_size, seed=0):
    """robust_accuracy's PGD result, and the adversarial images PGD returned, per sample."""
    from robustrep import adversarial
    images, pgd = [], adversarial.pgd

    def recorded(*args, **kwargs):
        images.append(pgd(*args, **kwargs))
        return images[-1]

    monkeypatch.setattr(adversarial, "pgd", recorded)
    result = robust_accuracy(model, (x, y), "pgd", eps=eps, norm=norm, steps=2,
                             batch_size=batch_size, seed=seed)
    return result.robust, torch.cat(images)


@pytest.mark.parametrize("norm, eps", [("L2", 1.0), ("Linf", 0.1)])
def test_pgd_gives_each_sample_the_same_result_at_any_batch_size(monkeypatch, norm, eps):
    # Was: the L2 random start, drawn per batch (the batch's directions, then its radii, from
    # one generator), depended on --batch-size, and so did the robust accuracy
    model = tiny_model(hidden=32)
    x, y = tiny_data(model, n=21)
    whole, images = _pgd_per_sample(monkeypatch, model, x, y, norm, eps, 21)
    for batch_size in (3, 7):
        robust, got = _pgd_per_sample(monkeypatch, model, x, y, norm, eps, batch_size)
        torch.testing.assert_close(got, images, rtol=0, atol=1e-6)
        assert torch.equal(robust, whole), batch_size
    _, other_seed = _pgd_per_sample(monkeypatch, model, x, y, norm, eps, 21, seed=1)
    assert (other_seed - images).abs().amax() > 0.05  # the start matters to the result


@pytest.mark.parametrize("out, shown, pick", [
    (lambda z: (z, z.sum(1)), "a tuple of Tensor, Tensor", "out[0]"),
    (lambda z: {"logits": z, "features": z}, "a dict with keys 'logits', 'features'",
     "out['logits']"),
    (lambda z: [None, z], "a list of NoneType, Tensor", "out[i]"),
], ids=["tuple", "dict", "list"])
def test_a_model_returning_no_logits_tensor_is_told_what_is_accepted(out, shown, pick):
    # Was: AttributeError "'tuple' object has no attribute 'float'" from the label check
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tiny_model()

        def forward(self, x):
            return out(self.net(x))

    x, y = tiny_data(tiny_model(), n=4)
    with pytest.raises(TypeError) as err:
        robust_accuracy(Wrapped(), (x, y), "fgsm")
    assert str(err.value) == (f"the model must return a logits tensor [B, C] (the attacks read "
                              f"it); it returned {shown}. Wrap it in an nn.Module whose forward "
                              f"returns {pick} of out = model(x)")


def test_an_l2_radius_beyond_the_images_diagonal_is_refused_before_any_forward():
    # 3x4x4 images in [0, 1]: no two are further apart than sqrt(48) = 6.928 in L2, so a
    # wider ball holds every image (8 meant as 8/255, or a Linf radius given as L2)
    from robustrep.metrics.robust import RadiusError
    x = torch.rand(4, 3, 4, 4)
    with pytest.raises(RadiusError, match=r"^eps=7 is wider than the largest L2 distance "
                                          r"between two images in \[0, 1\] of shape 3x4x4 "
                                          r"\(sqrt\(48\) = 6.928\): the ball holds every "
                                          r"image; an L2 radius is in \[0, 1\] pixel units"):
        robust_accuracy(_Untouchable(), (x, torch.zeros(4, dtype=torch.long)), "pgd", eps=7,
                        norm="L2")
    model = tiny_model()
    x, y = tiny_data(model, n=4)
    for eps in (0.5, 6.9):  # a usual radius, and one inside the diagonal: no question asked
        assert robust_accuracy(model, (x, y), "fgsm", eps=eps, norm="l2").norm == "L2"


def test_pgd_and_fgsm_tell_their_progress_after_each_batch():
    # Was: nothing until the attack ended (an 11.7 s PGD sat at "0/1" on the bar)
    model = tiny_model()
    x, y = tiny_data(model, n=5, wrong=1)
    for attack in ("pgd", "fgsm"):
        told = []
        result = robust_accuracy(model, (x, y), attack, eps=8 / 255, steps=3, batch_size=2,
                                 progress=told.append)
        assert [(s["attack"], s["done"], s["total"]) for s in told] == [
            (attack, 2, 5), (attack, 4, 5), (attack, 5, 5)]
        assert told[-1]["robust"] == int(result.robust.sum())
        # as AutoAttack's: the clean-correct, less those fooled so far (it counted up from 0)
        assert told[0]["robust"] == int(result.correct.sum()) - int(
            (result.correct[:2] & ~result.robust[:2]).sum())
