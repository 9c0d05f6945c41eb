"""Small pieces the GAN network families share."""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with spectral normalisation (Miyato et al., ICLR 2018) when ``enabled``."""
    return _spectral_norm(module) if enabled else module


def num_doublings(image_size: int) -> int:
    """How many x2 steps lead from a 4x4 map to ``image_size`` (a power of 2 >= 8)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image side must be a power of 2 >= 8, got {image_size}")
    return int(math.log2(image_size // 4))


def check_shape(shape: tuple[int, ...], ndim: int, what: str) -> None:
    """Raise ValueError unless ``shape`` has ``ndim`` positive sizes (one sample's shape)."""
    if len(shape) != ndim or any(int(s) < 1 for s in shape):
        raise ValueError(f"{what} needs one sample's shape with {ndim} positive size(s), "
                         f"got {tuple(shape)}")


def square_side(shape: tuple[int, ...], what: str) -> int:
    """The side ``S`` of one square image's shape ``(C, S, S)``, checked: the networks built
    from ``S`` alone would map to ``S x S`` samples whatever ``H`` was."""
    check_shape(shape, 3, what)
    if int(shape[1]) != int(shape[2]):
        raise ValueError(f"{what} takes square images, shape (C, S, S); got {tuple(shape)}")
    return int(shape[2])
