"""DiffAugment (robustrep/diffaugment.py): shapes, exact transforms, gradients, determinism."""

import pytest
import torch

from robustrep.diffaugment import (DiffAugment, cutout, diff_augment, parse_policy,
                                   rand_cutout, rand_translation, translate)


def _x(seed=0, shape=(4, 3, 16, 16)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_empty_policy_is_identity():
    x = _x()
    assert diff_augment(x, "") is x
    assert DiffAugment("")(x) is x


def test_translate_moves_pixels_and_fills_zeros():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = translate(x, torch.tensor([1]), torch.tensor([-1]))
    # output (r, c) takes input (r + 1, c - 1); the last row and the first column are empty
    assert torch.equal(y[0, 0, :3, 1:], x[0, 0, 1:, :3])
    assert torch.equal(y[0, 0, 3], torch.zeros(4)) and torch.equal(y[0, 0, :, 0], torch.zeros(4))


def test_cutout_zeroes_a_box_of_the_given_size():
    x = torch.ones(2, 3, 8, 8)
    y = cutout(x, torch.tensor([4, 0]), torch.tensor([4, 0]), (4, 4))
    assert y[0].sum() == 3 * (64 - 16)  # a full box inside the image
    assert torch.equal(y[0, :, 2:6, 2:6], torch.zeros(3, 4, 4))
    assert y[1].sum() == 3 * (64 - 4)  # centred at the corner: a quarter of it remains


@pytest.mark.parametrize("op", [rand_translation, rand_cutout])
def test_shapes_and_gradients_flow(op):
    x = _x().requires_grad_(True)
    y = op(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_full_policy_is_differentiable_and_deterministic_per_generator():
    x = _x().requires_grad_(True)
    a = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    b = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    c = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.square().sum().backward()
    assert x.grad.abs().sum() > 0


def test_color_is_the_reference_formula():
    x = _x()
    g = torch.Generator().manual_seed(0)
    u = torch.rand(3, 4, generator=g)  # brightness, saturation, contrast draws, in that order
    y = x + (u[0].view(4, 1, 1, 1) - 0.5)
    m = y.mean(1, keepdim=True)
    y = (y - m) * (2 * u[1].view(4, 1, 1, 1)) + m
    m = y.mean([1, 2, 3], keepdim=True)
    y = (y - m) * (u[2].view(4, 1, 1, 1) + 0.5) + m
    out = diff_augment(x, "color", torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, y)


def test_translation_shift_is_bounded_by_ratio():
    """A one-hot image keeps its pixel within 1/8 of the side (2 px at 16)."""
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1
    y = rand_translation(x, generator=torch.Generator().manual_seed(0))
    rows, cols = y[:, 0].nonzero()[:, 1], y[:, 0].nonzero()[:, 2]
    assert y.sum() == 64  # nothing falls off
    assert (rows - 8).abs().max() == 2 and (cols - 8).abs().max() == 2


def test_bad_policy():
    with pytest.raises(ValueError, match="zoom"):
        parse_policy("color,zoom")
    assert parse_policy(" color , cutout ") == ("color", "cutout")


@pytest.mark.parametrize("policy", ["color,,cutout", "color,", ",color", " , "])
def test_an_empty_transform_is_refused_not_dropped(policy):
    # Was: dropped (`--diffaugment color,,cutout` ran color,cutout), while --seeds refuses one
    with pytest.raises(ValueError) as err:
        parse_policy(policy)
    assert str(err.value) == (f"policy must be transform names separated by commas (color, "
                              f"translation, cutout); got {policy!r} (an empty item)")
    assert parse_policy("") == () and parse_policy(" color ") == ("color",)


# --- against the reference (DiffAugment_pytorch.py), written out with meshgrid indexing ---------


def _ref_translation(x, gen, ratio=0.125):
    """The reference's rand_translation: draws for rows then columns, then a padded lookup."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), generator=gen)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=gen)
    b, gy, gx = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[b, gy, gx].permute(0, 3, 1, 2), ty.flatten(), tx.flatten()


def _ref_cutout(x, gen, ratio=0.5):
    """The reference's rand_cutout: box indices clamped into the image, set to 0 in a mask."""
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - size[0] % 2), (n, 1, 1), generator=gen)
    ox = torch.randint(0, w + (1 - size[1] % 2), (n, 1, 1), generator=gen)
    b, gy, gx = torch.meshgrid(torch.arange(n), torch.arange(size[0]), torch.arange(size[1]),
                               indexing="ij")
    gy = torch.clamp(gy + oy - size[0] // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - size[1] // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1), size


@pytest.mark.parametrize("shape", [(64, 2, 16, 16), (64, 1, 12, 20)])
def test_rand_translation_equals_the_reference_draw_for_draw(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    ref, ty, tx = _ref_translation(x, torch.Generator().manual_seed(5))
    out = rand_translation(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, ref)
    # every shift of [-s, s] occurs on both axes (s = round(side / 8)), negative ones included
    assert set(ty.tolist()) == set(range(-int(shape[2] / 8 + .5), int(shape[2] / 8 + .5) + 1))
    assert set(tx.tolist()) == set(range(-int(shape[3] / 8 + .5), int(shape[3] / 8 + .5) + 1))


def test_translation_up_and_left_fills_the_bottom_and_right_with_zeros():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    y = translate(x, torch.tensor([-2]), torch.tensor([3]))
    # output (r, c) takes input (r - 2, c + 3): rows 0-1 and columns 1-3 are empty
    expect = torch.zeros(4, 4)
    expect[2:, 0] = x[0, 0, :2, 3]
    assert torch.equal(y[0, 0], expect)


@pytest.mark.parametrize("shape,ratio", [((64, 2, 16, 10), 0.5), ((64, 1, 9, 14), 0.5),
                                         ((64, 1, 12, 12), 0.3)])
def test_rand_cutout_equals_the_reference_draw_for_draw(shape, ratio):
    """Even and odd box sides (the centre's range differs), non-square images, another ratio."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(2)) + 1
    ref, size = _ref_cutout(x, torch.Generator().manual_seed(6), ratio)
    out = rand_cutout(x, ratio, generator=torch.Generator().manual_seed(6))
    assert torch.equal(out, ref)
    # the largest box is the full box (size rounded to the nearest pixel)
    zeros = (out[:, 0] == 0).flatten(1).sum(1)
    assert int(zeros.max()) == size[0] * size[1]


def test_rand_cutout_default_is_half_the_side():
    x = torch.ones(32, 1, 16, 16)
    ref, _ = _ref_cutout(x, torch.Generator().manual_seed(0), 0.5)
    assert torch.equal(rand_cutout(x, generator=torch.Generator().manual_seed(0)), ref)


def test_cutout_of_a_rectangle_uses_each_side_on_its_axis():
    x = torch.ones(1, 1, 10, 10)
    y = cutout(x, torch.tensor([5]), torch.tensor([5]), (2, 6))
    expect = torch.ones(10, 10)
    expect[4:6, 2:8] = 0  # rows 5 - 1 .. 5, columns 5 - 3 .. 7
    assert torch.equal(y[0, 0], expect)


def test_defaults_are_the_full_policy():
    x = _x()
    full = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(8))
    assert torch.equal(diff_augment(x, generator=torch.Generator().manual_seed(8)), full)
    aug = DiffAugment()
    assert aug.names == ("color", "translation", "cutout")
    assert aug.policy == "color,translation,cutout"
    assert repr(aug) == "DiffAugment('color,translation,cutout')"
    assert repr(DiffAugment(" cutout , color ")) == "DiffAugment('cutout,color')"
    # the class passes its generator on
    assert torch.equal(aug(x, torch.Generator().manual_seed(8)), full)


def test_draws_follow_the_inputs_dtype_and_device():
    x64 = _x().double()
    g = torch.Generator().manual_seed(0)
    u = torch.rand(3, 4, 1, 1, 1, generator=g, dtype=torch.float64)  # drawn in float64
    y = x64 + (u[0] - 0.5)
    m = y.mean(1, keepdim=True)
    y = (y - m) * (2 * u[1]) + m
    m = y.mean([1, 2, 3], keepdim=True)
    expect = (y - m) * (u[2] + 0.5) + m
    out = diff_augment(x64, "color", torch.Generator().manual_seed(0))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-12)
    half = diff_augment(_x().bfloat16(), "color", torch.Generator().manual_seed(0))
    assert half.dtype == torch.bfloat16
    # a meta tensor stands in for an accelerator: every draw and index is made on x's device
    for policy in ("color", "translation", "cutout", "color,translation,cutout"):
        out = diff_augment(torch.zeros(2, 3, 8, 8, device="meta"), policy)
        assert out.device.type == "meta" and out.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("x,generator,error,message", [
    (torch.zeros(3, 8, 8), None, ValueError,
     "x must have rank 4, got rank 3 with shape (3, 8, 8)"),
    (torch.zeros(0, 3, 8, 8), None, ValueError, "x needs a batch of at least 1, got batch size 0"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.long), None, TypeError,
     "x must be a floating-point tensor, got dtype torch.int64"),
    (torch.zeros(2, 3, 8, 8), "7", TypeError,
     "generator must be a torch.Generator or None, got str"),
    (torch.zeros(2, 3, 8, 8, device="meta"), torch.Generator(), ValueError,
     "generator is on cpu but the tensors are on meta; pass a generator created on the tensors' "
     "device"),
])
def test_bad_inputs_are_named(x, generator, error, message):
    with pytest.raises(error) as err:
        diff_augment(x, "translation", generator)
    assert str(err.value) == message
    assert diff_augment(torch.zeros(1, 3, 8, 8), "cutout").shape == (1, 3, 8, 8)  # batch of 1


def test_bad_policy_messages_list_what_is_accepted():
    with pytest.raises(TypeError) as err:
        parse_policy(3)
    assert str(err.value) == "policy must be a str, got int"
    with pytest.raises(ValueError) as err:
        DiffAugment("color,zoom")
    assert str(err.value) == ("policy: unknown DiffAugment transform 'zoom'; valid: color, "
                              "translation, cutout (comma-separated)")
