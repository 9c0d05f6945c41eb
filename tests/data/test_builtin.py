"""Built-in data: bundled digits, 2-D mixtures and OOD sets (no network, CPU, seconds)."""

import math

import pytest
import torch

from robustrep.data import (BUILTIN_OOD, MixtureSpec, builtin_ood, digits, digits_ood_split,
                            grid_mixture, image_shape, inverted_digits, mixture, noise,
                            num_classes, photo_patches, ring_mixture, rotated_digits)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_int_labels():
    ds = digits(size=32, channels=1)
    x, y = ds[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32
    assert isinstance(y, int)
    assert ds.images.min() >= 0.0 and ds.images.max() <= 1.0
    assert ds.images.max() > 0.9  # the 0..16 scale really reaches 1 after /16


def test_digits_split_counts_cover_all_1797():
    train, test, full = digits(train=True), digits(train=False), digits(train=None)
    assert len(train) + len(test) == len(full) == 1797
    assert len(train) == pytest.approx(0.8 * 1797, abs=10)
    # stratified: every class keeps about 80% of its samples in train
    per_class_train = torch.bincount(train.targets, minlength=10)
    per_class_all = torch.bincount(full.targets, minlength=10)
    assert ((per_class_train.float() / per_class_all - 0.8).abs() < 0.01).all()


def test_digits_split_is_fixed_and_disjoint():
    a, b = digits(size=8, train=True), digits(size=8, train=True)
    assert torch.equal(a.images, b.images)
    test = digits(size=8, train=False)
    flat_train = {tuple(v.tolist()) for v in a.images.flatten(1)}
    shared = sum(tuple(v.tolist()) in flat_train for v in test.images.flatten(1))
    assert shared < 5  # only exact duplicate drawings could coincide


def test_digits_three_channels_and_size():
    ds = digits(size=16, channels=3, train=False)
    x, _ = ds[3]
    assert x.shape == (3, 16, 16)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_digits_class_subset_keeps_labels():
    ds = digits(classes=[3, 7], train=None)
    assert set(ds.targets.tolist()) == {3, 7}
    assert len(ds) == 183 + 179  # the bundled counts of digits 3 and 7
    assert num_classes(ds) == 8


def test_digits_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        digits(channels=2)
    with pytest.raises(ValueError, match="classes"):
        digits(classes=[11])
    with pytest.raises(TypeError, match="size"):
        digits(size=3.5)


def test_digits_ood_split_classes_disjoint():
    id_train, id_test, ood_test = digits_ood_split(size=32, channels=1)
    assert set(id_train.targets.tolist()) == set(id_test.targets.tolist()) == {0, 1, 2, 3, 4}
    assert set(ood_test.targets.tolist()) == {-1}
    ood_source = digits(classes=[5, 6, 7, 8, 9], train=False)
    assert torch.equal(ood_test.images, ood_source.images)
    assert image_shape(id_train) == image_shape(ood_test) == (1, 32, 32)
    assert num_classes(id_train) == 5


# ---------------------------------------------------------------------------- mixtures


def _nearest(samples, centers):
    dist = torch.cdist(samples, centers)
    return dist.min(dim=1)


def test_ring_protocol_values():
    samples, centers, std = ring_mixture(100, generator=_gen())
    assert samples.shape == (100, 2) and centers.shape == (8, 2) and std == 0.02
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))


def test_grid_protocol_values():
    _, centers, std = grid_mixture(10, generator=_gen())
    assert centers.shape == (25, 2) and std == 0.05
    assert set(centers.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert len({tuple(c) for c in centers.tolist()}) == 25


@pytest.mark.parametrize("sampler", [ring_mixture, grid_mixture])
def test_mixture_samples_cluster_around_centers(sampler):
    samples, centers, std = sampler(20000, generator=_gen(1))
    dist, mode = _nearest(samples, centers)
    # the distance to the own centre of a 2-D isotropic Gaussian is Rayleigh: mean std*sqrt(pi/2)
    assert dist.mean().item() == pytest.approx(std * math.sqrt(math.pi / 2), rel=0.03)
    assert dist.max().item() < 6 * std
    counts = torch.bincount(mode, minlength=centers.shape[0]).float()
    expected = 20000 / centers.shape[0]
    assert ((counts - expected).abs() < 5 * math.sqrt(expected)).all()  # equal weights


def test_mixture_reproducible_with_generator():
    a = ring_mixture(64, generator=_gen(3)).samples
    b = ring_mixture(64, generator=_gen(3)).samples
    c = ring_mixture(64, generator=_gen(4)).samples
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_mixture_factory_and_overrides():
    spec = mixture("grid", num_modes=9, spacing=1.0, std=None)
    assert isinstance(spec, MixtureSpec) and spec.num_modes == 9 and spec.std == 0.05
    assert spec.sample(5, generator=_gen()).shape == (5, 2)
    assert mixture("ring").num_modes == 8
    with pytest.raises(ValueError, match="'ring', 'grid'"):
        mixture("spiral")
    with pytest.raises(ValueError, match="perfect square"):
        mixture("grid", num_modes=10)


# ---------------------------------------------------------------------------- OOD sets


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_noise_shape_range_labels(kind):
    ds = noise(kind, num=200, shape=(3, 8, 8), generator=_gen())
    assert ds.images.shape == (200, 3, 8, 8)
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert set(ds.targets.tolist()) == {-1}
    assert ds.images.mean().item() == pytest.approx(0.5, abs=0.02)
    if kind == "gaussian":  # N(0.5, 0.25^2) clipped: most mass inside, ~4.6% clipped
        assert ds.images.std().item() == pytest.approx(0.24, abs=0.02)
    assert torch.equal(ds.images, noise(kind, 200, (3, 8, 8), generator=_gen()).images)


@pytest.mark.parametrize("shape", ["abc", (3.5, 8, 8), (3, 8), (True, 8, 8), (0, 8, 8)])
def test_noise_refuses_a_shape_that_is_not_three_positive_ints(shape):
    # "abc" used to fail inside int() and 3.5 was cut to 3 channels.
    with pytest.raises(ValueError, match=r"^shape must be three positive ints \(C, H, W\), got "):
        noise(num=2, shape=shape)


def test_noise_rejects_unknown_kind():
    with pytest.raises(ValueError, match="gaussian"):
        noise("pink", 4, (1, 8, 8))


@pytest.mark.parametrize("channels", [1, 3])
def test_photo_patches_shape_and_range(channels):
    ds = photo_patches(12, size=16, channels=channels, generator=_gen())
    assert ds.images.shape == (12, channels, 16, 16)
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert ds.images.std() > 0.05  # real photo content, not a constant
    again = photo_patches(12, size=16, channels=channels, generator=_gen())
    assert torch.equal(ds.images, again.images)


def test_inverting_twice_is_identity():
    base = digits(size=16, train=False)
    once, twice = inverted_digits(base), inverted_digits(inverted_digits(base), keep_labels=True)
    x = base[5][0]
    assert torch.allclose(once[5][0], 1 - x)
    assert torch.allclose(twice[5][0], x)
    assert once[5][1] == -1


def test_rotating_four_times_by_90_is_identity():
    base = digits(size=16, train=False)
    rotated = base
    for _ in range(4):
        rotated = rotated_digits(rotated, angle=90, keep_labels=True)
    assert torch.equal(rotated[7][0], base[7][0])
    assert rotated[7][1] == base[7][1]
    once = rotated_digits(base, angle=90)
    assert not torch.equal(once[7][0], base[7][0]) and once[7][1] == -1
    assert torch.equal(once[7][0], torch.rot90(base[7][0], 1, dims=(1, 2)))


def test_random_rotation_reproducible_and_in_range():
    base = digits(size=16, train=False)
    a = rotated_digits(base, angle="random", generator=_gen(2))
    b = rotated_digits(base, angle="random", generator=_gen(2))
    assert torch.equal(a[0][0], b[0][0])
    assert a[0][0].shape == (1, 16, 16)
    assert 0.0 <= a[0][0].min() and a[0][0].max() <= 1.0


@pytest.mark.parametrize("name", sorted(BUILTIN_OOD))
def test_builtin_ood_registry_matches_like(name):
    like = digits(size=16, channels=3, classes=[0, 1], train=True)
    ds = builtin_ood(name, like=like, num=6, generator=_gen())
    assert len(ds) == 6
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and y == -1
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_builtin_ood_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="digits59, gaussian, uniform, photos, rotated, inverted"):
        builtin_ood("textures", like=(1, 32, 32))


def test_num_classes_of_a_subset_counts_its_own_labels():
    from torch.utils.data import Subset

    from robustrep.data import digits, num_classes
    full = digits(size=8, train=None)
    low = [i for i in range(len(full)) if int(full[i][1]) <= 2]
    assert num_classes(full) == 10
    assert num_classes(Subset(full, low)) == 3


def test_labels_reads_through_nested_subsets():
    from torch.utils.data import Subset

    from robustrep.data import digits, labels
    full = digits(size=8, train=None)
    inner = Subset(full, list(range(10, 40)))
    outer = Subset(inner, [0, 5, 29])
    expected = [int(full[i][1]) for i in (10, 15, 39)]
    assert labels(outer).tolist() == expected and labels(outer).dtype == torch.long
