"""AdaptiveMix: the two-pass computation equals the reference three passes; invariants; checks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adaptivemix import AdaptiveMix, adaptivemix, adaptivemix_three_pass, shrinkage
from robustrep.losses import r1_penalty
from robustrep.mixing import sample_lam
from robustrep.split import FeatureSplit

B = 6


def make_split(batchnorm=True, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 4, 3, 2, 1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.LeakyReLU(0.2), nn.Conv2d(4, 4, 3, 2, 1), nn.Flatten()]
    return FeatureSplit(nn.Sequential(*layers), nn.Linear(16, 1)).to(dtype)


def inputs(dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 3, 8, 8, generator=g, dtype=dtype) * 2 - 1
    index = torch.randperm(B, generator=g)
    noise = 0.05 * torch.randn(B, 16, generator=g, dtype=dtype)
    return x, index, noise


def grads(out, model):
    # Include the logits so the head path is compared as well as the shrinkage.
    total = out["loss"] + 0.3 * out["logits"].sum()
    return torch.autograd.grad(total, list(model.parameters()), allow_unused=True)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("mode,distance", [("reference", "cosine"), ("additive", "mse"),
                                           ("reference", "mse")])
@pytest.mark.parametrize("per_sample", [False, True])
def test_two_passes_equal_three_passes(train, mode, distance, per_sample):
    model = make_split().train(train)
    x, index, noise = inputs()
    lam = torch.linspace(0.1, 0.9, B, dtype=torch.float64) if per_sample else 0.3
    kw = dict(distance=distance, mode=mode, weight=2.0)
    two = adaptivemix(model, x, lam, index, noise=noise, **kw)
    three = adaptivemix_three_pass(model, x, lam, index, noise=noise, **kw)
    torch.testing.assert_close(two["loss"], three["loss"], rtol=0, atol=1e-12)
    torch.testing.assert_close(two["logits"], three["logits"], rtol=0, atol=1e-12)
    for g2, g3 in zip(grads(two, model), grads(three, model)):
        if g3 is None:  # the head bias gets no grad from the shrinkage only when unused
            assert g2 is None
            continue
        torch.testing.assert_close(g2, g3, rtol=1e-9, atol=1e-12)
    assert two["lam"].shape == (B,) and torch.equal(two["index"], index)


def test_fuse_passes_exact_without_batch_statistics_only():
    x, index, noise = inputs()
    for model in (make_split(batchnorm=False), make_split().eval()):
        sep = adaptivemix(model, x, 0.4, index, noise=noise)
        fused = adaptivemix(model, x, 0.4, index, noise=noise, fuse_passes=True)
        torch.testing.assert_close(fused["loss"], sep["loss"], rtol=0, atol=1e-12)
        torch.testing.assert_close(fused["logits"], sep["logits"], rtol=0, atol=1e-12)
    # Train-mode BatchNorm would pool the clean and mixed samples' statistics when fused (a
    # different loss, silently): refused, naming the layer; so is BatchNorm without running
    # statistics, which uses the batch's in eval mode too
    model = make_split().train()
    with pytest.raises(ValueError, match=r"^fuse_passes=True needs a trunk without batch "
                                         r"statistics, but trunk\.1 \(BatchNorm2d\)"):
        adaptivemix(model, x, 0.4, index, noise=noise, fuse_passes=True)
    model = make_split().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean = module.running_var = None
    with pytest.raises(ValueError, match="fuse_passes=True needs"):
        adaptivemix(model, x, 0.4, index, noise=noise, fuse_passes=True)


@pytest.mark.parametrize("mode", ["reference", "additive"])
def test_target_is_detached_and_loss_flows_only_through_z_mix(mode):
    model = make_split(batchnorm=False)
    x, index, noise = inputs()
    lam = 0.3
    out = adaptivemix(model, x, lam, index, noise=noise, mode=mode)
    assert not out["target"].requires_grad
    trunk = list(model.trunk.parameters())
    got = torch.autograd.grad(out["loss"], trunk)
    with torch.no_grad():
        z = model.features(x)
        target = lam * z + (1 - lam) * z[index] + noise
    z_mix = model.features(lam * x + (1 - lam) * x[index])
    want = torch.autograd.grad(shrinkage(z_mix, target).mean(), trunk)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_reference_logits_train_the_clean_passes():
    # h(z_lin) is not detached: the clean features get the adversarial loss's gradient.
    model = make_split(batchnorm=False)
    x, index, _ = inputs()
    lam = 0.3
    out = adaptivemix(model, x, lam, index)
    z = model.features(x)
    want = (model.head(lam * z + (1 - lam) * z[index])
            + model.head(model.features(lam * x + (1 - lam) * x[index])))
    torch.testing.assert_close(out["logits"], want, rtol=0, atol=1e-12)
    params = list(model.parameters())
    got = torch.autograd.grad(out["logits"].sum(), params)
    for a, b in zip(got, torch.autograd.grad(want.sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_lam_one_keeps_the_clean_batch():
    model = make_split().eval()
    x, index, _ = inputs()
    out = adaptivemix(model, x, 1.0, index)
    z = model.features(x)
    torch.testing.assert_close(out["target"], z.detach())  # z_lin == z, no noise
    torch.testing.assert_close(out["loss"], torch.tensor(-1.0, dtype=out["loss"].dtype))
    torch.testing.assert_close(out["logits"], 2 * model(x))  # x_mix == x
    assert torch.equal(out["lam"], torch.ones(B))


def test_shrinkage_values():
    a = torch.tensor([[1.0, 2.0], [1.0, 0.0], [3.0, -1.0]])
    b = torch.tensor([[2.0, 4.0], [0.0, 5.0], [-3.0, 1.0]])
    torch.testing.assert_close(shrinkage(a, a), -torch.ones(3))
    torch.testing.assert_close(shrinkage(a, b), torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(shrinkage(a, b, "mse"), torch.tensor([2.5, 13.0, 20.0]))
    # Features are flattened per sample; bf16 features give a float32 result.
    z = torch.randn(4, 2, 3, 3)
    torch.testing.assert_close(shrinkage(z, z * 3.0), -torch.ones(4))
    assert shrinkage(z.bfloat16(), z.bfloat16(), "mse").dtype == torch.float32


def test_additive_mode_returns_the_clean_logits():
    model = make_split().eval()
    x, _, _ = inputs()
    out = AdaptiveMix(mode="additive")(model, x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["logits"], model(x))


def test_class_equals_three_pass_on_its_own_draws():
    model = make_split().train()
    x, _, _ = inputs()
    out = AdaptiveMix(noise_std=0.0, distance="mse")(model, x,
                                                      generator=torch.Generator().manual_seed(3))
    ref = adaptivemix_three_pass(model, x, out["lam"], out["index"], distance="mse")
    torch.testing.assert_close(out["loss"], ref["loss"], rtol=0, atol=1e-12)
    torch.testing.assert_close(out["logits"], ref["logits"], rtol=0, atol=1e-12)
    assert set(out) >= {"loss", "logits", "lam", "index", "adaptivemix/shrink", "adaptivemix/lam"}
    assert not out["adaptivemix/shrink"].requires_grad and out["adaptivemix/shrink"].dim() == 0


def test_lam_per_batch_or_per_sample():
    model = make_split()
    x, _, _ = inputs()
    g = torch.Generator().manual_seed(0)
    per_batch = AdaptiveMix()(model, x, generator=g)["lam"]
    per_sample = AdaptiveMix(per_sample=True)(model, x, generator=g)["lam"]
    assert per_batch.shape == per_sample.shape == (B,)
    assert torch.all(per_batch == per_batch[0])
    assert len(set(per_sample.tolist())) == B
    assert bool(((per_sample >= 0) & (per_sample <= 1)).all())


def test_flip_partner():
    out = AdaptiveMix(partner="flip")(make_split(), inputs()[0])
    assert torch.equal(out["index"], torch.arange(B - 1, -1, -1))


def test_seeded_reproducibility():
    model = make_split()
    x, _, _ = inputs()
    mix = AdaptiveMix(per_sample=True)
    a, b, c = (mix(model, x, generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6))
    for key in ("loss", "logits", "lam", "index", "target"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["lam"], c["lam"])


def test_beta_sampling_matches_beta_moments():
    g = torch.Generator().manual_seed(0)
    lam = sample_lam(0.5, 20000, g, torch.device("cpu"))
    assert lam.dtype == torch.float32 and bool(((lam >= 0) & (lam <= 1)).all())
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 1/8 for a = 0.5.
    assert abs(lam.mean().item() - 0.5) < 0.01
    assert abs(lam.var().item() - 0.125) < 0.005


def test_mixed_logits_support_r1_on_the_input():
    model = make_split()
    x = inputs()[0].requires_grad_(True)
    out = AdaptiveMix()(model, x, generator=torch.Generator().manual_seed(0))
    penalty = r1_penalty(out["logits"], x)
    assert penalty.shape == (B,) and bool((penalty > 0).all())


def test_bf16_autocast():
    model = make_split(dtype=torch.float32)
    x = inputs(dtype=torch.float32)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = AdaptiveMix()(model, x, generator=torch.Generator().manual_seed(0))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.trunk.parameters())


@pytest.mark.parametrize("kwargs,name", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(noise_std=-0.1), "noise_std"),
    (dict(distance="l1"), "distance"), (dict(mode="replace"), "mode"),
    (dict(partner="random"), "partner"), (dict(weight=-1.0), "weight"),
    (dict(per_sample=1), "per_sample"), (dict(alpha=float("nan")), "alpha must be a finite"),
    (dict(alpha=float("inf")), "alpha must be a finite"),
    (dict(noise_std=float("nan")), "noise_std must be a finite"),
    (dict(weight=float("inf")), "weight must be a finite"),
])
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=f"^{name}"):  # the message starts with it
        AdaptiveMix(**kwargs)


def test_bad_call_arguments():
    model = make_split()
    x, index, noise = inputs()
    mix = AdaptiveMix()
    with pytest.raises(ValueError, match="batch of at least 2"):
        mix(model, x[:1])
    with pytest.raises(ValueError, match="x must have rank"):
        mix(model, x.flatten())
    with pytest.raises(TypeError, match="x must be a floating"):
        mix(model, x.long())
    with pytest.raises(TypeError, match="cannot split"):
        mix(nn.Linear(3, 1), x)
    with pytest.raises(TypeError, match="generator"):
        mix(model, x, generator=0)
    with pytest.raises(ValueError, match="lam"):
        adaptivemix(model, x, 1.5, index)
    with pytest.raises(ValueError, match="index"):
        adaptivemix(model, x, 0.5, index[:3])
    with pytest.raises(ValueError, match="noise"):
        adaptivemix(model, x, 0.5, index, noise=noise[:, :3])
    with pytest.raises(ValueError, match="same device"):
        adaptivemix(make_split().to("meta"), x, 0.5, index)


class _Pair(nn.Module):
    """A part that returns (its layer's output, its input)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, v):
        return self.layer(v), v


def test_parts_that_return_tuples_are_refused():
    # Was: a head returning (logits, z) gave reference-mode "logits" as the tuple of both
    # calls joined by +, four entries; a tuple of features failed in the noise draw
    x, index, _ = inputs()
    trunk = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 4))
    for model, part in ((FeatureSplit(trunk, _Pair(nn.Linear(4, 1))).double(), "head"),
                        (FeatureSplit(_Pair(trunk), nn.Linear(4, 1)).double(), "features")):
        for fuse in (False, True):
            with pytest.raises(TypeError, match=rf"^the model's {part} must return one "
                                                rf"tensor, got tuple; wrap the model"):
                adaptivemix(model, x, 0.5, index, fuse_passes=fuse, mode="reference")
        with pytest.raises(TypeError, match=f"{part} must return one tensor"):
            adaptivemix_three_pass(model, x, 0.5, index, mode="additive")


def test_non_finite_and_mixed_dtype_calls_name_the_argument():
    model = make_split()  # float64
    x, index, noise = inputs()
    with pytest.raises(ValueError, match="noise_std must be a finite number, got nan"):
        adaptivemix(model, x, 0.5, index, noise_std=float("nan"))
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\], got nan"):
        adaptivemix(model, x, float("nan"), index)
    with pytest.raises(ValueError, match="weight must be a finite"):
        adaptivemix(model, x, 0.5, index, weight=float("nan"))
    with pytest.raises(TypeError, match="x has dtype torch.float32 but the model's parameters "
                                        "are torch.float64"):
        AdaptiveMix()(model, x.float())
    with pytest.raises(TypeError, match="x has dtype torch.float32"):
        adaptivemix_three_pass(model, x.float(), 0.5, index)


def test_defaults_are_the_reference_scripts():
    assert repr(AdaptiveMix()) == (
        "AdaptiveMix(alpha=1.0, noise_std=0.05, distance=None, mode='reference', weight=1.0, "
        "per_sample=False, partner='permutation', fuse_passes=False, g_shrink=True)")


@pytest.mark.parametrize("place", ["d_logits", "feature_terms", "call"])
def test_the_default_distance_is_each_reference_codes(place):
    # one class, two reference codes: the GAN code's cosine, the classification code's mse (the
    # default was cosine everywhere, so a library classifier silently got the GAN's distance)
    model = make_split(batchnorm=False)
    x, _, _ = inputs()
    want = "mse" if place == "feature_terms" else "cosine"
    got = {}
    for distance in (None, want):
        am = AdaptiveMix(distance=distance, noise_std=0.0)
        gen = torch.Generator().manual_seed(3)
        if place == "d_logits":
            got[distance] = am.d_logits(model, x, gen)[1]
        else:
            got[distance] = (am.feature_terms if place == "feature_terms" else am)(
                model, x, gen)["loss"]
    torch.testing.assert_close(got[None], got[want], rtol=0, atol=0)
    other = AdaptiveMix(distance={"mse": "cosine", "cosine": "mse"}[want], noise_std=0.0)
    gen = torch.Generator().manual_seed(3)
    loss = (other.d_logits(model, x, gen)[1] if place == "d_logits" else
            (other.feature_terms if place == "feature_terms" else other)(model, x, gen)["loss"])
    assert not torch.allclose(loss, got[None])


def test_class_passes_every_option_and_draws_partners_lam_and_noise_from_the_generator():
    # Replay the class's draws by hand (permutation, Beta via two Gammas, Gaussian noise on the
    # features) and compare with the reference three-pass computation.
    model = make_split(batchnorm=False)
    x, _, _ = inputs()
    am = AdaptiveMix(alpha=0.7, noise_std=0.3, weight=2.5, distance="mse", mode="additive",
                     per_sample=True)
    out = am(model, x, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    index = torch.randperm(B, generator=g)
    lam = sample_lam(0.7, B, g).double()
    z = model.features(x)
    noise = 0.3 * torch.randn(z.shape, generator=g, dtype=torch.float32).double()
    ref = adaptivemix_three_pass(model, x, lam, index, noise=noise, distance="mse",
                                 mode="additive", weight=2.5)
    assert torch.equal(out["index"], index)
    torch.testing.assert_close(out["lam"], lam)
    for key in ("loss", "logits", "target"):
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-12)


def test_given_noise_wins_and_no_noise_draws_nothing():
    model = make_split(batchnorm=False)
    x, index, noise = inputs()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    given = adaptivemix(model, x, 0.3, index, noise=noise, noise_std=5.0, generator=g)
    ref = adaptivemix_three_pass(model, x, 0.3, index, noise=noise)
    torch.testing.assert_close(given["target"], ref["target"], rtol=0, atol=1e-12)
    quiet = adaptivemix(model, x, 0.3, index, noise_std=0.0, generator=g)
    assert torch.equal(g.get_state(), state)  # nothing drawn from the caller's stream
    torch.testing.assert_close(quiet["target"],
                               adaptivemix_three_pass(model, x, 0.3, index)["target"])


def test_bf16_features_are_compared_in_float32():
    # The distance is taken in float32: in bf16 the squared error of nearby features rounds.
    a = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.bfloat16)
    b = torch.tensor([[1.0078125, 2.0, 3.0]], dtype=torch.bfloat16)  # exact bf16 values
    torch.testing.assert_close(shrinkage(a, b, "mse"), torch.tensor([0.0078125 ** 2 / 3]))
    expected = -F.cosine_similarity(a.float(), b.float(), dim=1)
    torch.testing.assert_close(shrinkage(a, b), expected, rtol=0, atol=0)


def test_cosine_is_per_sample_over_flattened_features():
    z = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    t = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]])
    torch.testing.assert_close(shrinkage(z, t), torch.tensor([-1.0, 0.0]))


M = make_split
X, IDX, NOISE = inputs()
BAD_CALLS = [
    (lambda: shrinkage(X.long(), X), TypeError, "^z_mix must be a floating-point tensor"),
    (lambda: shrinkage(X[:0], X[:0]), ValueError, "^z_mix needs a batch of at least 1"),
    (lambda: shrinkage(X, X.long()), TypeError, "^target must be a floating-point tensor"),
    (lambda: shrinkage(X, X[:2]), ValueError, "^z_mix and target must have the same shape"),
    (lambda: shrinkage(X, X, "l1"), ValueError, "^distance must be one of"),
    (lambda: adaptivemix(M(), X.float(), 0.5, IDX), TypeError, "^x has dtype torch.float32"),
    (lambda: adaptivemix(M(), X.long(), 0.5, IDX), TypeError, "^x must be a floating-point"),
    (lambda: adaptivemix(M(), X[:1], 0.5, IDX[:1]), ValueError, "^x needs a batch of at least 2"),
    (lambda: adaptivemix(M(), X.flatten(), 0.5, IDX), ValueError, "^x must have rank 2 or 3 or"),
    (lambda: adaptivemix(M(), X, 0.5, IDX[:, None]), ValueError, "^index must have rank 1"),
    (lambda: adaptivemix(M(), X, 0.5, IDX.double()), ValueError,
     "^index must be an integer tensor of partners, got torch.float64"),
    (lambda: adaptivemix(M(), X, 0.5, IDX - 1), ValueError,  # -1 used to wrap to the last sample
     r"^index must hold partners in \[0, 6\), got values -1\.\.4"),
    (lambda: adaptivemix(M(), X, torch.full((3,), 0.5), IDX), ValueError,
     r"^lam must be a scalar or a 1-D tensor with one value per sample \(6\)"),
    (lambda: adaptivemix(M(), X, 0.5, IDX, distance="l2"), ValueError, "^distance must be one"),
    (lambda: adaptivemix(M(), X, 0.5, IDX, mode="mixed"), ValueError, "^mode must be one of"),
    (lambda: adaptivemix(M(), X, 0.5, IDX.to("meta")), ValueError, "x on cpu, index on meta"),
    (lambda: adaptivemix(M(), X, 0.5, IDX, generator=0), TypeError, "^generator must be a torch"),
    (lambda: adaptivemix(M(), X, 0.5, IDX, noise=NOISE[:, :3]), ValueError,
     "^noise and features must have the same shape"),
    (lambda: AdaptiveMix(fuse_passes=1), TypeError, "^fuse_passes must be a bool, got int"),
    (lambda: AdaptiveMix()(M(), X.long()), TypeError, "^x must be a floating-point"),
    (lambda: AdaptiveMix()(M(), X.flatten()), ValueError, "^x must have rank 2 or 3 or 4 or 5"),
    (lambda: AdaptiveMix()(M(), X, 0), TypeError, "^generator must be a torch.Generator"),
]


@pytest.mark.parametrize("call, error, match", BAD_CALLS)
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mse_distance_reaches_the_loss():
    # The loss is weight * mean over samples of the chosen distance to the detached target.
    model = make_split(batchnorm=False)
    x, index, noise = inputs()
    for fn in (adaptivemix, adaptivemix_three_pass):
        out = fn(model, x, 0.3, index, noise=noise, distance="mse", weight=2.0)
        z_mix = model.features(0.3 * x + 0.7 * x[index])
        expected = 2.0 * shrinkage(z_mix, out["target"], "mse").mean()
        torch.testing.assert_close(out["loss"], expected, rtol=0, atol=1e-12)
        assert torch.equal(out["index"], index)


def test_class_fuse_passes_runs_one_trunk_call():
    model = make_split(batchnorm=False)
    x = inputs()[0]
    calls = []
    trunk = model.features
    model.features = lambda v: calls.append(v.shape[0]) or trunk(v)
    AdaptiveMix(fuse_passes=True)(model, x, generator=torch.Generator().manual_seed(0))
    assert calls == [2 * B]
    calls.clear()
    AdaptiveMix()(model, x, generator=torch.Generator().manual_seed(0))
    assert calls == [B, B]


@pytest.mark.parametrize("partner", ["permutation", "flip"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_everything_is_drawn_on_the_inputs_device(partner, per_sample, draw_device):
    # A second device (CUDA, or meta standing in for one): partners, lam or noise made on the
    # CPU would not mix with the features, or would come back on the wrong device.
    model = FeatureSplit(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), nn.Linear(4, 1))
    x = torch.zeros(4, 3, 2, 2, device=draw_device)
    out = AdaptiveMix(partner=partner, per_sample=per_sample)(model.to(draw_device), x)
    assert {v.device.type for v in out.values()} == {draw_device.type}
    out = adaptivemix(model, x, 0.5, torch.arange(4, device=draw_device), noise_std=0.1)
    assert {v.device.type for v in out.values()} == {draw_device.type}


def test_a_generator_on_another_device_is_refused():
    model = FeatureSplit(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), nn.Linear(4, 1))
    x = torch.zeros(4, 3, 2, 2, device="meta")
    with pytest.raises(ValueError, match="^generator is on cpu but the tensors are on meta"):
        adaptivemix(model.to("meta"), x, 0.5, torch.arange(4, device="meta"), noise_std=0.1,
                    generator=torch.Generator())


# --- the two places AdaptiveMix serves (robustrep.api) -----------------------------------------


def test_place_methods_are_the_call_with_the_places_shape():
    from robustrep.api import implements
    model, (x, _, _) = make_split(), inputs()
    am = AdaptiveMix(noise_std=0.0)
    assert implements(am, "gan", "D function") and implements(am, "classify", "feature shrinkage")
    assert am.term == "am_shrink" and am.g_term is True
    assert AdaptiveMix(g_shrink=False).g_term is False
    with pytest.raises(TypeError, match="g_shrink must be a bool"):
        AdaptiveMix(g_shrink=1)
    want = am(model, x, generator=torch.Generator().manual_seed(3))
    logits, loss = am.d_logits(model, x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(logits, want["logits"])
    torch.testing.assert_close(loss, want["loss"])
    terms = am.feature_terms(model, x, generator=torch.Generator().manual_seed(3))
    assert set(terms) == set(want)  # reference mode: lam and index say the logits are mixed
    torch.testing.assert_close(terms["logits"], want["logits"])
    additive = AdaptiveMix(noise_std=0.0, mode="additive")
    terms = additive.feature_terms(model, x, generator=torch.Generator().manual_seed(3))
    assert "lam" not in terms and "index" not in terms and "loss" in terms


class _Counting(nn.Module):
    """A trunk that counts its calls."""

    def __init__(self, trunk):
        super().__init__()
        self.trunk, self.calls = trunk, 0

    def forward(self, x):
        self.calls += 1
        return self.trunk(x)


def test_a_trunk_that_drops_the_batch_dimension_is_refused():
    # an unbatched image [3, 8, 8] through a Conv2d gives [4, 64]: partners would pair channels
    split = FeatureSplit(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten()),
                         nn.Linear(64, 1))
    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.raises(ValueError, match=r"^the model's features must keep the batch dimension: "
                                         r"x has shape \(3, 8, 8\) \(batch 3\) but features\(x\) "
                                         r"has shape \(4, 64\)"):
        AdaptiveMix()(split, x, torch.Generator().manual_seed(0))


def test_a_timm_model_without_classifier_is_refused_before_the_trunk_runs():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet10t", num_classes=0)
    model.conv1 = counted = _Counting(model.conv1)
    with pytest.raises(ValueError, match=r"^ResNet has no classifier \(num_classes=0\)"):
        AdaptiveMix()(model, torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0))
    assert counted.calls == 0
    model.reset_classifier(3)
    out = AdaptiveMix()(model, torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0))
    assert out["logits"].shape == (2, 3) and counted.calls == 2
