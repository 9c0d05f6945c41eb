import pytest
import torch
import torch.nn.functional as F

from robustrep.losses import LOSSES, g_loss, gradient_penalty, loss_fake, loss_real, r1_penalty


def test_ns_losses_are_bce():
    d = torch.randn(16)
    assert torch.allclose(loss_real(d, "ns"), F.binary_cross_entropy_with_logits(
        d, torch.ones(16), reduction="none"), atol=1e-6)
    assert torch.allclose(loss_fake(d, "ns"), F.binary_cross_entropy_with_logits(
        d, torch.zeros(16), reduction="none"), atol=1e-6)


@pytest.mark.parametrize("kind", LOSSES)
def test_real_loss_decreases_and_fake_loss_increases_with_score(kind):
    # Between the LS targets (0 and 1) every loss is monotone in the score.
    d = torch.linspace(0.05, 0.95, 7)
    assert (loss_real(d, kind).diff() <= 0).all()
    assert (loss_fake(d, kind).diff() >= 0).all()
    assert (g_loss(d, kind).diff() <= 0).all()


def test_per_sample_shape_from_patch_logits():
    assert loss_real(torch.randn(4, 1, 3, 3), "hinge").shape == (4,)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind must be one of 'ns', 'hinge', 'ls', 'wasserstein'"):
        loss_real(torch.zeros(2), "bce")


def test_r1_of_linear_critic_is_squared_weight_norm():
    w = torch.randn(5)
    x = torch.randn(3, 5, requires_grad=True)
    pen = r1_penalty(x @ w, x)
    assert torch.allclose(pen, w.pow(2).sum().expand(3))
    with pytest.raises(ValueError, match="x_real must require grad"):
        r1_penalty(x.detach() @ w, x.detach())


def test_gradient_penalty_zero_for_unit_lipschitz_linear_critic():
    w = torch.randn(5)
    w = w / w.norm()
    pen = gradient_penalty(lambda x: x @ w, torch.randn(4, 5), torch.randn(4, 5),
                           torch.Generator().manual_seed(0))
    assert torch.allclose(pen, torch.zeros(4), atol=1e-10)


@pytest.mark.parametrize("kind", LOSSES)
def test_multi_logit_outputs_average_losses_not_logits(kind):
    logits = torch.tensor([[-2.0, 3.0], [0.5, 0.5]])  # e.g. two ensemble members per sample
    for fn in (loss_real, loss_fake, g_loss):
        expected = torch.stack([fn(logits[:, k], kind) for k in range(2)], 1).mean(1)
        assert torch.allclose(fn(logits, kind), expected)


# Exact values at chosen logits, computed by hand (softplus(t) = log(1 + e^t)):
# log(1 + e^2) = 2.1269280, log(1 + e^0.5) = 0.9740770, log 2 = 0.6931472,
# log(1 + e^-0.5) = 0.4740770, log(1 + e^-2) = 0.1269280.
LOGITS = [-2.0, -0.5, 0.0, 0.5, 2.0]
SP = [2.1269280, 0.9740770, 0.6931472, 0.4740770, 0.1269280]  # softplus(-d) at LOGITS
EXACT = {
    # kind: (loss_real, loss_fake, g_loss)
    "ns": (SP, SP[::-1], SP),
    "hinge": ([3.0, 1.5, 1.0, 0.5, 0.0], [0.0, 0.5, 1.0, 1.5, 3.0], [2.0, 0.5, 0.0, -0.5, -2.0]),
    "ls": ([4.5, 1.125, 0.5, 0.125, 0.5], [2.0, 0.125, 0.0, 0.125, 2.0],
           [4.5, 1.125, 0.5, 0.125, 0.5]),
    "wasserstein": ([2.0, 0.5, 0.0, -0.5, -2.0], [-2.0, -0.5, 0.0, 0.5, 2.0],
                    [2.0, 0.5, 0.0, -0.5, -2.0]),
}


@pytest.mark.parametrize("kind", LOSSES)
def test_exact_values_at_chosen_logits(kind):
    d = torch.tensor(LOGITS)
    real, fake, gen = (torch.tensor(v) for v in EXACT[kind])
    torch.testing.assert_close(loss_real(d, kind), real, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss_fake(d, kind), fake, rtol=0, atol=1e-6)
    torch.testing.assert_close(g_loss(d, kind), gen, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", LOSSES)
def test_extra_dims_average_the_per_element_losses(kind):
    # [B, K] logits (ensemble members, patches): the mean of the K losses, not the loss of the
    # mean logit (the two differ for every non-linear loss).
    d = torch.tensor([[-2.0, 2.0], [0.5, -0.5]])
    for fn, col in ((loss_real, 0), (loss_fake, 1), (g_loss, 2)):
        table = dict(zip(LOGITS, EXACT[kind][col]))
        expected = torch.tensor([(table[-2.0] + table[2.0]) / 2, (table[0.5] + table[-0.5]) / 2])
        torch.testing.assert_close(fn(d, kind), expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(fn(d[:, :, None, None], kind), expected, rtol=0, atol=1e-6)


def test_gradient_penalty_of_linear_critic():
    # ||grad D|| = ||w|| = 2 everywhere, so (2 - 1)^2 = 1 per sample, wherever the interpolate.
    w = torch.tensor([1.2, -1.6, 0.0])
    pen = gradient_penalty(lambda x: x @ w, torch.randn(4, 3), torch.randn(4, 3),
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pen, torch.ones(4))


def test_gradient_penalty_interpolates_between_the_batches():
    # A critic D(x) = ||x||^2 / 2 has grad x, so the penalty is (||x_hat|| - 1)^2: with reals at
    # a and fakes at -a, x_hat = (2 eps - 1) a, and eps ~ U(0, 1) from the given generator.
    a = torch.tensor([[3.0, 4.0]]).expand(64, 2)
    gen = torch.Generator().manual_seed(0)
    pen = gradient_penalty(lambda x: 0.5 * x.pow(2).sum(1), a, -a, generator=gen)
    eps = torch.rand(64, 1, generator=torch.Generator().manual_seed(0))
    expected = ((2 * eps - 1).abs().squeeze(1) * 5.0 - 1.0) ** 2
    torch.testing.assert_close(pen, expected)


def test_default_kind_is_non_saturating():
    d = torch.tensor(LOGITS)
    for fn in (loss_real, loss_fake, g_loss):
        assert torch.equal(fn(d), fn(d, "ns"))


def test_bad_logits_are_named():
    with pytest.raises(TypeError, match="^logits must be a floating-point tensor, got dtype "
                                        "torch.int64$"):
        loss_real(torch.tensor([1, 2]), "hinge")
    with pytest.raises(ValueError, match="^logits must have a batch dimension, got a scalar$"):
        loss_fake(torch.tensor(0.5), "ls")
    with pytest.raises(ValueError, match=r"^x_real must require grad for the R1 penalty; call "
                                         r"x.requires_grad_\(\) before the D forward$"):
        r1_penalty(torch.zeros(2), torch.zeros(2, 3))


def test_penalties_train_the_critic():
    # Both penalties are losses on D's parameters: the input gradient must keep its graph
    # (create_graph) so they backpropagate. For D(x) = x @ w: R1 = ||w||^2, grad 2w per sample;
    # WGAN-GP = (||w|| - 1)^2, grad 2 (||w|| - 1) w / ||w|| per sample.
    w = torch.tensor([1.2, -1.6, 0.0], requires_grad=True)  # ||w|| = 2
    x = torch.randn(3, 3, requires_grad=True)
    r1_penalty(x @ w, x).sum().backward()
    torch.testing.assert_close(w.grad, 3 * 2 * w.detach())
    w.grad = None
    gradient_penalty(lambda v: v @ w, torch.randn(4, 3), torch.randn(4, 3)).sum().backward()
    torch.testing.assert_close(w.grad, 4 * 2 * (2.0 - 1.0) * w.detach() / 2.0)


def test_gradient_penalty_draws_eps_in_the_inputs_dtype():
    # float64 inputs get float64 interpolation weights (a float32 draw differs in every digit).
    a = torch.tensor([[3.0, 4.0]], dtype=torch.float64).expand(8, 2)
    pen = gradient_penalty(lambda x: 0.5 * x.pow(2).sum(1), a, -a,
                           generator=torch.Generator().manual_seed(0))
    eps = torch.rand(8, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = ((2 * eps - 1).abs().squeeze(1) * 5.0 - 1.0) ** 2
    assert pen.dtype == torch.float64
    torch.testing.assert_close(pen, expected, rtol=1e-12, atol=1e-12)


def test_gradient_penalty_refuses_batches_it_would_broadcast():
    # One real against four fakes broadcast to four interpolates of that one real: a penalty on
    # points the caller never meant, without a word.
    critic = lambda v: v.sum(1)  # noqa: E731
    with pytest.raises(ValueError, match=r"^x_real and x_fake must have the same shape, got "
                                         r"\(1, 3\) and \(4, 3\)$"):
        gradient_penalty(critic, torch.randn(1, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="x_real and x_fake must have the same shape"):
        gradient_penalty(critic, torch.randn(4, 3), torch.randn(2, 3))
    with pytest.raises(TypeError, match="^critic must be callable, got Tensor$"):
        gradient_penalty(torch.zeros(3), torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(TypeError, match=r"^critic\(x_hat\) must return a tensor of scores, got "
                                        r"tuple$"):
        gradient_penalty(lambda v: (v.sum(1),), torch.randn(4, 3), torch.randn(4, 3))


def test_penalties_name_scores_without_a_graph_to_x():
    w = torch.randn(3)
    x = torch.randn(4, 3, requires_grad=True)
    with pytest.raises(ValueError, match="^logits_real does not depend on x_real: compute it "
                                         r"from x_real itself, D\(x_real\)$"):
        r1_penalty(torch.randn(4, 3, requires_grad=True) @ w, x)
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"^logits_real has no graph to differentiate: .*"
                                             r"not under torch.no_grad\(\)"):
            r1_penalty(x @ w, x)
        with pytest.raises(ValueError, match=r"^critic\(x_hat\) has no graph to differentiate: "
                                             r"call gradient_penalty with grad enabled"):
            gradient_penalty(lambda v: v @ w, torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(TypeError, match="^x_real must be a torch.Tensor, got list$"):
        r1_penalty(x @ w, [1.0])
