"""Adversarial input perturbations: balls, ranges, directions, untouched models, checks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adversarial import (FreePerturbation, asgan_perturb, dat_perturb, fgsm, pgd,
                                   preserve_bn_stats)
from robustrep.losses import LOSSES, loss_real

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
    with preserve_bn_stats(None):
        pass
    with pytest.raises(TypeError, match="model"):
        with preserve_bn_stats(lambda v: v):
            pass


def d_scores(d, x):
    return d(x).squeeze(1)


@pytest.mark.parametrize("eps", [None, 0.05])
def test_dat_moves_real_scores_down_and_fake_scores_up(eps):
    d = linear_d()
    x_real, _ = batch(low=0.2, high=0.6)  # D(real) > D(fake): weights are positive
    x_fake, _ = batch(seed=2, low=-0.6, high=-0.2)
    real_adv, fake_adv = dat_perturb(d, x_real, x_fake, eps=eps)
    with torch.no_grad():
        assert bool((d_scores(d, real_adv) < d_scores(d, x_real)).all())
        assert bool((d_scores(d, fake_adv) > d_scores(d, x_fake)).all())
        # Once the means cross, |.| reverses the push: swapped roles move the other way.
        real_sw, fake_sw = dat_perturb(d, x_fake, x_real, eps=eps)
        assert bool((d_scores(d, real_sw) > d_scores(d, x_fake)).all())
        assert bool((d_scores(d, fake_sw) < d_scores(d, x_real)).all())
    if eps is not None:
        assert bool(((real_adv - x_real).abs() <= eps + 1e-7).all())
        torch.testing.assert_close((fake_adv - x_fake).abs(), torch.full_like(x_fake, eps))


def test_dat_reference_step_is_the_batch_mean_gradient_clipped():
    d = linear_d(weight=0.5)
    x_real, _ = batch(low=0.2, high=0.6)
    x_fake, _ = batch(seed=2, low=-0.6, high=-0.2)
    # The objective is a batch mean, so each sample moves by w / N (the reference's 1/N scale).
    real_adv, fake_adv = dat_perturb(d, x_real, x_fake)
    torch.testing.assert_close(fake_adv - x_fake, torch.full_like(x_fake, 0.5 / B))
    torch.testing.assert_close(real_adv - x_real, torch.full_like(x_real, -0.5 / B))
    # A tiny t clips every element: the step becomes t * sign(grad).
    real_adv, fake_adv = dat_perturb(d, x_real, x_fake, t=1e-3)
    torch.testing.assert_close(fake_adv - x_fake, torch.full_like(x_fake, 1e-3))
    torch.testing.assert_close(real_adv - x_real, torch.full_like(x_real, -1e-3))


def test_dat_matches_a_direct_computation_on_a_nonlinear_d():
    d = bn_net()
    x_real, _ = batch(low=-1.0)
    x_fake, _ = batch(seed=2, low=-1.0)
    real_adv, fake_adv = dat_perturb(d, x_real, x_fake, t=0.01, clamp_real=False)
    with preserve_bn_stats(d):
        mf = d(x_fake).mean().detach()
        xr = x_real.clone().requires_grad_(True)
        (g_real,) = torch.autograd.grad((d(xr).mean() - mf).abs(), xr)
        mr = d(x_real).mean().detach()
        xf = x_fake.clone().requires_grad_(True)
        (g_fake,) = torch.autograd.grad((d(xf).mean() - mr).abs(), xf)
    torch.testing.assert_close(real_adv, x_real - g_real.clamp(-0.01, 0.01))
    torch.testing.assert_close(fake_adv, (x_fake - g_fake.clamp(-0.01, 0.01)).clamp(-1, 1))


def test_dat_clamp_real():
    d = linear_d(weight=-50.0)  # raw gradient 50 / N per element, clipped to t = 1
    x_real, _ = batch(low=0.5, high=0.6)
    x_fake, _ = batch(seed=2, low=0.9, high=1.0)  # D(real) > D(fake): reals move up by 1
    clamped, _ = dat_perturb(d, x_real, x_fake)
    raw, _ = dat_perturb(d, x_real, x_fake, clamp_real=False)
    assert clamped.max() <= 1.0 < raw.max()


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("steps", [1, 3])
def test_asgan_raises_the_real_loss(kind, steps):
    d = linear_d(weight=0.1)
    x, _ = batch(low=-0.5, high=0.5)
    x_adv = asgan_perturb(d, x, loss=kind, eps=0.05, steps=steps,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert bool((loss_real(d(x_adv), kind) > loss_real(d(x), kind)).all())
    assert bool(((x_adv - x).abs() <= 0.05 + 1e-7).all())
    if steps == 1:  # one FGSM step of size eps towards "fake" (lower D: weights are positive)
        torch.testing.assert_close(x_adv - x, torch.full_like(x, -0.05))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_free_perturbation_stays_in_ball_and_round_trips(norm):
    model = classifier()
    x, y = batch()
    eps = 0.05 if norm == "linf" else 0.2
    free = FreePerturbation(eps, step_size=eps / 2, norm=norm)
    for step in range(4):
        x_adv = free.attach(x)
        assert x_adv.is_leaf and x_adv.requires_grad
        assert bool(((x_adv >= 0) & (x_adv <= 1)).all())
        F.cross_entropy(model(x_adv), y).backward()
        if step == 0:
            first = F.normalize(x_adv.grad.flatten(1), dim=1).view_as(x)
            first = x_adv.grad.sign() if norm == "linf" else first
        free.update(x_adv)
        if step == 0:
            torch.testing.assert_close(free.delta, eps / 2 * first)
        assert bool((per_sample_norm(free.delta, norm) <= eps + 1e-6).all())
    assert per_sample_norm(free.delta, norm).max() > eps / 2  # it kept moving across steps
    clone = FreePerturbation(eps, step_size=eps / 2, norm=norm)
    clone.load_state_dict(free.state_dict())
    assert torch.equal(clone.attach(x), free.attach(x))


def test_free_perturbation_resizes_with_the_batch():
    free = FreePerturbation(0.1)
    x, _ = batch()
    x_adv = free.attach(x)
    x_adv.sum().backward()
    free.update(x_adv)  # every delta row is now 0.1
    small = free.attach(x[:3])
    torch.testing.assert_close(small, (x[:3] + 0.1).clamp(0, 1))
    big = free.attach(torch.cat([x, x[:4]]))
    torch.testing.assert_close(big[B:], x[:4])  # new rows start at zero
    torch.testing.assert_close(big[:B], (x + 0.1).clamp(0, 1))
    other = free.attach(torch.rand(2, 5))  # another per-sample shape restarts from zero
    assert torch.equal(free.delta, torch.zeros(2, 5)) and other.shape == (2, 5)
    with pytest.raises(ValueError, match="x_adv.grad is None"):
        free.update(other)
    free.reset()
    assert free.state_dict() == {"delta": None}


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
    with pytest.raises(ValueError, match="does not depend on x"):
        pgd(lambda v: model[1].weight.sum().expand(B), x, 0.1)
    with pytest.raises(ValueError, match="t must be >= 0"):
        dat_perturb(d, x, x, t=-1.0)
    with pytest.raises(ValueError, match="per-sample shape"):
        dat_perturb(d, x, x.flatten(1))
    with pytest.raises(ValueError, match="loss"):
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
