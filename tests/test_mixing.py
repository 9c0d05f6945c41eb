"""Tests for robustrep.mixing: exact ends, effective lam, vectorised masks, targets, policy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data.mixup import mixup_target as timm_mixup_target
from timm.data.mixup import rand_bbox

from robustrep import losses
from robustrep.mixing import (
    CutMix,
    Mixup,
    SRMix,
    MixResult,
    SampleMix,
    box_mask,
    cutmix,
    flip_partners,
    mask_mix,
    mixed_gan_loss,
    mixup,
    mixup_target,
    permutation_partners,
    sample_lam,
    smooth_box_mask,
    soft_target_cross_entropy,
    srmix,
)
from robustrep.mixing import KINDS, PARTNERS

B, C, H, W = 6, 3, 16, 12


def _seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def _mix(kind, x_a, x_b, lam, generator=None):
    if kind == "mixup":
        return mixup(x_a, x_b, lam)
    if kind == "cutmix":
        return cutmix(x_a, x_b, lam, generator=generator)
    return srmix(x_a, x_b, lam, smoothing=0.2, generator=generator)


@pytest.fixture
def pair(gen):
    return torch.randn(B, C, H, W, generator=gen), torch.randn(B, C, H, W, generator=gen)


# ---------------------------------------------------------------------------------------------
# Pure mixes


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "srmix"])
@pytest.mark.parametrize("lam", [1.0, torch.tensor(1.0), torch.ones(B)])
def test_lam_one_is_identity(kind, lam, pair, gen):
    x_a, x_b = pair
    x_mix, lam_eff = _mix(kind, x_a, x_b, lam, gen)
    assert torch.equal(x_mix, x_a)
    assert torch.equal(lam_eff, torch.ones(B))


@pytest.mark.parametrize("kind", ["mixup", "srmix"])
def test_lam_zero_gives_partner(kind, pair, gen):
    x_a, x_b = pair
    x_mix, lam_eff = _mix(kind, x_a, x_b, 0.0, gen)
    assert torch.equal(x_mix, x_b)
    assert torch.equal(lam_eff, torch.zeros(B))


def test_cutmix_lam_zero_pastes_clipped_full_size_box(pair, gen):
    # CutMix keeps the paper's uniform centre, so a full-size box is clipped: at least a
    # quarter of the image comes from x_b, and every pixel is exactly one of the two inputs.
    x_a, x_b = pair
    x_mix, lam_eff = cutmix(x_a, x_b, 0.0, generator=gen)
    from_a, from_b = x_mix == x_a, x_mix == x_b
    assert bool((from_a | from_b).all())
    assert bool((lam_eff <= 0.75).all())
    assert torch.allclose(from_a.float().mean((1, 2, 3)), lam_eff)


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "srmix"])
def test_effective_lam_is_what_pixels_hold(kind, gen):
    # With x_a = 0 and x_b = 1 each pixel holds 1 - w, so the image mean is 1 - lam_eff.
    lam = torch.rand(B, generator=gen)
    x_mix, lam_eff = _mix(kind, torch.zeros(B, C, H, W), torch.ones(B, C, H, W), lam, gen)
    assert lam_eff.shape == (B,)
    assert torch.allclose(1 - x_mix.mean((1, 2, 3)), lam_eff, atol=1e-6)
    if kind == "mixup":
        assert torch.equal(lam_eff, lam)


def test_mask_mix_lam_is_mask_mean(pair, gen):
    x_a, x_b = pair
    mask = torch.rand(B, 1, H, W, generator=gen)
    x_mix, lam_eff = mask_mix(x_a, x_b, mask)
    assert torch.allclose(lam_eff, mask.mean((1, 2, 3)))
    assert torch.allclose(x_mix, mask * x_a + (1 - mask) * x_b, atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.1, 0.3, 1.0])
def test_srmix_mask_mean_tracks_lam(smoothing, gen):
    # The box lies inside the image and the blur reflects at the border, so mass is conserved.
    lam = torch.rand(64, generator=gen)
    mask = smooth_box_mask(64, 32, 32, lam, smoothing, generator=gen)
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    assert torch.allclose(mask.mean((1, 2, 3)), lam, atol=0.01)
    soft = ((mask > 0) & (mask < 1)).any()
    assert bool(soft), "the SRMix mask should have soft edges"


@pytest.mark.parametrize("side, lam, mean", [(16, 0.1, 0.100), (12, 0.1, 0.108), (8, 0.1, 0.072),
                                             (6, 0.1, 0.021), (4, 0.25, 0.125),
                                             (3, 0.25, 0.015), (3, 0.75, 0.712)])
def test_srmix_mask_mean_on_small_images_is_what_the_module_doc_states(side, lam, mean):
    """The module doc gives these means (smoothing 0.1, 4,000 draws): where the box leaves under
    a pixel of room, every pixel centre near the border falls inside it."""
    mask = smooth_box_mask(4000, side, side, lam, 0.1, generator=_seeded(0))
    assert abs(float(mask.mean()) - mean) < 0.004


def test_cutmix_never_pastes_more_than_one_minus_lam():
    # 8 * sqrt(0.5) = 5.66: a side rounded to 6 would paste 36/64 > 0.5 of an unclipped image.
    _, lam_eff = cutmix(torch.zeros(200, 1, 8, 8), torch.ones(200, 1, 8, 8), 0.5,
                        generator=_seeded(0))
    assert float(lam_eff.min()) >= 0.5
    assert float(lam_eff.min()) == 1 - 25 / 64  # the unclipped 5x5 box


@pytest.mark.parametrize("size, side", [(224, 3), (17, 2), (32, 16)])
def test_cutmix_box_side_equals_timm_rand_bbox(size, side):
    # lam whose side size * sqrt(1 - lam) lies within rounding of an integer: float32 rounds it
    # one pixel away from timm's float64 cut_h
    lam = 1 - (side / size) ** 2
    np.random.seed(0)
    yl, yh, xl, xh = rand_bbox((size, size), lam)
    mask = box_mask(64, size, size, lam, generator=_seeded(0))
    rows = (mask[:, 0] == 0).any(2).sum(1)  # box rows per sample; the widest is unclipped
    assert 0 < yh - yl == xh - xl  # timm's box, unclipped at seed 0
    assert int(rows.max()) == yh - yl


def test_cutmix_area_matches_clipped_box():
    # lam = 0.19 gives a 14x14 box in a 16x16 image: any centre but the middle clips it.
    batch, lam = 16, 0.19
    mask = box_mask(batch, 16, 16, lam, generator=_seeded(3))
    u = torch.rand(2, batch, generator=_seeded(3))  # the centre draws box_mask consumed
    side = int(16 * (1 - lam) ** 0.5)
    clipped = 0
    for i in range(batch):
        extent = []
        for ui in (float(u[0, i]), float(u[1, i])):
            low = min(int(ui * 16), 15) - side // 2
            extent.append(min(max(low + side, 0), 16) - min(max(low, 0), 16))
        area = extent[0] * extent[1]
        clipped += area < side * side
        assert float(1 - mask[i].mean()) == pytest.approx(area / 256)
        zeros = (mask[i, 0] == 0).nonzero()
        assert zeros.numel() == 0 or (zeros.max(0).values - zeros.min(0).values + 1).prod() == area
    assert clipped > 0


@pytest.mark.parametrize("make", [
    lambda lam, g: box_mask(B, H, W, lam, generator=g),
    lambda lam, g: smooth_box_mask(B, H, W, lam, 0.2, generator=g),
])
def test_per_sample_lam_matches_loop(make, gen):
    # Box positions do not depend on lam, so row i of a per-sample call must equal row i of a
    # scalar call with lam[i] and the same seed.
    lam = torch.rand(B, generator=gen)
    vectorised = make(lam, _seeded(7))
    for i in range(B):
        assert torch.equal(vectorised[i], make(float(lam[i]), _seeded(7))[i])


def test_mixup_per_sample_matches_loop(pair, gen):
    x_a, x_b = pair
    lam = torch.rand(B, generator=gen)
    x_mix, _ = mixup(x_a, x_b, lam)
    for i in range(B):
        ref, _ = mixup(x_a[i:i + 1], x_b[i:i + 1], float(lam[i]))
        assert torch.allclose(x_mix[i:i + 1], ref)


def test_mixup_accepts_features():
    x_a, x_b = torch.zeros(4, 5), torch.ones(4, 5)
    x_mix, lam_eff = mixup(x_a, x_b, 0.25)
    assert torch.allclose(x_mix, torch.full((4, 5), 0.75))


# ---------------------------------------------------------------------------------------------
# Partners and lam sampling


def test_partners():
    assert torch.equal(flip_partners(4), torch.tensor([3, 2, 1, 0]))
    perm = permutation_partners(10, generator=_seeded())
    assert torch.equal(perm.sort().values, torch.arange(10))
    assert torch.equal(perm, permutation_partners(10, generator=_seeded()))


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_sample_lam_matches_beta_moments(alpha):
    lam = sample_lam(alpha, (20000,), generator=_seeded(1))
    assert lam.dtype == torch.float32
    assert float(lam.min()) >= 0.0 and float(lam.max()) <= 1.0
    beta_var = 1.0 / (4 * (2 * alpha + 1))  # Var Beta(a, a) = 1 / (4 (2a + 1))
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(lam.var()) == pytest.approx(beta_var, abs=0.005)
    assert sample_lam(alpha).shape == ()


# ---------------------------------------------------------------------------------------------
# Targets and losses


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixup_target_matches_timm_for_flip(smoothing, gen):
    y = torch.randint(0, 5, (B,), generator=gen)
    ours = mixup_target(y, flip_partners(B), 0.3, 5, smoothing)
    theirs = timm_mixup_target(y, 5, lam=0.3, smoothing=smoothing)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(ours.sum(1), torch.ones(B))


def test_mixup_target_per_sample_lam(gen):
    y = torch.randint(0, 5, (B,), generator=gen)
    index = permutation_partners(B, generator=gen)
    lam = torch.rand(B, generator=gen)
    target = mixup_target(y, index, lam, 5, smoothing=0.1)
    assert torch.allclose(target.sum(1), torch.ones(B))
    for i in range(B):
        on = F.one_hot(y, 5).float() * 0.9 + 0.02
        assert torch.allclose(target[i], lam[i] * on[i] + (1 - lam[i]) * on[index[i]])


def test_soft_target_cross_entropy_equals_hard_ce_on_one_hot(gen):
    logits = torch.randn(B, 5, generator=gen)
    y = torch.randint(0, 5, (B,), generator=gen)
    ours = soft_target_cross_entropy(logits, F.one_hot(y, 5).float())
    assert torch.allclose(ours, F.cross_entropy(logits, y, reduction="none"), atol=1e-6)


def test_mixed_gan_loss_ns_is_soft_label_bce(gen):
    logits = torch.randn(B, generator=gen) * 3
    lam = torch.rand(B, generator=gen)
    ref = F.binary_cross_entropy_with_logits(logits, lam, reduction="none")
    assert torch.allclose(mixed_gan_loss(logits, lam, "ns"), ref, atol=1e-6)
    assert torch.allclose(mixed_gan_loss(logits[:, None], lam, "ns"), ref, atol=1e-6)


@pytest.mark.parametrize("kind", ["ns", "hinge", "ls", "wasserstein"])
def test_mixed_gan_loss_ends(kind, gen):
    logits = torch.randn(B, generator=gen)
    assert torch.equal(mixed_gan_loss(logits, 1.0, kind), losses.loss_real(logits, kind))
    assert torch.equal(mixed_gan_loss(logits, 0.0, kind), losses.loss_fake(logits, kind))


# ---------------------------------------------------------------------------------------------
# SampleMix policy


def test_samplemix_result_and_partner(pair):
    x, _ = pair
    out = SampleMix(kinds="mixup", partner="flip")(x, generator=_seeded())
    assert isinstance(out, MixResult)
    assert torch.equal(out.index, flip_partners(B))
    expected, _ = mixup(x, x[out.index], out.lam)
    assert torch.allclose(out.x, expected, atol=1e-6)


@pytest.mark.parametrize("per_sample", [False, True])
def test_samplemix_lam_is_what_pixels_hold(per_sample):
    policy = SampleMix(kinds=("mixup", "cutmix", "srmix"), per_sample=per_sample)
    x, x_b = torch.zeros(B, C, H, W), torch.ones(B, C, H, W)
    out = policy(x, x_b, generator=_seeded())
    assert out.index is None and out.lam.shape == (B,)
    assert torch.allclose(1 - out.x.mean((1, 2, 3)), out.lam, atol=1e-6)


@pytest.mark.parametrize("per_sample, distinct", [(False, 1), (True, B)])
def test_samplemix_per_sample_lam(per_sample, distinct):
    out = SampleMix(per_sample=per_sample)(torch.zeros(B, 4), torch.ones(B, 4), generator=_seeded())
    assert out.lam.unique().numel() == distinct


def test_samplemix_is_reproducible(pair):
    x, _ = pair
    policy = SampleMix(kinds=("mixup", "cutmix", "srmix"), per_sample=True, prob=0.7)
    first, second = policy(x, generator=_seeded(5)), policy(x, generator=_seeded(5))
    other = policy(x, generator=_seeded(6))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first.x, other.x)


def test_samplemix_prob_zero_leaves_x(pair):
    x, _ = pair
    out = SampleMix(kinds=("mixup", "cutmix", "srmix"), prob=0.0, per_sample=True)(
        x, generator=_seeded())
    assert torch.equal(out.x, x)
    assert torch.equal(out.lam, torch.ones(B))


def _kind_of(out: torch.Tensor) -> str:
    # x = 0, x_b = 1: mixup gives a constant image, cutmix a binary one.
    return "mixup" if bool((out == out.flatten()[0]).all()) else "cutmix"


@pytest.mark.parametrize("switch_prob, expected", [
    (0.0, {"mixup"}), (1.0, {"cutmix"}), (0.5, {"mixup", "cutmix"})])
def test_samplemix_switches_kinds(switch_prob, expected):
    # alpha = 50 keeps lam near 0.5: a cutmix box is then never empty nor the whole image.
    policy = SampleMix(kinds=("mixup", "cutmix"), switch_prob=switch_prob, alpha=50.0)
    x, x_b, g = torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8), _seeded()
    seen = {_kind_of(policy(x, x_b, generator=g).x[0]) for _ in range(40)}
    assert seen == expected


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_bf16_autocast_keeps_dtype(dtype, pair):
    x, x_b = (t.to(dtype) for t in pair)
    policy = SampleMix(kinds=("mixup", "cutmix", "srmix"), per_sample=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = policy(x, generator=_seeded())
        mixes = [_mix(kind, x, x_b, 0.5, _seeded()) for kind in ("mixup", "cutmix", "srmix")]
    assert out.x.dtype == dtype and out.lam.dtype == torch.float32
    assert all(m.dtype == dtype and lam.dtype == torch.float32 for m, lam in mixes)
    assert torch.isfinite(out.x.float()).all()


# ---------------------------------------------------------------------------------------------
# Bad input


X4 = torch.zeros(2, 1, 4, 4)
META = torch.zeros(2, 1, 4, 4, device="meta")
Y2 = torch.tensor([0, 1])
V = ValueError

# Each message must start with the argument's name (hence "^"): a swapped name would mislead.
BAD_CALLS = [
    # rank, dtype and batch
    (lambda: mixup(torch.zeros(3), torch.zeros(3), 0.5), V, "^x_a must have rank >= 2"),
    (lambda: cutmix(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), 0.5), V, "^x_a must have rank 4"),
    (lambda: srmix(X4.long(), X4.long(), 0.5), TypeError, "^x_a must be a floating-point"),
    (lambda: SampleMix("cutmix")(torch.zeros(2, 4)), V, "^x must have rank 4"),
    (lambda: SampleMix()(torch.zeros(1, 1, 4, 4)), V, "^x needs a batch of at least 2"),
    (lambda: permutation_partners(1), V, "^batch must be at least 2"),
    (lambda: flip_partners(0), V, "^batch must be > 0"),
    (lambda: box_mask(2, 0, 4, 0.5), V, "^height must be > 0"),
    # lam, alpha and policy options
    (lambda: mixup(X4, X4, 1.5), V, r"^lam must lie in \[0, 1\], got 1.5"),
    (lambda: mixup(X4, X4, torch.tensor([-0.1, 0.5])), V, r"^lam must lie in \[0, 1\]"),
    (lambda: cutmix(X4, X4, torch.ones(3)), V, r"^lam must be a scalar or a 1-D"),
    (lambda: mixup(X4, X4, "0.5"), TypeError, "^lam must be a float"),
    (lambda: sample_lam(0.0), V, "^alpha must be > 0, got 0.0"),
    (lambda: sample_lam(-1), V, "^alpha must be > 0"),
    (lambda: SampleMix(alpha=0), V, "^alpha must be > 0"),
    (lambda: SampleMix(kinds=("mixup", "blend")), V, "^kinds must be one of .*'blend'"),
    (lambda: SampleMix(kinds=()), V, "^kinds must be a non-empty"),
    (lambda: SampleMix(partner="roll"), V, "^partner must be one of .*'roll'"),
    (lambda: SampleMix(prob=2.0), V, r"^prob must lie in \[0, 1\]"),
    (lambda: SampleMix(switch_prob=-0.5), V, r"^switch_prob must lie in \[0, 1\]"),
    (lambda: SampleMix(smoothing=1.5), V, r"^smoothing must lie in \[0, 1\]"),
    (lambda: smooth_box_mask(2, 4, 4, 0.5, smoothing=-0.1), V, "^smoothing must be >= 0"),
    (lambda: SampleMix()(X4, generator=object()), TypeError, "^generator must be a torch"),
    # devices and shapes
    (lambda: mixup(X4, META, 0.5), V, "x_a on cpu, x_b on meta"),
    (lambda: mixup(X4, X4, torch.ones(2, device="meta")), V, "lam on meta"),
    (lambda: SampleMix()(X4, META), V, "x on cpu, x_b on meta"),
    (lambda: box_mask(2, 4, 4, torch.ones(2, device="meta"), device="cpu"), V, "lam on meta"),
    (lambda: mixup(X4, torch.zeros(2, 1, 4, 5), 0.5), V, "^x_a and x_b must have the same shape"),
    (lambda: SampleMix()(X4, torch.zeros(3, 1, 4, 4)), V, "^x and x_b must have the same shape"),
    (lambda: mask_mix(X4, X4, torch.ones(2, 2, 4, 4)), V, r"^mask must have shape \[2, 1 or 1, 4"),
    # targets and losses
    (lambda: mixup_target(torch.zeros(2), flip_partners(2), 0.5, 3), TypeError,
     "y must hold integer"),
    (lambda: mixup_target(torch.tensor([0, 3]), flip_partners(2), 0.5, 3), V,
     r"y must hold class indices in \[0, 3\), got values in \[0, 3\]"),
    (lambda: mixup_target(Y2, torch.tensor([1, 0, 2]), 0.5, 3), V,
     r"^index must hold one partner per sample \(2\), got shape \(3,\)"),
    # A negative partner used to wrap silently to the last sample; one past the end was
    # torch's IndexError, which does not name index.
    (lambda: mixup_target(Y2, torch.tensor([0, -1]), 0.5, 3), V,
     r"^index must hold partners in \[0, 2\), got values -1\.\.0"),
    (lambda: mixup_target(Y2, torch.tensor([0, 2]), 0.5, 3), V,
     r"^index must hold partners in \[0, 2\), got values 0\.\.2"),
    (lambda: mixup_target(Y2, torch.tensor([True, False]), 0.5, 3), V,
     "^index must be an integer tensor of partners, got torch.bool"),
    (lambda: mixup_target(Y2, flip_partners(2), 0.5, 3, smoothing=1.5), V, "^smoothing must lie"),
    (lambda: soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4)), V,
     "logits and target must have the same shape"),
    (lambda: mixed_gan_loss(torch.zeros(2), 0.5, "softplus"), V, "^kind must be one of .*'soft"),
    (lambda: mixed_gan_loss(torch.zeros(2), torch.ones(3), "ns"), V, r"^lam must be a scalar or"),
    (lambda: mixed_gan_loss(torch.tensor(0.0), 0.5, "ns"), V, "^logits must have a batch dim"),
    (lambda: mixed_gan_loss(torch.zeros(2), torch.ones(2, device="meta")), V, "lam on meta"),
    (lambda: SampleMix(kinds=3), TypeError, "^kinds must be a name or a tuple"),
    # non-finite hyperparameters (NaN passes every comparison, so each is named)
    (lambda: SampleMix(alpha=float("nan")), V, "^alpha must be a finite number, got nan"),
    (lambda: SampleMix(alpha=float("inf")), V, "^alpha must be a finite number, got inf"),
    (lambda: sample_lam(float("nan")), V, r"^alpha must be a finite number"),
    (lambda: SampleMix(prob=float("nan")), V, r"^prob must lie in \[0, 1\], got nan"),
    (lambda: SampleMix(smoothing=float("nan")), V, r"^smoothing must be a finite number"),
    (lambda: mixup(X4, X4, float("nan")), V, r"^lam must lie in \[0, 1\], got nan"),
    (lambda: mixup(X4, X4, torch.tensor([0.5, float("nan")])), V, r"^lam must lie in \[0, 1\]"),
    (lambda: mixup_target(Y2, flip_partners(2), float("nan"), 3), V, "^lam must lie"),
    (lambda: mixed_gan_loss(torch.zeros(2), float("nan")), V, "^lam must lie"),
    # mixed dtypes: both named, not a raw RuntimeError from lerp
    (lambda: mixup(X4, X4.double(), 0.5), TypeError, "x_a is torch.float32, x_b is torch.float64"),
    (lambda: cutmix(X4, X4.double(), 0.5), TypeError, "x_a is torch.float32, x_b is torch.float64"),
    (lambda: srmix(X4.double(), X4, 0.5), TypeError, "x_a is torch.float64, x_b is torch.float32"),
    (lambda: mask_mix(X4, X4.half(), torch.ones(2, 1, 4, 4)), TypeError, "x_b is torch.float16"),
    (lambda: SampleMix()(X4, X4.double()), TypeError, "x is torch.float32, x_b is torch.float64"),
]


@pytest.mark.parametrize("call, error, match", BAD_CALLS)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_without_host_sync():
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(8, 3, 32, 32, device="cuda", dtype=torch.bfloat16)
    policy = SampleMix(kinds=("mixup", "cutmix", "srmix"), per_sample=True, prob=0.8)
    y = torch.randint(0, 10, (8,), device="cuda")
    policy(x, generator=g)  # warm-up outside the sync check (lazy CUDA init may sync)
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = policy(x, generator=g)
            target = mixup_target(y, out.index, out.lam, 10, smoothing=0.1)
            loss = mixed_gan_loss(torch.randn(8, device="cuda"), out.lam, "hinge")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.x.dtype == torch.bfloat16 and out.x.device.type == "cuda"
    assert torch.allclose(target.sum(1), torch.ones(8, device="cuda"))
    assert loss.shape == (8,)
    again = policy(x, generator=torch.Generator(device="cuda").manual_seed(0))
    first = policy(x, generator=torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(again.x, first.x)


# ---------------------------------------------------------------------------------------------
# Targets from dense labels, the registry's one-kind classes, the generator reaching the boxes


def test_mixup_target_of_dense_labels_mixes_the_rows():
    # dense y [B, K] (e.g. already-soft labels) is mixed as given, then smoothed like one-hot
    y = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    index = flip_partners(2)
    out = mixup_target(y, index, 0.75, 3)
    torch.testing.assert_close(out, 0.75 * y + 0.25 * y.flip(0))
    assert torch.equal(mixup_target(y, index, 1.0, 3), y)


@pytest.mark.parametrize("y,error,match", [
    (torch.zeros(2, 4), ValueError, r"^y must be class indices \[B\] or floating probabilities "
                                    r"\[B, 3\], got torch.float32 \(2, 4\)$"),
    (torch.zeros(2, 3, dtype=torch.long), ValueError, r"\[B, 3\], got torch.int64 \(2, 3\); for "
                                                      r"one-hot rows pass y.float\(\)$"),
    (torch.zeros(2, 1, dtype=torch.long), ValueError, r"got torch.int64 \(2, 1\); for class "
                                                      r"indices pass y.squeeze\(1\)$"),
    (torch.zeros(2, 3, 1), ValueError, "^y must have rank 1 or 2"),
    ([0, 1], TypeError, "^y must be a torch.Tensor"),
    # was read as classes 0 and 1
    (torch.tensor([True, False]), TypeError, r"^y must hold integer class indices, got dtype "
                                             r"torch.bool"),
])
def test_mixup_target_bad_labels(y, error, match):
    with pytest.raises(error, match=match):
        mixup_target(y, flip_partners(2), 0.5, 3)


@pytest.mark.parametrize("y", [
    torch.tensor([[0.9, 0.9, 0.0], [0.0, 0.0, 1.0]]),  # mixed rows summed to 1.4
    torch.tensor([[1.5, -0.5, 0.0], [0.0, 0.0, 1.0]]),  # a mixed "probability" of -0.25
    torch.tensor([[float("nan"), 1.0, 0.0], [0.0, 0.0, 1.0]]),
    torch.full((2, 3), 0.34),  # rows summing to 1.02, past the tolerance of 0.01
])
def test_dense_labels_that_are_no_probabilities_are_refused(y):
    """The docstring promises rows summing to 1; such rows were mixed into rows that did not."""
    with pytest.raises(ValueError, match=r"^y must hold probabilities: rows of values >= 0 "
                                         r"summing to 1 \(within 0.01\), got values in \["):
        mixup_target(y, flip_partners(2), 0.5, 3)
    with pytest.raises(ValueError, match=r"^target must hold probabilities"):
        soft_target_cross_entropy(torch.zeros(2, 3), y)


def test_probabilities_within_rounding_pass_and_off_the_cpu_are_not_read():
    mixup_target(torch.tensor([[0.5, 0.509, 0.0], [0.0, 0.0, 1.0]]), flip_partners(2), 0.5, 3)
    thirds = torch.full((2, 3), 1 / 3).bfloat16()  # rows sum to 1.002 by bf16 rounding alone
    torch.testing.assert_close(mixup_target(thirds, flip_partners(2), 0.5, 3), thirds.float())
    soft_target_cross_entropy(torch.zeros(2, 3), thirds.float())
    # on an accelerator a read would cost a host sync per step (meta: it would raise)
    meta = torch.full((2, 3), 2.0, device="meta")
    assert mixup_target(meta, flip_partners(2, device="meta"), 0.5, 3).device.type == "meta"


def test_mixup_target_other_bad_arguments():
    with pytest.raises(TypeError, match="^num_classes must be a positive int"):
        mixup_target(Y2, flip_partners(2), 0.5, 3.0)
    with pytest.raises(ValueError, match="^index must have rank 1"):
        mixup_target(Y2, flip_partners(2)[:, None], 0.5, 3)
    with pytest.raises(ValueError, match="^index must be an integer tensor"):
        mixup_target(Y2, flip_partners(2).float(), 0.5, 3)
    with pytest.raises(ValueError, match="index on meta"):
        mixup_target(Y2, flip_partners(2, device="meta"), 0.5, 3)
    with pytest.raises(ValueError, match="y on meta"):
        mixup_target(torch.zeros(2, 3, device="meta"), flip_partners(2), 0.5, 3)
    with pytest.raises(ValueError, match="lam on meta"):
        mixup_target(Y2, flip_partners(2), torch.ones(2, device="meta"), 3)


@pytest.mark.parametrize("logits,target,error,match", [
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), TypeError, "^logits must be a float"),
    (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), TypeError, "^target must be a float"),
    (torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), ValueError, "^logits must have rank 2"),
    (torch.zeros(2, 3), torch.zeros(6), ValueError, "^target must have rank 2"),
    (torch.zeros(2, 3, device="meta"), torch.zeros(2, 3), ValueError, "logits on meta"),
    (torch.zeros(2, 3), torch.zeros(2, 3, device="meta"), ValueError, "target on meta"),
])
def test_soft_target_cross_entropy_bad_inputs(logits, target, error, match):
    with pytest.raises(error, match=match):
        soft_target_cross_entropy(logits, target)


@pytest.mark.parametrize("mask,error,match", [
    (torch.ones(2, 1, 4, 4, dtype=torch.long), TypeError, "^mask must be a floating-point"),
    (torch.ones(2, 4, 4), ValueError, "^mask must have rank 4"),
    (torch.ones(2, 1, 4, 4, device="meta"), ValueError, "mask on meta"),
    # was used as is: 2 * x_a - x_b, a pixel outside both images
    (torch.full((2, 1, 4, 4), 2.0), ValueError, r"^mask must hold weights of x_a in \[0, 1\], "
                                                r"got values in \[2, 2\]"),
])
def test_mask_mix_bad_masks(mask, error, match):
    with pytest.raises(error, match=match):
        mask_mix(X4, X4, mask)


def test_cutmix_and_srmix_draw_their_boxes_from_the_generator(pair):
    x_a, x_b = pair
    lam = torch.linspace(0.2, 0.8, B)
    got, _ = cutmix(x_a, x_b, lam, generator=_seeded(4))
    torch.testing.assert_close(got, mask_mix(x_a, x_b, box_mask(B, H, W, lam, _seeded(4)))[0])
    got, _ = srmix(x_a, x_b, lam, smoothing=0.3, generator=_seeded(4))
    want = mask_mix(x_a, x_b, smooth_box_mask(B, H, W, lam, 0.3, _seeded(4)))[0]
    torch.testing.assert_close(got, want)
    # srmix's default smoothing is DEFAULT_SMOOTHING (0.1)
    got, _ = srmix(x_a, x_b, lam, generator=_seeded(4))
    torch.testing.assert_close(got, mask_mix(x_a, x_b,
                                             smooth_box_mask(B, H, W, lam, 0.1, _seeded(4)))[0])


def test_one_kind_classes_defaults_and_options():
    for cls, kind in ((Mixup, "mixup"), (CutMix, "cutmix"), (SRMix, "srmix")):
        assert vars(cls()) == dict(kinds=(kind,), alpha=1.0, prob=1.0, switch_prob=0.5,
                                   per_sample=False, partner="permutation", smoothing=0.1,
                                   mode="add", weight=1.0)
        opts = dict(alpha=0.4, prob=0.3, per_sample=True, partner="flip",
                    smoothing=0.25 if kind == "srmix" else 0.1, switch_prob=0.2, mode="add",
                    weight=0.5)
        assert vars(cls(**opts)) == dict(kinds=(kind,), **opts)
        assert cls(mode="replace").weight == 1.0


# ---------------------------------------------------------------------------------------------
# Exact masks and the policy's draws, replayed by hand


def test_box_mask_is_the_clipped_box_pixel_for_pixel():
    # Written out per sample: side = floor(size * sqrt(1 - lam)), centre pixel floor(u * size),
    # box rows [centre - side // 2, centre - side // 2 + side), clipped by the image.
    n, h, w = 32, 16, 11
    lam = torch.rand(n, generator=_seeded(1))
    g = _seeded(2)
    mask = box_mask(n, h, w, lam, generator=g)
    replay = _seeded(2)
    u = torch.rand(2, n, generator=replay)
    assert torch.equal(g.get_state(), replay.get_state())  # two uniforms per sample, no more
    for i in range(n):
        want = torch.ones(h, w)
        rows = cols = None
        for size, ui in ((h, float(u[0, i])), (w, float(u[1, i]))):
            side = int(size * (1 - float(lam[i])) ** 0.5)
            low = min(int(ui * size), size - 1) - side // 2
            span = range(max(low, 0), min(low + side, size))
            rows, cols = (span, cols) if rows is None else (rows, span)
        for r in rows:
            for c in cols:
                want[r, c] = 0.0
        assert torch.equal(mask[i, 0], want), i


def _smooth_profile(size, side, u, ramp, fine=4000):
    """The SRMix 1-D profile by brute force: the box [u (size - side), + side) blurred by a
    uniform window of ``ramp`` pixels, reflected at 0 and size, sampled at pixel centres."""
    low = u * (size - side)
    out = []
    for k in range(size):
        t = k + 0.5
        if ramp == 0:
            out.append(float(low <= t < low + side))
            continue
        s = t - ramp / 2 + ramp * (torch.arange(fine, dtype=torch.float64) + 0.5) / fine
        s = torch.where(s < 0, -s, s)
        s = torch.where(s > size, 2 * size - s, s)
        out.append(float(((s >= low) & (s < low + side)).double().mean()))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("smoothing", [0.0, 0.25, 1.0])
def test_smooth_box_mask_is_a_blurred_box_reflected_at_the_border(smoothing):
    n, h, w = 24, 8, 6
    lam = torch.cat([torch.rand(n - 4, generator=_seeded(3)), torch.tensor([0.97, 0.97, 0.9, 0.0])])
    g = _seeded(4)
    mask = smooth_box_mask(n, h, w, lam, smoothing, generator=g)
    replay = _seeded(4)
    u = torch.rand(2, n, generator=replay)
    assert torch.equal(g.get_state(), replay.get_state())  # two uniforms per sample, no more
    for i in range(n):
        ratio = (1 - float(lam[i])) ** 0.5
        rows = _smooth_profile(h, ratio * h, float(u[0, i]), smoothing * h)
        cols = _smooth_profile(w, ratio * w, float(u[1, i]), smoothing * w)
        want = 1 - rows[:, None] * cols[None, :]
        torch.testing.assert_close(mask[i, 0].double(), want, rtol=0, atol=2e-3)


def _replay(policy, x, seed):
    """SampleMix's draws in order: partners, a lam per distinct alpha (one for a float alpha),
    the mix decision, kind, each kind's masks."""
    g = _seeded(seed)
    b = x.shape[0]
    index = torch.randperm(b, generator=g)
    shape = (b,) if policy.per_sample else ()
    alphas = policy.alpha if isinstance(policy.alpha, tuple) else (policy.alpha,)
    drawn = {a: sample_lam(a, shape, g) for a in dict.fromkeys(alphas)}
    applied = torch.rand(shape, generator=g) < policy.prob
    drawn = {a: torch.where(applied, v, torch.ones_like(v)).expand(b) for a, v in drawn.items()}
    _, _, h, w = x.shape

    def draw(kind):  # the first kind's map is drawn before the kind choice, the others after
        k = policy.kinds.index(kind)
        lam = drawn[alphas[k] if len(alphas) > 1 else alphas[0]]
        if kind == "cutmix":
            m = box_mask(b, h, w, lam, g)
        elif kind == "srmix":
            m = smooth_box_mask(b, h, w, lam, policy.smoothing, g)
        else:
            m = lam.view(-1, 1, 1, 1)
        maps[kind] = (m, m.mean((1, 2, 3)))
    maps = {}
    draw(policy.kinds[0])
    choice = torch.zeros(b, dtype=torch.long)
    if len(policy.kinds) > 1:
        u = torch.rand(2, *shape, generator=g)
        k = len(policy.kinds)
        other = 1 + torch.clamp((u[1] * (k - 1)).long(), max=k - 2)
        choice = torch.where(u[0] < policy.switch_prob, other, torch.zeros_like(other)).expand(b)
    for kind in policy.kinds[1:]:
        draw(kind)
    weight = torch.stack([maps[policy.kinds[int(c)]][0][i].expand(x.shape[1:])
                          for i, c in enumerate(choice)])
    lam_eff = torch.stack([maps[policy.kinds[int(c)]][1][i] for i, c in enumerate(choice)])
    return x[index] + weight * (x - x[index]), lam_eff, index, choice


@pytest.mark.parametrize("kinds", [("mixup", "cutmix", "srmix"), ("srmix", "mixup"),
                                   ("cutmix",)])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("per_kind", [False, True])
def test_samplemix_equals_its_draws_replayed(kinds, per_sample, per_kind):
    x = torch.randn(8, 2, 8, 6, generator=_seeded(9))
    # per kind: the last two kinds share an alpha, so they share a draw
    alpha = (0.3, 1.5, 1.5)[:len(kinds)] if per_kind else 0.7
    policy = SampleMix(kinds=kinds, alpha=alpha, prob=0.8, switch_prob=0.6,
                       per_sample=per_sample, smoothing=0.3)
    choices = set()
    for seed in range(16):
        out = policy(x, generator=_seeded(seed))
        want_x, want_lam, want_index, choice = _replay(policy, x, seed)
        choices |= set(choice.tolist())
        assert torch.equal(out.index, want_index)
        torch.testing.assert_close(out.lam, want_lam)
        torch.testing.assert_close(out.x, want_x)
    assert len(choices) == len(kinds)  # every kind was drawn at least once


@pytest.mark.parametrize("per_sample", [False, True])
def test_one_alpha_given_per_kind_draws_as_one_alpha(per_sample):
    # the draws a single alpha always made (the replay above pins them) stay bit for bit
    x = torch.randn(8, 2, 8, 6, generator=_seeded(9))
    kinds = ("mixup", "cutmix", "srmix")
    one = SampleMix(kinds, alpha=0.7, per_sample=per_sample)
    each = SampleMix(kinds, alpha=(0.7, 0.7, 0.7), per_sample=per_sample)
    assert repr(each).startswith("SampleMix(kinds=('mixup', 'cutmix', 'srmix'), "
                                 "alpha=(0.7, 0.7, 0.7), ")
    for seed in range(8):
        g, h = _seeded(seed), _seeded(seed)
        assert all(torch.equal(a, b) for a, b in zip(one(x, generator=g), each(x, generator=h)))
        assert torch.equal(g.get_state(), h.get_state())


def _lams_by_kind(policy, n, size, per_sample):
    """Effective lams of ``n`` samples (ones mixed with zeros, so the image is the weight map)
    and whether each took mixup (a constant map; the boxes here are never empty or full)."""
    g = _seeded(5)
    ones, zeros = torch.ones(n, 1, size, size), torch.zeros(n, 1, size, size)
    if per_sample:
        out = [policy(ones, zeros, generator=g)]
    else:  # one draw per call
        out = [policy(ones[:1], zeros[:1], generator=g) for _ in range(n)]
    x, lam = torch.cat([o.x for o in out]), torch.cat([o.lam for o in out])
    return lam.double().numpy(), (x.amax((1, 2, 3)) == x.amin((1, 2, 3))).numpy()


def _effective_lams(kind, alpha, n, size):
    """Effective lams of ``kind``'s mixes with lam ~ Beta(alpha, alpha), drawn alone."""
    g = _seeded(11)
    lam = sample_lam(alpha, n, g)
    if kind == "cutmix":
        return box_mask(n, size, size, lam, g).mean((1, 2, 3)).double().numpy()
    return smooth_box_mask(n, size, size, lam, generator=g).mean((1, 2, 3)).double().numpy()


@pytest.mark.parametrize("kind, per_sample", [("cutmix", True), ("srmix", True),
                                              ("cutmix", False)])
def test_each_kind_draws_lam_with_its_own_alpha(kind, per_sample):
    # timm's Mixup(mixup_alpha, cutmix_alpha, switch_prob): the kind is chosen, then lam ~
    # Beta(that kind's alpha). A box's effective lam is not the drawn one, so the box kind's is
    # compared with the effective lams of its own mixes drawn alone with each alpha.
    from scipy import stats
    n, size = (4000, 32) if per_sample else (300, 16)  # per batch: a call per draw
    policy = SampleMix(("mixup", kind), alpha=(0.4, 2.0), switch_prob=0.5, per_sample=per_sample)
    lam, is_mixup = _lams_by_kind(policy, n, size, per_sample)
    assert abs(is_mixup.mean() - 0.5) < 4 * (0.25 / n) ** 0.5  # switch_prob picks the kind
    mixed, boxed = lam[is_mixup], lam[~is_mixup]
    assert stats.kstest(mixed, stats.beta(0.4, 0.4).cdf).pvalue > 1e-3
    assert stats.kstest(mixed, stats.beta(2.0, 2.0).cdf).pvalue < 1e-6  # the test can tell
    assert stats.ks_2samp(boxed, _effective_lams(kind, 2.0, n, size)).pvalue > 1e-3
    assert stats.ks_2samp(boxed, _effective_lams(kind, 0.4, n, size)).pvalue < 1e-6


@pytest.mark.parametrize("alpha,error,match", [
    ((0.8,), ValueError, r"^alpha must hold one number > 0 per kind \(2: mixup, cutmix\), got "
                         r"1: \(0.8,\)$"),
    ((0.8, 0.0), ValueError, r"^alpha\[1\] \(cutmix's\) must be > 0, got 0.0$"),
    ((0.8, "1"), TypeError, r"^alpha\[1\] \(cutmix's\) must be a number > 0, got str$"),
    ("1", TypeError, r"^alpha must be a number > 0 or a tuple of one per kind "),
    (-1.0, ValueError, r"^alpha must be > 0, got -1.0$"),
])
def test_a_bad_alpha_per_kind_is_named(alpha, error, match):
    with pytest.raises(error, match=match):
        SampleMix(("mixup", "cutmix"), alpha=alpha)


def test_outputs_land_on_the_requested_device(draw_device):
    # A second device (CUDA, or meta standing in for one): a draw or index made on the CPU
    # instead would not mix.
    dev, kind = draw_device, draw_device.type
    assert box_mask(2, 4, 4, 0.5, device=dev).device.type == kind
    assert smooth_box_mask(2, 4, 4, 0.5, device=dev).device.type == kind
    assert box_mask(2, 4, 4, torch.ones(2, device=dev)).device.type == kind
    assert flip_partners(3, device=dev).device.type == kind
    assert permutation_partners(3, device=dev).device.type == kind
    assert sample_lam(1.0, 3, device=dev).device.type == kind
    x = torch.zeros(4, 3, 8, 8, device=dev)
    for partner in PARTNERS:
        for per_sample in (False, True):
            policy = SampleMix(kinds=KINDS, per_sample=per_sample, partner=partner)
            out = policy(x)
            assert out.x.device.type == out.lam.device.type == out.index.device.type == kind
    for mixed in (cutmix(x, x, 0.5), srmix(x, x, 0.5), mixup(x, x, 0.5)):
        assert mixed[0].device.type == mixed[1].device.type == kind
    assert mixup_target(Y2.to(dev), flip_partners(2, dev), 0.5, 3).device.type == kind
    assert mixed_gan_loss(torch.zeros(2, device=dev), 0.5).device.type == kind


def test_mixup_keeps_a_float64_lam_exact():
    a, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    x, lam = mixup(a, b, 0.3)
    assert lam.dtype == torch.float64 and torch.equal(lam, torch.full((3,), 0.3,
                                                                      dtype=torch.float64))
    torch.testing.assert_close(x, 0.3 * a + 0.7 * b, rtol=0, atol=1e-15)


@pytest.mark.parametrize("call,error,match", [
    (lambda: permutation_partners(2.0), TypeError, "^batch must be a positive int"),
    (lambda: flip_partners(3.0), TypeError, "^batch must be a positive int"),
    (lambda: box_mask(2.0, 4, 4, 0.5), TypeError, "^batch must be a positive int"),
    (lambda: box_mask(0, 4, 4, 0.5), ValueError, "^batch must be > 0"),
    (lambda: box_mask(2, 4, 4.0, 0.5), TypeError, "^width must be a positive int"),
    (lambda: box_mask(2, 4, 0, 0.5), ValueError, "^width must be > 0"),
    (lambda: box_mask(2, 4, 4, 0.5, generator=1), TypeError, "^generator must be"),
    (lambda: smooth_box_mask(2.0, 4, 4, 0.5), TypeError, "^batch must be a positive int"),
    (lambda: smooth_box_mask(0, 4, 4, 0.5), ValueError, "^batch must be > 0"),
    (lambda: smooth_box_mask(2, 4.0, 4, 0.5), TypeError, "^height must be a positive int"),
    (lambda: smooth_box_mask(2, 0, 4, 0.5), ValueError, "^height must be > 0"),
    (lambda: smooth_box_mask(2, 4, 4.0, 0.5), TypeError, "^width must be a positive int"),
    (lambda: smooth_box_mask(2, 4, 0, 0.5), ValueError, "^width must be > 0"),
    (lambda: smooth_box_mask(2, 4, 4, 0.5, generator=1), TypeError, "^generator must be"),
    (lambda: permutation_partners(3, generator=1), TypeError, "^generator must be"),
    (lambda: mixup(X4.long(), X4.long(), 0.5), TypeError, "^x_a must be a floating"),
    (lambda: mixup(X4, X4.long(), 0.5), TypeError, "^x_b must be a floating"),
    (lambda: mixup([1.0], X4, 0.5), TypeError, "^x_a must be a torch.Tensor"),
    (lambda: cutmix(X4[0], X4[0], 0.5), ValueError, "^x_a must have rank 4"),
    (lambda: mask_mix(X4[0], X4[0], X4[0]), ValueError, "^x_a must have rank 4"),
    (lambda: mixed_gan_loss(torch.zeros(2, dtype=torch.long), 0.5), TypeError,
     "^logits must be a floating"),
    (lambda: mixed_gan_loss([0.0, 1.0], 0.5), TypeError, "^logits must be a torch.Tensor"),
    (lambda: mixed_gan_loss(torch.zeros(2, device="meta"), torch.ones(2)), ValueError,
     "logits on meta, lam on cpu"),
])
def test_more_bad_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sample_lam_is_the_first_of_two_float64_gammas_over_their_sum():
    # Beta(a, a) = G1 / (G1 + G2): the draws are reproducible only if the order and dtype are.
    g = _seeded(3)
    gammas = torch._standard_gamma(torch.full((2, 5), 0.7, dtype=torch.float64), generator=g)
    want = (gammas[0] / (gammas[0] + gammas[1])).float()
    h = _seeded(3)
    assert torch.equal(sample_lam(0.7, 5, h), want)
    assert torch.equal(h.get_state(), g.get_state())  # two gammas per value, no more


def test_samplemix_defaults():
    assert vars(SampleMix()) == dict(kinds=("mixup",), alpha=1.0, prob=1.0, switch_prob=0.5,
                                     per_sample=False, partner="permutation", smoothing=0.1)


@pytest.mark.parametrize("kinds", ["mixup", "cutmix", "srmix"])
def test_samplemix_lam_is_float32_for_bf16_images(kinds):
    x = torch.rand(4, 2, 8, 8).to(torch.bfloat16)
    out = SampleMix(kinds)(x, generator=_seeded())
    assert out.x.dtype == torch.bfloat16 and out.lam.dtype == torch.float32


def test_lam_tensors_of_another_dtype_are_converted():
    lam = torch.tensor([0.25, 0.75], dtype=torch.float64)
    target = mixup_target(Y2, flip_partners(2), lam, 3)
    assert target.dtype == torch.float32
    torch.testing.assert_close(target, torch.tensor([[0.25, 0.75, 0.0], [0.25, 0.75, 0.0]]))
    assert mixed_gan_loss(torch.zeros(2), lam).dtype == torch.float32


def test_samplemix_input_checks():
    policy = SampleMix()
    with pytest.raises(TypeError, match="^x must be a floating-point"):
        policy(X4.long())
    with pytest.raises(ValueError, match=r"^x must have rank >= 2 .*got shape \(3,\)"):
        policy(torch.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match="^x_b must be a floating-point"):
        policy(X4, X4.long())
    with pytest.raises(TypeError, match="^kinds must be a name or a tuple .*got int"):
        SampleMix(kinds=3)
    with pytest.raises(TypeError, match="^per_sample must be a bool, got int"):
        SampleMix(per_sample=1)
    # with a partner batch given, one sample is enough
    out = policy(X4[:1], X4[:1] + 1, generator=_seeded())
    assert out.x.shape == (1, 1, 4, 4) and out.index is None


@pytest.mark.parametrize("call", [
    lambda g: box_mask(2, 4, 4, 0.5, generator=g, device="meta"),
    lambda g: smooth_box_mask(2, 4, 4, 0.5, generator=g, device="meta"),
    lambda g: permutation_partners(3, generator=g, device="meta"),
    lambda g: sample_lam(1.0, 3, generator=g, device="meta"),
])
def test_a_generator_on_another_device_is_refused(call):
    # a CPU generator cannot draw on the accelerator (meta stands in for it)
    with pytest.raises(ValueError, match="^generator is on cpu but the tensors are on meta"):
        call(torch.Generator())


def test_srmix_mask_follows_lams_device():
    assert smooth_box_mask(2, 4, 4, torch.ones(2, device="meta")).device.type == "meta"


# --- the places the mixing classes serve (robustrep.api) --------------------------------------


def test_mix_inputs_and_combine():
    from robustrep.api import implements
    x = torch.rand(4, 3, 8, 8)
    mix = Mixup(alpha=0.4)
    assert implements(mix, "classify", "input mixing")
    got = mix.mix_inputs(x, generator=torch.Generator().manual_seed(1))
    want = mix(x, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    both = SampleMix.combine([Mixup(alpha=0.4, prob=0.7, switch_prob=0.2, per_sample=True,
                                    partner="flip"), SRMix(smoothing=0.3), CutMix()])
    assert repr(both) == ("SampleMix(kinds=('mixup', 'srmix', 'cutmix'), alpha=(0.4, 1.0, 1.0), "
                          "prob=0.7, switch_prob=0.2, per_sample=True, partner='flip', "
                          "smoothing=0.3)")
    # without SRMix the first member's smoothing (acting on nothing)
    assert SampleMix.combine([SampleMix("cutmix", smoothing=0.2), Mixup()]).smoothing == 0.2
    with pytest.raises(ValueError, match="only the sample-mixing methods"):
        SampleMix.combine([Mixup(), object()])


def test_combine_refuses_a_later_members_draw_it_would_drop():
    # Was: CutMix's prob=0.5 dropped without a word (timm users set one alpha per method)
    with pytest.raises(ValueError, match=r"^cutmix's prob=0.5 would not act: a combined policy "
                                         r"draws with its first member's settings \(mixup's "
                                         r"prob=1.0\); set it there$"):
        SampleMix.combine([Mixup(alpha=0.8), CutMix(alpha=0.8, prob=0.5)])
    with pytest.raises(ValueError, match=r"^srmix's partner='flip' would not act"):
        SampleMix.combine([Mixup(), CutMix(), SRMix(partner="flip")])
    # a later member at its defaults, or at the first's values, is no loss
    assert SampleMix.combine([Mixup(prob=0.8), CutMix()]).prob == 0.8
    assert SampleMix.combine([Mixup(alpha=0.8, prob=0.5), CutMix(alpha=0.8, prob=0.5)]).prob == 0.5


def test_combine_takes_each_members_alpha():
    # Was: CutMix's alpha=1.0 refused (the policy drew every kind's lam with Mixup's 0.8), so
    # timm's DeiT recipe Mixup(mixup_alpha=0.8, cutmix_alpha=1.0) could not be written
    both = SampleMix.combine([Mixup(alpha=0.8), CutMix(alpha=1.0)])
    assert (both.kinds, both.alpha) == (("mixup", "cutmix"), (0.8, 1.0))
    assert SampleMix.combine([Mixup(), CutMix()]).alpha == 1.0  # all equal: one float
    assert SampleMix.combine([SampleMix(("srmix", "mixup"), alpha=(0.5, 2.0)),
                              CutMix(alpha=0.5)]).alpha == (0.5, 2.0, 0.5)


class _Loss:
    """A DLoss whose mixed loss is recognisable: sum of logits times lam."""

    def mixed(self, logits, lam):
        return (logits * lam).sum()


def test_extra_d_term_mixes_reals_with_fakes_and_weights_add_mode():
    from robustrep.api import implements
    x_real, x_fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    score = lambda v: v.mean((1, 2, 3))  # noqa: E731
    for mode, weight, factor in (("add", 0.25, 0.25), ("replace", 1.0, 1.0)):
        mix = CutMix(mode=mode, weight=weight)
        assert implements(mix, "gan", "extra D term") and mix.term == "mix"
        assert mix.replaces_clean is (mode == "replace")
        got = mix.extra_d_term(score, x_real, x_fake, _Loss(), torch.Generator().manual_seed(2))
        m = mix(x_real, x_b=x_fake, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(got, factor * (score(m.x) * m.lam).sum())
    with pytest.raises(ValueError, match="mode"):
        Mixup(mode="both")
    with pytest.raises(ValueError, match="weight"):
        Mixup(weight=-1.0)


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_extra_d_term_takes_the_loss_kind_as_every_gan_function_does(kind):
    x_real, x_fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    score = lambda v: v.mean((1, 2, 3)) - 0.5  # noqa: E731
    mix = SRMix(weight=0.5)
    got = mix.extra_d_term(score, x_real, x_fake, kind, torch.Generator().manual_seed(3))
    m = mix(x_real, x_b=x_fake, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, 0.5 * mixed_gan_loss(score(m.x), m.lam, kind).mean())


@pytest.mark.parametrize("loss,error,match", [
    ("bce", ValueError, r"^loss must be one of 'ns', 'hinge', 'ls', 'wasserstein'; got 'bce'$"),
    # was AttributeError: 'function' object has no attribute 'mixed', from inside mixing.py
    (mixed_gan_loss, TypeError, r"^loss must be a loss kind \(ns, hinge, ls, wasserstein\) or a "
                                r"robustrep.api.DLoss \(a method mixed\(logits, lam\)\), got "
                                r"function$"),
])
def test_extra_d_term_names_a_loss_it_cannot_score_with(loss, error, match):
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(error, match=match):
        Mixup().extra_d_term(lambda v: v.mean((1, 2, 3)), x, x, loss)


@pytest.mark.parametrize("cls,options,match", [
    # weight was ignored (the mixed loss counted once); the programs refuse the flags themselves
    (Mixup, dict(mode="replace", weight=0.5), r"^weight=0.5 weighs the mixed loss added to D's "
                                              r"clean terms \(mode='add'\), and mode='replace' "
                                              r"has none; drop weight or use mode='add'$"),
    (SRMix, dict(mode="replace", weight=0.0), r"^weight=0.0 .* mode='replace'"),
    # smoothing was accepted and drew nothing (only SRMix's box has a ramp)
    (CutMix, dict(smoothing=0.3), r"^smoothing=0.3 is the edge ramp of SRMix's box, which cutmix "
                                  r"does not draw; drop smoothing \(or use srmix\)$"),
    (Mixup, dict(smoothing=0.0), r"^smoothing=0.0 .* which mixup does not draw"),
])
def test_an_option_that_would_act_on_nothing_is_refused(cls, options, match):
    with pytest.raises(ValueError, match=match):
        cls(**options)


def test_the_defaults_of_silenced_options_pass_as_the_programs_leave_them():
    from robustrep import create_regularizer
    for name in ("mixup", "cutmix", "srmix"):  # the programs pass None for what is unset
        reg = create_regularizer(name, mode="replace", weight=None, smoothing=None)
        assert (reg.mode, reg.weight, reg.smoothing) == ("replace", 1.0, 0.1)
    assert Mixup(mode="replace", weight=1.0, smoothing=0.1).replaces_clean
    assert SRMix(smoothing=0.3).smoothing == 0.3


@pytest.mark.parametrize("cls", [Mixup, CutMix, SRMix])
def test_help_explains_every_option_of_the_mixing_classes(cls):
    """help(Mixup) shows the class docstring and no base's: every option is explained there."""
    import inspect

    from robustrep._options import arg_help
    options = set(inspect.signature(cls).parameters)
    assert set(arg_help(cls.__doc__)) == options
    assert {"mode", "weight", "smoothing"} <= options


@pytest.mark.parametrize("shape", [-1, (2, -1), (2.0,), (True,)])
def test_sample_lam_refuses_a_shape_that_is_no_size(shape):
    # Was: a torch RuntimeError from torch.full for -1
    with pytest.raises(ValueError, match="shape must be sizes >= 0"):
        sample_lam(1.0, shape)


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 0.005])
def test_sample_lam_with_a_tiny_alpha_is_nearly_always_0_or_1(alpha):
    # Beta(a, a) for a tiny a is nearly a fair coin on {0, 1} (numpy's draws say how nearly);
    # the ratio of float64 Gammas gave 0.5 whenever both underflowed (a quarter of the draws
    # at a = 1e-3)
    lam = sample_lam(alpha, (20000,), generator=_seeded(2))
    inside = float(((lam > 0.01) & (lam < 0.99)).float().mean())
    numpy_inside = float(((lambda n: (n > 0.01) & (n < 0.99))(
        np.random.default_rng(0).beta(alpha, alpha, 20000))).mean())
    assert inside == pytest.approx(numpy_inside, abs=0.01)
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.02)
    assert float(lam.var()) == pytest.approx(1.0 / (4 * (2 * alpha + 1)), abs=0.005)
    assert lam.dtype == torch.float32 and sample_lam(alpha).shape == ()


@pytest.mark.parametrize("alpha", [0.02, 0.2, 1.0])
def test_sample_lam_from_0_02_up_is_the_ratio_of_two_gammas(alpha):
    # the usual alphas keep their draws: same seed, same lam as before the tiny-alpha path
    conc = torch.full((2, 5), alpha, dtype=torch.float64)
    g = torch._standard_gamma(conc, generator=_seeded(3))
    assert torch.equal(sample_lam(alpha, (5,), generator=_seeded(3)),
                       (g[0] / (g[0] + g[1])).float())


def test_a_numpy_lam_is_named_as_numpy_with_its_cast():
    # "got float32" read as a torch dtype; np.float32 is no Python float (np.float64 is one)
    x = torch.rand(2, 3)
    with pytest.raises(TypeError, match=r"^lam must be a float in \[0, 1\] or a tensor, got "
                                        r"numpy.float32; pass float\(value\)$"):
        mixup(x, x.flip(0), np.float32(0.3))
    assert torch.equal(mixup(x, x.flip(0), np.float64(0.3))[0], mixup(x, x.flip(0), 0.3)[0])


def test_the_partner_check_leaves_a_compiled_graph_whole():
    """check_index read the partners on the CPU under torch.compile too: a graph break per call
    (fullgraph=True refused it); eager CPU calls still check them."""
    y, index = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    compiled = torch.compile(lambda y, index: mixup_target(y, index, 0.3, 3), fullgraph=True,
                             backend="eager")
    assert torch.equal(compiled(y, index), mixup_target(y, index, 0.3, 3))
