"""ADA (robustrep/ada.py): each transform's geometry and colour algebra on constructed images,
the sampled pipeline, and the adaptive probability."""

import math
import warnings

import pytest
import torch

from robustrep import ada

H = W = 32
ONE = torch.ones(1)


def blob(cx=10.0, cy=13.0, sigma=4.0, size=H):
    """A smooth, asymmetric image in [-1, 1] (the resampling filter is a low-pass)."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return (torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)) * 2 - 1)[None, None]


def close(a, b, tol):
    return (a - b).abs().max().item() < tol


# geometry: the matrices and their execution --------------------------------------------------


def test_identity_and_integer_shift_are_exact():
    x = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(0))
    two = torch.ones(2)
    assert close(ada.apply_geometric(x, ada.scale2d(two, two)), x, 1e-4)
    # inverse map: output pixel (r, c) reads input (r, c - 2): content moves 2 to the right
    out = ada.apply_geometric(x, ada.translate2d(-2 * two, 0 * two))
    assert close(out[..., 2:], x[..., :-2], 1e-4)
    out = ada.apply_geometric(x, ada.translate2d(0 * two, 3 * two))  # up by 3
    assert close(out[..., :-3, :], x[..., 3:, :], 1e-4)


def test_flip_and_rotate90_map_to_mirror_and_rotation():
    x = blob()
    flipped = ada.apply_geometric(x, ada.scale2d(-ONE, ONE))
    assert close(flipped, x.flip(3), 0.05) and not close(flipped, x, 0.5)
    rotated = ada.apply_geometric(x, ada.rotate2d(math.pi / 2 * ONE))
    assert close(rotated, torch.rot90(x, 1, (2, 3)), 0.05)
    assert not close(rotated, torch.rot90(x, -1, (2, 3)), 0.5)


def test_scaling_and_fractional_translation_of_a_blob():
    x = blob(cx=15.5, cy=15.5, sigma=3.0)  # centred on the image centre
    # the inverse matrix scales by 1/s: the content grows by s
    assert close(ada.apply_geometric(x, ada.scale2d(ONE / 2, ONE / 2)), blob(15.5, 15.5, 6.0), 0.03)
    aniso = ada.apply_geometric(x, ada.scale2d(ONE / 2, ONE * 2))  # x by 2, y by 1/2
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    expect = torch.exp(-((xx - 15.5) ** 2 / 36 + (yy - 15.5) ** 2 / 2.25) / 2) * 2 - 1
    # rows further than 8 from the centre read the reflect padding (mirrored copies of the blob)
    assert close(aniso[0, 0, 8:24], expect[8:24], 0.06)
    half = ada.apply_geometric(x, ada.translate2d(-0.5 * ONE, 0 * ONE))
    assert close(half, blob(16.0, 15.5, 3.0), 0.03)


# colour algebra --------------------------------------------------------------------------------


def rgb():
    return torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_brightness_adds_and_contrast_scales():
    x = rgb()
    assert close(ada.apply_color(x, ada.translate3d(0.3 * ONE)), x + 0.3, 1e-6)
    # ADA's contrast scales about 0 (the middle of [-1, 1]), not about the image mean
    assert close(ada.apply_color(x, ada.scale3d(1.5 * ONE)), x * 1.5, 1e-6)
    gray = x[:, :1]
    assert close(ada.apply_color(gray, ada.translate3d(0.3 * ONE)), gray + 0.3, 1e-6)
    assert close(ada.apply_color(gray, ada.scale3d(0.5 * ONE)), gray * 0.5, 1e-6)


def test_luma_flip_reflects_the_luma_axis():
    x = rgb()
    out = ada.apply_color(x, ada.luma_flip3d(ONE))
    assert close(out, x - 2 * x.mean(1, keepdim=True), 1e-6)  # chroma kept, luma negated
    assert close(ada.apply_color(x[:, :1], ada.luma_flip3d(ONE)), -x[:, :1], 1e-6)
    assert close(ada.apply_color(x, ada.luma_flip3d(0 * ONE)), x, 1e-6)


def test_hue_rotates_about_gray_and_saturation_zero_is_gray():
    x = rgb()
    third = ada.apply_color(x, ada.hue3d(2 * math.pi / 3 * ONE))
    assert close(third, x[:, [2, 0, 1]], 1e-5)  # a third of a turn cycles r -> g -> b
    gray = ada.apply_color(x, ada.saturation3d(0 * ONE))
    assert close(gray, x.mean(1, keepdim=True).expand_as(x), 1e-6)
    double = ada.apply_color(x, ada.saturation3d(2 * ONE))
    mean = x.mean(1, keepdim=True)
    assert close(double, mean + 2 * (x - mean), 1e-6)


# the sampled pipeline --------------------------------------------------------------------------


def sample(spec, x, p=1.0, seed=0):
    return ada.ada_augment(x, p, spec, generator=torch.Generator().manual_seed(seed))


def test_sampled_flips_and_rotations_are_the_four_symmetries():
    x = blob().expand(32, 1, H, W)
    out = sample({"xflip": 1.0}, x)
    is_flip = [close(o, x[0].flip(2), 0.05) for o in out]
    is_same = [close(o, x[0], 1e-4) for o in out]
    assert all(a or b for a, b in zip(is_flip, is_same)) and any(is_flip) and any(is_same)
    out = sample({"rotate90": 1.0}, x)
    kinds = {k for o in out for k in range(4) if close(o, torch.rot90(x[0], k, (1, 2)), 0.05)}
    assert kinds == {0, 1, 2, 3}


def test_sampled_integer_translation_stays_within_an_eighth():
    x = torch.randn(16, 1, H, W, generator=torch.Generator().manual_seed(2))
    out = sample({"xint": 1.0}, x)
    for o, xi in zip(out, x):
        shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                  if close(o[:, 4:-4, 4:-4], torch.roll(xi, (dy, dx), (1, 2))[:, 4:-4, 4:-4], 1e-4)]
        assert len(shifts) == 1


def test_sampled_brightness_and_contrast_per_sample():
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(3)) + 0.5
    shift = (sample({"brightness": 1.0}, x) - x).flatten(1)
    assert close(shift, shift[:, :1].expand_as(shift), 1e-5)  # one offset per sample
    assert 0.12 < shift[:, 0].std() < 0.3  # N(0, 0.2^2)
    ratio = (sample({"contrast": 1.0}, x) / x).flatten(1)
    assert close(ratio, ratio[:, :1].expand_as(ratio), 1e-4)
    assert 0.2 < ratio[:, 0].log2().std() < 0.8  # 2^N(0, 0.5^2)


def test_probability_gates_each_transform():
    x = torch.rand(400, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    changed = (sample({"brightness": 1.0}, x, p=0.25) - x).flatten(1).abs().amax(1) > 0
    assert 0.18 < changed.float().mean() < 0.32
    assert sample("bgc", x, p=0.0) is x


def test_pipeline_is_reproducible_differentiable_and_checked():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    a, b = sample("bgc", x, 0.8, seed=5), sample("bgc", x, 0.8, seed=5)
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pipeline"):
        ada.ada_augment(x, 0.5, "bgcx")
    with pytest.raises(ValueError, match="channels"):
        ada.ada_augment(torch.zeros(2, 2, 8, 8), 1.0, {"brightness": 1.0})


# adaptive p ------------------------------------------------------------------------------------


def run_heuristic(state, logit_sign, iterations, batch=16):
    for _ in range(iterations):
        state.accumulate(torch.full((batch,), float(logit_sign)))
        state.step(batch)


def test_p_rises_on_an_overfitting_d_and_falls_on_one_that_is_not():
    state = ada.AdaptiveP(p=0.5, kimg=1.0)  # target 0.6, interval 4
    run_heuristic(state, +1, 3)
    assert state.p == 0.5  # not due before 4 iterations
    run_heuristic(state, +1, 1)  # r_t = 1 > 0.6: up by 4 * 16 / 1000
    assert state.p == pytest.approx(0.5 + 0.064)
    run_heuristic(state, -1, 8)  # r_t = -1: down twice
    assert state.p == pytest.approx(0.5 - 0.064)
    run_heuristic(state, -1, 100)
    assert state.p == 0.0  # clamped at 0
    mixed = ada.AdaptiveP(p=0.5, kimg=1.0)
    for sign in (+1, +1, -1, -1):  # r_t = 0 < 0.6: down
        run_heuristic(mixed, sign, 1)
    assert mixed.p == pytest.approx(0.5 - 0.064)


def test_fixed_p_and_state_round_trip():
    fixed = ada.AdaptiveP(p=0.3, target=None)
    run_heuristic(fixed, +1, 16)
    assert fixed.p == 0.3
    state = ada.AdaptiveP(kimg=1.0)
    run_heuristic(state, +1, 6)  # one adjustment and half an interval accumulated
    copy = ada.AdaptiveP(kimg=1.0)
    copy.load_state_dict(state.state_dict())
    run_heuristic(state, +1, 2)
    run_heuristic(copy, +1, 2)
    assert copy.p == state.p == pytest.approx(0.128)


def _grid(n=2, h=5, w=6, dtype=torch.float64):
    theta = torch.tensor([[0.9, 0.2, 0.1], [-0.15, 1.1, -0.05]], dtype=dtype).expand(n, 2, 3)
    return torch.nn.functional.affine_grid(theta, [n, 3, h, w], align_corners=False)


def test_grid_sample_equals_torchs_and_differentiates_twice():
    from robustrep.ada import grid_sample_bilinear
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = _grid()
    ref = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    y = grid_sample_bilinear(x, grid)
    assert torch.equal(y, ref)
    assert type(y.grad_fn).__name__ == "_GridSampleBackward"  # ours on every torch version
    gy = torch.randn_like(y)
    (g_ours,) = torch.autograd.grad(y, x, gy)
    (g_ref,) = torch.autograd.grad(ref, x, gy)
    assert torch.equal(g_ours, g_ref)
    # second order, against finite differences (torch < 2.12 has no double backward to compare)
    assert torch.autograd.gradcheck(lambda t: grid_sample_bilinear(t, grid), (x,))
    assert torch.autograd.gradgradcheck(lambda t: grid_sample_bilinear(t, grid), (x,))


def test_r1_through_the_augmentation_is_its_gradient_penalty():
    # R1 on augmented reals differentiates D(A x) twice: d/dθ |A^T ∇D|². Checked against the
    # same penalty with A written out as a matrix (no grid_sample in the graph at all).
    from robustrep.ada import grid_sample_bilinear
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = _grid()
    eye = torch.eye(3 * 4 * 5, dtype=torch.float64).reshape(-1, 3, 4, 5)
    cols = [torch.nn.functional.grid_sample(e.expand(2, 3, 4, 5), grid, align_corners=False)
            for e in eye]
    A = torch.stack([c.flatten(1) for c in cols], dim=-1)  # [n, out, in]
    weight = torch.randn(3 * 5 * 6, dtype=torch.float64, requires_grad=True)

    def d(img):
        return (img.flatten(1) @ weight).tanh().sum()

    def penalty(augment):
        (g,) = torch.autograd.grad(d(augment(x)), x, create_graph=True)
        (gw,) = torch.autograd.grad(g.square().sum(), weight)
        return gw

    ours = penalty(lambda t: grid_sample_bilinear(t, grid))
    dense = penalty(lambda t: (A @ t.flatten(1).unsqueeze(-1)).reshape(2, 3, 5, 6))
    torch.testing.assert_close(ours, dense)


# the draws against stylegan2-ada's augment.py, replayed --------------------------------------


def _t(tx, ty):
    return torch.tensor([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=torch.float64)


def _s(sx, sy):
    return torch.tensor([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=torch.float64)


def _r(theta):
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)


def _ref_geometry(spec, n, p, h, w, gen):
    """augment.py's geometric draws in its order (value, then the gate's uniform), composed as
    G_inv @ M with the reference's inverse matrices (``scale2d_inv(s) = scale2d(1/s)``,
    ``rotate2d_inv(-theta) = rotate2d(theta)``, ``translate2d_inv(t) = translate2d(-t)``)."""
    def gate(values, prob, identity):
        keep = torch.rand(n, generator=gen) < prob
        return [v if k else identity for v, k in zip(values, keep.tolist())]

    rand = lambda *s: torch.rand(n, *s, generator=gen).double()  # noqa: E731
    randn = lambda *s: torch.randn(n, *s, generator=gen).double()  # noqa: E731
    g = [torch.eye(3, dtype=torch.float64) for _ in range(n)]
    if spec.get("xflip", 0) > 0:
        i = gate(torch.floor(rand() * 2).tolist(), spec["xflip"] * p, 0.0)
        g = [m @ _s(1 - 2 * a, 1) for m, a in zip(g, i)]
    if spec.get("rotate90", 0) > 0:
        i = gate(torch.floor(rand() * 4).tolist(), spec["rotate90"] * p, 0.0)
        g = [m @ _r(math.pi / 2 * a) for m, a in zip(g, i)]
    if spec.get("xint", 0) > 0:
        t = gate(((rand(2) * 2 - 1) * 0.125).tolist(), spec["xint"] * p, [0.0, 0.0])
        g = [m @ _t(-round(a * w), -round(b * h)) for m, (a, b) in zip(g, t)]
    if spec.get("scale", 0) > 0:
        s = gate(torch.exp2(randn() * 0.2).tolist(), spec["scale"] * p, 1.0)
        g = [m @ _s(1 / a, 1 / a) for m, a in zip(g, s)]
    p_rot = 1 - math.sqrt(min(max(1 - spec.get("rotate", 0) * p, 0), 1))
    rotate = lambda: gate(((rand() * 2 - 1) * math.pi).tolist(), p_rot, 0.0)  # noqa: E731
    if spec.get("rotate", 0) > 0:
        g = [m @ _r(a) for m, a in zip(g, rotate())]
    if spec.get("aniso", 0) > 0:
        s = gate(torch.exp2(randn() * 0.2).tolist(), spec["aniso"] * p, 1.0)
        g = [m @ _s(1 / a, a) for m, a in zip(g, s)]
    if spec.get("rotate", 0) > 0:
        g = [m @ _r(a) for m, a in zip(g, rotate())]
    if spec.get("xfrac", 0) > 0:
        t = gate((randn(2) * 0.125).tolist(), spec["xfrac"] * p, [0.0, 0.0])
        g = [m @ _t(-a * w, -b * h) for m, (a, b) in zip(g, t)]
    return torch.stack(g)


def _ref_color(spec, n, p, channels, gen):
    """augment.py's colour draws in its order, each matrix written out (luma axis v = 1/sqrt 3,
    hue by Rodrigues' rotation about v), composed as M @ C."""
    def gate(values, prob, identity):
        keep = torch.rand(n, generator=gen) < prob
        return [v if k else identity for v, k in zip(values, keep.tolist())]

    rand = lambda: torch.rand(n, generator=gen).double().tolist()  # noqa: E731
    randn = lambda: torch.randn(n, generator=gen).double()  # noqa: E731
    v = torch.tensor([1.0, 1, 1, 0], dtype=torch.float64) / math.sqrt(3)
    vv, eye = torch.outer(v, v), torch.eye(4, dtype=torch.float64)
    k = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=torch.float64) / math.sqrt(3)

    def hue(theta):
        m = eye.clone()
        m[:3, :3] = (math.cos(theta) * torch.eye(3, dtype=torch.float64) + math.sin(theta) * k
                     + (1 - math.cos(theta)) * vv[:3, :3])
        return m

    c = [eye.clone() for _ in range(n)]
    mats = []
    if spec.get("brightness", 0) > 0:
        b = gate((randn() * 0.2).tolist(), spec["brightness"] * p, 0.0)
        mats.append([eye + torch.cat([torch.zeros(4, 3, dtype=torch.float64),
                                      (v * math.sqrt(3) * a)[:, None]], 1) for a in b])
    if spec.get("contrast", 0) > 0:
        s = gate(torch.exp2(randn() * 0.5).tolist(), spec["contrast"] * p, 1.0)
        mats.append([torch.diag(torch.tensor([a, a, a, 1.0], dtype=torch.float64)) for a in s])
    if spec.get("lumaflip", 0) > 0:
        i = gate([math.floor(u * 2) for u in rand()], spec["lumaflip"] * p, 0.0)
        mats.append([eye - 2 * vv * a for a in i])
    if spec.get("hue", 0) > 0 and channels > 1:
        theta = gate([(u * 2 - 1) * math.pi for u in rand()], spec["hue"] * p, 0.0)
        mats.append([hue(a) for a in theta])
    if spec.get("saturation", 0) > 0 and channels > 1:
        s = gate(torch.exp2(randn() * 1.0).tolist(), spec["saturation"] * p, 1.0)
        mats.append([vv + (eye - vv) * a for a in s])
    for ms in mats:
        c = [m @ cc for m, cc in zip(ms, c)]
    return torch.stack(c)


SPECS = {"bgc": ada.BGC, "blit": ada.PIPELINES["blit"], "geom": ada.PIPELINES["geom"],
         "color": ada.PIPELINES["color"],
         "some": {"xflip": 0.5, "xint": 1.0, "aniso": 0.8, "contrast": 0.7, "hue": 0.9},
         "rot": {"rotate": 1.0, "xfrac": 0.5, "lumaflip": 1.0, "saturation": 0.6}}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("p", [0.6, 1.0])
def test_matrices_replay_the_reference_draws(name, p):
    spec, n, h, w = SPECS[name], 64, 12, 20  # non-square: x uses the width, y the height
    draw = ada._Draw(n, p, torch.device("cpu"), torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    g = ada.geometric_matrix(draw, spec, h, w)
    ref_g = _ref_geometry(spec, n, p, h, w, gen)
    geometric = any(k in spec for k in ada.PIPELINES["bg"])
    assert (g is not None) == geometric
    if geometric:
        torch.testing.assert_close(g.double(), ref_g, rtol=0, atol=1e-5)
        assert not torch.allclose(g.double(), torch.eye(3, dtype=torch.float64))
    for channels in (3, 1):  # one channel: no hue or saturation draws
        c = ada.color_matrix(draw, spec, channels)
        ref_c = _ref_color(spec, n, p, channels, gen)
        assert (c is not None) == any(k in spec for k in ada.PIPELINES["color"])
        if c is not None:
            torch.testing.assert_close(c.double(), ref_c, rtol=0, atol=1e-5)
    assert torch.equal(torch.rand(4, generator=draw.gen), torch.rand(4, generator=gen))


def test_on_one_channel_the_colour_matrix_is_averaged_over_its_rows():
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    c = _ref_color(ada.BGC, 2, 1.0, 3, torch.Generator().manual_seed(5)).float()
    for i in range(2):  # each sample with its own matrix
        row = c[i, :3].mean(0)  # augment.py: C[:, :3, :].mean(dim=1)
        torch.testing.assert_close(ada.apply_color(x, c)[i], x[i] * row[:3].sum() + row[3])
    rgb = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(2)).double()
    expect = (c[0, :3, :3].double() @ rgb.flatten(2)[0] + c[0, :3, 3:].double()).view(1, 3, 4, 4)
    out = ada.apply_color(rgb, c[:1])  # the float32 matrix is applied in the images' dtype
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-12)


def test_translate3d_leaves_the_homogeneous_row():
    m = ada.translate3d(torch.tensor([0.5]))[0]
    expect = torch.eye(4)
    expect[:3, 3] = 0.5
    assert torch.equal(m, expect)


def test_matrices_follow_the_inputs_dtype_and_device():
    t64 = torch.tensor([0.3], dtype=torch.float64)
    for m in (ada.translate3d(t64), ada.luma_flip3d(t64), ada.saturation3d(t64),
              ada.hue3d(t64), ada.rotate2d(t64)):
        assert m.dtype == torch.float64
    torch.testing.assert_close(ada.luma_flip3d(torch.ones(1, dtype=torch.float64))[0, :3, :3],
                               torch.eye(3, dtype=torch.float64) - 2 / 3, rtol=0, atol=1e-15)
    # a meta tensor stands in for an accelerator: draws and matrices live on x's device
    x = torch.zeros(2, 3, 8, 8, device="meta")
    assert ada.ada_augment(x, 0.5, "color").device.type == "meta"
    draw = ada._Draw(2, 0.5, torch.device("meta"), None)
    assert ada.color_matrix(draw, ada.BGC, 3).device.type == "meta"
    assert ada.geometric_matrix(draw, ada.BGC, 8, 8).device.type == "meta"


@pytest.mark.parametrize("call,error,message", [
    (lambda: ada.ada_augment(torch.zeros(3, 8, 8), 0.5), ValueError,
     "x must have rank 4, got rank 3 with shape (3, 8, 8)"),
    (lambda: ada.ada_augment(torch.zeros(0, 3, 8, 8), 0.5), ValueError,
     "x needs a batch of at least 1, got batch size 0"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8, dtype=torch.long), 0.5), TypeError,
     "x must be a floating-point tensor, got dtype torch.int64"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8), -0.1), ValueError,
     "p must be >= 0, got -0.1"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8), 0.5, generator=1), TypeError,
     "generator must be a torch.Generator or None, got int"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8, device="meta"), 0.5,
                             generator=torch.Generator()), ValueError,
     "generator is on cpu but the tensors are on meta; pass a generator created on the tensors' "
     "device"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8), 0.5, "bgcx"), ValueError,
     "pipeline: unknown ADA pipeline 'bgcx'; valid: blit, geom, color, bg, bgc"),
    (lambda: ada.ada_augment(torch.zeros(2, 3, 8, 8), 0.5, {"zoom": 1.0, "cutout": 1.0}),
     ValueError, "pipeline: unknown ADA transform(s) ['cutout', 'zoom']; valid: xflip, rotate90, "
     "xint, scale, rotate, aniso, xfrac, brightness, contrast, lumaflip, hue, saturation"),
    (lambda: ada.AdaptiveP(p=-1.0), ValueError, "p must be >= 0, got -1.0"),
    (lambda: ada.AdaptiveP(interval=0), ValueError, "interval must be > 0, got 0"),
    (lambda: ada.AdaptiveP(interval=2.5), TypeError, "interval must be a positive int, got float"),
    (lambda: ada.AdaptiveP(kimg=0.0), ValueError, "kimg must be > 0, got 0.0"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error) as err:
        call()
    assert str(err.value) == message


def test_defaults_batch_of_one_and_the_generator_passed_on():
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = ada.ada_augment(x, 0.7, generator=torch.Generator().manual_seed(1))  # default: bgc
    b = ada.ada_augment(x, 0.7, "bgc", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_a_grid_that_needs_a_gradient_gets_torchs_op_and_its_gradient():
    from robustrep.ada import grid_sample_bilinear
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    grid = _grid().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # align_corners stated, no warning
        y = grid_sample_bilinear(x, grid)
    ref = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    assert torch.equal(y, ref)
    (g,) = torch.autograd.grad(y.sum(), grid)
    assert g.abs().sum() > 0
    far = torch.full_like(grid, 3.0).requires_grad_(True)  # outside: zeros, not the border
    assert torch.equal(grid_sample_bilinear(x + 1, far), torch.zeros(2, 3, 5, 6,
                                                                     dtype=torch.float64))
    nearest = torch.nn.functional.grid_sample(x, grid, mode="nearest", align_corners=False)
    assert not torch.allclose(y, nearest)


def test_adaptive_p_starts_empty_and_reports_its_state():
    state = ada.AdaptiveP()
    assert (state.p, state.target, state.interval, state.kimg) == (0.0, 0.6, 4, 500.0)
    assert state.state_dict() == {"p": 0.0, "sign_sum": 0.0, "count": 0, "images": 0,
                                  "iterations": 0}
    assert state.rt() is None
    state.accumulate(torch.tensor([1.0, -1.0, 2.0, 3.0]))
    assert state.rt() == pytest.approx(0.5)  # (1 - 1 + 1 + 1) / 4
    assert repr(state) == "AdaptiveP(p=0.0000, target=0.6, interval=4, kimg=500.0)"


def test_p_stays_when_r_t_equals_the_target_and_each_interval_starts_afresh():
    state = ada.AdaptiveP(p=0.5, target=0.5, interval=1, kimg=1.0)
    for _ in range(2):  # r_t = 0.5 exactly, from a fresh start and after a reset
        state.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))
        state.step(4)
        assert state.p == 0.5
        assert state.state_dict()["sign_sum"] == 0.0 and state.state_dict()["count"] == 0
    assert state.iterations == 2 and state.state_dict()["images"] == 0
    state.accumulate(torch.tensor([1.0, 1.0]))  # r_t = 1: up by the 2 images of this interval
    state.step(2)
    assert state.p == pytest.approx(0.502)


def _resample_padded_by_one_image(x, g_inv):
    """The reference's execution with the largest padding it allows (a whole image less a pixel
    on every side): reflect padding beyond what the transform reads changes the output only
    through the small last taps of the filter (about 1e-4), so the tight margin of
    ``apply_geometric`` must give the same images; a margin too small reads zeros instead."""
    n, ch, h, w = x.shape
    taps = torch.tensor(ada.SYM6, dtype=torch.float64)
    taps = taps / taps.sum()
    x = torch.nn.functional.pad(x, [w - 1, w - 1, h - 1, h - 1], mode="reflect")
    x = ada._fir(x, taps, up=2, pad=(6, 5), gain=4.0)  # upfirdn2d.upsample2d, 12 taps
    # the matrix on the up-sampled grid, then in affine_grid's normalised coordinates
    up = _t(-0.5, -0.5) @ _s(2, 2)
    down = torch.linalg.inv(up)
    out_h, out_w = (h + 6) * 2, (w + 6) * 2
    thetas = [_s(2 / x.shape[3], 2 / x.shape[2]) @ up @ m.double() @ down
              @ _s(out_w / 2, out_h / 2) for m in g_inv]
    grid = torch.nn.functional.affine_grid(torch.stack(thetas)[:, :2].to(x.dtype),
                                           [n, ch, out_h, out_w], align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                        align_corners=False)
    return ada._fir(x, taps, down=2, pad=(-1, -1), flip=False)  # downsample2d, padding -6


def test_the_margin_pads_what_the_transform_reads():
    """Rotated, zoomed-out and shifted (so the corners differ) non-square images read far into
    the padding; a strong zoom-out reads past the largest padding (zeros there, as the
    reference). Float64 throughout: the filter and the grid follow the images' dtype."""
    x = torch.randn(3, 2, 12, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.stack([_r(0.4) @ _s(1.6, 1.3) @ _t(3.2, -2.1), _s(0.7, 1.8) @ _t(-4.5, 1.5),
                     _s(4.0, 4.0) @ _r(-0.2)])
    for i in range(3):  # one padding per batch: each transform on its own
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # align_corners stated everywhere
            out = ada.apply_geometric(x[i:i + 1], g[i:i + 1])
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, _resample_padded_by_one_image(x[i:i + 1], g[i:i + 1]
                                                                      .float()),
                                   rtol=0, atol=1e-3)  # the filter's tail: ~1e-4
    assert out.abs().flatten(1).amin(1).max() == 0  # zeros where nothing was padded
