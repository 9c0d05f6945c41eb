"""Free adversarial training (robustrep.free): the carried perturbation's ball, steps, sizes,
dtypes, state and checks. Its range and device checks, shared with the other attacks, are tested
in test_adversarial.py."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.free import FreePerturbation

B = 8


def classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(B, 3, 2, 2, generator=g), torch.randint(0, 3, (B,), generator=g)


def per_sample_norm(t, norm):
    return t.flatten(1).abs().amax(1) if norm == "linf" else t.flatten(1).norm(dim=1)


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
    with pytest.raises(ValueError, match=r"^x_adv.grad is None: pass the tensor attach\(\) \(as a "
                                         r"regularizer, adversarial_inputs\) returned, after a"):
        free.update(other)
    with pytest.raises(ValueError, match=r"adversarial_inputs\) returned"):  # the user's words
        free.after_backward(free.adversarial_inputs(None, x))
    free.reset()
    assert free.state_dict() == {"delta": None}


def test_free_perturbation_bad_arguments_are_named():
    with pytest.raises(ValueError, match="^norm must be one of"):
        FreePerturbation(0.1, norm="l3")
    with pytest.raises(ValueError, match="^input_range must be"):
        FreePerturbation(0.1, input_range=(1.0, 0.0))
    free = FreePerturbation(0.1)
    assert FreePerturbation(0.1, input_range=None).input_range is None
    x = batch()[0]
    for bad, error, message in [
        (x[:0], ValueError, "batch of at least 1"), (x.long(), TypeError, "floating-point"),
        (x.flatten(), ValueError, "rank"), (x + 2, ValueError, "must lie in input_range"),
    ]:
        with pytest.raises(error, match=f"^x .*{message}"):
            free.attach(bad)
        x_adv = bad if bad.dtype == torch.long else bad.clone().requires_grad_(True)
        if message != "must lie in input_range":
            with pytest.raises(error, match=f"^x_adv .*{message}"):
                free.update(x_adv)
    one = free.attach(x[:1])  # a batch of one is fine
    one.sum().backward()
    free.update(one)


def test_free_perturbation_update_needs_a_matching_attach():
    x = batch()[0]
    with pytest.raises(ValueError, match="call attach"):  # nothing attached yet
        FreePerturbation(0.1).update(_with_grad(x))
    free = FreePerturbation(0.1)
    free.attach(x[:3])
    with pytest.raises(ValueError, match=r"holds \(3, 3, 2, 2\); call attach"):  # larger batch
        free.update(_with_grad(x))
    free.attach(x)
    with pytest.raises(ValueError, match="call attach"):  # another per-sample shape
        free.update(_with_grad(x.flatten(1)))


def _with_grad(x):
    x = x.clone().requires_grad_(True)
    x.sum().backward()
    return x


def test_free_perturbation_grows_for_a_larger_batch_of_small_samples():
    # per-sample size (5) larger than the batches (2, then 4): growth is by rows
    free = FreePerturbation(0.1, input_range=None)
    x_adv = free.attach(torch.zeros(2, 5))
    x_adv.sum().backward()
    free.update(x_adv)
    out = free.attach(torch.zeros(4, 5))
    assert free.delta.shape == (4, 5)
    torch.testing.assert_close(out, torch.tensor([[0.1] * 5] * 2 + [[0.0] * 5] * 2))


def test_free_perturbation_delta_follows_the_input_dtype_and_layout():
    free = FreePerturbation(0.1)
    x = batch()[0].to(memory_format=torch.channels_last)
    free.attach(x)
    assert free.delta.is_contiguous()
    out = free.attach(x.double())
    assert free.delta.dtype == torch.float64 and out.dtype == torch.float64
    free.load_state_dict({"delta": torch.full((B, 3, 2, 2), 0.1, dtype=torch.float64)})
    assert free.attach(x).dtype == torch.float32


def test_free_perturbation_state_round_trip_and_bad_state():
    free = FreePerturbation(0.1)
    free.load_state_dict({"delta": None})
    assert free.delta is None
    with pytest.raises(TypeError, match="^state must be a dict.*got list"):
        free.load_state_dict([("delta", None)])
    assert repr(free) == "FreePerturbation(eps=0.1, step_size=0.1, norm='linf', " \
                         "input_range=(0.0, 1.0), replays=4)"


def test_an_linf_eps_wider_than_the_input_range_is_refused():
    with pytest.raises(ValueError, match=r"^eps=8 is wider than input_range \[0, 1\]"):
        FreePerturbation(eps=8)
    assert FreePerturbation(eps=8, norm="l2").eps == 8.0  # an L2 radius may exceed 1
    assert FreePerturbation(eps=8, input_range=None).eps == 8.0


def test_messages_say_what_is_accepted_in_full():
    # pinned by mutation testing: the whole message, where it says what to pass
    with pytest.raises(ValueError, match="^replays must be > 0, got 0$"):
        FreePerturbation(replays=0)
    with pytest.raises(TypeError, match=r"^state must be a dict with 'delta' a tensor or None, as "
                                        r"state_dict\(\) returns; got list$"):
        FreePerturbation(0.1).load_state_dict([])
    free = FreePerturbation(0.1)
    x_adv = free.attach(batch()[0])
    with pytest.raises(ValueError, match=r"^x_adv.grad is None: pass the tensor attach\(\) \(as "
                                         r"a regularizer, adversarial_inputs\) returned, after a "
                                         r"backward pass of a loss computed from it$"):
        free.update(x_adv)
