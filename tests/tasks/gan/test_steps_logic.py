"""The GAN program's D and G steps move the models the right way (not only "finite losses").

The steps are driven through the program's own functions (``d_step``, ``g_step``, ``d_loss_mix``)
on 2-D points with a D that is linear in its parameters, so each direction is a first-order fact
rather than a training outcome: reals sit at (2, 2), G's fakes at (-2, -2), and one plain SGD step
must widen ``D(real) - D(fake)`` for every loss. A swap of the real and fake terms, or of ``lam``
and ``1 - lam`` in the mixed term, turns these directions round.
"""

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robustrep import losses
from robustrep.adversarial import asgan_perturb, dat_perturb
from robustrep.diffaugment import diff_augment
from robustrep.mixing import mixed_gan_loss
from robustrep.projection import (ensemble_fake_loss, ensemble_g_loss, ensemble_mixed_loss,
                                  ensemble_real_loss)
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.gan import ema, lazy_reg, steps
from robustrep.tasks.gan.regs import build_regs
from robustrep.tasks.gan.steps import (StepContext, d_inputs, d_loss_adv, d_loss_mix, d_penalties,
                                       d_step, g_step, r1_in_main_pass)

from .conftest import tiny_config

B, Z = 16, 4
REAL = (2.0, 2.0)


class PointG(nn.Module):
    """Fakes near (-2, -2): a small linear map of z plus a bias."""

    def __init__(self):
        super().__init__()
        self.z_dim = Z
        self.net = nn.Linear(Z, 2)
        with torch.no_grad():
            self.net.weight.mul_(0.05)
            self.net.bias.fill_(-2.0)

    def forward(self, z):
        return self.net(z)


class LinearD(nn.Module):
    """``D(x) = w . x + b`` with ``w = b = 0``: every loss has a gradient at logit 0 on reals."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 1)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def forward(self, x):
        return self.net(x).squeeze(1)


class SplitD(nn.Module):
    """A D that AdaptiveMix can split: a linear trunk to 4 features and a linear head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk, self.out = nn.Linear(2, 4), nn.Linear(4, 1)

    def features(self, x):
        return self.trunk(x)

    def head(self, z):
        return self.out(z).squeeze(1)

    def forward(self, x):
        return self.head(self.features(x))


def make_ctx(kind, reg="none", lr=0.05, **cfg_overrides):
    torch.manual_seed(0)
    gp = {"gp_weight": 0.0} if kind == "wasserstein" else {}  # the other losses have no GP
    cfg = tiny_config("grid-mlp", loss=kind, reg=reg, batch_size=B,
                      **{**gp, "r1_gamma": 0.0, **cfg_overrides})
    G, D = PointG(), (SplitD() if "adaptivemix" in reg else LinearD())
    return StepContext(
        cfg=cfg, G=G, D=D, g_fn=G, d_fn=D,
        opt_g=torch.optim.SGD(G.parameters(), lr=lr), opt_d=torch.optim.SGD(D.parameters(), lr=lr),
        scaler=torch.amp.GradScaler("cpu", enabled=False), regs=build_regs(cfg),
        gens={"z": torch.Generator().manual_seed(1), "reg": torch.Generator().manual_seed(2)},
        device=torch.device("cpu"))


def real_batch():
    g = torch.Generator().manual_seed(3)
    return torch.tensor(REAL) + 0.1 * torch.randn(B, 2, generator=g)


def fakes_of_next_step(ctx):
    """The fakes ``d_step`` is about to draw (its z generator, replayed on a copy)."""
    gen = torch.Generator().set_state(ctx.gens["z"].get_state())
    with torch.no_grad():
        return ctx.G(torch.randn(B, Z, generator=gen))


def gap(ctx, x_real, x_fake):
    with torch.no_grad():
        return float(ctx.D(x_real).mean() - ctx.D(x_fake).mean())


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_d_step_raises_d_real_minus_d_fake(kind):
    ctx, x_real = make_ctx(kind), real_batch()
    x_fake = fakes_of_next_step(ctx)
    before = gap(ctx, x_real, x_fake)
    terms = d_step(ctx, x_real)
    assert before == 0.0
    assert gap(ctx, x_real, x_fake) > 0.05
    # The terms are the losses on the right sides: at D = 0 they take their value at logit 0.
    zero = torch.zeros(1)
    assert terms["d/real"] == pytest.approx(float(losses.loss_real(zero, kind)))
    assert terms["d/fake"] == pytest.approx(float(losses.loss_fake(zero, kind)))


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_repeated_d_steps_keep_separating(kind):
    ctx, x_real = make_ctx(kind), real_batch()
    gaps = []
    for _ in range(3):
        x_fake = fakes_of_next_step(ctx)
        d_step(ctx, x_real)
        gaps.append(gap(ctx, x_real, x_fake))
    assert gaps[0] > 0 and gaps[-1] > gaps[0]


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_g_step_lowers_its_loss_and_leaves_d_alone(kind):
    ctx = make_ctx(kind)
    with torch.no_grad():  # a D that already separates: D(x) = x1 + x2 (reals high)
        ctx.D.net.weight.fill_(0.25)
    d_before = [p.clone() for p in ctx.D.parameters()]
    z = torch.randn(B, Z, generator=torch.Generator().manual_seed(5))

    def g_loss_on_z():
        with torch.no_grad():
            return float(losses.g_loss(ctx.D(ctx.G(z)), kind).mean())

    before = g_loss_on_z()
    terms = g_step(ctx, B)
    assert g_loss_on_z() < before - 1e-3
    assert all(torch.equal(p, q) for p, q in zip(ctx.D.parameters(), d_before))
    assert terms["g/total"] == terms["g/adv"]


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_mixed_term_is_lam_real_plus_one_minus_lam_fake(kind):
    # Replay the SampleMix draw the step makes and compute the mixed loss by hand.
    ctx = make_ctx(kind, reg="mixup", mix_per_sample=True)
    with torch.no_grad():
        ctx.D.net.weight.copy_(torch.tensor([[0.7, -0.2]]))
        ctx.D.net.bias.fill_(0.1)
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    mixed = ctx.regs.extra_d_term(x_real, x_b=x_fake, generator=gen)
    logits = ctx.D(mixed.x).detach()
    lam = mixed.lam
    assert lam.min() < 0.4 and lam.max() > 0.6  # a spread of lam, so lam <-> 1 - lam shows
    expected = (lam * losses.loss_real(logits, kind)
                + (1 - lam) * losses.loss_fake(logits, kind)).mean()
    got = d_loss_mix(ctx, x_real, x_fake)["d/mix"]
    torch.testing.assert_close(got.detach(), ctx.regs.extra_d_term.weight * expected)


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_d_step_on_the_mixed_term_alone_raises_the_gap(kind):
    # mix_mode="replace": D learns only from real-by-fake mixes; a mix that is mostly real must
    # still be pushed towards "real", so one step widens D(real) - D(fake).
    ctx, x_real = make_ctx(kind, reg="mixup", mix_mode="replace", mix_per_sample=True), real_batch()
    x_fake = fakes_of_next_step(ctx)
    terms = d_step(ctx, x_real)
    assert set(terms) == {"d/mix", "d/total"}
    assert gap(ctx, x_real, x_fake) > 0.01


# --- penalties and perturbed inputs, exact ----------------------------------------------------


def set_d(ctx, w=(0.8, -0.6), b=0.1):  # ||w|| = 1; D(real) = 0.5 > D(fake) = -0.3
    with torch.no_grad():
        ctx.D.net.weight.copy_(torch.tensor([w]))
        ctx.D.net.bias.fill_(b)


@pytest.mark.parametrize("every", [1, 2])
def test_lazy_r1_term_is_half_gamma_every_times_squared_weight_norm(every):
    # D(x) = w . x + b has grad w everywhere: R1 = ||w||^2 = 4 with w = (1.2, -1.6).
    ctx = make_ctx("ns", r1_gamma=3.0, r1_every=every)
    set_d(ctx, w=(1.2, -1.6))
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    terms = d_penalties(ctx, x_real, x_fake)
    assert terms["d/r1"].item() == pytest.approx(0.5 * 3.0 * every * 4.0)
    ctx.d_steps = 1  # lazy: only every `every` D steps
    assert ("d/r1" in d_penalties(ctx, x_real, x_fake)) == (every == 1)


def test_r1_from_the_main_pass_equals_r1_from_a_pass_of_its_own():
    values = []
    for reuse in (True, False):
        ctx = make_ctx("ns", r1_gamma=3.0)
        ctx.reuse_r1 = reuse
        set_d(ctx, w=(1.2, -1.6))
        terms = d_step(ctx, real_batch())
        values.append(terms["d/r1"])
        assert ctx.D.net.weight.grad is not None
    torch.testing.assert_close(values[0], values[1])
    torch.testing.assert_close(values[0], torch.tensor(0.5 * 3.0 * 4.0))


def _count_adaptivemix_calls(ctx):
    calls, am = [], ctx.regs.d_function
    d_logits = am.d_logits
    am.d_logits = lambda *a, **k: calls.append(1) or d_logits(*a, **k)
    return calls


@pytest.mark.parametrize("reuse, passes", [(True, 2), (False, 3)])
def test_adaptivemix_r1_reuses_the_main_passs_mixed_logit(reuse, passes):
    # reals and fakes each one AdaptiveMix pass; R1 on its own pass would draw a third
    ctx = make_ctx("ns", reg="adaptivemix", r1_gamma=1.0, am_noise_std=0.0)
    ctx.reuse_r1 = reuse
    calls = _count_adaptivemix_calls(ctx)
    terms = d_step(ctx, real_batch())
    assert len(calls) == passes and terms["d/r1"] > 0


@pytest.mark.parametrize("change", ["lazy", "dat", "compiled", "not due", "fp16"])
def test_r1_gets_its_own_pass_unless_the_main_pass_is_eager_and_clean(change):
    ctx = make_ctx("ns", reg="dat" if change == "dat" else "none", r1_gamma=1.0,
                   r1_every=2 if change == "lazy" else 1, lazy_reg=change == "lazy")
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    base = make_ctx("ns", r1_gamma=1.0)
    assert r1_in_main_pass(base, d_inputs(base, x_real, x_fake))
    if change == "compiled":
        ctx.d_fn = lambda x: ctx.D(x)  # stands for torch.compile's wrapper
    if change == "not due":
        ctx.cfg.r1_every, ctx.d_steps = 2, 1
    if change == "fp16":
        ctx.cfg.amp = "fp16"
    assert not r1_in_main_pass(ctx, d_inputs(ctx, x_real, x_fake))


def test_wgan_gp_term_only_with_the_wasserstein_loss():
    ctx = make_ctx("wasserstein", gp_weight=10.0)
    set_d(ctx, w=(1.2, -1.6))  # ||grad|| = 2: (2 - 1)^2 = 1 per sample
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    terms = d_penalties(ctx, x_real, x_fake)
    assert set(terms) == {"d/gp"} and terms["d/gp"].item() == pytest.approx(10.0)
    assert d_penalties(make_ctx("hinge"), x_real, x_fake) == {}
    with pytest.raises(ConfigError, match="--gp-weight applies only with --loss wasserstein"):
        make_ctx("hinge", gp_weight=10.0)


def test_penalties_enter_the_d_step_total():
    ctx = make_ctx("wasserstein", gp_weight=10.0, r1_gamma=2.0)
    set_d(ctx, w=(1.2, -1.6))
    terms = d_step(ctx, real_batch())
    assert terms["d/gp"].item() == pytest.approx(10.0)
    assert terms["d/r1"].item() == pytest.approx(0.5 * 2.0 * 4.0)
    total = terms["d/real"] + terms["d/fake"] + terms["d/gp"] + terms["d/r1"]
    torch.testing.assert_close(terms["d/total"], total)


def test_asgan_replaces_the_reals_by_the_cores_perturbation_without_clamping_points():
    ctx = make_ctx("hinge", reg="asgan", asgan_eps=0.1)
    set_d(ctx)
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    expected = asgan_perturb(ctx.D, x_real, loss="hinge", eps=0.1, input_range=None,
                             generator=gen)
    inp = d_inputs(ctx, x_real, x_fake)
    torch.testing.assert_close(inp.real, expected)
    assert torch.equal(inp.fake, x_fake) and torch.equal(inp.clean_real, x_real)
    # reals at (2, 2) lie outside [-1, 1]: points are unbounded, each moved by exactly eps
    torch.testing.assert_close((inp.real - x_real).abs(), torch.full_like(x_real, 0.1))
    # D's real loss is taken on the perturbed reals; "add" mode adds the clean term
    terms = d_loss_adv(ctx, inp)
    torch.testing.assert_close(terms["d/real"], losses.loss_real(ctx.D(inp.real), "hinge").mean())
    ctx.regs.d_inputs.mode = "add"
    terms = d_loss_adv(ctx, inp)
    torch.testing.assert_close(terms["d/real_clean"],
                               losses.loss_real(ctx.D(x_real), "hinge").mean())


def test_dat_replaces_both_sides_by_the_cores_perturbation():
    ctx = make_ctx("ns", reg="dat", dat_eps=0.05)
    set_d(ctx)
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    exp_real, exp_fake = dat_perturb(ctx.D, x_real, x_fake, eps=0.05, input_range=None)
    inp = d_inputs(ctx, x_real, x_fake)
    torch.testing.assert_close(inp.real, exp_real)
    torch.testing.assert_close(inp.fake, exp_fake)
    # the moves are towards the other side: reals down in D, fakes up
    assert ctx.D(inp.real).mean() < ctx.D(x_real).mean()
    assert ctx.D(inp.fake).mean() > ctx.D(x_fake).mean()


def test_adaptivemix_logits_and_shrinkage_enter_both_steps():
    ctx = make_ctx("ns", reg="adaptivemix", am_noise_std=0.0, am_mode="additive")
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    terms = d_loss_adv(ctx, d_inputs(ctx, x_real, x_fake))
    # additive mode: the clean logits carry the loss; the shrinkage is its own term
    torch.testing.assert_close(terms["d/real"], losses.loss_real(ctx.D(x_real), "ns").mean())
    assert "d/am_shrink" in terms and terms["d/am_shrink"].requires_grad
    g_terms = g_step(ctx, B)
    assert "g/am_shrink" in g_terms
    torch.testing.assert_close(g_terms["g/total"], g_terms["g/adv"] + g_terms["g/am_shrink"])
    ctx.regs.d_function.g_shrink = False
    assert "g/am_shrink" not in g_step(ctx, B)


# --- the StyleGAN2 schedule helpers, exact -----------------------------------------------------


def sg2_cfg(**kw):
    base = dict(arch="stylegan2", lazy_reg=None, r1_every=16, r1_gamma=1.0, pl_weight=None,
                pl_every=None, pl_decay=None, pl_batch_shrink=None, style_mixing=None, amp="off")
    return SimpleNamespace(**{**base, **kw})


def test_ema_beta_is_a_half_life_in_images():
    assert ema.ema_beta(64, 10**6, 20, None) == 0.5 ** (64 / 20_000)
    assert ema.ema_beta(32, 1000, 10, 0.05) == 0.5 ** (32 / 50)  # ramp-up caps the half-life
    assert ema.ema_beta(32, 10**6, 10, 0.05) == 0.5 ** (32 / 10_000)  # ramp-up over
    assert ema.ema_beta(32, 0, 10, 0.05) == 0.0  # zero half-life: the first step copies G


def test_lazy_ratio_and_adam_adjustment():
    assert lazy_reg.lazy_ratio(1) == 1.0 and lazy_reg.lazy_ratio(4) == 0.8
    assert lazy_reg.lazy_ratio(2) == 2 / 3
    kw = lazy_reg.lazy_adam_kwargs(0.01, (0.5, 0.9), 4)
    assert kw == {"lr": 0.01 * 0.8, "betas": (0.5 ** 0.8, 0.9 ** 0.8)}


def test_lazy_switches_and_intervals():
    assert lazy_reg.lazy_enabled(sg2_cfg()) is True  # on by default for stylegan2
    assert lazy_reg.lazy_enabled(sg2_cfg(arch="dcgan")) is False
    assert lazy_reg.lazy_enabled(sg2_cfg(arch="dcgan", lazy_reg=True)) is True
    assert lazy_reg.lazy_enabled(sg2_cfg(lazy_reg=False)) is False
    ctx = SimpleNamespace(cfg=sg2_cfg(r1_every=1))
    assert not lazy_reg.lazy_r1(ctx)  # every step: no separate R1 step
    ctx.cfg.r1_every = 2
    assert lazy_reg.lazy_r1(ctx)
    ctx.cfg.lazy_reg = False
    assert not lazy_reg.lazy_r1(ctx)
    assert lazy_reg.pl_settings(sg2_cfg()) == (2.0, 4)
    assert lazy_reg.pl_settings(sg2_cfg(pl_weight=0.5, pl_every=3)) == (0.5, 3)
    assert lazy_reg.pl_settings(sg2_cfg(arch="dcgan", pl_weight=0.5)) == (0.0, 1)
    assert lazy_reg.optimizer_intervals(sg2_cfg()) == (4, 16)
    assert lazy_reg.optimizer_intervals(sg2_cfg(pl_every=2, r1_every=8)) == (2, 8)
    assert lazy_reg.optimizer_intervals(sg2_cfg(arch="dcgan", lazy_reg=True, r1_every=8)) == (1, 8)
    assert lazy_reg.optimizer_intervals(sg2_cfg(lazy_reg=False)) == (1, 1)


class StyleG(nn.Module):
    """A StyleGAN2-shaped G: ``mapping_mixed`` gives 2 ws of 3 dims, ``synthesis`` maps their
    sum linearly to a 1x1x4 image, so the path-length gradient is ``A y`` for every w."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.z_dim = Z
        self.mapping = nn.Linear(Z, 3)
        self.A = nn.Parameter(torch.randn(3, 4))
        self.bias = nn.Parameter(torch.zeros(4))  # moves the image, not its gradient in w
        self.register_buffer("pl_mean", torch.zeros(()))
        self.calls, self.sizes = [], []

    def mapping_mixed(self, z, style_mixing, generator):
        self.calls.append((style_mixing, generator))
        return self.mapping(z)[:, None].expand(-1, 2, -1)

    def synthesis(self, ws):
        self.sizes.append(ws.shape[0])
        return (ws.sum(1) @ self.A + self.bias).view(-1, 1, 1, 4)


def sg2_ctx(**cfg):
    G, cfg = StyleG(), sg2_cfg(**cfg)
    gens = {"z": torch.Generator().manual_seed(1), "reg": torch.Generator().manual_seed(2)}
    return StepContext(
        cfg=cfg, G=G, D=LinearD(), g_fn=steps.g_forward(cfg, G, gens["z"]), d_fn=None,
        opt_g=torch.optim.SGD(G.parameters(), lr=0.1), opt_d=None,
        scaler=torch.amp.GradScaler("cpu", enabled=False), regs=None, gens=gens,
        device=torch.device("cpu"))


def expected_pl(ctx, n, decay):
    """Path length by hand: lengths ||A y|| (y ~ N(0, I) / sqrt(H W)), then the running mean."""
    z = torch.randn(n, Z, generator=torch.Generator().set_state(ctx.gens["z"].get_state()))
    y = torch.randn(n, 1, 1, 4, generator=torch.Generator().set_state(ctx.gens["reg"].get_state()))
    grad = (y.flatten(1) / 2.0) @ ctx.G.A.detach().T  # d(img . y)/dw, the same for both ws
    lengths = grad.norm(dim=1)
    mean = ctx.G.pl_mean + decay * (lengths.mean() - ctx.G.pl_mean)
    assert z.shape == (n, Z)
    return ((lengths - mean) ** 2).mean(), mean


def test_path_length_penalty_exact_with_core_defaults():
    ctx = sg2_ctx()
    want, mean = expected_pl(ctx, 8 // 2, 0.01)  # pl_batch_shrink 2, pl_decay 0.01
    got = lazy_reg.path_length_penalty(ctx, 8)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ctx.G.pl_mean, mean)
    assert ctx.G.calls == [(0.9, ctx.gens["z"])]  # style mixing 0.9 from the z stream
    ctx = sg2_ctx(pl_batch_shrink=4, pl_decay=0.5, style_mixing=0.3)
    want, mean = expected_pl(ctx, 8 // 4, 0.5)
    torch.testing.assert_close(lazy_reg.path_length_penalty(ctx, 8), want)
    torch.testing.assert_close(ctx.G.pl_mean, mean)
    assert ctx.G.calls[0][0] == 0.3
    ctx = sg2_ctx(pl_batch_shrink=16)  # 8 // 16 = 0: still one sample
    want, _ = expected_pl(ctx, 1, 0.01)
    torch.testing.assert_close(lazy_reg.path_length_penalty(ctx, 8), want)


def test_path_length_gradient_flows_through_the_running_mean():
    """stylegan2-ada's loss.py penalises against ``pl_mean.lerp(lengths.mean(), decay)`` with
    its graph (only the stored mean is detached)."""
    ctx = sg2_ctx(pl_decay=0.5)  # a large decay makes the mean's share of the gradient visible
    y = torch.randn(4, 1, 1, 4, generator=torch.Generator().set_state(ctx.gens["reg"].get_state()))
    lengths = ((y.flatten(1) / 2.0) @ ctx.G.A.T).norm(dim=1)
    mean = ctx.G.pl_mean.lerp(lengths.mean(), 0.5)
    (want,) = torch.autograd.grad(((lengths - mean) ** 2).mean(), ctx.G.A, retain_graph=True)
    (detached,) = torch.autograd.grad(((lengths - mean.detach()) ** 2).mean(), ctx.G.A)
    (got,) = torch.autograd.grad(lazy_reg.path_length_penalty(ctx, 8), ctx.G.A)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, detached, atol=1e-4)
    assert not ctx.G.pl_mean.requires_grad


def test_stylegan2_iteration_runs_g_phases_before_d_phases():
    """Gmain, Greg, Dmain(+Dreg): the D step scores fakes of the G its iteration just updated."""
    ctx = sg2_ctx(loss="ns", diffaugment=None, gp_weight=0.0, r1_gamma=0.0, n_dis=1,
                  pl_weight=1.0, pl_every=1)
    order = []
    real = lambda: torch.rand(6, 1, 1, 4)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(steps, "g_step", lambda c, b: order.append("Gmain") or {})
        mp.setattr(steps, "g_reg_step", lambda c, b, i: order.append("Greg") or {})
        mp.setattr(steps, "d_step", lambda c, x: order.append("D") or {})
        steps.train_iteration(ctx, real)
    assert order == ["Gmain", "Greg", "D"]


def test_g_reg_step_is_weight_times_interval_times_pl_on_its_schedule():
    ctx = sg2_ctx(pl_weight=0.5, pl_every=3)
    want, _ = expected_pl(ctx, 4, 0.01)
    a_before = ctx.G.A.detach().clone()
    terms = lazy_reg.g_reg_step(ctx, 8, iteration=6)
    torch.testing.assert_close(terms["g/pl"], 0.5 * 3 * want)
    assert not terms["g/pl"].requires_grad and not torch.equal(ctx.G.A, a_before)  # G stepped
    assert lazy_reg.g_reg_step(ctx, 8, iteration=4) == {}  # off schedule
    assert lazy_reg.g_reg_step(sg2_ctx(pl_weight=0.0), 8, iteration=0) == {}
    assert lazy_reg.g_reg_step(sg2_ctx(arch="dcgan"), 8, iteration=0) == {}


def test_stylegan_generate_maps_with_style_mixing():
    ctx = sg2_ctx(style_mixing=0.25)
    z = torch.randn(3, Z, generator=torch.Generator().set_state(ctx.gens["z"].get_state()))
    out = steps.generate(ctx, 3)
    torch.testing.assert_close(out, ctx.G.synthesis(ctx.G.mapping_mixed(z, 0.25, None)))
    assert ctx.G.calls[0] == (0.25, ctx.gens["z"])


# --- lazy R1 step, the iteration, and the wiring of the D and G steps --------------------------


def test_lazy_r1_is_its_own_d_update_in_fp32():
    ctx = make_ctx("ns", r1_gamma=3.0, r1_every=2, lazy_reg=True, amp="bf16")
    set_d(ctx, w=(1.2, -1.6))
    x_real = real_batch()
    terms = lazy_reg.d_reg_step(ctx, x_real)
    # R1 = 0.5 * gamma * every * ||w||^2 = 12 exactly in fp32 (bf16 would round w);
    # its gradient 6 w moves w by lr * 6 w.
    assert terms["d/r1"].item() == pytest.approx(12.0, rel=1e-6)
    assert not terms["d/r1"].requires_grad
    torch.testing.assert_close(ctx.D.net.weight, torch.tensor([[1.2, -1.6]]) * (1 - 0.05 * 6.0))
    ctx.d_steps = 1
    assert lazy_reg.d_reg_step(ctx, x_real) == {}  # not due
    assert lazy_reg.d_reg_step(make_ctx("ns", r1_gamma=3.0, r1_every=2), x_real) == {}  # not lazy


def test_d_step_with_lazy_r1_takes_it_only_in_its_own_step_and_counts_steps():
    ctx = make_ctx("ns", r1_gamma=3.0, r1_every=2, lazy_reg=True)
    set_d(ctx, w=(1.2, -1.6))
    first = d_step(ctx, real_batch())
    assert first["d/r1"].item() > 10.0  # ~12 at the weights the main update left
    # the main total has no R1 in it: R1 was its own update
    torch.testing.assert_close(first["d/total"], first["d/real"] + first["d/fake"])
    second = d_step(ctx, real_batch())
    assert "d/r1" not in second and ctx.d_steps == 2


def test_train_iteration_is_n_dis_d_steps_then_one_g_step():
    ctx = make_ctx("ns", n_dis=3)
    batches = []

    def next_real():
        batches.append(real_batch())
        return batches[-1]
    terms = steps.train_iteration(ctx, next_real)
    assert len(batches) == 3 and ctx.d_steps == 3
    assert {"d/real", "d/fake", "d/total", "g/adv", "g/total"} <= set(terms)
    assert "g/pl" not in terms


def test_d_logits_uses_d_fn_unless_eager_and_r1_its_eager_d():
    ctx = make_ctx("ns", r1_gamma=2.0)
    set_d(ctx, w=(1.2, -1.6))
    ctx.d_fn = lambda x: 3 * ctx.D(x)  # stands for a compiled D that differs
    x = real_batch()
    torch.testing.assert_close(steps.d_logits(ctx, x)[0], 3 * ctx.D(x))
    torch.testing.assert_close(steps.d_logits(ctx, x, eager=True)[0], ctx.D(x))
    # R1 of its own pass differentiates the eager D: 0.5 * 2 * ||w||^2 = 4
    assert steps.r1_term(ctx, x).item() == pytest.approx(4.0)
    assert set(d_loss_adv(ctx, d_inputs(ctx, x, fakes_of_next_step(ctx)))) == {"d/real", "d/fake"}


def test_augment_applies_diffaugment_with_the_reg_stream():
    ctx = make_ctx("ns")
    x = torch.rand(4, 3, 8, 8)
    assert steps.augment(ctx, x) is x  # off: untouched
    ctx.cfg.diffaugment = "color,translation"
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    want = diff_augment(x, "color,translation", generator=gen)
    torch.testing.assert_close(steps.augment(ctx, x), want)
    assert torch.equal(ctx.gens["reg"].get_state(), gen.get_state())


class BnD(nn.Module):
    """A D with batch statistics: the attacks must not move its running stats."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


@pytest.mark.parametrize("reg", ["dat", "asgan"])
def test_attacks_in_d_inputs_keep_ds_batch_statistics(reg):
    ctx = make_ctx("ns", reg=reg, **({"asgan_steps": 2} if reg == "asgan" else {}))
    ctx.D = BnD().train()
    ctx.d_fn = ctx.D
    before = {k: v.clone() for k, v in ctx.D.state_dict().items()}
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    inp = d_inputs(ctx, x_real, x_fake)
    for k, v in ctx.D.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert inp.clean_real is x_real
    if reg == "asgan":  # two steps: a random start from the reg stream
        gen = torch.Generator().manual_seed(2)
        want = asgan_perturb(ctx.D, x_real, loss="ns", steps=2, input_range=None, generator=gen)
        torch.testing.assert_close(inp.real, want)


class _CarelessDInputs:
    """A plugin D-inputs regularizer that runs D in train mode and keeps nothing itself."""

    keeps_clean = False

    def d_inputs(self, d_fn, x_real, x_fake, generator=None, *, model=None):
        d_fn(x_real + 0.5)
        return x_real + 0.1, x_fake

    def after_backward(self, real):
        pass


def test_a_plugin_d_inputs_cannot_move_ds_batch_statistics():
    ctx = make_ctx("ns", reg="dat")
    ctx.regs.d_inputs = _CarelessDInputs()
    ctx.D = BnD().train()
    ctx.d_fn = ctx.D
    before = {k: v.clone() for k, v in ctx.D.state_dict().items()}
    x_real = real_batch()
    inp = d_inputs(ctx, x_real, fakes_of_next_step(ctx))
    torch.testing.assert_close(inp.real, x_real + 0.1)
    for k, v in ctx.D.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_free_mode_attaches_and_updates_the_carried_perturbation():
    ctx = make_ctx("hinge", reg="asgan", asgan_free=True, asgan_eps=0.1)
    set_d(ctx)
    x_real = real_batch()
    inp = d_inputs(ctx, x_real, fakes_of_next_step(ctx))
    assert inp.real is not x_real and inp.clean_real is x_real and inp.real.requires_grad
    d_step(ctx, x_real)
    # one step ascends the real hinge loss: reals move by -eps * sign(w) = (-0.1, +0.1)
    torch.testing.assert_close(ctx.regs.d_inputs._carried.delta,
                               torch.tensor([[-0.1, 0.1]]).expand(B, 2))


def test_mix_weight_scales_only_the_added_mixed_term():
    values = {}
    for mode in ("add", "replace"):  # replace has no weight (refused there: it acts on nothing)
        ctx = make_ctx("ns", reg="mixup", mix_mode=mode,
                       mix_weight=0.25 if mode == "add" else None)
        set_d(ctx)
        values[mode] = d_loss_mix(ctx, real_batch(), fakes_of_next_step(ctx))["d/mix"]
    torch.testing.assert_close(values["add"], 0.25 * values["replace"])


class EnsembleD(nn.Module):
    """Three linear members on 2-D points: ``[B, 3]`` logits."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 3)
        with torch.no_grad():
            self.net.weight.copy_(torch.tensor([[0.8, -0.6], [0.3, 0.4], [-1.2, 1.6]]))
            self.net.bias.copy_(torch.tensor([0.1, -0.2, 0.0]))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_ensemble_terms_are_the_cores_ensemble_losses(kind):
    ctx = make_ctx(kind, reg="mixup", r1_gamma=2.0,
                   **({"gp_weight": 10.0} if kind == "wasserstein" else {}))
    ctx.D = ctx.d_fn = EnsembleD()
    ctx.regs.ensemble = True
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    lr, lf = ctx.D(x_real), ctx.D(x_fake)
    terms = d_loss_adv(ctx, d_inputs(ctx, x_real, x_fake))
    torch.testing.assert_close(terms["d/real"], ensemble_real_loss(lr, kind))
    torch.testing.assert_close(terms["d/fake"], ensemble_fake_loss(lf, kind))
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    mixed = ctx.regs.extra_d_term(x_real, x_b=x_fake, generator=gen)
    want = ctx.regs.extra_d_term.weight * ensemble_mixed_loss(ctx.D(mixed.x), mixed.lam, kind)
    torch.testing.assert_close(d_loss_mix(ctx, x_real, x_fake)["d/mix"], want)
    # R1 on the members' summed logit: its input gradient is the summed weight (-0.1, 1.4)
    assert steps.r1_term(ctx, x_real).item() == pytest.approx(0.5 * 2.0 * (0.01 + 1.96))
    g_terms = steps.g_loss_adv(ctx, x_fake)
    torch.testing.assert_close(g_terms["g/adv"], ensemble_g_loss(lf, kind))
    if kind == "wasserstein":  # GP of the summed logit: (||(-0.1, 1.4)|| - 1)^2
        gp = d_penalties(ctx, x_real, x_fake, r1=False)["d/gp"]
        assert gp.item() == pytest.approx(10.0 * ((0.01 + 1.96) ** 0.5 - 1) ** 2, rel=1e-5)


def test_adaptivemix_shrinkage_of_both_sides_and_clean_reals_in_add_mode():
    ctx = make_ctx("ns", reg="adaptivemix,asgan", am_noise_std=0.0, asgan_mode="add")
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    inp = d_inputs(ctx, x_real, x_fake)
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    terms = d_loss_adv(ctx, inp)
    am = ctx.regs.d_function
    want = sum(am(ctx.D, x, generator=gen)["loss"] for x in (inp.real, inp.fake, x_real))
    torch.testing.assert_close(terms["d/am_shrink"], want)


def test_train_iteration_takes_path_length_on_the_g_step_schedule():
    G = StyleG()
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1), nn.Flatten(0))
    cfg = sg2_cfg(loss="ns", diffaugment=None, gp_weight=0.0, r1_gamma=0.0, n_dis=2,
                  pl_weight=1.0, pl_every=2)
    gens = {"z": torch.Generator().manual_seed(1), "reg": torch.Generator().manual_seed(2)}
    ctx = StepContext(
        cfg=cfg, G=G, D=D, g_fn=steps.g_forward(cfg, G, gens["z"]), d_fn=D,
        opt_g=torch.optim.Adam(G.parameters(), lr=0.01),
        opt_d=torch.optim.SGD(D.parameters(), lr=0.01),
        scaler=torch.amp.GradScaler("cpu", enabled=False), regs=build_regs(tiny_config("grid-mlp")),
        gens=gens, device=torch.device("cpu"))
    real = lambda: torch.rand(6, 1, 1, 4)  # noqa: E731
    logged = []
    for _ in range(3):  # G steps 0, 1, 2: path length on 0 and 2
        logged.append("g/pl" in steps.train_iteration(ctx, real))
    assert logged == [True, False, True] and ctx.d_steps == 6
    # stylegan2-ada's phase order: the G step's fakes (6), PL's 6 // 2, then two D steps' (6 each)
    assert G.sizes[:4] == [6, 3, 6, 6]
    # the path-length step does not reach G's output bias: it keeps no gradient there, so Adam
    # moves the bias on the three G steps only (a zeroed gradient would count as a step)
    assert G.bias.grad is None
    assert ctx.opt_g.state[G.bias]["step"] == 3 and ctx.opt_g.state[G.A]["step"] == 5


def test_mix_mode_without_a_mix_is_refused():
    # it would do nothing: the config refuses it rather than drop it silently
    with pytest.raises(ConfigError, match="--mix-mode applies only with --reg mixup or cutmix"):
        make_ctx("ns", mix_mode="replace")


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_g_loss_is_the_kinds_generator_loss(kind):
    ctx = make_ctx(kind)
    set_d(ctx)
    x_fake = fakes_of_next_step(ctx)
    torch.testing.assert_close(steps.g_loss_adv(ctx, x_fake)["g/adv"],
                               losses.g_loss(ctx.D(x_fake), kind).mean())


def test_gradient_penalty_draws_from_the_reg_stream_at_any_weight():
    ctx = make_ctx("wasserstein", gp_weight=0.5)
    torch.manual_seed(0)
    ctx.D = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    want = 0.5 * losses.gradient_penalty(ctx.D, x_real, x_fake, generator=gen).mean()
    torch.testing.assert_close(d_penalties(ctx, x_real, x_fake)["d/gp"], want)


class TanhSplitD(SplitD):
    """SplitD with a non-linear trunk, so AdaptiveMix's shrinkage depends on its draws."""

    def features(self, x):
        return torch.tanh(3 * self.trunk(x))


def test_adaptivemix_in_d_draws_from_the_reg_stream():
    ctx = make_ctx("ns", reg="adaptivemix", am_noise_std=0.0)
    ctx.D = ctx.d_fn = TanhSplitD()
    x = real_batch()
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    logits, extra = steps.d_logits(ctx, x)
    want = ctx.regs.d_function(ctx.D, x, generator=gen)
    torch.testing.assert_close(extra["term"], want["loss"])
    torch.testing.assert_close(logits, want["logits"])


def test_lazy_r1_step_leaves_parameters_it_does_not_reach_without_a_gradient():
    # R1 does not reach D's bias: with Adam, a zeroed (not None) grad would still move it.
    ctx = make_ctx("ns", r1_gamma=1.0, r1_every=2, lazy_reg=True, amp="bf16")
    ctx.opt_d = torch.optim.Adam(ctx.D.parameters(), lr=0.01)
    set_d(ctx)
    d_step(ctx, real_batch())  # main step, then the R1 step (due at step 0)
    assert ctx.D.net.bias.grad is None and ctx.D.net.weight.grad is not None
    assert ctx.opt_d.state[ctx.D.net.bias]["step"] == 1
    assert ctx.opt_d.state[ctx.D.net.weight]["step"] == 2


class NanInfGrad(nn.Module):
    """``w`` gets the gradient ``[nan, inf, -inf, 2]`` from :meth:`loss`; ``unused`` none."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4))
        self.unused = nn.Parameter(torch.ones(2))

    def loss(self):
        return (self.w * torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])).sum()


def fp16_ctx(fp16_res=4, scaler_on=False):
    scaler = (SimpleNamespace(is_enabled=lambda: True) if scaler_on
              else torch.amp.GradScaler("cpu", enabled=False))
    return SimpleNamespace(cfg=SimpleNamespace(fp16_res=fp16_res), scaler=scaler)


def test_fp16_blocks_without_a_scaler_turn_nan_and_inf_grads_into_0_and_1e5():
    """stylegan2-ada's training_loop.py: ``nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5)``
    in place, on the stepped network's gradients, before the optimizer step."""
    m = NanInfGrad()
    m.loss().backward()
    grad = m.w.grad
    steps._fp16_grads_finite(fp16_ctx(), m)
    assert m.w.grad is grad and m.unused.grad is None
    assert m.w.grad.tolist() == [0.0, 1e5, -1e5, 2.0]
    # through an update: SGD with lr 1 from w = 0 moves w by minus the cleaned gradient
    m = NanInfGrad()
    steps.backward_step(fp16_ctx(), m.loss(), m, torch.optim.SGD(m.parameters(), lr=1.0))
    assert m.w.tolist() == [0.0, -1e5, 1e5, -2.0] and m.unused.tolist() == [1.0, 1.0]
    # no fp16 blocks, or a loss scaler (it must see the infs to skip the step): left alone
    for ctx in (fp16_ctx(fp16_res=None), fp16_ctx(fp16_res=0), fp16_ctx(scaler_on=True)):
        m = NanInfGrad()
        m.loss().backward()
        steps._fp16_grads_finite(ctx, m)
        assert m.w.grad[0].isnan() and m.w.grad[1:3].isinf().all()


def test_each_update_all_reduces_the_gradients_of_the_network_it_steps(monkeypatch):
    reduced = []
    monkeypatch.setattr(steps, "all_reduce_grads", reduced.append)
    ctx = make_ctx("ns", r1_gamma=1.0, r1_every=2, lazy_reg=True)
    d_step(ctx, real_batch())  # the main D step, then lazy R1's (due at D step 0)
    g_step(ctx, B)
    assert reduced == [ctx.D, ctx.D, ctx.G]
    ctx = sg2_ctx(pl_every=1)
    lazy_reg.g_reg_step(ctx, 8, iteration=0)
    assert reduced[-1] is ctx.G


def record_phases(monkeypatch, seen):
    monkeypatch.setattr(steps, "d_step", lambda c, x: seen.append(("D", x)) or {})
    monkeypatch.setattr(steps, "g_step", lambda c, b: seen.append(("G", b)) or {})
    monkeypatch.setattr(steps, "g_reg_step", lambda c, b, i: seen.append(("Greg", b, i)) or {})


def test_train_iteration_off_stylegan2_takes_the_d_steps_before_g(monkeypatch):
    """D first (``n_dis`` fresh batches), then G on the last batch's size and its penalty step
    with the G step's index."""
    seen, batches = [], iter([torch.zeros(6, 2), torch.ones(5, 2)])
    record_phases(monkeypatch, seen)
    ctx = make_ctx("ns", n_dis=2)
    ctx.d_steps = 4  # the third iteration
    steps.train_iteration(ctx, lambda: next(batches))
    assert [s[0] for s in seen] == ["D", "D", "G", "Greg"]
    assert seen[1][1].sum() == 10 and seen[2:] == [("G", 5), ("Greg", 5, 2)]


def test_stylegan2_iteration_gives_its_first_batch_to_g_and_the_first_d_step(monkeypatch):
    seen, batches = [], [torch.zeros(6, 1, 1, 4), torch.ones(5, 1, 1, 4)]
    feed = iter(batches)
    record_phases(monkeypatch, seen)
    ctx = sg2_ctx(n_dis=2)
    ctx.d_steps = 6
    steps.stylegan2_iteration(ctx, lambda: next(feed))
    assert seen[:2] == [("G", 6), ("Greg", 6, 3)] and len(seen) == 4
    assert seen[2][1] is batches[0] and seen[3][1] is batches[1]


def test_the_extra_terms_d_loss_is_the_runs_real_fake_and_mixed_terms():
    dl = steps.DLoss(make_ctx("hinge"))
    logits, lam = torch.tensor([-1.5, 0.2, 2.0]), torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(dl.real(logits), losses.loss_real(logits, "hinge").mean())
    torch.testing.assert_close(dl.fake(logits), losses.loss_fake(logits, "hinge").mean())
    torch.testing.assert_close(dl.mixed(logits, lam), mixed_gan_loss(logits, lam, "hinge").mean())


class StubAux:
    """A D auxiliary task that records what it is given and returns fp64 constants."""

    term = "rot"

    def __init__(self):
        self.calls = []

    def d_aux_loss(self, D, x):
        self.calls.append(("d", D, x))
        return torch.tensor(1.5, dtype=torch.float64)

    def g_aux_loss(self, D, x):
        self.calls.append(("g", D, x))
        return torch.tensor(2.5, dtype=torch.float64)


def test_the_aux_task_scores_the_clean_reals_and_the_fakes_with_d():
    ctx = make_ctx("ns")
    aux = StubAux()
    ctx.regs = replace(ctx.regs, aux_task=aux)
    x_real, x_fake = real_batch(), fakes_of_next_step(ctx)
    terms = d_step(ctx, x_real)
    g_terms = steps.g_loss_adv(ctx, x_fake)
    assert terms["d/rot"].dtype == g_terms["g/rot"].dtype == torch.float32
    assert float(terms["d/rot"]) == 1.5 and float(g_terms["g/rot"]) == 2.5
    assert [c[0] for c in aux.calls] == ["d", "g"]
    assert aux.calls[0][1] is ctx.D and aux.calls[0][2] is x_real
    assert aux.calls[1][1] is ctx.D and aux.calls[1][2] is x_fake


def test_regularizers_without_a_term_name_log_under_default_names():
    ctx = make_ctx("ns")

    class Extra:  # an extra D term without ``term``
        def extra_d_term(self, score, x_real, x_fake, d_loss, generator):
            return d_loss.real(score(x_real))
    ctx.regs = replace(ctx.regs, extra_d_term=Extra())
    x = real_batch()
    assert d_loss_mix(ctx, x, x) == {"d/extra": losses.loss_real(ctx.D(x), "ns").mean()}
    ctx.regs = replace(ctx.regs, d_function=object())
    assert steps._d_function_term(ctx) == "d/d_function"
    assert steps._d_function_term(ctx, "g") == "g/d_function"


class LayoutD(nn.Module):
    """A conv D that records whether each batch it scores is channels-last."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 4)
        self.layouts = []

    def forward(self, x):
        self.layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        return self.conv(x).flatten(1).mean(1)


class ImageG(nn.Module):
    z_dim = Z

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(Z, 3 * 4 * 4)

    def forward(self, z):
        return self.net(z).view(-1, 3, 4, 4)  # NCHW-contiguous


def test_with_channels_last_d_sees_every_batch_channels_last():
    """``--channels-last``: reals, fakes (D and G steps), extra-term batches and augmented
    batches (ADA's and DiffAugment's translation come back NCHW) reach D channels-last."""

    class Extra:  # scores an NCHW batch of its own making, as a mixing regularizer may
        term, replaces_clean = "mix", False

        def extra_d_term(self, score, x_real, x_fake, d_loss, generator):
            return d_loss.real(score(x_real.contiguous()))
    for aug in ("none", "translation", "ada"):
        cfg = tiny_config(loss="ns", r1_gamma=0.0,
                          diffaugment="translation" if aug == "translation" else None)
        G, D = ImageG(), LayoutD()
        ctx = StepContext(
            cfg=cfg, G=G, D=D, g_fn=G, d_fn=D, opt_g=torch.optim.SGD(G.parameters(), lr=0.01),
            opt_d=torch.optim.SGD(D.parameters(), lr=0.01),
            scaler=torch.amp.GradScaler("cpu", enabled=False),
            regs=replace(build_regs(cfg), extra_d_term=Extra()),
            gens={"z": torch.Generator().manual_seed(1), "reg": torch.Generator().manual_seed(2)},
            device=torch.device("cpu"), channels_last=True,
            ada=steps.AdaptiveP(p=1.0, target=None) if aug == "ada" else None)
        d_step(ctx, torch.rand(4, 3, 4, 4))
        g_step(ctx, 4)
        assert D.layouts == [True] * 4, aug  # real, fake, extra term; G's fake
