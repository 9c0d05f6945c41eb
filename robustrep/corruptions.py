"""Common corruptions at CIFAR-10-C's five severities, applied on the fly, and the mCE summary.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019. Formulas and severity parameters are those of the CIFAR generator
``hendrycks/robustness``, ``ImageNet-C/create_c/make_cifar_c.py``; each function below names the
reference function it transcribes. Images are float tensors ``[B, C, H, W]`` in [0, 1] (``C`` = 1
or 3); randomness comes from an explicit ``torch.Generator``.

Available without the released files, 8 of the 15 benchmark corruptions: ``gaussian_noise``,
``shot_noise``, ``impulse_noise``, ``defocus_blur``, ``brightness``, ``contrast``, ``pixelate``,
``jpeg_compression``; plus the extra (held-out) ``gaussian_blur``, ``speckle_noise`` and
``saturate``. Not available on the fly (they need ImageMagick, OpenCV warps, the frost photos or
the reference's NumPy random stream): ``glass_blur``, ``motion_blur``, ``zoom_blur``, ``snow``,
``frost``, ``fog``, ``elastic_transform`` and the extra ``spatter``. For those, and for numbers
comparable with published CIFAR-10-C / CIFAR-100-C tables, read the released files
(:mod:`robustrep.data.cifar_c`).

Differences from the released files, all small: the reference stores each corrupted image as
``np.uint8`` (truncation, up to 1/255 darker); here images stay float. Noise is drawn from torch's
generator, so it has the reference's distribution but not its exact values. ``pixelate`` and
``jpeg_compression`` run PIL on the image rounded to 8 bits, as the reference does on PIL images.

mCE (:func:`mean_corruption_error`): for CIFAR the common practice, followed here, is the
*unnormalised* mean over corruptions of the error averaged over severities; ImageNet-C divides
each corruption's error by AlexNet's, which has no CIFAR counterpart.
"""

from __future__ import annotations

import io
import math
import numbers
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

# SEVERITIES and the 15 BENCHMARK corruptions (the reference's order and the released files'
# names) are declared without torch, for the command line.
from robustrep._names import BENCHMARK, SEVERITIES

__all__ = ["BENCHMARK", "CORRUPTIONS", "SEVERITIES", "corrupt", "mean_corruption_error",
           "rgb_to_hsv", "hsv_to_rgb"]


# Severity parameters of make_cifar_c.py, one tuple per function.
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_NOISE = (500, 250, 100, 75, 50)
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
SPECKLE_NOISE = (0.06, 0.1, 0.12, 0.16, 0.2)
GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
SATURATE = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))
JPEG_QUALITY = (80, 65, 58, 50, 40)
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)


def _level(values: tuple, severity: int, name: str):
    if isinstance(severity, bool) or not isinstance(severity, int) or \
            not 1 <= severity <= len(values):
        raise ValueError(f"{name} severity must be an integer 1..{len(values)}; got {severity!r}")
    return values[severity - 1]


# --- noise --------------------------------------------------------------------------------------

def gaussian_noise(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``clip(x + N(0, c^2))`` (reference ``gaussian_noise``)."""
    c = _level(GAUSSIAN_NOISE, severity, "gaussian_noise")
    return (x + c * _randn(x, generator)).clamp(0, 1)


def shot_noise(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``clip(Poisson(x * c) / c)`` (reference ``shot_noise``)."""
    c = _level(SHOT_NOISE, severity, "shot_noise")
    return (torch.poisson(x * c, generator=generator) / c).clamp(0, 1)


def impulse_noise(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Salt and pepper on a share ``c`` of the values, half each (reference ``impulse_noise``:
    ``skimage.util.random_noise(mode='s&p', amount=c)``, which draws per value, channels
    independently)."""
    c = _level(IMPULSE_NOISE, severity, "impulse_noise")
    flipped = torch.rand(x.shape, generator=generator, device=x.device) < c
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(flipped, salt.to(x.dtype), x)


def speckle_noise(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``clip(x + x * N(0, c^2))`` (reference ``speckle_noise``; an extra corruption)."""
    c = _level(SPECKLE_NOISE, severity, "speckle_noise")
    return (x + x * c * _randn(x, generator)).clamp(0, 1)


def _randn(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


# --- blur ---------------------------------------------------------------------------------------

def gaussian_blur(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Gaussian filter of sigma ``c`` (reference ``gaussian_blur``: ``skimage.filters.gaussian``,
    i.e. ``scipy.ndimage.gaussian_filter`` with ``mode='nearest'``, ``truncate=4``; an extra
    corruption)."""
    sigma = _level(GAUSSIAN_BLUR, severity, "gaussian_blur")
    radius = int(4.0 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype).to(x.device)
    return _filter2d(x, k[:, None] * k[None, :], "replicate").clamp(0, 1)


def defocus_blur(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Convolution with an anti-aliased disk (reference ``defocus_blur`` and ``disk``: the disk
    ``X^2 + Y^2 <= r^2`` on a 17x17 grid, normalised, blurred by a 3x3 Gaussian of sigma
    ``alias_blur`` (``cv2.GaussianBlur``), then ``cv2.filter2D`` with reflect-101 borders)."""
    radius, alias_blur = _level(DEFOCUS_BLUR, severity, "defocus_blur")
    return _filter2d(x, _disk(radius, alias_blur).to(x), "reflect").clamp(0, 1)


def _disk(radius: float, alias_blur: float) -> Tensor:
    half = 8 if radius <= 8 else math.ceil(radius)
    ksize = 3 if radius <= 8 else 5
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).double()
    disk = disk / disk.sum()
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    g = torch.exp(-t ** 2 / (2 * alias_blur ** 2))
    g = g / g.sum()
    # cv2.GaussianBlur's default border is reflect-101, torch's "reflect".
    kernel = _filter2d(disk[None, None], g[:, None] * g[None, :], "reflect")[0, 0]
    # Drop the all-zero rows and columns: the result is the same and small images fit.
    rows = kernel.abs().sum(1).nonzero().flatten()
    keep = slice(int(rows.min()), int(rows.max()) + 1)
    return kernel[keep, keep]


def _filter2d(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Per-channel correlation with a centred odd kernel, padded by ``mode``."""
    kh, kw = kernel.shape
    c = x.shape[1]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=mode)
    weight = kernel.to(x.dtype).expand(c, 1, kh, kw)
    return F.conv2d(padded, weight, groups=c)


# --- colour -------------------------------------------------------------------------------------

def contrast(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``clip((x - m) * c + m)`` with ``m`` the per-channel mean of each image (reference
    ``contrast``: ``np.mean(x, axis=(0, 1), keepdims=True)`` on an HxWxC image)."""
    c = _level(CONTRAST, severity, "contrast")
    m = x.mean(dim=(2, 3), keepdim=True)
    return ((x - m) * c + m).clamp(0, 1)


def brightness(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """HSV value ``V + c``, clipped to [0, 1] (reference ``brightness``, via skimage's
    ``rgb2hsv``/``hsv2rgb``). Grey images (``C = 1``) are their own value channel."""
    c = _level(BRIGHTNESS, severity, "brightness")
    return _hsv_edit(x, lambda h, s, v: (h, s, (v + c).clamp(0, 1)))


def saturate(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """HSV saturation ``S * a + b``, clipped (reference ``saturate``; an extra corruption)."""
    a, b = _level(SATURATE, severity, "saturate")
    return _hsv_edit(x, lambda h, s, v: (h, (s * a + b).clamp(0, 1), v))


def _hsv_edit(x: Tensor, edit: Callable) -> Tensor:
    grey = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if grey else x
    out = hsv_to_rgb(torch.stack(edit(*rgb_to_hsv(rgb).unbind(1)), 1)).clamp(0, 1)
    return out[:, :1] if grey else out


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """RGB ``[B, 3, H, W]`` in [0, 1] -> HSV with hue in [0, 1) (the convention of skimage's
    ``rgb2hsv`` and Python's ``colorsys``; grey pixels get hue 0 and saturation 0)."""
    r, g, b = rgb.unbind(1)
    v, _ = rgb.max(1)
    delta = v - rgb.min(1).values
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    safe = delta.clamp_min(1e-12)
    h = torch.where(v == r, (g - b) / safe,
                    torch.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv` (the sector formula of skimage's ``hsv2rgb``)."""
    h, s, v = hsv.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    table = torch.stack([torch.stack(c, 1) for c in
                         ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)
    return table.gather(0, i[None, :, None].expand(1, -1, 3, *i.shape[1:]))[0]


# --- PIL-based ----------------------------------------------------------------------------------

def pixelate(x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Down- and up-sampling with PIL's BOX filter to ``int(side * c)`` (reference ``pixelate``,
    written for side 32)."""
    c = _level(PIXELATE, severity, "pixelate")

    def fn(img: Image.Image) -> Image.Image:
        w, h = img.size
        return img.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX)
    return _per_image_pil(x, fn)


def jpeg_compression(x: Tensor, severity: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """A JPEG round trip at quality ``c`` through PIL (reference ``jpeg_compression``)."""
    quality = _level(JPEG_QUALITY, severity, "jpeg_compression")

    def fn(img: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)
    return _per_image_pil(x, fn)


def _per_image_pil(x: Tensor, fn: Callable[[Image.Image], Image.Image]) -> Tensor:
    """Apply a PIL operation to each image, rounded to 8 bits (``L`` or ``RGB``)."""
    arrays = (x.detach() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    out = []
    for a in arrays.cpu().numpy():
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        result = np.asarray(fn(img), dtype=np.uint8).reshape(a.shape)
        out.append(torch.from_numpy(result.copy()))
    return (torch.stack(out).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255.0)


# --- registry and summary -----------------------------------------------------------------------

CORRUPTIONS: dict[str, Callable[..., Tensor]] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "brightness": brightness, "contrast": contrast,
    "pixelate": pixelate, "jpeg_compression": jpeg_compression,
    # extra corruptions of CIFAR-10-C (not among the 15 of the benchmark)
    "gaussian_blur": gaussian_blur, "speckle_noise": speckle_noise, "saturate": saturate,
}


def corrupt(x: Tensor, name: str, severity: int,
            generator: torch.Generator | None = None) -> Tensor:
    """Apply corruption ``name`` (a key of :data:`CORRUPTIONS`) at ``severity`` (1-5)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"name must be one of {', '.join(CORRUPTIONS)}; got {name!r}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be float images [B, 1 or 3, H, W] in [0, 1]; got "
                        f"{type(x).__name__}")
    if x.dim() != 4 or not x.is_floating_point() or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be float images [B, 1 or 3, H, W] in [0, 1]; got "
                         f"{getattr(x, 'dtype', type(x).__name__)} "
                         f"{tuple(getattr(x, 'shape', ()))}")
    return CORRUPTIONS[name](x, severity, generator)


def mean_corruption_error(accuracy: Mapping[str, Mapping[int | str, float]],
                          clean_acc: float) -> dict[str, float]:
    """mCE and relative mCE from accuracies per corruption and severity (Hendrycks & Dietterich).

    ``CE_c = mean_s (1 - acc_{c,s})``; ``mCE = mean_c CE_c`` (unnormalised, the CIFAR practice);
    relative ``CE_c = mean_s (acc_clean - acc_{c,s})`` and ``relative mCE = mean_c`` of it (the
    paper's relative mCE without the AlexNet normalisation). Also returns the mean accuracy.
    """
    if not accuracy:
        raise ValueError("accuracy must hold at least one corruption")
    clean_acc = _fraction("clean_acc", clean_acc)
    ce, rel, acc = [], [], []
    for name, per in accuracy.items():
        if not per:
            raise ValueError(f"accuracy[{name!r}] holds no severity")
        values = [_fraction(f"accuracy[{name!r}][{s!r}]", v) for s, v in per.items()]
        ce.append(sum(1 - v for v in values) / len(values))
        rel.append(sum(clean_acc - v for v in values) / len(values))
        acc.append(sum(values) / len(values))
    n = len(ce)
    return {"mce": sum(ce) / n, "relative_mce": sum(rel) / n, "mean_acc": sum(acc) / n,
            "clean_error": 1 - clean_acc}


def _fraction(name: str, value) -> float:
    """An accuracy as a fraction: a value in percent (95.2) would give a negative error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be an accuracy as a fraction in [0, 1]; got {value!r}")
    return float(value)
