"""robustrep.nets.stylegan2: shapes, the features/head split, AdaptiveMix's two-pass identity on its
D, demodulation, FIR resampling, style mixing."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustrep.adaptivemix import adaptivemix, adaptivemix_three_pass
from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, modulated_conv2d
from robustrep.nets.stylegan2_ops import conv2d_resample, fir_filter, upfirdn2d


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


def _naive_upconv(x, w, taps=(1.0, 3.0, 3.0, 1.0)):
    """stylegan2-ada's up-sampling conv written out by hand: zero insertion x2, pad (3, 2) with
    the [1,3,3,1] FIR (gain 4) as a sum of shifted copies, then a true convolution with the
    stored kernel, ``y[o, i, j] = sum w[o, c, a, b] * u[c, i + 2 - a, j + 2 - b]`` (conv2d_resample
    with ``flip_weight=False``), again as shifted sums; no conv op is used."""
    n, c, h, wd = x.shape
    u = torch.zeros(n, c, 2 * h, 2 * wd, dtype=x.dtype)
    u[:, :, ::2, ::2] = x
    u = F.pad(u, [3, 2, 3, 2])
    f = torch.tensor(taps, dtype=x.dtype)
    f = torch.outer(f, f) / f.sum() ** 2 * 4
    size = u.shape[-1] - 3
    filt = sum(f[3 - a, 3 - b] * u[:, :, a:a + size, b:b + size]
               for a in range(4) for b in range(4))
    out = filt.shape[-1] - 2
    return sum(torch.einsum("oc,nchw->nohw", w[:, :, 2 - a, 2 - b],
                            filt[:, :, a:a + out, b:b + out])
               for a in range(3) for b in range(3))


def test_upconv_is_the_reference_true_convolution_with_the_stored_kernel():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    f = fir_filter().double()
    naive = _naive_upconv(x, w)
    assert naive.shape == (2, 4, 10, 10)
    torch.testing.assert_close(conv2d_resample(x, w, f, up=2), naive)
    # the mirrored kernel (the convention before) is a different map
    assert not torch.allclose(conv2d_resample(x, w.flip([2, 3]), f, up=2), naive)


def test_grouped_upconv_equals_per_group_naive():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 6, 4, 4, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    got = conv2d_resample(x, w, fir_filter().double(), up=2, groups=2)
    want = torch.cat([_naive_upconv(x[:, :3], w[:2]), _naive_upconv(x[:, 3:], w[2:])], dim=1)
    torch.testing.assert_close(got, want)


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


# --- D architectures, conv_clamp and fp16 blocks (stylegan2-ada's options) ------------------


@pytest.mark.parametrize("arch,count", [("orig", 20_720_641), ("skip", 20_726_785),
                                        ("resnet", 21_507_073)])
def test_d_architectures_have_the_reference_parameter_counts(arch, count):
    """Counts of stylegan2-ada's ``Discriminator`` at its cifar setting (32x32, channel_base
    32768, channel_max 512), printed by the reference code on 2026-12-04."""
    D = StyleGAN2Discriminator(32, 3, channel_base=32768, channel_max=512, mbstd_group=32,
                               architecture=arch)
    assert sum(p.numel() for p in D.parameters()) == count


@pytest.mark.parametrize("arch", ["orig", "skip"])
def test_other_d_architectures_keep_the_split(arch):
    torch.manual_seed(0)
    D = StyleGAN2Discriminator(16, 3, channel_base=256, channel_max=32, architecture=arch)
    x = torch.randn(4, 3, 16, 16)
    assert D.features(x).shape == (4, 32, 4, 4)
    assert torch.equal(D(x), D.head(D.features(x)))
    assert (D.trunk.fromrgb is not None) == (arch == "skip")
    assert all(b.skip is None for b in D.trunk.blocks)
    assert sum(b.fromrgb is not None for b in D.trunk.blocks) == (2 if arch == "skip" else 1)


def test_conv_clamp_bounds_every_conv_output():
    torch.manual_seed(0)
    G = StyleGAN2Generator(16, 16, 3, w_dim=16, mapping_layers=2, channel_base=256,
                           channel_max=32, conv_clamp=0.25)
    D = StyleGAN2Discriminator(16, 3, channel_base=256, channel_max=32, conv_clamp=0.25)
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.mul_(20)  # large outputs everywhere
    outs = []
    hook = lambda m, i, o: outs.append((m, o))  # noqa: E731
    for m in [*G.modules(), *D.modules()]:
        if type(m).__name__ in ("SynthesisLayer", "ToRGB", "Conv2dLayer") and \
                getattr(m, "bias", None) is not None:
            m.register_forward_hook(hook)
    D(G(torch.randn(4, 16)))
    assert len(outs) > 10
    # the D's residual convs run with gain sqrt(1/2), which scales their clamp too
    for m, o in outs:
        assert o.abs().max() <= 0.25 + 1e-6, type(m).__name__
    G.synthesis.blocks[0].conv1.conv_clamp = None
    big = G.synthesis.blocks[0].conv1(G.synthesis.blocks[0].const[None], torch.randn(1, 16))
    assert big.abs().max() > 1  # without the clamp the same layer is far outside


def _fp16_nets(device):
    torch.manual_seed(0)
    kw = dict(channel_base=256, channel_max=32)
    G = StyleGAN2Generator(16, 32, 3, w_dim=16, mapping_layers=2, conv_clamp=256,
                           num_fp16_res=2, **kw).to(device)
    D = StyleGAN2Discriminator(32, 3, conv_clamp=256, num_fp16_res=2, **kw).to(device)
    return G, D


def test_fp16_blocks_are_the_highest_resolutions():
    G, D = _fp16_nets("cpu")
    assert [b.use_fp16 for b in G.synthesis.blocks] == [False, False, True, True]  # 4..32
    assert [b.use_fp16 for b in D.trunk.blocks] == [True, True, False]  # 32, 16, 8
    G8 = StyleGAN2Generator(16, 32, 3, w_dim=16, num_fp16_res=9, channel_base=256,
                            channel_max=32)
    assert [b.use_fp16 for b in G8.synthesis.blocks] == [False, True, True, True]  # never < 8


@pytest.mark.gpu
def test_fp16_blocks_run_in_half_and_stay_close_to_fp32():
    G, D = _fp16_nets("cuda")
    seen = []
    for block in [*G.synthesis.blocks, *D.trunk.blocks]:
        block.register_forward_hook(lambda m, i, o: seen.append((m.use_fp16, o[0].dtype)))
    z = torch.randn(8, 16, device="cuda")
    img = G(z, noise_mode="const")
    logits = D(img)
    assert img.dtype == torch.float32 and logits.dtype == torch.float32
    assert all((dt == torch.float16) == fp16 for fp16, dt in seen)
    G32, D32 = _fp16_nets("cuda")
    for net in (G32.synthesis, D32.trunk):
        for block in net.blocks:
            block.use_fp16 = False
    ref = G32(z, noise_mode="const")
    assert (img - ref).abs().max() < 0.05 * ref.abs().max()
    assert (logits - D32(ref)).abs().max() < 0.05 * D32(ref).abs().max() + 1e-3


def test_mapping_under_bf16_autocast_updates_w_avg_in_fp32():
    """``--amp bf16`` runs the mapping in bf16; the running w_avg stays fp32 (it failed with a
    dtype error in the lerp before)."""
    G, _ = _nets(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ws = G.mapping(torch.randn(8, 16))
    assert ws.dtype == torch.bfloat16 and G.mapping.w_avg.dtype == torch.float32
    want = ws[:, 0].float().mean(0) * (1 - 0.995)  # lerp from zeros with beta 0.995
    torch.testing.assert_close(G.mapping.w_avg, want, rtol=0.02, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 16, 16), (3, 16, 16)])
def test_d_refuses_images_of_another_shape_in_one_line(shape):
    # as the reference's assert_shape: another size failed in the epilogue's fc
    D = StyleGAN2Discriminator(16, 3, channel_base=64, channel_max=8)
    with pytest.raises(ValueError, match=r"^the discriminator takes images \[B, 3, 16, 16\], got "
                                         rf"shape \({', '.join(map(str, shape))}\)$"):
        D(torch.zeros(shape))
    assert D(torch.zeros(2, 3, 16, 16)).shape == (2,)
