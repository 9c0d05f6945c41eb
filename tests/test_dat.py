"""DAT (robustrep.dat): the reference step against direct computations, the bounded variant,
the registered class and the argument checks. What DAT shares with every attack (untouched
models, input ranges, dtypes) is tested with the others in test_adversarial.py."""

import pytest
import torch
from torch import nn

from robustrep.adversarial import preserve_bn_stats
from robustrep.dat import DAT, dat_perturb

from .conftest import B, images, linear_d


def bn_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16, 1)).train()


def d_scores(d, x):
    return d(x).squeeze(1)


@pytest.mark.parametrize("eps", [None, 0.05])
def test_dat_moves_real_scores_down_and_fake_scores_up(eps):
    d = linear_d()
    x_real = images(0.2, 0.6)  # D(real) > D(fake): weights are positive
    x_fake = images(-0.6, -0.2, seed=2)
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
    x_real = images(0.2, 0.6)
    x_fake = images(-0.6, -0.2, seed=2)
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
    x_real = images()
    x_fake = images(seed=2)
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
    x_real = images(0.5, 0.6)
    x_fake = images(0.9, 1.0, seed=2)  # D(real) > D(fake): reals move up by 1
    clamped, _ = dat_perturb(d, x_real, x_fake)
    raw, _ = dat_perturb(d, x_real, x_fake, clamp_real=False)
    assert clamped.max() <= 1.0 < raw.max()


# --- the registered class passes every option -------------------------------------------------


def test_dat_class_passes_every_option():
    # D(real) < D(fake): reals move up by eps towards the fakes' score, fakes move down.
    d = linear_d(weight=0.5)
    x_real, x_fake = torch.full((B, 3, 2, 2), 1.4), torch.full((B, 3, 2, 2), 1.45)
    opts = dict(eps=0.3, input_range=(-1.5, 1.5), clamp_real=False)  # 1.4 is outside [-1, 1]
    real, fake = DAT(**opts)(d, x_real, x_fake)
    torch.testing.assert_close(real, x_real + 0.3)  # 1.7: not clamped to 1.5
    torch.testing.assert_close(fake, x_fake - 0.3)
    # t: the clipped reference step (raw step 12 / B = 1.5 per element, clipped to t)
    d, x_real, x_fake = linear_d(weight=12.0), images(0.2, 0.6), images(-0.6, -0.2, seed=2)
    for dat, t in ((DAT(), 1.0), (DAT(t=0.25), 0.25)):
        real, fake = dat(d, x_real, x_fake)
        torch.testing.assert_close(real, x_real - t)
        torch.testing.assert_close(fake, x_fake + t)


# --- DAT details --------------------------------------------------------------------------------


def test_dat_default_t_is_one():
    d = linear_d(weight=12.0)  # raw step 12 / B = 1.5 per element, clipped to t = 1
    x_real, x_fake = images(0.2, 0.6), images(-0.6, -0.2, seed=2)
    real, fake = dat_perturb(d, x_real, x_fake)
    torch.testing.assert_close(real, x_real - 1.0)
    torch.testing.assert_close(fake, x_fake + 1.0)


def test_dat_bounded_step_leaves_pixels_with_zero_gradient():
    d = linear_d(weight=0.5)
    with torch.no_grad():
        d[1].weight[0, 0] = 0.0  # D ignores the first pixel: its gradient is exactly zero
    x_real, x_fake = images(0.2, 0.6), images(-0.6, -0.2, seed=2)
    real, fake = dat_perturb(d, x_real, x_fake, eps=0.05)
    assert torch.equal(real[:, 0, 0, 0], x_real[:, 0, 0, 0])
    assert torch.equal(fake[:, 0, 0, 0], x_fake[:, 0, 0, 0])


@pytest.mark.parametrize("opts", [dict(eps=0.0), dict(t=0.0), dict(t=0.0, eps=0.0)])
def test_dat_zero_step_runs_no_forward(opts):
    calls = []
    d = linear_d()

    def d_fn(v):
        calls.append(v)
        return d(v)
    x = images()
    real, fake = dat_perturb(d_fn, x, x.flip(0), **opts)
    assert calls == [] and torch.equal(real, x) and torch.equal(fake, x.flip(0))


def test_dat_needs_a_gradient_on_both_sides():
    d, x = linear_d(), images()
    w = d[1].weight
    # the real batch (4 samples) is scored without looking at it; the fakes (8) through D
    d_fn = lambda v: d(v) if v.shape[0] == B else w.sum().expand(v.shape[0], 1)  # noqa: E731
    with pytest.raises(ValueError, match="^d_fn\\(x\\) must depend on x with grad for both"):
        dat_perturb(d_fn, x[:4], x)
    with pytest.raises(ValueError, match="^d_fn\\(x\\) must depend on x with grad for both"):
        dat_perturb(lambda v: w.sum().expand(v.shape[0], 1), x, x)


def test_dat_non_tensor_scores_name_the_side():
    d, x = linear_d(), images()
    with pytest.raises(TypeError, match=r"^d_fn\(x_real\) must return a tensor.*got float"):
        dat_perturb(lambda v: 1.0, x, x)
    calls = []

    def d_fn(v):
        calls.append(v)
        return d(v) if len(calls) == 1 else 1.0
    with pytest.raises(TypeError, match=r"^d_fn\(x_fake\) must return a tensor"):
        dat_perturb(d_fn, x, x)


@pytest.mark.parametrize("where", ["x_real", "x_fake", "model"])
def test_dat_checks_every_device(where):
    d, x = linear_d(), images()
    args = dict(x_real=x, x_fake=x.flip(0))
    if where == "model":
        d = d.to("meta")
    else:
        args[where] = args[where].to("meta")
    with pytest.raises(ValueError, match="same device"):
        dat_perturb(d, **args, input_range=None)
    if where == "model":  # the module given by model= is the one checked
        with pytest.raises(ValueError, match="same device"):
            dat_perturb(lambda v: d(v), **args, input_range=None, model=d)


@pytest.mark.parametrize("side", ["x_real", "x_fake"])
@pytest.mark.parametrize("bad,error,words", [
    ("empty", ValueError, "batch of at least 1"), ("int", TypeError, "floating-point"),
    ("rank1", ValueError, "rank"), ("range", ValueError, "must lie in input_range"),
])
def test_dat_bad_inputs_name_the_side(side, bad, error, words):
    x = images()
    wrong = {"empty": x[:0], "int": x.long(), "rank1": x[:, 0, 0, 0], "range": 3 * x}[bad]
    args = dict(x_real=x, x_fake=x)
    args[side] = wrong
    with pytest.raises(error, match=f"^{side} .*{words}"):
        dat_perturb(lambda v: v.flatten(1).sum(1), **args)


def test_dat_other_bad_arguments_are_named():
    d, x = linear_d(), images()
    with pytest.raises(TypeError, match="^d_fn must be callable, got int"):
        dat_perturb(3, x, x)
    with pytest.raises(TypeError, match="^clamp_real must be a bool, got int"):
        dat_perturb(d, x, x, clamp_real=1)
    with pytest.raises(ValueError, match="^input_range must be"):
        dat_perturb(d, x, x, input_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="^eps must be >= 0"):
        dat_perturb(d, x, x, eps=-0.1)
    # a batch of one is fine
    real, fake = dat_perturb(d, x[:1], x[1:2])
    assert real.shape == fake.shape == (1, 3, 2, 2)


def test_a_d_without_grad_is_one_line_naming_d_fn():
    # scores computed under no_grad have no graph: autograd.grad's own error names neither
    d = linear_d()

    def no_grad_d(x):
        with torch.no_grad():
            return d(x)

    with pytest.raises(ValueError, match=r"^d_fn\(x\) must depend on x with grad for both "
                                         r"x_real and x_fake \(a D run under torch.no_grad\(\)"):
        dat_perturb(no_grad_d, images(), images(seed=2))


# --- model= when d_fn hides the module (pinned by mutation testing) ------------------------------


def hidden(d):
    """A d_fn whose module no closure or global names (a trainer's dict of models)."""
    nets = {"d": d}
    return lambda v: nets["d"](v)


def test_model_given_is_checked_when_d_fn_hides_it():
    x = images()
    for call in (lambda d: dat_perturb(hidden(d), x, x.flip(0), model=d),
                 lambda d: DAT()(hidden(d), x, x.flip(0), model=d),
                 lambda d: DAT().d_inputs(hidden(d), x, x.flip(0), model=d)):
        with pytest.raises(ValueError, match="^tensors must be on the same device, got x_real on "
                                             "cpu, x_fake on cpu, model on meta$"):
            call(linear_d().to("meta"))
        with pytest.raises(TypeError, match=r"^x_real has dtype torch.float32 but the model's "
                                            r"parameters are torch.float64"):
            call(linear_d().double())


def test_model_given_keeps_buffers_a_functional_d_changes():
    # D reads the BatchNorm's buffers without calling the module: only model= names them
    bn = nn.BatchNorm2d(3).train()
    before = {k: v.clone() for k, v in bn.state_dict().items()}

    def d_fn(v):
        out = nn.functional.batch_norm(v, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                       training=True)
        return out.flatten(1).sum(1)
    x = images()
    dat_perturb(d_fn, x, x.flip(0) * 0.5, model=bn)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_dat_class_checks_its_options_when_built():
    with pytest.raises(ValueError, match="^eps must be >= 0, got -0.1$"):
        DAT(eps=-0.1)
    with pytest.raises(ValueError, match="^input_range must be finite with low < high"):
        DAT(input_range=(1.0, -1.0))
