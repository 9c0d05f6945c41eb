"""InfoMax-GAN: InfoNCE at chosen features, projection heads, the split of the SNGAN D.

Checked once against torch-mimicry 0.1.16 (``BaseDiscriminator.compute_infomax_loss``) on random
features (N 4-64, R 16 and 1024, 4x4 and 8x8 maps): max abs difference 3.6e-15 in float64,
5.7e-6 (relative 3e-7) in float32.
"""

import math

import pytest
import torch

from robustrep.infomax import InfoMax, InfoMaxHead, infonce_loss
from robustrep.nets.sngan import sngan_discriminator


def test_infonce_at_chosen_features():
    # R = 1, two images with two locations each: local_0 = [1, 0], local_1 = [0, 1]; global 1, 2.
    local = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]], dtype=torch.float64)
    global_ = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    # Image 0 (global 1): positives 1, 0; negatives image 1's scores 0, 1 plus its own two
    # locations at logit -10. Image 1 (global 2): positives 0, 2; negatives 2, 0 plus two at -10.
    neg0 = 1 + math.e + 2 * math.exp(-10)
    neg1 = math.exp(2) + 1 + 2 * math.exp(-10)
    by_hand = (math.log(math.e + neg0) - 1 + math.log(1 + neg0)
               + math.log(1 + neg1) + math.log(math.exp(2) + neg1) - 2) / 4
    assert infonce_loss(local, global_).item() == pytest.approx(by_hand, abs=1e-12)


def test_infonce_is_low_when_each_global_matches_its_own_locations():
    eye = torch.eye(4, dtype=torch.float64) * 10
    local = eye[:, :, None, None].expand(4, 4, 2, 2)
    assert infonce_loss(local, eye).item() < 1e-3
    assert infonce_loss(local, eye.roll(1, 0)).item() > 10


def test_infonce_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="local must be"):
        infonce_loss(torch.zeros(2, 3, 2, 2), torch.zeros(2, 4))


def test_head_projects_both_to_the_rkhs():
    head = InfoMaxHead(local_channels=5, global_dim=7, nrkhs=16)
    local, global_ = head(torch.randn(3, 5, 4, 4), torch.randn(3, 7))
    assert local.shape == (3, 16, 4, 4) and global_.shape == (3, 16)


def test_projection_is_mlp_plus_shortcut():
    head = InfoMaxHead(local_channels=3, global_dim=3, nrkhs=4, spectral_norm=False)
    proj = head.global_proj
    v = torch.randn(5, 3)
    with torch.no_grad():  # a(v) < 0 everywhere: only b's bias and the shortcut remain
        proj.a.weight.zero_(), proj.a.bias.fill_(-1.0), proj.b.bias.fill_(0.5)
    assert torch.allclose(proj(v), proj.sc(v) + 0.5)
    with torch.no_grad():  # no shortcut, a = identity: b(relu(v))
        proj.sc.weight.zero_(), proj.sc.bias.zero_(), proj.a.bias.zero_()
        proj.a.weight.copy_(torch.eye(3))
    assert torch.allclose(proj(v), proj.b(torch.relu(v)))


def test_sngan_split_keeps_the_gan_logit_and_scales_the_terms():
    torch.manual_seed(0)
    base = sngan_discriminator((3, 32, 32), 8)
    # local = output of the third residual block, global = fourth block + ReLU + sum (mimicry)
    d = InfoMax.from_sequential(base, 3, local_channels=8, global_dim=8, nrkhs=16,
                                infomax_loss_scale=0.2, g_infomax_loss_scale=0.5).eval()
    base.eval()
    x = torch.randn(4, 3, 32, 32)
    assert d.local(x).shape == (4, 8, 8, 8)
    assert torch.equal(d(x), base(x))
    logits, loss = d.logits_and_loss(x, 1.0)
    assert torch.equal(logits, base(x))
    assert torch.allclose(loss, infonce_loss(*d.projection(d.local(x), d.features(x))))
    assert torch.allclose(d.d_loss(x)["loss"], 0.2 * loss)
    assert torch.allclose(d.g_loss(x)["loss"], 0.5 * loss)


def test_g_term_reaches_the_fakes():
    d = InfoMax.from_sequential(sngan_discriminator((3, 32, 32), 8), 3, local_channels=8,
                                global_dim=8, nrkhs=16)
    fakes = torch.randn(4, 3, 32, 32, requires_grad=True)
    d.g_loss(fakes)["loss"].backward()
    assert fakes.grad is not None and fakes.grad.abs().sum() > 0


def test_from_sequential_rejects_a_bad_split():
    with pytest.raises(ValueError, match="local_end"):
        InfoMax.from_sequential(sngan_discriminator((3, 32, 32), 8), 5, local_channels=8,
                                global_dim=8)


@pytest.mark.parametrize("batchnorm, cut", [(True, 3), (False, 2)])
def test_dcgan_split_local_8x8_global_4x4(batchnorm, cut):
    from robustrep.nets.dcgan import dcgan_discriminator
    base = dcgan_discriminator((3, 32, 32), 4, spectral_norm=not batchnorm, batchnorm=batchnorm)
    d = InfoMax.from_sequential(base, len(base.trunk) - cut, local_channels=8,
                                global_dim=16 * 16, nrkhs=8).eval()
    base.eval()
    x = torch.randn(3, 3, 32, 32)
    assert d.local(x).shape == (3, 8, 8, 8)
    assert torch.equal(d(x), base(x))
    assert d.logits_and_loss(x, 1.0)[1].isfinite()


def test_wrap_names_what_the_discriminator_lacks():
    # Was: AttributeError "... has no attribute 'trunk'", and "longer than local_end=7, got
    # Sequential" without the trunk's length
    from torch import nn

    from robustrep.registry import create_regularizer
    task = create_regularizer("infomax")
    flat = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with pytest.raises(ValueError, match=r"^d.trunk must be an nn.Sequential longer than "
                                         r"local_end=2 \(and d.top its last layers\), got "
                                         r"NoneType$"):
        task.wrap(flat, (3, 2, 2), 2)
    d = sngan_discriminator((3, 32, 32), 8)
    with pytest.raises(ValueError, match=f"got an nn.Sequential of {len(d.trunk)} layers$"):
        task.wrap(d, (3, 32, 32), 7)


def test_wrap_builds_the_heads_in_the_discriminators_dtype():
    from robustrep.registry import create_regularizer
    d = sngan_discriminator((3, 32, 32), 8).double()
    wrapped = create_regularizer("infomax").wrap(d, (3, 32, 32), 3)
    assert {p.dtype for p in wrapped.parameters()} == {torch.float64}
    assert wrapped.d_loss(torch.rand(4, 3, 32, 32, dtype=torch.float64))["loss"].isfinite()
