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
