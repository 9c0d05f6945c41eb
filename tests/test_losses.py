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
