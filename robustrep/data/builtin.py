"""Built-in data that needs no download: real handwritten digits, 2-D Gaussian mixtures, OOD sets.

Sources:

- ``digits``: scikit-learn's bundled copy of the test part of the UCI "Optical Recognition of
  Handwritten Digits" data (optdigits; Alpaydin & Kaynak, 1998): 1,797 real handwritten digits,
  8x8 pixels with values 0..16, read by :func:`sklearn.datasets.load_digits` and resized here.
- ``ring_mixture`` / ``grid_mixture``: the 2-D mode-collapse benchmark of Srivastava et al.,
  "VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational Learning", NeurIPS 2017,
  reused by Lin et al., "PacGAN: The power of two samples in generative adversarial networks",
  NeurIPS 2018: 8 Gaussians on a ring of radius 2 with std 0.02, and 25 Gaussians centred on
  {-4, -2, 0, 2, 4}^2 with std 0.05; modes are drawn with equal probability.
- ``noise``: the Gaussian and uniform noise OOD sets of Hendrycks, Mazeika & Dietterich, "Deep
  Anomaly Detection with Outlier Exposure", ICLR 2019 (hendrycks/outlier-exposure,
  ``CIFAR/test.py``), which draws N(0, 0.5^2) clipped to [-1, 1] and U(-1, 1) in a [-1, 1] input
  space; here the same laws are mapped to [0, 1]: N(0.5, 0.25^2) clipped, and U(0, 1).
- ``photo_patches``: crops of the two photographs bundled with scikit-learn
  (:func:`sklearn.datasets.load_sample_images`: ``china.jpg`` and ``flower.jpg``).

Images are float tensors ``[C, H, W]`` in [0, 1] with ``int`` labels; OOD samples are labelled -1.
Randomness comes from an optional CPU ``torch.Generator``; the digits train/test split is fixed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

from robustrep._validate import check_choice, check_generator, check_positive
from robustrep.data._common import OOD_LABEL, ImageTensorDataset, MappedDataset, image_shape

__all__ = [
    "digits", "digits_ood_split", "MixtureSpec", "MixtureSample", "mixture", "ring_mixture",
    "grid_mixture", "ring_centers", "grid_centers", "noise", "photo_patches", "rotated_digits",
    "inverted_digits", "BUILTIN_OOD", "builtin_ood", "ID_CLASSES", "OOD_CLASSES",
]

# The digits split is part of the data, not of a run: one fixed seed, stratified per class.
_SPLIT_SEED = 0
_TRAIN_FRACTION = 0.8
ID_CLASSES = (0, 1, 2, 3, 4)
OOD_CLASSES = (5, 6, 7, 8, 9)


# --------------------------------------------------------------------------------------------
# digits


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return images, torch.from_numpy(bunch.target.astype(np.int64))


@lru_cache(maxsize=1)
def _digits_train_mask() -> Tensor:
    """Boolean mask of the fixed stratified 80/20 split: 80% of each class goes to train."""
    _, labels = _digits_raw()
    gen = torch.Generator().manual_seed(_SPLIT_SEED)
    mask = torch.zeros(labels.numel(), dtype=torch.bool)
    for cls in range(10):
        idx = (labels == cls).nonzero().flatten()
        num_train = round(_TRAIN_FRACTION * idx.numel())
        mask[idx[torch.randperm(idx.numel(), generator=gen)[:num_train]]] = True
    return mask


def _resize(images: Tensor, size: int | tuple[int, int], channels: int) -> Tensor:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) != hw:
        images = F.interpolate(images, size=hw, mode="bilinear", align_corners=False,
                               antialias=True)
    images = images.clamp(0.0, 1.0)
    if channels == 3 and images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.contiguous()


def _check_size_channels(size: Any, channels: Any) -> None:
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size must be an int or a pair (height, width), got {size!r}")
        for s in size:
            check_positive("size", s, integer=True)
    else:
        check_positive("size", size, integer=True)
    check_choice("channels", channels, (1, 3))


def digits(size: int = 32, channels: int = 1, classes: Sequence[int] | None = None,
           train: bool | None = True) -> ImageTensorDataset:
    """The 1,797 bundled real handwritten digits, resized to ``size`` x ``size``.

    Args:
        size: output side length, or ``(height, width)``; bilinear interpolation with
            antialiasing.
        channels: 1 (grey) or 3 (the grey image repeated).
        classes: the digit classes to keep (original labels are kept), or None for all ten.
        train: True for the fixed 80% train split, False for the 20% test split, None for all.

    Returns:
        A dataset of images ``[N, channels, size, size]`` in [0, 1] and labels in 0..9.
    """
    _check_size_channels(size, channels)
    if train is not None and not isinstance(train, bool):
        raise TypeError(f"train must be True, False or None, got {type(train).__name__}")
    images, labels = _digits_raw()
    keep = torch.ones(labels.numel(), dtype=torch.bool)
    if train is not None:
        keep = _digits_train_mask() if train else ~_digits_train_mask()
    if classes is not None:
        classes = [int(c) for c in classes]
        for c in classes:
            check_choice("classes", c, range(10))
        if not classes:
            raise ValueError("classes must name at least one digit 0..9, got an empty list")
        keep = keep & torch.isin(labels, torch.tensor(classes))
    return ImageTensorDataset(_resize(images[keep], size, channels), labels[keep].clone())


def digits_ood_split(size: int = 32, channels: int = 1
                     ) -> tuple[ImageTensorDataset, ImageTensorDataset, ImageTensorDataset]:
    """Semantic-shift OOD benchmark on digits: classes 0-4 are known, 5-9 unknown.

    Returns:
        ``(id_train, id_test, ood_test)``: the train and test splits of digits 0-4 (labels 0..4)
        and the test split of digits 5-9 with every label set to -1.
    """
    id_train = digits(size, channels, ID_CLASSES, train=True)
    id_test = digits(size, channels, ID_CLASSES, train=False)
    ood = digits(size, channels, OOD_CLASSES, train=False)
    ood_test = ImageTensorDataset(ood.images, torch.full_like(ood.targets, OOD_LABEL))
    return id_train, id_test, ood_test


# --------------------------------------------------------------------------------------------
# 2-D Gaussian mixtures


class MixtureSample(NamedTuple):
    """What the mixture samplers return: ``samples [N, 2]``, ``centers [M, 2]`` and ``std``."""

    samples: Tensor
    centers: Tensor
    std: float


@dataclass(frozen=True)
class MixtureSpec:
    """An isotropic, equally weighted 2-D Gaussian mixture.

    Attributes:
        name: the benchmark's name (``"ring"``, ``"grid"``).
        centers: the mode centres ``[M, 2]``.
        std: the per-coordinate standard deviation of every mode.
    """

    name: str
    centers: Tensor
    std: float

    @property
    def num_modes(self) -> int:
        return self.centers.shape[0]

    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` points ``[N, 2]`` (mode uniformly, then Gaussian noise)."""
        check_positive("num_samples", num_samples, integer=True)
        check_generator(generator, torch.device("cpu"))
        mode = torch.randint(self.num_modes, (num_samples,), generator=generator)
        noise = torch.randn(num_samples, 2, generator=generator)
        return self.centers[mode] + self.std * noise


def ring_centers(num_modes: int = 8, radius: float = 2.0) -> Tensor:
    """``num_modes`` points evenly spaced on a circle of ``radius``, the first on the x axis."""
    check_positive("num_modes", num_modes, integer=True)
    check_positive("radius", radius)
    angle = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (radius * torch.stack([angle.cos(), angle.sin()], dim=1)).float()


def grid_centers(num_modes: int = 25, spacing: float = 2.0) -> Tensor:
    """A square grid of ``num_modes`` (a perfect square) points, ``spacing`` apart, centred on 0."""
    check_positive("num_modes", num_modes, integer=True)
    check_positive("spacing", spacing)
    side = math.isqrt(num_modes)
    if side * side != num_modes:
        raise ValueError(f"num_modes must be a perfect square for a grid, got {num_modes}")
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def _ring_spec(num_modes: int = 8, radius: float = 2.0, std: float = 0.02) -> MixtureSpec:
    check_positive("std", std)
    return MixtureSpec("ring", ring_centers(num_modes, radius), float(std))


def _grid_spec(num_modes: int = 25, spacing: float = 2.0, std: float = 0.05) -> MixtureSpec:
    check_positive("std", std)
    return MixtureSpec("grid", grid_centers(num_modes, spacing), float(std))


_MIXTURES: dict[str, Callable[..., MixtureSpec]] = {"ring": _ring_spec, "grid": _grid_spec}


def mixture(name: str, **kwargs: Any) -> MixtureSpec:
    """The mixture benchmark ``name`` (``"ring"`` or ``"grid"``) with optional overrides.

    ``ring`` takes ``num_modes=8, radius=2.0, std=0.02``; ``grid`` takes ``num_modes=25,
    spacing=2.0, std=0.05``. Keyword arguments that are None are dropped, so a CLI flag left unset
    never overrides the benchmark default.
    """
    check_choice("name", name, _MIXTURES)
    return _MIXTURES[name](**{k: v for k, v in kwargs.items() if v is not None})


def ring_mixture(num_samples: int, num_modes: int = 8, radius: float = 2.0, std: float = 0.02,
                 generator: torch.Generator | None = None) -> MixtureSample:
    """Sample the VEEGAN/PacGAN ring: ``num_modes`` Gaussians on a circle of ``radius``.

    Returns:
        ``(samples [num_samples, 2], centers [num_modes, 2], std)``.
    """
    spec = _ring_spec(num_modes, radius, std)
    return MixtureSample(spec.sample(num_samples, generator), spec.centers, spec.std)


def grid_mixture(num_samples: int, num_modes: int = 25, spacing: float = 2.0, std: float = 0.05,
                 generator: torch.Generator | None = None) -> MixtureSample:
    """Sample the VEEGAN/PacGAN grid: 25 Gaussians at {-4, -2, 0, 2, 4}^2 by default.

    Returns:
        ``(samples [num_samples, 2], centers [num_modes, 2], std)``.
    """
    spec = _grid_spec(num_modes, spacing, std)
    return MixtureSample(spec.sample(num_samples, generator), spec.centers, spec.std)


# --------------------------------------------------------------------------------------------
# OOD sets


def _ood_dataset(images: Tensor) -> ImageTensorDataset:
    return ImageTensorDataset(images, torch.full((images.shape[0],), OOD_LABEL, dtype=torch.long))


def _check_shape(shape: Any) -> tuple[int, int, int]:
    # Each size must already be an int: int() would read "abc" as a string of sizes and 3.5 as 3.
    sizes = tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else ()
    if len(sizes) != 3 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                  and s > 0 for s in sizes):
        raise ValueError(f"shape must be three positive ints (C, H, W), got {shape!r}")
    return tuple(int(s) for s in sizes)


def noise(kind: str = "gaussian", num: int = 1000, shape: Sequence[int] = (3, 32, 32),
          generator: torch.Generator | None = None) -> ImageTensorDataset:
    """Noise images (label -1) as in Outlier Exposure's evaluation, mapped to [0, 1].

    OE draws N(0, 0.5^2) clipped to [-1, 1] and U(-1, 1) in the *normalised* input; these are the
    same images only for a model that normalises with mean = std = 0.5 (the digits runs). For a
    model with its own statistics (CIFAR's std is about 0.25) they are about twice as wide as
    OE's, so the noise rows are not comparable with published OE numbers.

    Args:
        kind: ``"gaussian"`` (N(0.5, 0.25^2) per pixel, clipped to [0, 1]) or ``"uniform"``
            (U(0, 1) per pixel).
        num: number of images.
        shape: ``(C, H, W)``.
        generator: CPU generator.
    """
    check_choice("kind", kind, ("gaussian", "uniform"))
    check_positive("num", num, integer=True)
    shape = _check_shape(shape)
    check_generator(generator, torch.device("cpu"))
    if kind == "gaussian":
        images = (0.5 + 0.25 * torch.randn(num, *shape, generator=generator)).clamp_(0.0, 1.0)
    else:
        images = torch.rand(num, *shape, generator=generator)
    return _ood_dataset(images)


@lru_cache(maxsize=1)
def _sample_photos() -> tuple[Tensor, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
                 for img in load_sample_images().images)


def _to_grey(images: Tensor) -> Tensor:
    # ITU-R BT.601 luma, the weights PIL uses for convert("L").
    weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def photo_patches(num: int = 1000, size: int | tuple[int, int] = 32, channels: int = 3,
                  generator: torch.Generator | None = None,
                  scale: tuple[float, float] = (0.1, 0.5)) -> ImageTensorDataset:
    """Random square crops of scikit-learn's two sample photographs, resized (label -1).

    Args:
        num: number of patches.
        size: output side length, or ``(height, width)``.
        channels: 3 (RGB) or 1 (grey, BT.601 luma).
        generator: CPU generator for the photo, crop side and position.
        scale: range of the crop side as a fraction of the photo's shorter side.
    """
    check_positive("num", num, integer=True)
    _check_size_channels(size, channels)
    check_generator(generator, torch.device("cpu"))
    low, high = (float(s) for s in scale)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}")
    photos = _sample_photos()
    which = torch.randint(len(photos), (num,), generator=generator).tolist()
    frac = (low + (high - low) * torch.rand(num, generator=generator)).tolist()
    corner = torch.rand(num, 2, generator=generator).tolist()
    patches = []
    for k, f, (u, v) in zip(which, frac, corner):
        photo = photos[k]
        height, width = photo.shape[-2:]
        side = max(1, round(f * min(height, width)))
        top, left = int(u * (height - side + 1)), int(v * (width - side + 1))
        patches.append(_resize(photo[None, :, top:top + side, left:left + side], size, 3))
    images = torch.cat(patches)
    if channels == 1:
        images = _to_grey(images).clamp_(0.0, 1.0)
    return _ood_dataset(images)


def _check_dataset(dataset: Any) -> None:
    if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
        raise TypeError(f"dataset must be a map-style torch Dataset, got {type(dataset).__name__}")


class _Rotate:
    """Counter-clockwise rotation by a fixed angle or by a per-index angle (picklable)."""

    def __init__(self, angle: float | None, angles: list[float] | None) -> None:
        self.angle, self.angles = angle, angles

    def __call__(self, image: Tensor, index: int) -> Tensor:
        deg = self.angles[index] if self.angles is not None else self.angle
        if deg % 90 == 0:
            return torch.rot90(image, int(deg // 90) % 4, dims=(-2, -1))
        from torchvision.transforms.functional import InterpolationMode
        from torchvision.transforms.functional import rotate as tv_rotate
        return tv_rotate(image, deg, interpolation=InterpolationMode.BILINEAR, fill=[0.0])


def _invert(image: Tensor, index: int) -> Tensor:
    return 1.0 - image


def rotated_digits(dataset: Dataset, angle: float | str = 90,
                   generator: torch.Generator | None = None,
                   keep_labels: bool = False) -> MappedDataset:
    """``dataset`` with every image rotated counter-clockwise (a covariate-shift OOD set).

    Multiples of 90 degrees use an exact pixel permutation (four 90-degree turns are the
    identity; 90 and 270 swap height and width); other angles use bilinear rotation with black
    fill. Works on any image dataset.

    Args:
        dataset: yields ``(image [C, H, W], label)``.
        angle: degrees, or ``"random"`` for one angle per sample drawn uniformly in [0, 360).
        generator: CPU generator for ``"random"``.
        keep_labels: keep the original labels instead of setting them to -1.
    """
    _check_dataset(dataset)
    check_generator(generator, torch.device("cpu"))
    if angle == "random":
        rotate = _Rotate(None, (360.0 * torch.rand(len(dataset), generator=generator)).tolist())
    elif isinstance(angle, (int, float)) and not isinstance(angle, bool):
        rotate = _Rotate(float(angle), None)
    else:
        raise ValueError(f"angle must be a number of degrees or 'random', got {angle!r}")
    return MappedDataset(dataset, rotate, None if keep_labels else OOD_LABEL)


def inverted_digits(dataset: Dataset, keep_labels: bool = False) -> MappedDataset:
    """``dataset`` with every image inverted, ``1 - x`` (a covariate-shift OOD set)."""
    _check_dataset(dataset)
    return MappedDataset(dataset, _invert, None if keep_labels else OOD_LABEL)


# --------------------------------------------------------------------------------------------
# registry of built-in OOD sets


def _like_shape(like: Any) -> tuple[int, int, int]:
    if isinstance(like, Dataset):
        return image_shape(like)
    return _check_shape(like)


def _digit_source(shape: tuple[int, int, int], classes: Sequence[int]) -> ImageTensorDataset:
    channels, height, width = shape
    check_choice("channels of like", channels, (1, 3))
    return digits((height, width), channels, classes, train=False)


def _take(dataset: Dataset, num: int | None, generator: torch.Generator | None) -> Dataset:
    """A random subset of ``num`` samples (all of them when ``num`` is None)."""
    if num is None:
        return dataset
    check_positive("num", num, integer=True)
    if num > len(dataset):
        raise ValueError(f"num must be at most {len(dataset)} for this set, got {num}")
    order = torch.randperm(len(dataset), generator=generator)[:num].sort().values
    return Subset(dataset, order.tolist())


def _digits59(shape, num, generator):
    ood = _digit_source(shape, OOD_CLASSES)
    return _take(_ood_dataset(ood.images), num, generator)


def _gaussian(shape, num, generator):
    return noise("gaussian", 1000 if num is None else num, shape, generator)


def _uniform(shape, num, generator):
    return noise("uniform", 1000 if num is None else num, shape, generator)


def _photos(shape, num, generator):
    return photo_patches(1000 if num is None else num, shape[1:], shape[0], generator)


def _rotated(shape, num, generator):
    return _take(rotated_digits(_digit_source(shape, ID_CLASSES)), num, generator)


def _inverted(shape, num, generator):
    return _take(inverted_digits(_digit_source(shape, ID_CLASSES)), num, generator)


# Builders take (shape, num, generator). "rotated" and "inverted" transform the test split of the
# known digits 0-4, so against the digits 0-4 classifier they are pure covariate shift.
BUILTIN_OOD: dict[str, Callable[[tuple[int, int, int], int | None, Any], Dataset]] = {
    "digits59": _digits59,
    "gaussian": _gaussian,
    "uniform": _uniform,
    "photos": _photos,
    "rotated": _rotated,
    "inverted": _inverted,
}


def builtin_ood(name: str, like: Dataset | Sequence[int] = (1, 32, 32), num: int | None = None,
                generator: torch.Generator | None = None) -> Dataset:
    """A built-in OOD set whose images have the shape of ``like``; every label is -1.

    Args:
        name: one of ``BUILTIN_OOD``: ``digits59`` (test digits 5-9), ``gaussian``/``uniform``
            (noise), ``photos`` (sample-photo patches), ``rotated``/``inverted`` (test digits 0-4
            turned by 90 degrees / inverted).
        like: the in-distribution dataset, or its image shape ``(C, H, W)``. Digit-based sets
            need ``C`` in (1, 3).
        num: number of samples; None gives all test digits for digit-based sets and 1,000
            otherwise.
        generator: CPU generator for the noise, the patches and the subset drawn when ``num`` is
            set.
    """
    if name not in BUILTIN_OOD:
        raise ValueError(f"unknown built-in OOD set {name!r}; valid names: "
                         f"{', '.join(BUILTIN_OOD)}")
    if num is not None:
        check_positive("num", num, integer=True)
    check_generator(generator, torch.device("cpu"))
    return BUILTIN_OOD[name](_like_shape(like), num, generator)
