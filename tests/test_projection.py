"""robustrep.projection: fixed projections, the grouped K-member ensemble, per-member SN."""

import pytest
import torch
import torch.nn.functional as F

from robustrep import losses
from robustrep.mixing import mixed_gan_loss
from robustrep.projection import (ProjectionEnsemble, RandomProjection, ensemble_d_loss,
                                  ensemble_fake_loss, ensemble_g_loss, ensemble_mixed_loss,
                                  ensemble_real_loss, random_projection_filters)

K = 3


def make(seed=0, num_views=K, image_size=32, **kw):
    kw.setdefault("base_channels", 4)
    return ProjectionEnsemble(num_views, image_size, generator=torch.Generator().manual_seed(seed),
                              **kw)


def images(batch=2, size=32, seed=1, requires_grad=False):
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return x.requires_grad_(requires_grad)


def sn_convs(ens):
    return [m for m in ens.layers if isinstance(m, torch.nn.Conv2d)]


def test_filters_unit_norm_and_reproducible():
    f = random_projection_filters(4, out_channels=2, generator=torch.Generator().manual_seed(3))
    assert f.shape == (8, 3, 8, 8)
    torch.testing.assert_close(f.flatten(1).norm(dim=1), torch.ones(8))
    again = random_projection_filters(4, out_channels=2, generator=torch.Generator().manual_seed(3))
    other = random_projection_filters(4, out_channels=2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(f, again)
    assert not torch.allclose(f, other)


def test_filters_are_a_buffer_and_never_trained():
    ens = make()
    assert "projection.filters" in ens.state_dict()
    assert not any(p is ens.projection.filters for p in ens.parameters())
    assert list(ens.projection.parameters()) == []
    before = ens.projection.filters.clone()
    opt = torch.optim.Adam(ens.parameters(), lr=0.1)
    ens(images()).sum().backward()
    opt.step()
    assert torch.equal(ens.projection.filters, before)
    assert ens.projection.filters.grad is None


def test_projection_shape_and_padding():
    proj = RandomProjection(K, generator=torch.Generator().manual_seed(0))
    x = images(size=64)
    y = proj(x)
    assert y.shape == (2, K, 32, 32)  # 64x64x3 -> 32x32x1 per view
    # Reference semantics: zero-pad by 3, then a VALID 8x8 conv with stride 2.
    xp = F.pad(x, (3, 3, 3, 3))
    i, j, k = 5, 11, 2
    patch = xp[1, :, 2 * i:2 * i + 8, 2 * j:2 * j + 8]
    torch.testing.assert_close(y[1, k, i, j], (patch * proj.filters[k]).sum())
    two = RandomProjection(K, out_channels=2)
    assert two(x).shape == (2, 2 * K, 32, 32)


@pytest.mark.parametrize("image_size,final_size,layers", [(32, 4, 2), (64, 4, 3), (64, 2, 4)])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_grouped_equals_loop_outputs_and_grads(image_size, final_size, layers, spectral_norm):
    # Two identical ensembles (same seed: same weights and same u/v), one per path, both in
    # training mode, so with spectral norm both advance their power iteration once.
    a = make(image_size=image_size, final_size=final_size, spectral_norm=spectral_norm)
    b = make(image_size=image_size, final_size=final_size, spectral_norm=spectral_norm)
    assert a.num_layers == layers
    xa, xb = images(size=image_size, requires_grad=True), images(size=image_size,
                                                                  requires_grad=True)
    out_a, out_b = a(xa), b.forward_loop(xb)
    assert out_a.shape == (2, K)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-5)
    w = torch.randn(2, K, generator=torch.Generator().manual_seed(5))
    (out_a * w).sum().backward()
    (out_b * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-5)
    names = [n for n, _ in a.named_parameters()]
    assert names == [n for n, _ in b.named_parameters()] and names
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert pa.grad is not None and pa.grad.abs().sum() > 0, name
        torch.testing.assert_close(pa.grad, pb.grad, rtol=0, atol=1e-5, msg=name)
    for (name, ba), bb in zip(a.named_buffers(), b.buffers()):
        torch.testing.assert_close(ba, bb, rtol=0, atol=1e-6, msg=name)


def test_impl_flag_selects_loop():
    grouped, loop = make(), make(impl="loop")
    x = images()
    torch.testing.assert_close(grouped(x), loop(x), rtol=0, atol=1e-5)


def test_member_views_own_nothing_and_copies_are_independent():
    ens = make()
    x = images()
    view, copy = ens.member(1), ens.member(1, copy=True)
    assert list(view.parameters()) == []
    torch.testing.assert_close(view(x), ens(x)[:, 1:2], rtol=0, atol=1e-5)
    torch.testing.assert_close(copy(x), ens(x)[:, 1:2], rtol=0, atol=1e-5)
    with torch.no_grad():
        for p in copy.parameters():
            p.add_(1.0)
    torch.testing.assert_close(view(x), ens(x)[:, 1:2], rtol=0, atol=1e-5)
    assert not torch.allclose(copy(x), view(x))


def test_per_member_sigma_matches_matrix_norm():
    ens = make(num_views=4, spectral_norm=True)
    scale = torch.tensor([1.0, 3.0, 10.0, 0.1])  # one sigma for all members would fail here
    for conv in sn_convs(ens):
        sn = conv.parametrizations.weight[0]
        raw = conv.parametrizations.weight.original
        with torch.no_grad():
            raw.mul_(scale.view(-1, *[1] * (raw.dim() - 1)).repeat_interleave(raw.shape[0] // 4, 0))
            for _ in range(300):  # each training-mode read of conv.weight is one power step
                conv.weight
        mats = raw.detach().reshape(4, raw.shape[0] // 4, -1)
        torch.testing.assert_close(sn.sigma(raw).detach(),
                                   torch.linalg.matrix_norm(mats, ord=2), rtol=1e-4, atol=0)
        eff = conv.weight.detach().reshape(mats.shape)
        torch.testing.assert_close(torch.linalg.matrix_norm(eff, ord=2), torch.ones(4),
                                   rtol=1e-4, atol=0)


def test_spectral_norm_iterates_in_train_only():
    ens = make(spectral_norm=True)
    sn = sn_convs(ens)[0].parametrizations.weight[0]
    u0 = sn._u.clone()
    ens.eval()
    out1, out2 = ens(images()), ens(images())
    assert torch.equal(sn._u, u0)
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    torch.testing.assert_close(out1, ens.forward_loop(images()), rtol=0, atol=1e-5)
    ens.train()
    ens(images())
    assert not torch.equal(sn._u, u0)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_one_adam_equals_k_separate_adams(spectral_norm):
    ens = make(spectral_norm=spectral_norm)
    members = [ens.member(k, copy=True) for k in range(K)]
    # A large eps makes Adam sensitive to the loss scale: a mean over members (gradients / K)
    # instead of the sum would fail this comparison.
    kw = dict(lr=1e-2, betas=(0.5, 0.999), eps=1e-3)
    opt = torch.optim.Adam(ens.parameters(), **kw)
    opts = [torch.optim.Adam(m.parameters(), **kw) for m in members]
    for step in range(3):
        real, fake = images(4, seed=10 + step), images(4, seed=20 + step)
        opt.zero_grad()
        ensemble_d_loss(ens(real), ens(fake)).backward()
        opt.step()
        for m, o in zip(members, opts):
            o.zero_grad()
            d_k = 0.5 * (losses.loss_real(m(real)).mean() + losses.loss_fake(m(fake)).mean())
            d_k.backward()
            o.step()
    for k, m in enumerate(members):
        trained = ens.member(k, copy=True)
        for (name, a), b in zip(trained.named_parameters(), m.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=f"member {k} {name}")
        for (name, a), b in zip(trained.named_buffers(), m.buffers()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=f"member {k} {name}")
        assert not torch.allclose(trained[1].bias, torch.zeros_like(trained[1].bias))


@pytest.mark.parametrize("kind", ["ns", "hinge"])
def test_ensemble_losses_sum_d_and_average_g(kind):
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(5, K, generator=g), torch.randn(6, K, generator=g)
    per_member = [0.5 * (losses.loss_real(real[:, k], kind).mean()
                         + losses.loss_fake(fake[:, k], kind).mean()) for k in range(K)]
    torch.testing.assert_close(ensemble_d_loss(real, fake, kind), torch.stack(per_member).sum())
    g_members = [losses.g_loss(fake[:, k], kind).mean() for k in range(K)]
    torch.testing.assert_close(ensemble_g_loss(fake, kind), torch.stack(g_members).mean())
    real_half = [0.5 * losses.loss_real(real[:, k], kind).mean() for k in range(K)]
    torch.testing.assert_close(ensemble_real_loss(real, kind), torch.stack(real_half).sum())
    torch.testing.assert_close(ensemble_real_loss(real, kind) + ensemble_fake_loss(fake, kind),
                               ensemble_d_loss(real, fake, kind))


@pytest.mark.parametrize("kind", ["ns", "ls"])
def test_ensemble_mixed_loss_scores_each_member_with_its_samples_lam(kind):
    g = torch.Generator().manual_seed(1)
    logits, lam = torch.randn(5, K, generator=g), torch.rand(5, generator=g)
    members = [0.5 * mixed_gan_loss(logits[:, k], lam, kind).mean() for k in range(K)]
    torch.testing.assert_close(ensemble_mixed_loss(logits, lam, kind), torch.stack(members).sum())
    # lam = 1 is an all-real batch, lam = 0 an all-fake one
    torch.testing.assert_close(ensemble_mixed_loss(logits, torch.ones(5), kind),
                               ensemble_real_loss(logits, kind))
    torch.testing.assert_close(ensemble_mixed_loss(logits, torch.zeros(5), kind),
                               ensemble_fake_loss(logits, kind))


def test_single_view():
    for sn in (False, True):
        ens = make(num_views=1, spectral_norm=sn).eval()
        x = images()
        out = ens(x)
        assert out.shape == (2, 1)
        torch.testing.assert_close(out, ens.forward_loop(x), rtol=0, atol=1e-5)
        ensemble_d_loss(out, out).backward()


def test_state_dict_round_trip():
    a, b = make(seed=0, spectral_norm=True).eval(), make(seed=1, spectral_norm=True).eval()
    x = images()
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_bf16_autocast_cpu():
    ens = make(spectral_norm=True).eval()
    x = images(requires_grad=True)
    ref = ens(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ens(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.05 * ref.abs().max().item())
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(num_views=0), ValueError, "num_views must be > 0, got 0"),
    (dict(num_views=2.0), TypeError, "num_views"),
    (dict(image_size=48), ValueError, "image_size must be a power of 2 >= 16.*got 48"),
    (dict(image_size=8), ValueError, "image_size must be a power of 2 >= 16.*got 8"),
    (dict(image_size=4, final_size=2), ValueError, "image_size must be a power of 2 >= 8.*got 4"),
    (dict(final_size=3), ValueError, "final_size must be a power of 2 >= 1.*got 3"),
    (dict(kernel_size=7), ValueError, "kernel_size must be an even int.*got 7"),
    (dict(impl="vmap"), ValueError, "impl must be one of 'grouped', 'loop'; got 'vmap'"),
    (dict(spectral_norm="yes"), TypeError, "spectral_norm must be a bool"),
    (dict(generator=0), TypeError, "generator"),
])
def test_bad_constructor_args_raise(kwargs, error, match):
    kw = dict(num_views=2, image_size=32, base_channels=4) | kwargs
    with pytest.raises(error, match=match):
        ProjectionEnsemble(**kw)


@pytest.mark.parametrize("x,error,match", [
    (torch.zeros(3, 32, 32), ValueError, "x must have rank 4"),
    (torch.zeros(2, 1, 32, 32), ValueError, "x must have 3 channels"),
    (torch.zeros(2, 3, 64, 64), ValueError, r"x must be 32x32 \(image_size\)"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.long), TypeError, "floating-point"),
    ([[0.0]], TypeError, "x must be a torch.Tensor"),
    (torch.zeros(2, 3, 32, 32, device="meta"), ValueError, "x on meta"),
    # was the conv's "expected scalar type Double but found Float", naming neither side
    (torch.zeros(2, 3, 32, 32, dtype=torch.float64), TypeError,
     r"^x has dtype torch.float64 but the model's parameters are torch.float32; cast one"),
])
def test_bad_inputs_raise(x, error, match):
    ens = make(num_views=2)
    for fn in (ens, ens.forward_loop):
        with pytest.raises(error, match=match):
            fn(x)


def test_bad_projection_member_and_loss_args_raise():
    with pytest.raises(ValueError, match=r"filters must have shape \(2, 3, 8, 8\)"):
        RandomProjection(2, filters=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="even height and width"):
        RandomProjection(2)(torch.zeros(1, 3, 31, 32))
    ens = make(num_views=2)
    with pytest.raises(ValueError, match=r"k must be in \[0, 2\).*got 2"):
        ens.member(2)
    with pytest.raises(TypeError, match="k must be an int"):
        ens.member("0")
    with pytest.raises(ValueError, match="logits_real must have rank 2"):
        ensemble_d_loss(torch.zeros(4), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="same number of members"):
        ensemble_d_loss(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="kind must be one of"):
        ensemble_g_loss(torch.zeros(4, 2), kind="bce")


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_a_generator_given_leaves_the_global_rng_alone(spectral_norm):
    # Was: nn.Conv2d's default init drew from the global generator before the weights were
    # drawn again from the one given
    state = torch.get_rng_state()
    ens = ProjectionEnsemble(4, 16, base_channels=4, spectral_norm=spectral_norm,
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    again = ProjectionEnsemble(4, 16, base_channels=4, spectral_norm=spectral_norm,
                               generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(ens.state_dict().values(),
                                                 again.state_dict().values()))
    assert all(bool(p.isfinite().all()) for p in ens.parameters())


def test_ensemble_mixed_loss_takes_one_lam_and_names_the_batch():
    # a float lam raised AttributeError; a wrong length named B*K as the count wanted
    logits = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ensemble_mixed_loss(logits, 0.3),
                               ensemble_mixed_loss(logits, torch.full((5,), 0.3)))
    with pytest.raises(ValueError, match=r"one value per sample \(5\), got shape \(3,\)"):
        ensemble_mixed_loss(logits, torch.rand(3))
    with pytest.raises(ValueError, match="batch of at least 1"):  # was NaN
        ensemble_d_loss(torch.zeros(0, 3), torch.zeros(0, 3))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_member_copies_leave_the_global_rng_alone(spectral_norm):
    # nn.Conv2d's default init and spectral norm's first u drew from the global RNG
    ens = ProjectionEnsemble(3, 16, base_channels=4, spectral_norm=spectral_norm,
                             generator=torch.Generator().manual_seed(0))
    before = torch.random.get_rng_state()
    ens.member(1, copy=True)
    assert torch.equal(torch.random.get_rng_state(), before)


# --- pinned by mutation testing (scripts/mutation.py projection) -------------------------------


@pytest.mark.parametrize("call,error,message", [
    (lambda: random_projection_filters(0), ValueError, "num_views must be > 0, got 0"),
    (lambda: random_projection_filters(2.0), TypeError, "num_views must be a positive int"),
    (lambda: random_projection_filters(2, in_channels=0), ValueError,
     "in_channels must be > 0, got 0"),
    (lambda: random_projection_filters(2, in_channels=3.0), TypeError,
     "in_channels must be a positive int"),
    (lambda: random_projection_filters(2, out_channels=0), ValueError,
     "out_channels must be > 0, got 0"),
    (lambda: random_projection_filters(2, out_channels=1.0), TypeError,
     "out_channels must be a positive int"),
    (lambda: random_projection_filters(2, kernel_size=0), ValueError,
     "kernel_size must be > 0, got 0"),
    (lambda: random_projection_filters(2, kernel_size=8.0), TypeError,
     "kernel_size must be a positive int"),
    (lambda: random_projection_filters(2, kernel_size=5), ValueError,
     r"kernel_size must be an even int >= 2 \(so that padding \(kernel_size - 2\) // 2 halves "
     r"the image exactly\), got 5$"),
    (lambda: random_projection_filters(2, generator=0), TypeError,
     "generator must be a torch.Generator or None, got int$"),
    (lambda: RandomProjection(2, filters=[[0.0]]), TypeError, "filters must be a torch.Tensor"),
    (lambda: RandomProjection(2, filters=torch.zeros(2, 3, 8)), ValueError,
     "filters must have rank 4"),
    (lambda: RandomProjection(2, filters=torch.zeros(2, 3, 8, 8, dtype=torch.long)), TypeError,
     "filters must be a floating-point tensor"),
    (lambda: RandomProjection(2, filters=torch.zeros(1, 3, 8, 8)), ValueError,
     r"filters must have shape \(2, 3, 8, 8\) \(num_views \* out_channels, in_channels, "
     r"kernel_size, kernel_size\), got \(1, 3, 8, 8\)$"),
])
def test_projection_arguments_are_named_with_what_is_accepted(call, error, message):
    with pytest.raises(error, match=f"^{message}"):
        call()


def test_projection_defaults_kernel_sizes_and_size_checks():
    f = random_projection_filters(2)  # one 3-channel 8x8 filter per view by default
    assert f.shape == (2, 3, 8, 8)
    assert repr(RandomProjection(2, out_channels=2, kernel_size=4)) == (
        "RandomProjection(num_views=2, in_channels=3, out_channels=2, kernel_size=4)")
    x = images(1, size=8)
    for kernel_size in (2, 4, 6):  # every even size from the stride up halves the image
        proj = RandomProjection(2, kernel_size=kernel_size)
        assert proj.padding == (kernel_size - 2) // 2 and proj(x).shape == (1, 2, 4, 4)
    proj = RandomProjection(2)
    for shape in ((1, 3, 32, 31), (1, 3, 31, 32)):
        with pytest.raises(ValueError, match=rf"^x must have even height and width, got "
                                             rf"\({shape[2]}, {shape[3]}\)$"):
            proj(torch.zeros(shape))
    with pytest.raises(ValueError, match="^tensors must be on the same device, got x on meta, "
                                         "module_weights on cpu$"):
        proj(torch.zeros(1, 3, 32, 32, device="meta"))
    with pytest.raises(ValueError, match=r"^x must be 32x32 \(image_size\), got \(64, 64\)$"):
        make()(images(size=64))


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(in_channels=0), ValueError, "in_channels must be > 0, got 0"),
    (dict(in_channels=3.0), TypeError, "in_channels must be a positive int"),
    (dict(proj_channels=0), ValueError, "proj_channels must be > 0, got 0"),
    (dict(proj_channels=1.0), TypeError, "proj_channels must be a positive int"),
    (dict(base_channels=0), ValueError, "base_channels must be > 0, got 0"),
    (dict(base_channels=4.0), TypeError, "base_channels must be a positive int"),
    (dict(num_views=2.0), TypeError, "num_views must be a positive int"),
    (dict(final_size=0), ValueError, "final_size must be > 0, got 0"),
    (dict(final_size=2.0), TypeError, "final_size must be a positive int"),
    (dict(final_size=3), ValueError, r"final_size must be a power of 2 >= 1 \(the stride-2 layers "
                                     r"halve a power of 2\), got 3$"),
    (dict(image_size=48), ValueError, r"image_size must be a power of 2 >= 16 \(the projection "
                                      r"halves it, then at least one stride-2 layer reaches "
                                      r"final_size=4\), got 48$"),
    (dict(generator=0), TypeError, "generator must be a torch.Generator or None, got int$"),
])
def test_ensemble_arguments_are_named_with_what_is_accepted(kwargs, error, message):
    kw = dict(num_views=2, image_size=32, base_channels=4) | kwargs
    with pytest.raises(error, match=f"^{message}"):
        ProjectionEnsemble(**kw)


def test_ensemble_defaults_widths_and_reference_init():
    ens = ProjectionEnsemble(2, 32, generator=torch.Generator().manual_seed(0))
    # defaults: one 8x8 projection channel per view, 64 channels doubled per layer, a 4x4 head,
    # no spectral norm, the grouped path
    assert ens.projection.filters.shape == (2, 3, 8, 8) and ens.impl == "grouped"
    convs = sn_convs(ens)
    assert [tuple(c.weight.shape) for c in convs] == [(128, 1, 4, 4), (256, 64, 4, 4),
                                                      (2, 128, 4, 4)]
    assert not any(hasattr(c, "parametrizations") for c in convs)
    # biases 0, weights U(+-sqrt(3 / fan_in)) with the per-member fan_in (rpglib/disc.py)
    for conv in convs:
        bound = (3.0 / conv.weight[0].numel()) ** 0.5
        assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
        assert 0.9 * bound < conv.weight.abs().max() <= bound
    # final_size=1 (a power of 2, 1 included) gives one more stride-2 layer
    assert make(image_size=16, final_size=1).num_layers == 3


def test_impl_picks_the_path_and_the_cpu_path_runs_channels_last():
    x = images()
    for impl, want in (("grouped", "grouped"), ("loop", "loop")):
        ens = make(impl=impl)
        ens.forward_loop = lambda v: "loop"
        assert (ens(x) == "loop") == (want == "loop")
    # oneDNN's grouped convs are fast channels-last on the CPU: the projection gets that layout
    ens, seen = make(), []
    ens.projection.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    ens(x)
    assert seen == [True]


def test_member_views_hold_no_buffers_and_copies_keep_kernel_dtype_device_and_sn_settings():
    ens = make(kernel_size=4)
    x = images()
    view, copy = ens.member(1), ens.member(1, copy=True)
    assert list(view.buffers()) == []  # the projection is read from the ensemble too
    torch.testing.assert_close(copy(x), ens(x)[:, 1:2], rtol=0, atol=1e-5)
    before = copy(x)
    with torch.no_grad():
        ens.projection.filters.mul_(2.0)  # the copy holds its own filters
    torch.testing.assert_close(copy(x), before, rtol=0, atol=0)
    double = make().double()
    copy = double.member(0, copy=True)
    assert {p.dtype for p in copy.parameters()} == {torch.float64}
    torch.testing.assert_close(copy(x.double()), double(x.double())[:, :1])
    meta = make().to("meta").member(0, copy=True)
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    sn_ens = make(spectral_norm=True)
    for conv in sn_convs(sn_ens):
        conv.parametrizations.weight[0].n_power_iterations = 3
        conv.parametrizations.weight[0].eps = 1e-6
    for layer in sn_ens.member(0, copy=True):
        if isinstance(layer, torch.nn.Conv2d):
            torch_sn = layer.parametrizations.weight[0]
            assert (torch_sn.n_power_iterations, torch_sn.eps) == (3, 1e-6)
    with pytest.raises(TypeError, match="^k must be an int, got str$"):
        ens.member("0")


def test_grouped_spectral_norm_init_matches_fifteen_power_steps_from_its_draws():
    from robustrep.projection import GroupedSpectralNorm
    # two members, singular values 1 and 0.95 (slow convergence: 15 and 16 steps differ)
    w = torch.stack([torch.diag(torch.tensor([1.0, 0.95, 0.5])),
                     2 * torch.diag(torch.tensor([0.5, 1.0, 0.9]))]).double()
    sn = GroupedSpectralNorm(w.reshape(6, 3), groups=2, generator=torch.Generator().manual_seed(0))
    assert sn.n_power_iterations == 1 and sn.eps == 1e-12
    assert sn._u.dtype == sn._v.dtype == torch.float64  # drawn in float32, moved to the weight's
    g = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(2, 3, generator=g).double(), dim=1)
    v = F.normalize(torch.randn(2, 3, generator=g).double(), dim=1)
    for _ in range(15):
        u = F.normalize(torch.einsum("kon,kn->ko", w, v), dim=1)
        v = F.normalize(torch.einsum("kon,ko->kn", w, u), dim=1)
    torch.testing.assert_close(sn._u, u, rtol=0, atol=1e-12)
    torch.testing.assert_close(sn._v, v, rtol=0, atol=1e-12)


def test_grouped_spectral_norm_checks_and_small_weights():
    from robustrep.projection import GroupedSpectralNorm, grouped_spectral_norm
    # a rank-2 weight (a linear layer's) is fine; sigma of a tiny member is still its norm
    w = 1e-3 * torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    sn = GroupedSpectralNorm(w, groups=2)
    torch.testing.assert_close(sn.sigma(w), torch.linalg.matrix_norm(w.view(2, 2, 3), ord=2),
                               rtol=1e-4, atol=0)
    conv = grouped_spectral_norm(torch.nn.Conv2d(2, 4, 1, groups=2))
    assert conv.parametrizations.weight[0].n_power_iterations == 1
    for call, error, message in [
        (lambda: GroupedSpectralNorm(torch.zeros(5, 2, 1, 1), 2), ValueError,
         r"weight must have rank >= 2 and dim 0 divisible by groups=2, got shape \(5, 2, 1, 1\)$"),
        (lambda: GroupedSpectralNorm(torch.zeros(4), 2), ValueError, "weight must have rank >= 2"),
        (lambda: GroupedSpectralNorm(w, 0), ValueError, "groups must be > 0, got 0"),
        (lambda: GroupedSpectralNorm(w, 2.0), TypeError, "groups must be a positive int"),
        (lambda: GroupedSpectralNorm(w, 2, 0), ValueError, "n_power_iterations must be > 0"),
        (lambda: GroupedSpectralNorm(w, 2, 1.0), TypeError,
         "n_power_iterations must be a positive int"),
        (lambda: grouped_spectral_norm(torch.nn.Linear(2, 2)), TypeError,
         "conv must be an nn.Conv2d, got Linear$"),
        (lambda: grouped_spectral_norm(torch.nn.Conv2d(2, 2, 1), generator=0), TypeError,
         "generator must be a torch.Generator or None, got int$"),
    ]:
        with pytest.raises(error, match=f"^{message}"):
            call()


def test_ensemble_losses_name_their_logits_and_default_to_ns():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    torch.testing.assert_close(ensemble_real_loss(real), ensemble_real_loss(real, "ns"))
    torch.testing.assert_close(ensemble_fake_loss(fake), ensemble_fake_loss(fake, "ns"))
    torch.testing.assert_close(ensemble_g_loss(fake), ensemble_g_loss(fake, "ns"))
    for call, message in [
        (lambda: ensemble_real_loss(real[:, 0]), "logits must have rank 2"),
        (lambda: ensemble_fake_loss(real[:, 0]), "logits must have rank 2"),
        (lambda: ensemble_mixed_loss(real[:, 0], 0.5), "logits must have rank 2"),
        (lambda: ensemble_g_loss(real[:, 0]), "logits_fake must have rank 2"),
        (lambda: ensemble_d_loss(real, fake[:, 0]), "logits_fake must have rank 2"),
        (lambda: ensemble_d_loss(real.long(), fake), "logits_real must be a floating-point"),
        (lambda: ensemble_g_loss(fake.long()), "logits_fake must be a floating-point"),
        (lambda: ensemble_d_loss(real, fake[:, :1]), r"logits_real and logits_fake must have the "
         r"same number of members \(dim 1\), got \(4, 2\) and \(4, 1\)$"),
        (lambda: ensemble_mixed_loss(real, torch.full((4, 1), 0.5)),
         r"lam must be a float or one value per sample \(4\), got shape \(4, 1\)$"),
    ]:
        with pytest.raises((ValueError, TypeError), match=f"^{message}"):
            call()
    # a float lam is made on the logits' device
    assert ensemble_mixed_loss(real.to("meta"), 0.3).device.type == "meta"
