"""The GAN program's D and G steps move the models the right way (not only "finite losses").

The steps are driven through the program's own functions (``d_step``, ``g_step``, ``d_loss_mix``)
on 2-D points with a D that is linear in its parameters, so each direction is a first-order fact
rather than a training outcome: reals sit at (2, 2), G's fakes at (-2, -2), and one plain SGD step
must widen ``D(real) - D(fake)`` for every loss. A swap of the real and fake terms, or of ``lam``
and ``1 - lam`` in the mixed term, turns these directions round.
"""

import pytest
import torch
from torch import nn

from robustrep import losses
from robustrep.adversarial import asgan_perturb, dat_perturb
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
    cfg = tiny_config("grid-mlp", loss=kind, reg=reg, batch_size=B,
                      **{"gp_weight": 0.0, "r1_gamma": 0.0, **cfg_overrides})
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
    mixed = ctx.regs.mix(x_real, x_b=x_fake, generator=gen)
    logits = ctx.D(mixed.x).detach()
    lam = mixed.lam
    assert lam.min() < 0.4 and lam.max() > 0.6  # a spread of lam, so lam <-> 1 - lam shows
    expected = (lam * losses.loss_real(logits, kind)
                + (1 - lam) * losses.loss_fake(logits, kind)).mean()
    got = d_loss_mix(ctx, x_real, x_fake)["d/mix"]
    torch.testing.assert_close(got.detach(), ctx.regs.mix_weight * expected)


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
    calls, am = [], ctx.regs.adaptivemix
    ctx.regs.adaptivemix = lambda *a, **k: calls.append(1) or am(*a, **k)
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
    hinge = make_ctx("hinge", gp_weight=10.0)
    assert d_penalties(hinge, x_real, x_fake) == {}


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
    ctx.regs.asgan_mode = "add"
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
    ctx.regs.am_g_shrink = False
    assert "g/am_shrink" not in g_step(ctx, B)
