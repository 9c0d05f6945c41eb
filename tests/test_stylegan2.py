"""robustrep.stylegan2: shapes, the features/head split, AdaptiveMix's two-pass identity on its
D, demodulation, FIR resampling, style mixing."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustrep.adaptivemix import adaptivemix, adaptivemix_three_pass
from robustrep.stylegan2 import (StyleGAN2Discriminator, StyleGAN2Generator, conv2d_resample,
                                 fir_filter, modulated_conv2d, upfirdn2d)


def _nets(res, seed=0):
    torch.manual_seed(seed)
    G = StyleGAN2Generator(16, res, 3, w_dim=16, mapping_layers=2, channel_base=256,
                           channel_max=32)
    D = StyleGAN2Discriminator(res, 3, channel_base=256, channel_max=32, mbstd_group=4)
    return G, D


@pytest.mark.parametrize("res", [16, 32, 64])
def test_shapes(res):
    G, D = _nets(res)
    x = G(torch.randn(8, 16))
    assert x.shape == (8, 3, res, res)
    assert G.num_ws == 2 * int(math.log2(res)) - 2  # reference: 14 ws at 256
    assert D.features(x).shape == (8, 32, 4, 4)
    assert D(x).shape == (8,)
    assert torch.equal(D(x), D.head(D.features(x)))


def test_num_ws_at_256_matches_reference():
    G = StyleGAN2Generator(8, 256, 3, w_dim=8, mapping_layers=1, channel_base=256, channel_max=8)
    assert G.num_ws == 14


def test_trunk_is_permutation_equivariant_and_head_is_not():
    _, D = _nets(32)
    x = torch.randn(8, 3, 32, 32)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    z = D.features(x)
    torch.testing.assert_close(D.features(x[perm]), z[perm], rtol=0, atol=1e-6)
    # minibatch-std mixes samples: the head is not equivariant (which is why it is the head)
    assert not torch.allclose(D.head(z[perm]), D.head(z)[perm], atol=1e-4)


def _am_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, 16, 16, generator=g)
    index = torch.randperm(8, generator=g)
    noise = 0.05 * torch.randn(8, 32, 4, 4, generator=g)
    return x, torch.tensor(0.3), index, noise


def _grads(D):
    return [p.grad.clone() for p in D.parameters() if p.grad is not None]


@pytest.mark.parametrize("fuse", [False, True])
def test_adaptivemix_two_passes_equal_three(fuse):
    _, D = _nets(16)
    x, lam, index, noise = _am_inputs()
    three = adaptivemix_three_pass(D, x, lam, index, noise=noise)
    (three["loss"] + three["logits"].sum()).backward()
    g3 = _grads(D)
    D.zero_grad()
    two = adaptivemix(D, x, lam, index, noise=noise, fuse_passes=fuse)
    (two["loss"] + two["logits"].sum()).backward()
    g2 = _grads(D)
    torch.testing.assert_close(two["logits"], three["logits"], rtol=0, atol=1e-5)
    torch.testing.assert_close(two["loss"], three["loss"], rtol=0, atol=1e-6)
    assert len(g2) == len(g3)
    for a, b in zip(g2, g3):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_std_per_output_channel():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 48, 48, generator=g)
    weight = torch.randn(16, 64, 3, 3, generator=g)
    styles = torch.rand(4, 64, generator=g) * 3 + 0.1
    out = modulated_conv2d(x, weight, styles)[:, :, 1:-1, 1:-1]  # drop the zero-padded border
    std = out.transpose(0, 1).reshape(16, 4, -1).std(dim=2)  # per sample and output channel
    torch.testing.assert_close(std, torch.ones_like(std), rtol=0, atol=0.06)
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert (raw.std() - 1).abs() > 1  # without demodulation the scale follows the styles


@pytest.mark.parametrize("up", [1, 2])
def test_fused_and_unfused_modulated_conv_agree(up):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 8, 8, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 8, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 8, generator=g, dtype=torch.float64)
    f = fir_filter().double()
    a = modulated_conv2d(x, weight, styles, up=up, resample_filter=f, fused=False)
    b = modulated_conv2d(x, weight, styles, up=up, resample_filter=f, fused=True)
    torch.testing.assert_close(a, b)


def test_upconv_transposed_path_equals_zero_insert_then_conv():
    """The reference's generic path: zero-insert x2, pad (3, 2), FIR (gain 4), valid conv."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 8, 8, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    f = fir_filter().double()
    generic = F.conv2d(upfirdn2d(x, f, up=2, pad=(3, 2), gain=4.0), w, groups=2)
    torch.testing.assert_close(conv2d_resample(x, w, f, up=2, groups=2), generic)


def test_fir_downsample_of_constant_is_constant_inside():
    x = torch.ones(1, 1, 16, 16)
    y = upfirdn2d(x, fir_filter(), down=2, pad=(1, 1))
    assert y.shape == (1, 1, 8, 8)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.ones(1, 1, 6, 6))


def test_style_mixing_takes_later_ws_from_a_second_latent():
    G, _ = _nets(16)
    z = torch.randn(4, 16)
    plain = G.mapping(z)
    mixed = G.mapping_mixed(z, style_mixing=1.0, generator=torch.Generator().manual_seed(0))
    same = (mixed == plain).all(dim=2).all(dim=0)  # per ws index
    cutoff = int(same.logical_not().nonzero()[0])
    assert 1 <= cutoff < G.num_ws and same[:cutoff].all() and not same[cutoff:].any()
    never = G.mapping_mixed(z, style_mixing=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(never, plain)
