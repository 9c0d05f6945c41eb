"""ADA (robustrep/ada.py): each transform's geometry and colour algebra on constructed images,
the sampled pipeline, and the adaptive probability."""

import math

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
