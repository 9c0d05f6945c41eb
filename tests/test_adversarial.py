"""Adversarial input perturbations: balls, ranges, directions, untouched models, checks.

The attacks' shared machinery is tested here on every attack, DAT and AS-GAN included; their
own steps and classes are tested in test_dat.py and test_asgan.py."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adversarial import (FGSM, NORMS, PGD, classifier_loss, fgsm, pgd,
                                   preserve_bn_stats)
from robustrep.asgan import ASGAN, asgan_perturb
from robustrep.dat import DAT, dat_perturb
from robustrep.free import FreePerturbation

B = 8


def classifier(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def batch(seed=1, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(B, 3, 2, 2, generator=g)
    return x, torch.randint(0, 3, (B,), generator=g)


def ce(model, y):
    return lambda x: F.cross_entropy(model(x), y, reduction="none")


def bn_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16, 1)).train()


def linear_d(weight=0.5):
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with torch.no_grad():
        d[1].weight.fill_(weight)
        d[1].bias.zero_()
    return d


def per_sample_norm(t, norm):
    flat = t.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", ["pgd", "fgsm", "fgsm_rs"])
def test_attack_stays_in_ball_and_range_and_raises_loss(attack, norm):
    model = classifier()
    x, y = batch()
    loss_fn = ce(model, y)
    eps = 0.1 if norm == "linf" else 0.3
    g = torch.Generator().manual_seed(0)
    if attack == "pgd":
        x_adv = pgd(loss_fn, x, eps, steps=5, norm=norm, generator=g)
    else:
        x_adv = fgsm(loss_fn, x, eps, norm=norm, random_start=attack == "fgsm_rs", generator=g)
    assert not x_adv.requires_grad and x_adv.shape == x.shape
    assert bool((per_sample_norm(x_adv - x, norm) <= eps + 1e-6).all())
    assert bool(((x_adv >= 0) & (x_adv <= 1)).all())
    assert loss_fn(x_adv).mean() > loss_fn(x).mean() + 1e-3


def test_fgsm_is_one_signed_step_clamped_to_range():
    model = classifier()
    x, y = batch()
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ce(model, y)(x_in).sum(), x_in)
    want = (x + 0.05 * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(ce(model, y), x, 0.05), want)


def test_random_start_is_seeded():
    model = classifier()
    x, y = batch()
    a, b, c = (pgd(ce(model, y), x, 0.1, steps=2, generator=torch.Generator().manual_seed(s))
               for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    d = fgsm(ce(model, y), x, 0.1, random_start=True, generator=torch.Generator().manual_seed(0))
    e = fgsm(ce(model, y), x, 0.1, random_start=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d, e)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_uniform_in_the_ball(norm):
    x = torch.full((64, 3, 4, 4), 0.5)
    eps = 0.2
    start = fgsm(lambda v: v.sum(), x, eps, norm=norm, random_start=True, step_size=0.0,
                 generator=torch.Generator().manual_seed(0)) - x
    size = per_sample_norm(start, norm)
    assert bool((size <= eps + 1e-6).all()) and abs(start.mean().item()) < 0.01
    if norm == "linf":
        assert start.min() < -0.95 * eps and start.max() > 0.95 * eps
    else:  # uniform in a 48-d ball: the radius eps * U^(1/48) is almost always near eps
        assert size.min() > 0.8 * eps


def documented_start(x, eps, norm, g):
    """pgd's random start as its docstring says it is drawn: x's shape of uniforms (Linf) or of
    normals (L2, a direction), then one uniform per sample (L2, the radius eps * U^(1/d))."""
    if norm == "linf":
        return (2 * torch.rand(x.shape, generator=g) - 1) * eps
    direction = torch.randn(x.shape, generator=g)
    radius = eps * torch.rand(len(x), generator=g) ** (1 / x[0].numel())
    return direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * radius.view(-1, 1, 1, 1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_given_start_is_the_drawn_one_given_instead(norm):
    # robust_accuracy draws a whole set's starts at once and hands each batch its slice
    model = classifier()
    x, y = batch()
    eps = 0.1 if norm == "linf" else 0.3
    drawn = pgd(ce(model, y), x, eps, steps=2, norm=norm,
                generator=torch.Generator().manual_seed(3))
    start = documented_start(x, eps, norm, torch.Generator().manual_seed(3))
    given = pgd(ce(model, y), x, eps, steps=2, norm=norm, delta_init=start)
    torch.testing.assert_close(given, drawn, rtol=0, atol=1e-6)
    other = pgd(ce(model, y), x, eps, steps=2, norm=norm, delta_init=start.flip(0))
    assert (other - drawn).abs().amax() > 0.01  # the start is used
    assert bool((per_sample_norm(other - x, norm) <= eps + 1e-6).all())


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(delta_init=torch.zeros(B, 3, 2, 2), random_start=False), ValueError,
     r"^delta_init is a random start: pass random_start=True \(the default\) with it"),
    (dict(delta_init=torch.zeros(B, 12)), ValueError,
     r"^delta_init must have x's shape \(8, 3, 2, 2\), got \(8, 12\)$"),
    (dict(delta_init=torch.zeros(B, 3, 2, 2, dtype=torch.long)), TypeError,
     r"^delta_init must be a floating-point tensor"),
    (dict(delta_init=[0.0] * B), TypeError, r"^delta_init must be a torch.Tensor, got list$"),
    (dict(delta_init=torch.zeros(B, 3, 2, 2, device="meta")), ValueError, "same device"),
], ids=["no_random_start", "shape", "dtype", "list", "device"])
def test_a_given_start_is_checked(kwargs, error, words):
    model = classifier()
    x, y = batch()
    with pytest.raises(error, match=words):
        pgd(ce(model, y), x, 0.1, **kwargs)


def test_works_inside_no_grad_and_under_bf16_autocast():
    model = classifier()
    x, y = batch()
    with torch.no_grad():
        x_adv = pgd(ce(model, y), x, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_bf = pgd(ce(model, y), x, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert x_bf.dtype == torch.float32
    assert bool(((x_bf - x).abs() <= 0.1 + 1e-6).all())
    assert ce(model, y)(x_bf).mean() > ce(model, y)(x).mean()


def snapshot(model):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, [p.grad.clone() for p in model.parameters()]


def run_attack(name, d):
    x, _ = batch(low=-1.0)
    x_fake, _ = batch(seed=2, low=-1.0)
    g = torch.Generator().manual_seed(0)
    if name == "pgd":
        return pgd(lambda v: d(v).squeeze(1), x, 0.1, steps=3, input_range=(-1, 1), generator=g,
                   model=d)
    if name == "fgsm":
        return fgsm(d.forward, x, 0.1, input_range=(-1, 1))  # module found from the bound method
    if name == "dat":
        return dat_perturb(d, x, x_fake)
    if name == "dat_bounded":
        return dat_perturb(d, x, x_fake, eps=0.05)
    return asgan_perturb(d, x, steps=2, generator=g)


@pytest.mark.parametrize("name", ["pgd", "fgsm", "dat", "dat_bounded", "asgan"])
def test_model_parameters_grads_and_bn_stats_untouched(name):
    d = bn_net()
    for p in d.parameters():
        p.grad = torch.randn_like(p)
    state, grads = snapshot(d)
    run_attack(name, d)
    for k, v in d.state_dict().items():
        assert torch.equal(v, state[k]), k
    for p, g in zip(d.parameters(), grads):
        assert torch.equal(p.grad, g)


def test_preserve_bn_stats_restores_what_a_train_forward_changes():
    d = bn_net()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    with preserve_bn_stats(d):
        d(batch()[0])
        assert not torch.equal(d[1].running_mean, before["1.running_mean"])  # it did change
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k
    with preserve_bn_stats(None):  # the modules called inside, snapshotted at their first call
        d(batch()[0])
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(TypeError, match="model"):
        with preserve_bn_stats(lambda v: v):
            pass


class _Trainer:
    """The loss function's model is an attribute of an object its lambda holds: no module can
    be found behind it (before, the attack then updated the BatchNorm statistics silently)."""

    def __init__(self):
        self.nets = {"d": nn.Sequential(bn_net(), nn.utils.spectral_norm(nn.Linear(1, 2)))}

    def loss(self, v):  # a plain function of v, reading self.nets["d"]
        return self.nets["d"](v).sum(1)


@pytest.mark.parametrize("name", ["pgd", "fgsm", "dat", "asgan"])
def test_buffers_kept_when_no_module_is_found_behind_the_loss(name):
    trainer = _Trainer()
    d = trainer.nets["d"]
    before = {k: v.clone() for k, v in d.state_dict().items()}
    x, _ = batch(low=-1.0)
    x_fake, _ = batch(seed=2, low=-1.0)
    g = torch.Generator().manual_seed(0)

    def fn(v):
        return trainer.loss(v)

    if name == "pgd":
        pgd(fn, x, 0.1, steps=3, input_range=(-1, 1), generator=g)
    elif name == "fgsm":
        fgsm(fn, x, 0.1, input_range=(-1, 1))
    elif name == "dat":
        dat_perturb(fn, x, x_fake)
    else:
        asgan_perturb(fn, x, steps=2, generator=g)
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k
    fn(x)  # outside an attack the statistics move (the check above could fail)
    assert not torch.equal(d[0][1].running_mean, before["0.1.running_mean"])
    assert not torch.equal(d[1].weight_u, before["1.weight_u"])


def test_eps_zero_is_the_identity():
    model = classifier()
    x, y = batch()
    assert torch.equal(pgd(ce(model, y), x, 0.0), x)
    assert torch.equal(pgd(ce(model, y), x, 0.1, steps=0), x)
    assert torch.equal(fgsm(ce(model, y), x, 0.0, random_start=True), x)
    d = linear_d()
    assert torch.equal(asgan_perturb(d, x, eps=0.0), x)
    real, fake = dat_perturb(d, x, x.flip(0), eps=0.0)
    assert torch.equal(real, x) and torch.equal(fake, x.flip(0))
    assert torch.equal(FreePerturbation(0.0).attach(x), x)


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(eps=-0.1), ValueError, "eps"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=1.5), TypeError, "steps"),
    (dict(step_size=-0.01), ValueError, "step_size"),
    (dict(norm="l1"), ValueError, "norm"),
    (dict(input_range=(1.0, 0.0)), ValueError, "input_range"),
    (dict(input_range="ab"), TypeError, "input_range"),
    (dict(generator=1), TypeError, "generator"),
])
def test_pgd_bad_arguments(kwargs, error, name):
    model = classifier()
    x, y = batch()
    args = dict(eps=0.1)
    args.update(kwargs)
    with pytest.raises(error, match=name):
        pgd(ce(model, y), x, **args)


def test_other_bad_inputs():
    model = classifier()
    x, y = batch()
    d = linear_d()
    with pytest.raises(ValueError, match="x must have rank"):
        pgd(ce(model, y), x.flatten(), 0.1)
    with pytest.raises(TypeError, match="loss_fn"):
        fgsm(None, x, 0.1)
    with pytest.raises(ValueError, match="same device"):
        pgd(ce(model, y), x, 0.1, model=classifier().to("meta"))
    with pytest.raises(ValueError, match="same device"):
        asgan_perturb(linear_d().to("meta"), x)
    with pytest.raises(ValueError, match="^loss_fn\\(x\\) does not depend on x$"):
        pgd(lambda v: model[1].weight.sum().expand(B), x, 0.1)
    with pytest.raises(ValueError, match="t must be >= 0"):
        dat_perturb(d, x, x, t=-1.0)
    with pytest.raises(ValueError, match="^x_real and x_fake must have the same per-sample shape"):
        dat_perturb(d, x, x.flatten(1))
    with pytest.raises(ValueError, match="^loss must be one of"):
        asgan_perturb(d, x, loss="bce")
    with pytest.raises(ValueError, match="norm"):
        FreePerturbation(0.1, norm="l3")
    with pytest.raises(ValueError, match="eps"):
        FreePerturbation(-0.1)
    with pytest.raises(TypeError, match="state"):
        FreePerturbation(0.1).load_state_dict({"delta": [1.0]})


@pytest.mark.parametrize("name", ["pgd", "dat", "asgan"])
def test_spectral_norm_power_iteration_state_untouched(name):
    torch.manual_seed(0)
    d = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 4, 3, 2, 1)),
                      nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.utils.parametrizations.spectral_norm(nn.Linear(4, 1))).train()
    for p in d.parameters():
        p.grad = torch.zeros_like(p)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    d(batch(low=-1.0)[0])  # a plain train forward does advance the power iteration...
    assert any(not torch.equal(v, before[k]) for k, v in d.state_dict().items())
    before = {k: v.clone() for k, v in d.state_dict().items()}
    run_attack(name, d)  # ...an attack's forwards must not
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k


# --- boundaries: non-finite hyperparameters, inputs outside the range, dtypes ------------------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("call, name", [
    (lambda m, x, y: pgd(ce(m, y), x, NAN), "eps"),
    (lambda m, x, y: pgd(ce(m, y), x, INF), "eps"),
    (lambda m, x, y: pgd(ce(m, y), x, 0.1, step_size=NAN), "step_size"),
    (lambda m, x, y: fgsm(ce(m, y), x, NAN), "eps"),
    (lambda m, x, y: fgsm(ce(m, y), x, 0.1, step_size=INF), "step_size"),
    (lambda m, x, y: asgan_perturb(linear_d(), 2 * x - 1, eps=NAN), "eps"),
    (lambda m, x, y: asgan_perturb(linear_d(), 2 * x - 1, eps=0.1, step_size=NAN), "step_size"),
    (lambda m, x, y: dat_perturb(linear_d(), 2 * x - 1, 1 - 2 * x, t=NAN), "t"),
    (lambda m, x, y: dat_perturb(linear_d(), 2 * x - 1, 1 - 2 * x, eps=INF), "eps"),
    (lambda m, x, y: FreePerturbation(NAN), "eps"),
    (lambda m, x, y: FreePerturbation(0.1, step_size=NAN), "step_size"),
    (lambda m, x, y: pgd(ce(m, y), x, 0.1, input_range=(0.0, NAN)), "input_range"),
])
def test_non_finite_hyperparameters_are_rejected_by_name(call, name):
    x, y = batch()
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        call(classifier(), x, y)


@pytest.mark.parametrize("attack", ["pgd", "fgsm", "asgan", "dat_real", "dat_fake", "free"])
def test_inputs_outside_the_range_are_refused_naming_both_ranges(attack):
    model, (x, y) = classifier(), batch(low=0.0, high=3.0)  # [0, 3]: not [0, 1], not [-1, 1]
    calls = {
        "pgd": lambda: pgd(ce(model, y), x, 0.1),
        "fgsm": lambda: fgsm(ce(model, y), x, 0.1),
        "asgan": lambda: asgan_perturb(linear_d(), x),
        "dat_real": lambda: dat_perturb(linear_d(), x, x.clamp(-1, 1)),
        "dat_fake": lambda: dat_perturb(linear_d(), x.clamp(-1, 1), x),
        "free": lambda: FreePerturbation(0.1).attach(x),
    }
    expected = "[-1, 1]" if attack in ("asgan", "dat_real", "dat_fake") else "[0, 1]"
    found = f"[{x.min().item():.4g}, {x.max().item():.4g}]"
    with pytest.raises(ValueError, match="lie in input_range") as err:
        calls[attack]()
    assert expected in str(err.value) and found in str(err.value)
    assert "input_range=None" in str(err.value)


def test_nan_inputs_are_refused_where_a_range_is_given():
    model, (x, y) = classifier(), batch()
    x[0, 0, 0, 0] = NAN
    with pytest.raises(ValueError, match="NaN"):
        pgd(ce(model, y), x, 0.1)


def test_input_range_none_is_unbounded_points():
    # 2-D points far outside [-1, 1]: with input_range=None nothing is clamped, and every point
    # moves by at most eps (the old default clamped 97% of such reals by more than 0.5).
    g = torch.Generator().manual_seed(0)
    x_real, x_fake = 4 * torch.randn(64, 2, generator=g), 4 * torch.randn(64, 2, generator=g)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    xr = asgan_perturb(d, x_real, eps=0.05, input_range=None)
    assert (xr - x_real).abs().max() <= 0.05 + 1e-6
    assert (xr - x_real).abs().max() > 0.01
    dr, df = dat_perturb(d, x_real, x_fake, eps=0.05, input_range=None)
    assert (dr - x_real).abs().max() <= 0.05 + 1e-6 and (df - x_fake).abs().max() <= 0.05 + 1e-6
    with pytest.raises(ValueError, match=r"input_range \[-1, 1\]"):
        asgan_perturb(d, x_real, eps=0.05)


def test_a_clean_point_on_the_range_edge_is_accepted_within_rounding():
    model, (x, y) = classifier(), batch()
    x[0] = 1.0 + 1e-7  # rounding in a caller's normalisation
    x_adv = pgd(ce(model, y), x, 0.1, steps=2)
    assert x_adv.max() <= 1.0


def test_model_and_input_dtypes_named_both():
    model, (x, y) = classifier(), batch()
    with pytest.raises(TypeError, match="torch.float64.*torch.float32"):
        pgd(ce(model, y), x.double(), 0.1, model=model)
    with pytest.raises(TypeError, match="torch.float64.*torch.float32"):
        fgsm(ce(model, y), x.double(), 0.1, model=model)
    d = linear_d()
    with pytest.raises(TypeError, match="x_real is torch.float32, x_fake is torch.float64"):
        dat_perturb(d, 2 * x - 1, (1 - 2 * x).double())
    with pytest.raises(TypeError, match="x_real has dtype torch.float64"):
        dat_perturb(d, (2 * x - 1).double(), (1 - 2 * x).double())
    with pytest.raises(TypeError, match="torch.float64.*torch.float32"):
        asgan_perturb(d, (2 * x - 1).double())
    # Under autocast the model casts float32 inputs itself: a bf16 model is accepted there.
    half = classifier().to(torch.bfloat16)
    with pytest.raises(TypeError, match="x has dtype torch.float32"):
        pgd(lambda v: half(v).float().sum(1), x, 0.1, steps=1, model=half)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pgd(lambda v: half(v).float().sum(1), x, 0.1, steps=1, model=half)
        with pytest.raises(TypeError, match="torch.float64"):
            pgd(ce(model, y), x.double(), 0.1, steps=1, model=model)


# --- the registry's classes: defaults and every option passed to the function -----------------
# The classes are what ``create_regularizer`` builds by name, so a dropped or swapped option
# would silently train with the function's default instead.


def test_class_defaults_are_the_documented_ones():
    assert vars(DAT()) == dict(t=1.0, eps=None, input_range=(-1.0, 1.0), clamp_real=True)
    assert vars(ASGAN()) == dict(eps=0.05, steps=1, norm="linf", loss="ns",
                                 input_range=(-1.0, 1.0), mode="replace", free=False,
                                 _carried=None)
    assert vars(PGD()) == dict(eps=8 / 255, steps=7, step_size=None, norm="linf",
                               random_start=True, input_range=(0.0, 1.0))
    assert vars(FGSM()) == dict(eps=8 / 255, step_size=None, norm="linf", random_start=True,
                                input_range=(0.0, 1.0))


def test_pgd_and_fgsm_classes_pass_every_option():
    model = classifier()
    x, y = batch(low=-1.0, high=2.0)  # outside [0, 1]: needs the given range
    for cls, fn, opts in [
        (PGD, pgd, dict(eps=0.2, steps=3, step_size=0.05, norm="l2", random_start=False,
                        input_range=(-1.0, 2.0))),
        (PGD, pgd, dict(eps=0.2, steps=2, input_range=(-1.0, 2.0))),  # random start, seeded
        (FGSM, fgsm, dict(eps=0.2, step_size=0.05, norm="l2", random_start=True,
                          input_range=(-1.0, 2.0))),
        (FGSM, fgsm, dict(eps=0.2, random_start=False, input_range=(-1.0, 2.0))),
    ]:
        got = cls(**opts)(ce(model, y), x, generator=torch.Generator().manual_seed(0))
        want = fn(ce(model, y), x, generator=torch.Generator().manual_seed(0), **opts)
        torch.testing.assert_close(got, want)
        # the same call with another seed (or none) would differ where a random start is used
        if opts.get("random_start", True):
            assert not torch.allclose(got, fn(ce(model, y), x, **opts))


@pytest.mark.parametrize("name", ["DAT", "ASGAN", "PGD", "FGSM"])
def test_classes_pass_model_so_bn_stats_are_kept(name):
    # A plain function hides the module: only model= tells the attack whose statistics to keep.
    d = bn_net()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    x, _ = batch(low=-1.0)
    fn = lambda v: d(v).squeeze(1)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    if name == "DAT":
        DAT()(fn, x, x.flip(0), model=d)
    elif name == "ASGAN":
        ASGAN(steps=2)(fn, x, generator=g, model=d)
    else:
        cls = PGD if name == "PGD" else FGSM
        cls(input_range=(-1.0, 1.0))(fn, x, generator=g, model=d)
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_classes_clamp_to_their_input_range():
    # pushed past the edge of (-1.5, 1.5): the class's range must clamp them
    d = linear_d(weight=0.5)
    real, fake = DAT(eps=0.3, input_range=(-1.5, 1.5))(d, torch.full((B, 3, 2, 2), 1.45),
                                                        torch.full((B, 3, 2, 2), 1.4))
    assert fake.max() == 1.5 and torch.allclose(real, torch.full_like(real, 1.15))
    x_adv = ASGAN(eps=0.3, input_range=(-1.5, 1.5))(linear_d(weight=-0.5),
                                                     torch.full((B, 3, 2, 2), 1.4))
    assert torch.equal(x_adv, torch.full_like(x_adv, 1.5))


# --- exact attack steps against a direct computation (float64, seeded draws replayed) ----------


def reference_attack(loss_fn, x, eps, step, steps, norm, generator=None, low=0.0, high=1.0):
    """FGSM/PGD written out: random start from ``generator`` (if any), ascend, project, clamp."""
    view = (-1,) + (1,) * (x.dim() - 1)

    def unit(g):
        return g.sign() if norm == "linf" else g / g.flatten(1).norm(dim=1).view(view)

    x_adv = x
    if generator is not None:
        if norm == "linf":
            delta = (2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1) * eps
        else:
            direction = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            radius = eps * torch.rand(x.shape[0], generator=generator,
                                      dtype=x.dtype) ** (1 / x[0].numel())
            delta = unit(direction) * radius.view(view)
        x_adv = (x + delta).clamp(low, high)
    for _ in range(steps):
        xi = x_adv.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(xi).sum(), xi)
        moved = x_adv + step * unit(grad) - x
        if norm == "linf":
            moved = moved.clamp(-eps, eps)
        else:
            moved = moved * (eps / moved.flatten(1).norm(dim=1)).clamp(max=1.0).view(view)
        x_adv = (x + moved).clamp(low, high)
    return x_adv


def double_setup(n=B):
    model = classifier().double()
    x, y = batch()
    return model, x[:n].double(), y[:n]


def test_pgd_defaults_are_ten_steps_of_a_quarter_eps_from_a_uniform_start():
    model, x, y = double_setup()
    got = pgd(ce(model, y), x, 0.1, generator=torch.Generator().manual_seed(3))
    want = reference_attack(ce(model, y), x, 0.1, 0.025, 10, "linf",
                            torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, want)


def test_pgd_l2_start_is_gaussian_direction_times_eps_u_to_the_one_over_d():
    model, x, y = double_setup()
    got = pgd(ce(model, y), x, 0.5, steps=3, norm="l2", generator=torch.Generator().manual_seed(4))
    want = reference_attack(ce(model, y), x, 0.5, 2.5 * 0.5 / 3, 3, "l2",
                            torch.Generator().manual_seed(4))
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("norm,n", [("linf", B), ("l2", B), ("l2", 1)])  # a batch of one works
def test_fgsm_random_start_steps_one_and_a_quarter_eps(norm, n):
    model, x, y = double_setup(n)
    eps = 0.1 if norm == "linf" else 0.5
    got = fgsm(ce(model, y), x, eps, norm=norm, random_start=True,
               generator=torch.Generator().manual_seed(5))
    want = reference_attack(ce(model, y), x, eps, 1.25 * eps, 1, norm,
                            torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, want)


def test_eps_one_is_a_real_step():
    # eps == 1 is no special case: the signed step of size 1 saturates every pixel.
    model, x, y = double_setup()
    want = reference_attack(ce(model, y), x, 1.0, 1.0, 1, "linf")
    torch.testing.assert_close(fgsm(ce(model, y), x, 1.0), want)
    assert not torch.equal(pgd(ce(model, y), x, 1.0, steps=1, random_start=False), x)


def test_l2_attacks_keep_a_bf16_input_dtype():
    model, (x, y) = classifier().to(torch.bfloat16), batch()
    x = x.to(torch.bfloat16)
    loss_fn = lambda v: F.cross_entropy(model(v).float(), y, reduction="none")  # noqa: E731
    for random_start in (False, True):
        out = pgd(loss_fn, x, 0.5, steps=2, norm="l2", random_start=random_start,
                  generator=torch.Generator().manual_seed(0))
        assert out.dtype == torch.bfloat16


def test_random_start_draws_in_the_inputs_dtype():
    # float64 draws use other bits of the generator than float32 ones, so a float32 draw would
    # be far off (the L2 norm itself is taken in float32: hence 1e-6, not exact).
    model, x, y = double_setup()
    for norm in ("linf", "l2"):
        start = fgsm(ce(model, y), x, 0.3, norm=norm, random_start=True, step_size=0.0,
                     generator=torch.Generator().manual_seed(6))
        want = reference_attack(ce(model, y), x, 0.3, 0.0, 0, norm,
                                torch.Generator().manual_seed(6))
        torch.testing.assert_close(start, want, rtol=0, atol=1e-6)


# --- argument checks of fgsm/pgd: whether they raise, and on which argument --------------------


@pytest.mark.parametrize("x,error,message", [
    (torch.rand(0, 3, 2, 2), ValueError, "^x needs a batch of at least 1"),
    (torch.randint(0, 2, (B, 3, 2, 2)), TypeError, "^x must be a floating-point tensor"),
    (torch.rand(B, 3, 2, 2) + 2, ValueError, r"^x must lie in input_range \[0, 1\]"),
])
@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
def test_attack_bad_inputs_are_refused_by_name(attack, x, error, message):
    model, (_, y) = classifier(), batch()
    fn = pgd if attack == "pgd" else fgsm
    with pytest.raises(error, match=message):
        fn(ce(model, y[:len(x)]), x, 0.1)


def test_attack_argument_names_start_the_message():
    model, (x, y) = classifier(), batch()
    with pytest.raises(ValueError, match="^norm must be one of"):
        pgd(ce(model, y), x, 0.1, norm="l1")
    with pytest.raises(TypeError, match="^steps must be a non-negative int"):
        pgd(ce(model, y), x, 0.1, steps=1.5)
    with pytest.raises(TypeError, match="^generator must be a torch.Generator"):
        pgd(ce(model, y), x, 0.1, generator=1)
    with pytest.raises(TypeError, match="^generator must be a torch.Generator"):
        fgsm(ce(model, y), x, 0.1, generator=1)  # refused even without a random start
    with pytest.raises(TypeError, match="^loss_fn must be callable, got int"):
        pgd(3, x, 0.1)
    with pytest.raises(TypeError, match="^model must be an nn.Module or None, got str"):
        pgd(ce(model, y), x, 0.1, model="net")
    with pytest.raises(ValueError, match="^x must lie in input_range"):
        pgd(ce(model, y), x - 0.5, 0.1)
    # a batch of one is an ordinary batch
    assert pgd(ce(model, y[:1]), x[:1], 0.1, steps=2).shape == (1, 3, 2, 2)


@pytest.mark.parametrize("loss,words", [
    (lambda v: 1.0, "got float$"),
    (lambda v: torch.zeros(v.shape[0]), "got Tensor without grad$"),
])
def test_loss_without_grad_is_refused_saying_why(loss, words):
    with pytest.raises(ValueError, match=f"^loss_fn\\(x\\) must return a tensor.*{words}"):
        pgd(loss, batch()[0], 0.1)


def test_owner_of_a_bound_method_must_be_a_module():
    # A bound method of a plain object has no buffers to keep: the attack runs without a module.
    class Scorer:
        def __init__(self):
            self.net = classifier()

        def score(self, v):
            return self.net(v)[:, 0]
    x_adv = fgsm(Scorer().score, batch()[0], 0.1)
    assert x_adv.shape == (B, 3, 2, 2)


def test_classifier_loss_runs_the_forward_in_the_context():
    model, (x, y) = classifier(), batch()
    entered = []

    class Context:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False
    loss = classifier_loss(model, y, Context)(x)
    assert entered == [True]
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y, reduction="none"))


def test_random_starts_and_carried_perturbations_live_on_the_inputs_device():
    # meta stands in for an accelerator: a start drawn on the CPU would not add to the input.
    x = torch.zeros(4, 3, 2, 2, device="meta")
    loss = lambda v: v.flatten(1).sum(1)  # noqa: E731
    for norm in NORMS:
        assert pgd(loss, x, 0.1, steps=1, norm=norm, input_range=None).device.type == "meta"
        assert fgsm(loss, x, 0.1, norm=norm, random_start=True,
                    input_range=None).device.type == "meta"
    free = FreePerturbation(0.1, input_range=None)
    free.load_state_dict({"delta": torch.zeros(4, 3, 2, 2)})  # a CPU checkpoint
    assert free.attach(x).device.type == "meta" and free.delta.device.type == "meta"


def test_a_generator_on_another_device_is_refused():
    x = torch.zeros(4, 3, 2, 2, device="meta")
    with pytest.raises(ValueError, match="^generator is on cpu but the tensors are on meta"):
        pgd(lambda v: v.flatten(1).sum(1), x, 0.1, input_range=None, generator=torch.Generator())


# --- the places these classes serve (robustrep.api) -------------------------------------------


def test_d_inputs_of_dat_and_asgan_are_their_calls():
    from robustrep.api import implements
    d = linear_d()
    g = torch.Generator().manual_seed(0)
    x_real, x_fake = torch.rand(B, 3, 2, 2, generator=g) * 2 - 1, torch.rand(B, 3, 2, 2) * 2 - 1
    dat, asgan = DAT(eps=0.1), ASGAN(eps=0.1, steps=2)
    assert implements(dat, "gan", "D inputs") and implements(asgan, "gan", "D inputs")
    assert dat.keeps_clean is False and asgan.keeps_clean is False
    assert ASGAN(mode="add").keeps_clean is True
    got, want = dat.d_inputs(d, x_real, x_fake, model=d), dat(d, x_real, x_fake, model=d)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    real, fake = asgan.d_inputs(d, x_real, x_fake, torch.Generator().manual_seed(5))
    assert fake is x_fake
    torch.testing.assert_close(real, asgan(d, x_real, torch.Generator().manual_seed(5)))
    dat.after_backward(real)  # no carried state: nothing to do
    asgan.after_backward(real)
    assert asgan.state_dict() == {} and asgan._carried is None
    with pytest.raises(ValueError, match="mode"):
        ASGAN(mode="both")
    with pytest.raises(TypeError, match="free must be a bool"):
        ASGAN(free=1)


def test_adversarial_inputs_of_pgd_fgsm_and_free():
    from robustrep.api import implements
    model = linear_d()
    x = torch.rand(B, 3, 2, 2)
    loss_fn = lambda v: model(v).squeeze(1)  # noqa: E731
    for cls in (PGD, FGSM):
        reg = cls(eps=0.1)
        assert implements(reg, "classify", "adversarial inputs") and reg.replays == 1
        got = reg.adversarial_inputs(loss_fn, x, torch.Generator().manual_seed(2))
        torch.testing.assert_close(got, reg(loss_fn, x, torch.Generator().manual_seed(2)))
        reg.after_backward(got)
    free = FreePerturbation()
    assert free.eps == 8 / 255 and free.step_size == 8 / 255 and free.replays == 4
    assert FreePerturbation(replays=2).replays == 2
    with pytest.raises(TypeError, match="replays"):
        FreePerturbation(replays=1.5)
    with pytest.raises(ValueError, match="replays"):
        FreePerturbation(replays=0)
    leaf = free.adversarial_inputs(None, x)
    assert leaf.requires_grad and torch.equal(leaf, x)
    model(leaf).sum().backward()
    free.after_backward(leaf)
    torch.testing.assert_close(free.delta, (8 / 255) * torch.sign(leaf.grad))


def _batchnorm_net_and_batch():
    """A training-mode net with BatchNorm, a batch, and its state before any attack."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(144, 3)).train()
    x, y = torch.rand(B, 3, 8, 8), torch.randint(0, 3, (B,))
    return net, x, y, {k: v.clone() for k, v in net.state_dict().items()}


def test_a_lambda_or_closure_over_the_model_keeps_its_batchnorm_statistics():
    # Was: only model=, a module or a bound method was seen; the README's own
    # `pgd(lambda x: F.cross_entropy(model(x), y, reduction="none"), x, ...)` updated the
    # running statistics once per attack step
    model, x, y, before = _batchnorm_net_and_batch()
    script = eval("lambda x: F.cross_entropy(net(x), y, reduction='none')",  # a script's global
                  {"F": F, "net": model, "y": y})
    for loss_fn in (script, lambda v: F.cross_entropy(model(v), y, reduction="none"),
                    classifier_loss(model, y)):
        pgd(loss_fn, x, eps=8 / 255, steps=3)
        fgsm(loss_fn, x, eps=8 / 255)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_an_attribute_named_like_a_global_module_is_not_taken_for_it():
    # Was: co_names holds attribute names too, so a trainer's self.model(v) found a script's
    # unrelated global `model`, whose buffers were kept while the attacked net's drifted
    net, x, y, before = _batchnorm_net_and_batch()

    namespace = {"F": F, "y": y, "model": nn.BatchNorm2d(4)}  # a script's globals
    exec("class Trainer:\n"
         "    def __init__(self, model):\n"
         "        self.model = model\n"
         "    def loss(self, v):\n"
         "        return F.cross_entropy(self.model(v), y, reduction='none')\n", namespace)
    namespace["t"] = trainer = namespace["Trainer"](net)
    script = eval("lambda v: F.cross_entropy(t.model(v), y, reduction='none')", namespace)
    for loss_fn in (script, trainer.loss):
        pgd(loss_fn, x, eps=8 / 255, steps=2)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_a_loss_fn_returning_logits_is_refused():
    # Was: pgd(model, x, eps) ascended the sum of the logits, no loss, without a word
    model = classifier()
    x, y = batch()
    for attack in (pgd, fgsm):
        with pytest.raises(ValueError, match=rf"^loss_fn\(x\) must return a per-sample loss "
                                             rf"\[{B}\] or a scalar, got shape \({B}, \d+\); "
                                             rf"for a classifier, pass .*classifier_loss"):
            attack(model, x, 8 / 255)
    for per_sample in (lambda v: ce(model, y)(v)[:, None], lambda v: ce(model, y)(v).mean()):
        pgd(per_sample, x, 8 / 255, steps=1)  # [B, 1] and a scalar are losses


def test_an_empty_batch_is_named_without_a_partner():
    # Was: "... (a partner is drawn from the same batch)" for an attack, which draws none
    with pytest.raises(ValueError) as err:
        pgd(lambda v: v.sum(), torch.rand(0, 3, 4, 4), 0.1)
    assert str(err.value) == "x needs a batch of at least 1, got batch size 0"


def test_a_range_written_as_text_is_refused():
    # Was: input_range="01" unpacked to (0.0, 1.0) and accepted
    with pytest.raises(TypeError, match="input_range must be a pair"):
        pgd(lambda v: v.sum(), torch.rand(2, 3, 4, 4), 0.1, input_range="01")


def test_inference_mode_is_named_as_the_cause():
    # was "loss_fn(x) must return a tensor that depends on x with grad", blaming loss_fn
    model = classifier()
    x, y = batch()
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="torch.inference_mode"):
            pgd(ce(model, y), x, 0.1, steps=2)
        with pytest.raises(RuntimeError, match="torch.inference_mode"):
            dat_perturb(linear_d(), x * 2 - 1, x * 2 - 1)
        free = FreePerturbation(eps=0.1)
        with pytest.raises(RuntimeError, match="torch.inference_mode"):
            free.attach(x)  # was: an inference tensor kept as delta, failing every later step
    assert free.delta is None


@pytest.mark.parametrize("attack, flag", [(fgsm, "false"), (fgsm, None), (pgd, "false"),
                                          (pgd, 0.5), (asgan_perturb, "false")])
def test_random_start_must_be_a_bool(attack, flag):
    # A truthy string such as "false" used to switch the random start on (None is only
    # asgan_perturb's default, which means "when steps > 1").
    if attack is asgan_perturb:
        fn, x, args = linear_d(), batch(low=-1.0)[0], dict(eps=0.1, steps=2)
    else:
        fn, x, args = (lambda v: v.flatten(1).sum(1)), batch()[0], dict(eps=0.1)
    with pytest.raises(TypeError, match=f"^random_start must be a bool, got {type(flag).__name__}"):
        attack(fn, x, random_start=flag, **args)


# --- DAT and AS-GAN, in their own modules, are still importable from here ---------------------


def test_dat_and_asgan_names_are_still_importable_from_adversarial():
    # The README and code written before the split import them from robustrep.adversarial.
    import robustrep.adversarial as adversarial
    names = {}
    exec("from robustrep.adversarial import ASGAN, DAT, asgan_perturb, dat_perturb", names)
    assert [names[n] for n in ("DAT", "dat_perturb", "ASGAN", "asgan_perturb")] == [
        DAT, dat_perturb, ASGAN, asgan_perturb]
    with pytest.raises(AttributeError, match="^module 'robustrep.adversarial' has no attribute"):
        adversarial.not_a_name  # noqa: B018


@pytest.mark.subprocess
@pytest.mark.parametrize("first", ["robustrep.dat", "robustrep.asgan", "robustrep.adversarial"])
def test_each_module_imports_first_in_a_fresh_process(first):
    # robustrep.dat and robustrep.asgan import robustrep.adversarial, which names their classes:
    # no import order may fail on a half-initialised module.
    code = (f"import {first}\n"
            "from robustrep.adversarial import ASGAN, DAT, asgan_perturb, dat_perturb, pgd\n"
            "import robustrep\n"
            "print(robustrep.create_regularizer('dat'), robustrep.create_regularizer('asgan'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DAT(t=1.0")


@pytest.mark.parametrize("make", [
    lambda: pgd(ce(classifier(), batch()[1]), batch()[0], 8),
    lambda: fgsm(ce(classifier(), batch()[1]), batch()[0], 8),
    lambda: PGD(eps=8),
    lambda: FGSM(eps=8),
    lambda: ASGAN(eps=3),  # its range is [-1, 1], 2 wide
    lambda: asgan_perturb(linear_d(), batch(low=-1.0)[0], eps=3),
])
def test_an_linf_eps_wider_than_the_input_range_is_refused(make):
    # 8 meant as 8/255 gave noise clamped to the range, reported as an attack
    with pytest.raises(ValueError, match=r"^eps=[38] is wider than input_range \[-?[01], 1\]: an "
                                         r"Linf radius is in the inputs' units"):
        make()


def test_wide_eps_is_kept_where_it_means_something():
    model = classifier()
    x, y = batch()
    assert PGD(eps=2.0, norm="l2").eps == 2.0  # an L2 ball of radius 2 is a small one in 12-D
    assert PGD(eps=1.0).eps == 1.0  # the whole range, but no wider
    assert pgd(ce(model, y), x * 5, 3.0, input_range=None, generator=torch.Generator()).shape \
        == x.shape


def test_classifier_loss_checks_its_labels_when_built():
    model = classifier()
    x, y = batch()
    with pytest.raises(TypeError, match=r"^y must hold integer class indices \[B\] \(or float "
                                        r"probabilities \[B, K\]\), got dtype torch.float32"):
        classifier_loss(model, y.float())
    with pytest.raises(TypeError, match=r"^y of shape \(8, 3\) must be float probabilities"):
        classifier_loss(model, F.one_hot(y, 3))
    with pytest.raises(ValueError, match=r"^classifier_loss: x has a batch of 8 but y holds 7 "
                                         r"labels"):
        pgd(classifier_loss(model, y[:7]), x, 0.1)
    # rows of the wrong scale were accepted: the attack ascended a loss of no distribution
    with pytest.raises(ValueError, match=r"^y must hold probabilities: rows of values >= 0 "
                                         r"summing to 1 \(within 0.01\), got values in \[0, 2\]"):
        classifier_loss(model, 2 * F.one_hot(y, 3).float())


def test_classifier_loss_takes_int32_indices_and_probabilities():
    model = classifier()
    x, y = batch()
    expected = F.cross_entropy(model(x), y, reduction="none")
    torch.testing.assert_close(classifier_loss(model, y.int())(x), expected)
    torch.testing.assert_close(classifier_loss(model, F.one_hot(y, 3).float())(x), expected)


@pytest.mark.parametrize("cls", [PGD, FGSM, FreePerturbation])
def test_the_training_radius_defaults_by_norm(cls):
    """Was: 8/255 whatever the norm, an L2 ball 16 times smaller than RobustBench's 0.5 (the L2
    evaluation's radius), without a word."""
    assert cls().eps == cls(norm="linf").eps == 8 / 255
    assert cls(norm="l2").eps == 0.5
    assert cls(eps=0.25, norm="l2").eps == 0.25
    with pytest.raises(ValueError, match="norm must be one of"):
        cls(norm="L1")
