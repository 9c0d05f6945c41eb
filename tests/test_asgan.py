"""AS-GAN (robustrep.asgan): a PGD on loss_real with its own defaults, the registered class
and its free mode. What AS-GAN shares with every attack (untouched models, input ranges, dtypes)
is tested with the others in test_adversarial.py."""

import pytest
import torch
from torch import nn

from robustrep.adversarial import pgd
from robustrep.asgan import ASGAN, asgan_perturb
from robustrep.losses import LOSSES, loss_real

from .conftest import B, images, linear_d


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("steps", [1, 3])
def test_asgan_raises_the_real_loss(kind, steps):
    d = linear_d(weight=0.1)
    x = images(-0.5, 0.5)
    x_adv = asgan_perturb(d, x, loss=kind, eps=0.05, steps=steps,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert bool((loss_real(d(x_adv), kind) > loss_real(d(x), kind)).all())
    assert bool(((x_adv - x).abs() <= 0.05 + 1e-7).all())
    if steps == 1:  # one FGSM step of size eps towards "fake" (lower D: weights are positive)
        torch.testing.assert_close(x_adv - x, torch.full_like(x, -0.05))


def test_asgan_defaults_are_one_fgsm_step_of_0_05():
    d = linear_d(weight=0.1)
    x = images(-0.5, 0.5)
    torch.testing.assert_close(asgan_perturb(d, x), x - 0.05)
    # in L2 too: one step of exactly eps along -w / ||w|| (a random start would show)
    torch.testing.assert_close(asgan_perturb(d, x, norm="l2"), x - 0.05 / 12 ** 0.5)


@pytest.mark.parametrize("steps", [2, 3])
def test_asgan_multi_step_is_pgd_with_random_start_on_loss_real(steps):
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    x = images()
    got = asgan_perturb(d, x, loss="ls", eps=0.2, steps=steps, norm="l2",
                        generator=torch.Generator().manual_seed(1))
    want = pgd(lambda v: loss_real(d(v), "ls"), x, 0.2, steps=steps, norm="l2",
               random_start=True, input_range=(-1.0, 1.0),
               generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, want)
    # an explicit random_start=False is honoured
    got = asgan_perturb(d, x, eps=0.2, steps=steps, random_start=False)
    want = pgd(lambda v: loss_real(d(v), "ns"), x, 0.2, steps=steps, random_start=False,
               input_range=(-1.0, 1.0))
    torch.testing.assert_close(got, want)


def test_asgan_one_step_is_eps_long_even_from_a_random_start():
    # steps=1 means an FGSM step of eps; PGD's default (2.5 eps) would always reach the edge.
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    x = images(-0.5, 0.5)
    got = asgan_perturb(d, x, eps=0.1, random_start=True,
                        generator=torch.Generator().manual_seed(1))
    want = pgd(lambda v: loss_real(d(v), "ns"), x, 0.1, step_size=0.1, steps=1,
               input_range=(-1.0, 1.0), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, want)
    assert (got - x).abs().amin() < 0.09  # some pixels end inside the ball


@pytest.mark.parametrize("steps,error", [(-1, ValueError), ("2", TypeError)])
def test_asgan_bad_steps_are_named(steps, error):
    with pytest.raises(error, match="^steps must be"):
        asgan_perturb(linear_d(), images(), steps=steps)


# --- the registered class: every option, the free mode ----------------------------------------


def test_asgan_class_passes_every_option():
    d = linear_d(weight=0.5)
    x = images(-2.5, 2.5)  # scores on both sides of 1: "ls" and "ns" push apart
    opts = dict(eps=0.3, steps=2, norm="l2", loss="ls", input_range=(-3.0, 3.0))
    got = ASGAN(**opts)(d, x, generator=torch.Generator().manual_seed(0))
    want = asgan_perturb(d, x, generator=torch.Generator().manual_seed(0), **opts)
    torch.testing.assert_close(got, want)
    other = asgan_perturb(d, x, generator=torch.Generator().manual_seed(0),
                          **{**opts, "loss": "ns"})
    assert not torch.allclose(got, other)


def test_asgan_free_mode_carries_a_perturbation_and_checkpoints_it():
    d = linear_d(weight=-0.5)  # D(x) falls as x grows: the real loss rises with x
    x_real = torch.zeros(B, 3, 2, 2)
    asgan = ASGAN(eps=0.1, free=True, input_range=None)
    real, fake = asgan.d_inputs(d, x_real, x_real)
    assert real.requires_grad and torch.equal(real, x_real)
    loss_real(d(real).squeeze(1), "ns").mean().backward()
    asgan.after_backward(real)
    state = asgan.state_dict()
    torch.testing.assert_close(state["delta"], torch.full_like(x_real, 0.1))
    again = ASGAN(eps=0.1, free=True, input_range=None)
    again.load_state_dict(state)
    torch.testing.assert_close(again.d_inputs(d, x_real, x_real)[0], x_real + 0.1)
    assert asgan._carried.input_range is None and asgan._carried.norm == "linf"


def test_a_d_returning_a_tuple_is_named_as_d_fn():
    d = linear_d()
    with pytest.raises(TypeError, match=r"^d_fn\(x_real\) must return a tensor of scores, got "
                                        r"tuple$"):
        asgan_perturb(lambda x: (d(x), x), images())


# --- pinned by mutation testing: model=, the generator, the free mode's options, messages -------


def hidden(d):
    """A d_fn whose module no closure or global names (a trainer's dict of models)."""
    nets = {"d": d}
    return lambda v: nets["d"](v)


def test_model_given_or_behind_a_bound_method_is_checked():
    x = images()
    for call in (lambda d: asgan_perturb(hidden(d), x, model=d),
                 lambda d: asgan_perturb(d.forward, x),  # the method's owner is the module
                 lambda d: ASGAN()(hidden(d), x, model=d),
                 lambda d: ASGAN().d_inputs(hidden(d), x, x, model=d)):
        with pytest.raises(ValueError, match="^tensors must be on the same device, got x on cpu, "
                                             "model on meta$"):
            call(linear_d().to("meta"))


def test_d_inputs_draws_the_random_start_from_the_generator_given():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    x = images(-0.5, 0.5)
    asgan = ASGAN(eps=0.2, steps=2, norm="l2")
    real, _ = asgan.d_inputs(d, x, x, torch.Generator().manual_seed(3))
    want = pgd(lambda v: loss_real(d(v), "ns"), x, 0.2, steps=2, norm="l2", random_start=True,
               input_range=(-1.0, 1.0), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(real, want)


def test_free_mode_carries_the_norm_and_clamps_to_the_range():
    d = linear_d(weight=-0.5)  # the real loss rises with x
    x = torch.full((B, 3, 2, 2), 0.9)
    asgan = ASGAN(eps=0.2, free=True, norm="l2")
    real, _ = asgan.d_inputs(d, x, x)
    loss_real(d(real).squeeze(1), "ns").mean().backward()
    asgan.after_backward(real)
    # an L2 step of eps along the (constant) gradient: 0.2 / sqrt(12) per pixel
    torch.testing.assert_close(asgan.state_dict()["delta"], torch.full_like(x, 0.2 / 12 ** 0.5))
    asgan = ASGAN(eps=0.2, free=True)  # Linf: 0.9 + 0.2 is clamped to the range's 1
    real, _ = asgan.d_inputs(d, x, x)
    loss_real(d(real).squeeze(1), "ns").mean().backward()
    asgan.after_backward(real)
    torch.testing.assert_close(asgan.d_inputs(d, x, x)[0], torch.ones_like(x))


def test_a_state_is_loaded_only_in_free_mode():
    asgan = ASGAN()
    asgan.load_state_dict({"delta": torch.ones(B, 3, 2, 2)})
    assert asgan._carried is None and asgan.state_dict() == {}


def test_asgan_class_options_are_named_with_what_is_accepted():
    with pytest.raises(ValueError, match="^mode must be one of 'replace', 'add'; got 'both'$"):
        ASGAN(mode="both")
    with pytest.raises(ValueError, match=f"^loss must be one of {', '.join(map(repr, LOSSES))}; "
                                         "got 'bce'$"):
        ASGAN(loss="bce")


def test_free_mode_refuses_steps_it_would_ignore():
    """Was accepted, and the free step equalled steps=1 (the programs refuse --asgan-steps beside
    --asgan-free themselves, naming the flags)."""
    with pytest.raises(ValueError, match=r"^steps=3 does nothing with free=True \(free training "
                                         r"takes one step per batch, from D's own backward\); "
                                         r"drop steps or free$"):
        ASGAN(free=True, steps=3)
    assert ASGAN(free=True).steps == 1 and ASGAN(free=True, steps=1).free  # the default passes


def test_after_backward_before_a_backward_names_the_methods_called():
    """Was: "pass the tensor returned by attach()", a method an ASGAN user never calls."""
    d = linear_d(weight=-0.5)
    asgan = ASGAN(eps=0.1, free=True, input_range=None)
    real, _ = asgan.d_inputs(d, torch.zeros(B, 3, 2, 2), torch.zeros(B, 3, 2, 2))
    with pytest.raises(ValueError, match=r"^real.grad is None: pass after_backward the real "
                                         r"batch d_inputs returned, after the backward pass of a "
                                         r"D loss computed from it$"):
        asgan.after_backward(real)
    ASGAN(eps=0.1).after_backward(real)  # nothing to update outside free mode
