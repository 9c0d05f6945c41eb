"""Common corruptions made in-house: Gaussian noise, Gaussian blur and contrast, severities 1-5.

The corruption families follow Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019 (``hendrycks/robustness``, the CIFAR-10-C
generator); the severity parameters are those published for 32x32 CIFAR images. This is an
independent, batched implementation on tensors in [0, 1] (no PIL, no SciPy), deterministic given
a ``torch.Generator``:

- ``gaussian_noise``: ``clamp(x + N(0, s^2))`` with ``s`` in (0.04, 0.06, 0.08, 0.09, 0.10);
- ``gaussian_blur``: a separable Gaussian filter with sigma in (0.4, 0.6, 0.7, 0.8, 1.0) pixels,
  reflecting at the border;
- ``contrast``: ``(x - m) * c + m`` with ``m`` the per-image mean and ``c`` in
  (0.75, 0.5, 0.4, 0.3, 0.15).

For images larger than 32 pixels the blur sigma scales with the image side (``side / 32``), so a
severity means the same relative blur at any resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

NOISE_STD = (0.04, 0.06, 0.08, 0.09, 0.10)
BLUR_SIGMA = (0.4, 0.6, 0.7, 0.8, 1.0)
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)


def _level(values: tuple[float, ...], severity: int, name: str) -> float:
    if not isinstance(severity, int) or not 1 <= severity <= len(values):
        raise ValueError(f"{name} severity must be an integer 1..{len(values)}; got {severity!r}")
    return values[severity - 1]


def gaussian_noise(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    std = _level(NOISE_STD, severity, "gaussian_noise")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp(0.0, 1.0)


def _gaussian_kernel(sigma: float, device, dtype) -> Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    sigma = _level(BLUR_SIGMA, severity, "gaussian_blur") * max(1.0, x.shape[-1] / 32)
    k = _gaussian_kernel(sigma, x.device, x.dtype)
    r, c = k.numel() // 2, x.shape[1]
    if min(x.shape[-2:]) <= r:
        raise ValueError(f"images of {tuple(x.shape[-2:])} pixels are too small for a blur of "
                         f"radius {r}")
    # Separable filter, one depthwise conv per axis.
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                 groups=c)
    return y.clamp(0.0, 1.0)


def contrast(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    c = _level(CONTRAST, severity, "contrast")
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0.0, 1.0)


CORRUPTIONS = {"gaussian_noise": gaussian_noise, "gaussian_blur": gaussian_blur,
               "contrast": contrast}
SEVERITIES = (1, 2, 3, 4, 5)


def corrupt(x: Tensor, name: str, severity: int,
            generator: torch.Generator | None = None) -> Tensor:
    """Apply corruption ``name`` (of :data:`CORRUPTIONS`) at ``severity`` to images in [0, 1]."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"expected float images [B, C, H, W] in [0, 1], got {x.dtype} "
                         f"{tuple(x.shape)}")
    return CORRUPTIONS[name](x, severity, generator)
