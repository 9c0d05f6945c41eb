"""InfoMax-GAN: InfoNCE at chosen features, projection heads, the split of the SNGAN D.

Checked once against torch-mimicry 0.1.16 (``BaseDiscriminator.compute_infomax_loss``) on random
features (N 4-64, R 16 and 1024, 4x4 and 8x8 maps): max abs difference 3.6e-15 in float64,
5.7e-6 (relative 3e-7) in float32.
"""

import math

import pytest
import torch

from robustrep.infomax import InfoMax, InfoMaxHead, InfoMaxTask, infonce_loss
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


# --- pinned by mutation testing (scripts/mutation.py infomax) ------------------------------------


@pytest.mark.parametrize("call,message", [
    (lambda: infonce_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3)), "local must have rank 4"),
    (lambda: infonce_loss(torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 1)),
     "global_ must have rank 2"),
    (lambda: infonce_loss(torch.zeros(2, 3, 2, 2, dtype=torch.long), torch.zeros(2, 3)),
     "local must be a floating-point tensor"),
    (lambda: infonce_loss(torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, dtype=torch.long)),
     "global_ must be a floating-point tensor"),
    (lambda: infonce_loss(torch.zeros(2, 3, 2, 2, device="meta"), torch.zeros(2, 3)),
     "tensors must be on the same device, got local on meta, global_ on cpu$"),
    (lambda: infonce_loss(torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, device="meta")),
     "tensors must be on the same device, got local on cpu, global_ on meta$"),
    (lambda: InfoMaxHead(2, 2, nrkhs=0), "nrkhs must be > 0, got 0$"),
    (lambda: InfoMaxHead(2, 2, nrkhs=16.0), "nrkhs must be a positive int"),
    (lambda: InfoMaxTask(nrkhs=0), "nrkhs must be > 0, got 0$"),
    (lambda: InfoMaxTask(nrkhs=16.0), "nrkhs must be a positive int"),
    (lambda: _infomax(infomax_loss_scale=-1.0), "infomax_loss_scale must be >= 0, got -1.0$"),
    (lambda: _infomax(g_infomax_loss_scale=-1.0), "g_infomax_loss_scale must be >= 0, got -1.0$"),
    (lambda: InfoMaxTask().wrap(sngan_discriminator((3, 32, 32), 4), (3, 32, 32), None),
     "infomax needs a discriminator whose trunk has a local feature map$"),
])
def test_bad_arguments_are_named_with_what_is_accepted(call, message):
    with pytest.raises((ValueError, TypeError), match=f"^{message}"):
        call()


def _infomax(**kw):
    """A tiny InfoMax on 2-channel maps: local = identity, rest = spatial sum."""
    from torch import nn
    rest = nn.Sequential(nn.Flatten(2), _Sum())
    return InfoMax(nn.Identity(), rest, nn.Linear(2, 1), local_channels=2, global_dim=2, **kw)


class _Sum(torch.nn.Module):
    def forward(self, x):
        return x.sum(-1)


def test_infonce_on_the_inputs_device():
    # meta stands in for an accelerator: the mask of own locations is made there too
    loss = infonce_loss(torch.zeros(2, 3, 2, 2, device="meta"), torch.zeros(2, 3, device="meta"))
    assert loss.device.type == "meta"


def test_split_points_are_checked_and_named():
    d = sngan_discriminator((3, 32, 32), 4)
    assert InfoMax.from_sequential(d, 1, local_channels=4, global_dim=4, nrkhs=4).local is not None
    with pytest.raises(ValueError, match=r"^d.trunk must be an nn.Sequential longer than "
                                         r"local_end=0 \(and d.top its last layers\), got an "
                                         r"nn.Sequential of 5 layers$"):
        InfoMax.from_sequential(d, 0, local_channels=4, global_dim=4)
    d.trunk = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="^d.trunk must be .* got Linear$"):
        InfoMax.from_sequential(d, 1, local_channels=4, global_dim=4)


def _is_sn(module):
    from torch.nn.utils import parametrize
    return parametrize.is_parametrized(module, "weight")


@pytest.mark.parametrize("spectral_norm", [None, True, False])
def test_projection_layers_are_xavier_uniform_and_spectral_normed_by_default(spectral_norm):
    torch.manual_seed(0)
    kw = {} if spectral_norm is None else dict(spectral_norm=spectral_norm)
    for head in (InfoMaxHead(3, 5, nrkhs=16, **kw), _infomax(nrkhs=16, **kw).projection):
        for proj in (head.local_proj, head.global_proj):
            for layer in (proj.a, proj.b, proj.sc):
                assert _is_sn(layer) == (spectral_norm is not False)
                raw = layer.parametrizations.weight.original if _is_sn(layer) else layer.weight
                fan_in, fan_out = raw.shape[1], raw.shape[0]  # 1x1 convs: the channels
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                assert raw.abs().max() <= bound
                if raw.numel() >= 32:  # enough draws to come near the bound
                    assert raw.abs().max() > 0.8 * bound


def test_defaults_are_the_references():
    head = InfoMaxHead(2, 3, spectral_norm=False)
    assert head.local_proj.b.out_channels == head.global_proj.sc.out_features == 1024
    d = _infomax(spectral_norm=False)
    assert d.projection.global_proj.b.out_features == 1024
    assert (d.infomax_loss_scale, d.g_infomax_loss_scale) == (0.2, 0.2)
    task = InfoMaxTask()
    assert (task.nrkhs, task.d_scale, task.g_scale) == (1024, 0.2, 0.2)
    z = torch.randn(3, 2)
    assert torch.equal(d.head(z), d.top(z))


def test_registered_task_passes_its_options_and_sizes_the_heads():
    torch.manual_seed(0)
    base = sngan_discriminator((3, 32, 32), 4)  # local map [4, 8, 8]: channels != height
    task = InfoMaxTask(nrkhs=8, d_scale=0.3, g_scale=0.7)
    d = task.wrap(base, (3, 32, 32), 3).eval()
    assert d.projection.local_proj.a.in_channels == 4
    assert d.projection.local_proj.b.out_channels == d.projection.global_proj.b.out_features == 8
    assert (d.infomax_loss_scale, d.g_infomax_loss_scale) == (0.3, 0.7)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    loss = infonce_loss(*d.projection(d.local(x), d.features(x)))
    torch.testing.assert_close(task.d_aux_loss(d, x), 0.3 * loss)
    torch.testing.assert_close(task.g_aux_loss(d, x), 0.7 * loss)
