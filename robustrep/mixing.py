"""Sample mixing: Mixup, CutMix and SRMix, soft targets and mixed GAN losses.

Papers:
    mixup: Beyond Empirical Risk Minimization. Zhang et al., ICLR 2018 (arXiv 1710.09412).
    CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features.
    Yun et al., ICCV 2019 (arXiv 1905.04899).
    An Empirical Study of the Effects of Sample-Mixing Methods for Efficient Training of
    Generative Adversarial Networks. Takamoto & Morishita, IEEE MIPR 2021 (arXiv 2104.03535):
    proposes SRMix (Smoothed Regional Mix) and a loss-mixing formalism for GAN losses that have
    no probability label.
    SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust Classifiers.
    Lee et al., CVPR Workshops 2020 (the closest published analogue of SRMix).

Code reference: ``timm/data/mixup.py`` (``mixup_target``, ``Mixup``) for the soft-target
semantics and the ``switch_prob`` policy with one alpha per kind (``mixup_alpha``,
``cutmix_alpha``). This is an independent implementation.

Every mix is ``x_mix = w * x_a + (1 - w) * x_b`` with a weight map ``w`` in [0, 1]: a constant
``lam`` for mixup, a hard box mask for CutMix and a soft box mask for SRMix. ``w = 1`` keeps
``x_a``. The *effective* lam returned by every mix is a ``[B]`` tensor holding the share of
``x_a`` that the pixels actually contain (``lam`` for mixup, the mask mean otherwise), so soft
labels and mixed losses stay consistent with the images.

CutMix box (as in Yun et al.): sides ``H * sqrt(1 - lam)`` and ``W * sqrt(1 - lam)`` rounded
down to pixels (``int()`` in the reference and in timm), centre uniform over the image, box
clipped at the border. Rounding down and clipping only shrink the pasted area, so the effective
lam is >= lam; it is returned exactly.

SRMix mask (our choice; the paper publishes no code and its abstract does not give the mask):
a box of area exactly ``(1 - lam) * H * W`` (sides ``sqrt(1 - lam)`` of the image's, real-valued
edges) placed uniformly *inside* the image, then blurred by a separable uniform (box-filter)
kernel of ``smoothing * H`` rows by ``smoothing * W`` columns, reflecting at the image border.
Each interior edge becomes a linear ramp of that width centred on the edge, the way SmoothMix
softens its region masks. A blur with reflecting borders conserves mass and the box is never
clipped, so the mask mean is ``lam`` up to sampling at pixel centres; the returned lam is the
exact mask mean. ``lam = 0`` (the whole image) and ``lam = 1`` (an empty box) are exact copies
of ``x_b`` and ``x_a``; ``smoothing = 0`` gives a hard box with real-valued edges. CutMix, by
contrast, keeps the original uniform centre and clipping, so ``lam = 0`` there pastes a clipped
full-size box.

That sampling is coarse on small images. Where the box leaves less than about a pixel of room
(a small ``lam`` on a small side, the ramp then also under a pixel), every pixel centre near
the border falls inside it and the mask mean drops below ``lam``. Measured at ``smoothing=0.1``
(4,000 draws), the mean mask mean is ``lam`` within 0.01 on sides of 12 pixels and more, but
for ``lam`` 0.1 and 0.25 it is 0.072 and 0.249 on 8x8 images, 0.021 and 0.236 on 6x6, 0.0 and
0.125 on 4x4, 0.0 and 0.015 on 3x3. Labels and mixed losses use the exact mask mean, so they
stay consistent with the pixels; only the distribution of that effective lam departs from
``Beta(alpha, alpha)`` there.

GAN use: ``mixed_gan_loss`` mixes the losses, ``lam * loss_real + (1 - lam) * loss_fake``,
which works for hinge and Wasserstein losses and equals the soft-label BCE for ``"ns"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep import losses
from robustrep._validate import (
    check_bool,
    check_choice,
    check_index,
    check_generator,
    check_lam,
    check_nonneg,
    check_positive,
    check_probabilities,
    check_same_device,
    check_same_dtype,
    check_same_shape,
    check_tensor,
    options_repr,
)
from robustrep.registry import register_regularizer

KINDS = ("mixup", "cutmix", "srmix")
PARTNERS = ("permutation", "flip")
DEFAULT_SMOOTHING = 0.1


class MixResult(NamedTuple):
    """Output of :class:`SampleMix`.

    Attributes:
        x: Mixed batch, same shape and dtype as the input.
        lam: Effective share of the first input per sample, ``[B]``.
        index: Partner indices into the batch, or None when the partner batch was given.
    """

    x: Tensor
    lam: Tensor
    index: Tensor | None


# ---------------------------------------------------------------------------------------------
# Argument helpers


def _check_batch(batch: int) -> None:
    check_positive("batch", batch, integer=True)
    if batch < 2:
        raise ValueError(f"batch must be at least 2 so every sample has a different partner, "
                         f"got {batch}")


def _check_image(name: str, x: Tensor) -> None:
    check_tensor(name, x, ndim=4, floating=True)


def _check_smoothing(smoothing: float) -> None:
    check_nonneg("smoothing", smoothing)
    if smoothing > 1:
        raise ValueError(f"smoothing must lie in [0, 1] (a fraction of the image side), "
                         f"got {smoothing}")


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, (tuple, list)):
        raise TypeError(f"kinds must be a name or a tuple of names from {KINDS}, "
                        f"got {type(kinds).__name__}")
    if not kinds or len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must be a non-empty tuple of distinct names from {KINDS}, "
                         f"got {tuple(kinds)!r}")
    for kind in kinds:
        check_choice("kinds", kind, KINDS)
    return tuple(kinds)


def _check_alpha(alpha, kinds: tuple[str, ...]) -> float | tuple[float, ...]:
    """One concentration for every kind, or a tuple (a list is taken) with one per kind."""
    if not isinstance(alpha, (tuple, list)):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a number > 0 or a tuple of one per kind "
                            f"{kinds}, got {type(alpha).__name__}")
        check_positive("alpha", alpha)
        return alpha
    if len(alpha) != len(kinds):
        raise ValueError(f"alpha must hold one number > 0 per kind ({len(kinds)}: "
                         f"{', '.join(kinds)}), got {len(alpha)}: {tuple(alpha)!r}")
    for i, value in enumerate(alpha):
        check_positive(f"alpha[{i}] ({kinds[i]}'s)", value)
    return tuple(alpha)


def _check_pair(x_a: Tensor, x_b: Tensor, lam=None) -> None:
    check_tensor("x_b", x_b, floating=True)
    check_same_device(x_a=x_a, x_b=x_b, lam=lam if isinstance(lam, Tensor) else None)
    check_same_shape("x_a", x_a, "x_b", x_b)
    check_same_dtype(x_a=x_a, x_b=x_b)


def _lam_dtype(x: Tensor) -> torch.dtype:
    # Low-precision images still report lam in float32 so targets and losses stay accurate.
    return torch.promote_types(x.dtype, torch.float32)


def _lam_vector(lam: float | Tensor, batch: int, device, dtype=torch.float32) -> Tensor:
    """Return ``lam`` as a ``[batch]`` tensor on ``device`` after validating it."""
    check_lam(lam, batch)
    if isinstance(lam, Tensor):
        # torch.empty normalises "cuda" to "cuda:0" so the comparison is fair.
        check_same_device(lam=lam, device=torch.empty(0, device=device))
        return lam.to(dtype).expand(batch)
    return torch.full((batch,), float(lam), dtype=dtype, device=device)


def _mask_device(lam, device):
    if device is None and isinstance(lam, Tensor):
        return lam.device
    return torch.device("cpu") if device is None else torch.device(device)


# ---------------------------------------------------------------------------------------------
# Partners and lam


def permutation_partners(batch: int, generator: torch.Generator | None = None,
                         device=None) -> Tensor:
    """Random partner indices: a permutation of the batch (fixed points allowed, as in mixup).

    Args:
        batch: Batch size, at least 2.
        generator: Random source on ``device``.
        device: Device of the result.

    Returns:
        ``LongTensor [batch]``.
    """
    _check_batch(batch)
    check_generator(generator, device)
    return torch.randperm(batch, generator=generator, device=device)


def flip_partners(batch: int, device=None) -> Tensor:
    """Deterministic partner indices pairing sample ``i`` with ``batch - 1 - i`` (timm's flip)."""
    _check_batch(batch)
    return torch.arange(batch - 1, -1, -1, device=device)


def sample_lam(alpha: float, shape: int | tuple[int, ...] = (),
               generator: torch.Generator | None = None, device=None) -> Tensor:
    """Draw ``lam ~ Beta(alpha, alpha)`` with an explicit generator.

    ``torch.distributions.Beta`` takes no generator, so Beta is built from two Gamma draws:
    ``g1 / (g1 + g2)`` with ``g1, g2 ~ Gamma(alpha, 1)`` (for ``alpha < 0.02``, where the Gammas
    underflow, from their logarithms: :func:`_sample_lam_log`).

    Args:
        alpha: Concentration, > 0.
        shape: Output shape; ``()`` gives one value per batch.
        generator: Random source on ``device``.
        device: Device of the result.

    Returns:
        float32 tensor of ``shape`` with values in [0, 1].
    """
    check_positive("alpha", alpha)
    check_generator(generator, device)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"shape must be sizes >= 0 (an int or a tuple of ints), got {shape}")
    if alpha < _LOG_SPACE_ALPHA:
        return _sample_lam_log(float(alpha), shape, generator, device)
    # float64 so that small alphas rarely underflow both Gammas to 0; the clamp turns 0/0 into 0.
    conc = torch.full((2, *shape), float(alpha), dtype=torch.float64, device=device)
    g = torch._standard_gamma(conc, generator=generator)
    return (g[0] / (g[0] + g[1]).clamp_min(torch.finfo(g.dtype).tiny)).float()


# Below this alpha, Gamma(alpha) draws fall under float64's smallest normal number often enough
# that torch returns that number for both, and lam = 0.5 where Beta(alpha, alpha) is nearly
# always 0 or 1 (at alpha = 1e-3, a quarter of the draws). At and above it the ratio of Gammas is
# kept, so the draws of every usual alpha (0.1 ... 1) stay what they were.
_LOG_SPACE_ALPHA = 0.02


def _sample_lam_log(alpha: float, shape: tuple[int, ...], generator: torch.Generator | None,
                    device) -> Tensor:
    """Beta(alpha, alpha) from Gamma logarithms: ``log Gamma(a) = log Gamma(a + 1) + log(U) / a``
    (Marsaglia and Tsang's boost), and ``g1 / (g1 + g2) = sigmoid(log g1 - log g2)``."""
    conc = torch.full((2, *shape), alpha + 1.0, dtype=torch.float64, device=device)
    boosted = torch._standard_gamma(conc, generator=generator).log()
    u = torch.rand((2, *shape), generator=generator, dtype=torch.float64, device=device)
    log_g = boosted + u.clamp_min(torch.finfo(torch.float64).tiny).log() / alpha
    return torch.sigmoid(log_g[0] - log_g[1]).float()


# ---------------------------------------------------------------------------------------------
# Mixes (pure)


def mixup(x_a: Tensor, x_b: Tensor, lam: float | Tensor) -> tuple[Tensor, Tensor]:
    """Mixup: ``lam * x_a + (1 - lam) * x_b`` per sample.

    Args:
        x_a: Batch ``[B, ...]`` of rank >= 2 (images, features, ...).
        x_b: Partner batch, same shape and device.
        lam: Float, 0-d tensor or ``[B]`` tensor in [0, 1].

    Returns:
        ``(x_mix, lam_eff)``: the mix in ``x_a``'s dtype and the lam it holds, ``[B]``.
    """
    check_tensor("x_a", x_a, floating=True)
    if x_a.dim() < 2:
        raise ValueError(f"x_a must have rank >= 2 ([B, ...]), got rank {x_a.dim()} "
                         f"with shape {tuple(x_a.shape)}")
    _check_pair(x_a, x_b, lam)
    lam_x = _lam_vector(lam, x_a.shape[0], x_a.device, _lam_dtype(x_a)).to(x_a.dtype)
    weight = lam_x.view(-1, *([1] * (x_a.dim() - 1)))
    # lerp is exact at both ends, so lam = 1 returns x_a and lam = 0 returns x_b bit for bit.
    return torch.lerp(x_b, x_a, weight), lam_x.to(_lam_dtype(x_a))


def _box_edges(size: int, side: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Edges ``[low, high)`` of boxes of ``side`` pixels centred at pixel ``floor(u * size)``.

    The edges may fall outside ``[0, size]``; comparing them with pixel indices clips the box.
    """
    centre = (u * size).long().clamp_max(size - 1)
    low = centre - side // 2
    return low, low + side


def box_mask(batch: int, height: int, width: int, lam: float | Tensor,
             generator: torch.Generator | None = None, device=None) -> Tensor:
    """CutMix mask: 1 keeps ``x_a``, 0 inside a box taken from ``x_b``.

    The box has sides ``floor(H * sqrt(1 - lam))`` by ``floor(W * sqrt(1 - lam))`` and a centre
    uniform over the pixels; it is clipped at the border, so its area is at most ``1 - lam``.

    Args:
        batch: Batch size.
        height: Image height H.
        width: Image width W.
        lam: Float, 0-d tensor or ``[B]`` tensor in [0, 1].
        generator: Random source on ``device``.
        device: Device of the mask (default: lam's device, else CPU).

    Returns:
        float32 mask ``[B, 1, H, W]`` of zeros and ones.
    """
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        check_positive(name, value, integer=True)
    device = _mask_device(lam, device)
    check_generator(generator, device)
    # float64, as timm's rand_bbox: in float32 a side H * sqrt(1 - lam) just under an integer
    # can round up to it (224 * sqrt(1 - lam) = 2.99999... gives 3, not timm's 2).
    ratio = (1.0 - _lam_vector(lam, batch, device, torch.float64)).sqrt()
    u = torch.rand(2, batch, generator=generator, device=device)
    # Rounding down keeps the pasted area at most 1 - lam (rounding could overshoot it).
    y0, y1 = _box_edges(height, (ratio * height).floor().long(), u[0])
    x0, x1 = _box_edges(width, (ratio * width).floor().long(), u[1])
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
    in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
    box = in_rows[:, :, None] & in_cols[:, None, :]
    return (~box).float().unsqueeze(1)


def _window_overlap(t: Tensor, half: float, low: Tensor, high: Tensor) -> Tensor:
    """Length of the window ``[t - half, t + half]`` inside ``[low, high]``, ``[B, N]``."""
    # Written with distances from t so a window fully inside gives exactly 2 * half.
    return (torch.clamp(high - t, max=half) + torch.clamp(t - low, max=half)).clamp_min(0.0)


def _ramp_profile(size: int, side: Tensor, u: Tensor, ramp: float) -> Tensor:
    """1-D SRMix box profile at the pixel centres, ``[B, size]``.

    A box of real length ``side`` starts at ``u * (size - side)`` (so it lies inside the image)
    and is blurred by a uniform window of ``ramp`` pixels. The blur reflects at the image border,
    which conserves the box's length and keeps an edge lying on the border hard.
    """
    t = torch.arange(size, device=side.device, dtype=side.dtype)[None] + 0.5
    low = (u * (size - side))[:, None]
    high = low + side[:, None]
    if ramp == 0:
        return ((t >= low) & (t < high)).to(side.dtype)
    half = ramp / 2
    # The box and its mirror images about 0 and size; ramp <= size so one mirror per side suffices.
    cover = (_window_overlap(t, half, low, high) + _window_overlap(t, half, -high, -low)
             + _window_overlap(t, half, 2 * size - high, 2 * size - low))
    profile = (cover / ramp).clamp(0.0, 1.0)
    # A full-length box (lam = 0) must cover every pixel exactly, whatever the rounding above.
    return torch.where(side[:, None] >= size, torch.ones_like(profile), profile)


def smooth_box_mask(batch: int, height: int, width: int, lam: float | Tensor,
                    smoothing: float = DEFAULT_SMOOTHING,
                    generator: torch.Generator | None = None, device=None) -> Tensor:
    """SRMix mask: a box of area ``1 - lam`` inside the image, with edges blurred (see module doc).

    Args:
        batch: Batch size.
        height: Image height H.
        width: Image width W.
        lam: Float, 0-d tensor or ``[B]`` tensor in [0, 1].
        smoothing: Ramp width as a fraction of the image side (>= 0).
        generator: Random source on ``device``.
        device: Device of the mask (default: lam's device, else CPU).

    Returns:
        float32 mask ``[B, 1, H, W]`` with values in [0, 1]; 1 keeps ``x_a``.
    """
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        check_positive(name, value, integer=True)
    _check_smoothing(smoothing)
    device = _mask_device(lam, device)
    check_generator(generator, device)
    ratio = (1.0 - _lam_vector(lam, batch, device)).sqrt()
    u = torch.rand(2, batch, generator=generator, device=device)
    box_rows = _ramp_profile(height, ratio * height, u[0], smoothing * height)
    box_cols = _ramp_profile(width, ratio * width, u[1], smoothing * width)
    return (1.0 - box_rows[:, :, None] * box_cols[:, None, :]).unsqueeze(1)


def _check_mask(mask: Tensor, x_a: Tensor) -> None:
    check_tensor("mask", mask, ndim=4, floating=True)
    b, c, h, w = x_a.shape
    if mask.shape[0] != b or mask.shape[1] not in (1, c) or mask.shape[2:] != (h, w):
        raise ValueError(f"mask must have shape [{b}, 1 or {c}, {h}, {w}] to match x_a, "
                         f"got {tuple(mask.shape)}")
    check_same_device(x_a=x_a, mask=mask)


def mask_mix(x_a: Tensor, x_b: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mix two image batches through a mask: ``mask * x_a + (1 - mask) * x_b``.

    Args:
        x_a: Images ``[B, C, H, W]``.
        x_b: Partner images, same shape and device.
        mask: Weights of ``x_a`` in [0, 1], ``[B, 1, H, W]`` or ``[B, C, H, W]``.

    Returns:
        ``(x_mix, lam_eff)`` with ``lam_eff`` the per-sample mask mean, ``[B]``.
    """
    _check_image("x_a", x_a)
    _check_pair(x_a, x_b)
    _check_mask(mask, x_a)
    # A weight outside [0, 1] extrapolates past x_a or x_b. Read on the CPU only (on a GPU it
    # would stall the step); cutmix and srmix make their masks in range and skip it.
    if mask.device.type == "cpu" and mask.numel() and not bool(((mask >= 0) & (mask <= 1)).all()):
        raise ValueError(f"mask must hold weights of x_a in [0, 1], got values in "
                         f"[{float(mask.min()):.4g}, {float(mask.max()):.4g}]")
    return _mask_mix(x_a, x_b, mask)


def _mask_mix(x_a: Tensor, x_b: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    weight = mask.to(x_a.dtype)
    return torch.lerp(x_b, x_a, weight), weight.to(_lam_dtype(x_a)).mean((1, 2, 3))


def cutmix(x_a: Tensor, x_b: Tensor, lam: float | Tensor,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """CutMix: paste a box of ``x_b`` of area ~ ``1 - lam`` into ``x_a``.

    Args:
        x_a: Images ``[B, C, H, W]``.
        x_b: Partner images, same shape and device.
        lam: Float, 0-d tensor or ``[B]`` tensor in [0, 1].
        generator: Random source for the box positions, on the images' device.

    Returns:
        ``(x_mix, lam_eff)`` with ``lam_eff`` the kept area of ``x_a`` after clipping, ``[B]``.
    """
    _check_image("x_a", x_a)
    _check_pair(x_a, x_b, lam)
    b, _, h, w = x_a.shape
    return _mask_mix(x_a, x_b, box_mask(b, h, w, lam, generator, x_a.device))


def srmix(x_a: Tensor, x_b: Tensor, lam: float | Tensor, smoothing: float = DEFAULT_SMOOTHING,
          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """SRMix (Smoothed Regional Mix): CutMix with a soft-edged box (see module doc).

    Args:
        x_a: Images ``[B, C, H, W]``.
        x_b: Partner images, same shape and device.
        lam: Float, 0-d tensor or ``[B]`` tensor in [0, 1].
        smoothing: Edge ramp width as a fraction of the image side.
        generator: Random source for the box positions, on the images' device.

    Returns:
        ``(x_mix, lam_eff)`` with ``lam_eff`` the per-sample mask mean, ``[B]``.
    """
    _check_image("x_a", x_a)
    _check_pair(x_a, x_b, lam)
    b, _, h, w = x_a.shape
    return _mask_mix(x_a, x_b, smooth_box_mask(b, h, w, lam, smoothing, generator, x_a.device))


# ---------------------------------------------------------------------------------------------
# Targets and losses


def _dense_target(y: Tensor, num_classes: int) -> Tensor:
    """Class indices ``[B]`` as one-hot rows, or dense ``[B, K]`` probabilities as float32."""
    check_tensor("y", y, ndim=(1, 2))
    if y.dim() == 2:
        if y.shape[1] != num_classes or not y.is_floating_point():
            hint = ("; for class indices pass y.squeeze(1)" if y.shape[1] == 1
                    else "; for one-hot rows pass y.float()" if y.shape[1] == num_classes
                    else "")
            raise ValueError(f"y must be class indices [B] or floating probabilities [B, "
                             f"{num_classes}], got {y.dtype} {tuple(y.shape)}{hint}")
        check_probabilities("y", y)  # else the mixed rows would not sum to 1 either
        return y.float()
    if y.is_floating_point() or y.dtype == torch.bool:  # a bool mask is no class index
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}")
    # The range check reads values; only do it where that costs no device sync (nor a graph
    # break under torch.compile).
    if y.device.type == "cpu" and not torch.compiler.is_compiling() and y.numel() and bool(
            ((y < 0) | (y >= num_classes)).any()):
        raise ValueError(f"y must hold class indices in [0, {num_classes}), got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    return torch.zeros(y.shape[0], num_classes, device=y.device).scatter_(1, y.long()[:, None], 1.0)


def mixup_target(y: Tensor, index: Tensor, lam: float | Tensor, num_classes: int,
                 smoothing: float = 0.0) -> Tensor:
    """Soft targets for a mixed batch, with label smoothing (timm semantics).

    Each row is smoothed to ``off = smoothing / K`` and ``on = 1 - smoothing + off``, then mixed
    as ``lam * y + (1 - lam) * y[index]``.

    Args:
        y: Class indices ``[B]``, or dense probabilities ``[B, K]``: rows of values >= 0 summing
            to 1 (within 0.01), checked on CPU tensors only (on an accelerator reading them would
            cost a host sync per step).
        index: Partner indices ``[B]`` used for the images.
        lam: Effective lam: float, 0-d tensor or ``[B]`` tensor in [0, 1].
        num_classes: Number of classes K.
        smoothing: Label smoothing in [0, 1].

    Returns:
        float32 soft targets ``[B, K]``; each row sums to 1.
    """
    check_positive("num_classes", num_classes, integer=True)
    check_lam(smoothing, name="smoothing")
    one_hot = _dense_target(y, num_classes)
    check_index(index, y.shape[0])
    check_same_device(y=y, index=index, lam=lam if isinstance(lam, Tensor) else None)
    smooth = one_hot * (1.0 - smoothing) + smoothing / num_classes
    lam = _lam_vector(lam, y.shape[0], y.device)[:, None]
    return torch.lerp(smooth[index], smooth, lam)


def soft_target_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy against soft targets, per sample: ``-sum(target * log_softmax(logits))``.

    Args:
        logits: ``[B, K]``.
        target: Probabilities ``[B, K]`` (rows of values >= 0 summing to 1, checked on CPU
            tensors as ``y`` of :func:`mixup_target`).

    Returns:
        ``[B]`` losses.
    """
    check_tensor("logits", logits, ndim=2, floating=True)
    check_tensor("target", target, ndim=2, floating=True)
    check_same_shape("logits", logits, "target", target)
    check_same_device(logits=logits, target=target)
    check_probabilities("target", target)
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def mixed_gan_loss(logits: Tensor, lam: float | Tensor, kind: str = "ns") -> Tensor:
    """D loss on a real-by-fake mix: ``lam * loss_real + (1 - lam) * loss_fake`` per sample.

    Mixing losses rather than labels gives a target for losses without a probability label
    (hinge, Wasserstein); for ``"ns"`` it equals BCE-with-logits against the soft label ``lam``.

    Args:
        logits: D outputs ``[B]`` or ``[B, ...]`` (extra dims averaged, as in ``losses``).
        lam: Effective share of the real sample: float, 0-d tensor or ``[B]`` tensor in [0, 1].
        kind: One of ``losses.LOSSES``.

    Returns:
        ``[B]`` losses.
    """
    check_tensor("logits", logits, floating=True)
    if logits.dim() == 0:
        raise ValueError("logits must have a batch dimension ([B] or [B, ...]), got a scalar")
    check_choice("kind", kind, losses.LOSSES)
    check_same_device(logits=logits, lam=lam if isinstance(lam, Tensor) else None)
    lam = _lam_vector(lam, logits.shape[0], logits.device)
    return lam * losses.loss_real(logits, kind) + (1.0 - lam) * losses.loss_fake(logits, kind)


# ---------------------------------------------------------------------------------------------
# Policy


class SampleMix:
    """Sampling policy over Mixup, CutMix and SRMix.

    Per call it draws the kind: ``kinds[0]``, or with probability ``switch_prob`` one of the
    other kinds, uniformly (timm's ``switch_prob`` for two kinds); ``lam ~ Beta(a, a)`` with
    ``a`` that kind's alpha (timm's ``mixup_alpha`` and ``cutmix_alpha``); and whether to mix
    (probability ``prob``; an unmixed sample has ``lam = 1`` and is returned unchanged). Every
    candidate is built, one lam per distinct alpha and one weight map per kind, and the choice
    applied with ``torch.where``, so a call never synchronises host and device. With one alpha
    for all kinds a single lam is drawn, as ever.

    Args:
        kinds: Subset of ``("mixup", "cutmix", "srmix")``; a single name is accepted.
        alpha: Beta concentration, > 0, of every kind; or a tuple with one per kind, in the
            order of ``kinds``.
        prob: Probability of mixing, in [0, 1].
        switch_prob: Probability of switching from ``kinds[0]`` to another kind, in [0, 1].
        per_sample: Draw lam, kind and the mix decision per sample rather than per batch.
            CutMix's and SRMix's box positions are drawn per sample either way (timm's batch
            mode places one box for the whole batch), so the effective lam is per sample too.
        partner: ``"permutation"`` (random) or ``"flip"`` (``i`` with ``B - 1 - i``).
        smoothing: SRMix edge ramp width as a fraction of the image side.
    """

    def __init__(self, kinds: str | tuple[str, ...] = ("mixup",), alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, per_sample: bool = False,
                 partner: str = "permutation", smoothing: float = DEFAULT_SMOOTHING):
        kinds = _check_kinds(kinds)
        alpha = _check_alpha(alpha, kinds)
        check_lam(prob, name="prob")
        check_lam(switch_prob, name="switch_prob")
        check_bool("per_sample", per_sample)
        check_choice("partner", partner, PARTNERS)
        _check_smoothing(smoothing)
        self.kinds, self.alpha, self.prob, self.switch_prob = kinds, alpha, prob, switch_prob
        self.per_sample, self.partner, self.smoothing = per_sample, partner, smoothing

    __repr__ = options_repr  # a subclass shows its own options (mode, weight)

    def __call__(self, x: Tensor, x_b: Tensor | None = None,
                 generator: torch.Generator | None = None) -> MixResult:
        """Mix ``x`` with a partner.

        Args:
            x: Batch ``[B, C, H, W]`` (rank >= 2 when ``kinds == ("mixup",)``).
            x_b: Partner batch of the same shape (e.g. fakes mixed into reals); when None the
                partner of sample ``i`` is ``x[index[i]]`` and the batch must hold >= 2 samples.
            generator: Random source on ``x``'s device.

        Returns:
            ``MixResult(x, lam, index)``.
        """
        self._check_input(x, x_b, generator)
        index = None
        if x_b is None:
            index = self._partners(x.shape[0], generator, x.device)
            x_b = x[index]
        lams = self._draw_lams(x.shape[0], x.device, generator)
        weight, lam_eff = self._weights(x, lams, generator)
        return MixResult(torch.lerp(x_b, x, weight), lam_eff, index)

    def mix_inputs(self, x: Tensor, generator: torch.Generator | None = None) -> MixResult:
        """``classify`` input mixing (:mod:`robustrep.api`): ``x`` mixed with its partners."""
        return self(x, generator=generator)

    #: what a combined policy (:meth:`combine`) takes from its first member
    FIRST_MEMBERS_DRAWS = ("prob", "switch_prob", "per_sample", "partner")

    @classmethod
    def combine(cls, members: list[SampleMix]) -> SampleMix:
        """One policy over several listed methods (timm's Mixup/CutMix switch): the kinds in
        the order given, each with its member's alpha (one float when all are equal, else a
        tuple, as timm's ``mixup_alpha`` and ``cutmix_alpha``), the first member's other draws
        (prob, switch_prob, per_sample, partner) and SRMix's ``smoothing`` when it is listed.
        A later member's draw set away from its default and from the first's is refused: it
        would not act."""
        if not members:
            raise ValueError("combine needs at least one member")
        if not all(isinstance(m, SampleMix) for m in members):
            raise ValueError("only the sample-mixing methods (mixup, cutmix, srmix) combine in "
                             "one input-mixing place")
        first = members[0]
        for member in members[1:]:
            _check_unread_draws(first, member)
        smoothing = next((m.smoothing for m in members if "srmix" in m.kinds), first.smoothing)
        alphas = tuple(a for m in members for a in m._alphas())
        return SampleMix(tuple(k for m in members for k in m.kinds), smoothing=smoothing,
                         alpha=alphas[0] if len(set(alphas)) == 1 else alphas,
                         **{name: getattr(first, name) for name in cls.FIRST_MEMBERS_DRAWS})

    def _alphas(self) -> tuple[float, ...]:
        """The alpha of each kind, in the order of ``kinds``."""
        if isinstance(self.alpha, tuple):
            return self.alpha
        return (self.alpha,) * len(self.kinds)

    def _check_input(self, x: Tensor, x_b: Tensor | None, generator) -> None:
        needs_image = any(kind != "mixup" for kind in self.kinds)
        check_tensor("x", x, ndim=4 if needs_image else None, floating=True,
                     min_batch=2 if x_b is None else 1)
        if x.dim() < 2:
            raise ValueError(f"x must have rank >= 2 ([B, ...]), got shape {tuple(x.shape)}")
        if x_b is not None:
            check_tensor("x_b", x_b, floating=True)
            check_same_device(x=x, x_b=x_b)
            check_same_shape("x", x, "x_b", x_b)
            check_same_dtype(x=x, x_b=x_b)
        check_generator(generator, x.device)

    def _partners(self, batch: int, generator, device) -> Tensor:
        if self.partner == "flip":
            return flip_partners(batch, device)
        return permutation_partners(batch, generator, device)

    def _draw_lams(self, batch: int, device, generator) -> list[Tensor]:
        """``[B]`` lam of each kind, set to 1 where no mix is applied. One draw per distinct
        alpha, shared by the kinds that have it: only the chosen kind's lam is used, and one
        alpha for all draws exactly what a single-alpha policy always drew."""
        shape = (batch,) if self.per_sample else ()
        alphas = self._alphas()
        distinct = list(dict.fromkeys(alphas))
        drawn = [sample_lam(a, shape, generator, device) for a in distinct]
        applied = torch.rand(shape, generator=generator, device=device) < self.prob
        lams = [torch.where(applied, lam, torch.ones_like(lam)).expand(batch) for lam in drawn]
        return [lams[distinct.index(a)] for a in alphas]

    def _draw_kind(self, batch: int, device, generator) -> Tensor:
        """Index into ``self.kinds`` per sample, ``[B]``."""
        shape = (batch,) if self.per_sample else ()
        u = torch.rand(2, *shape, generator=generator, device=device)
        other = 1 + (u[1] * (len(self.kinds) - 1)).long().clamp_max(len(self.kinds) - 2)
        return torch.where(u[0] < self.switch_prob, other, torch.zeros_like(other)).expand(batch)

    def _kind_weight(self, kind: str, x: Tensor, lam: Tensor, generator) -> tuple[Tensor, Tensor]:
        """Weight map of ``x`` in ``x``'s dtype and the lam it holds, for one kind."""
        if kind == "mixup":
            lam_x = lam.to(x.dtype)
            return lam_x.view(-1, *([1] * (x.dim() - 1))), lam_x.to(_lam_dtype(x))
        b, _, h, w = x.shape
        if kind == "cutmix":
            mask = box_mask(b, h, w, lam, generator, x.device)
        else:
            mask = smooth_box_mask(b, h, w, lam, self.smoothing, generator, x.device)
        mask = mask.to(x.dtype)
        return mask, mask.to(_lam_dtype(x)).mean((1, 2, 3))

    def _weights(self, x: Tensor, lams: list[Tensor], generator) -> tuple[Tensor, Tensor]:
        """The chosen kind's weight map and effective lam, each kind's made from its lam."""
        weight, lam_eff = self._kind_weight(self.kinds[0], x, lams[0], generator)
        if len(self.kinds) == 1:
            return weight, lam_eff
        choice = self._draw_kind(x.shape[0], x.device, generator)
        for k, kind in enumerate(self.kinds[1:], start=1):
            w_k, lam_k = self._kind_weight(kind, x, lams[k], generator)
            pick = choice == k
            weight = torch.where(pick.view(-1, *([1] * (x.dim() - 1))), w_k, weight)
            lam_eff = torch.where(pick, lam_k, lam_eff)
        return weight, lam_eff


def _check_unread_draws(first: SampleMix, member: SampleMix) -> None:
    """Refuse a later member's draw option set away from its default and from the first
    member's: the combined policy would draw with the first's and drop it without a word."""
    defaults = inspect.signature(type(member)).parameters
    for name in SampleMix.FIRST_MEMBERS_DRAWS:
        value = getattr(member, name)
        if value != getattr(first, name) and value != defaults[name].default:
            raise ValueError(f"{'+'.join(member.kinds)}'s {name}={value!r} would not act: a "
                             f"combined policy draws with its first member's settings "
                             f"({'+'.join(first.kinds)}'s {name}={getattr(first, name)!r}); "
                             f"set it there")


# One registered class per mixing method, so each has its own name, paper and options; all three
# are SampleMix with one kind (the programs build a SampleMix over several kinds when a run lists
# more than one, as timm's Mixup switches between Mixup and CutMix).


class _OneKind(SampleMix):
    """One mixing kind; ``classify`` input mixing and ``gan`` extra D term (:mod:`robustrep.api`).

    In a GAN, reals are mixed with fakes and scored with the mixed loss ``lam * loss_real +
    (1 - lam) * loss_fake`` (Takamoto & Morishita 2021). ``mode="add"`` keeps D's clean real and
    fake terms and adds the mixed one times ``weight``; ``"replace"`` drops the clean terms.
    ``switch_prob`` applies when the program combines several kinds. Each class lists its
    options under ``Args`` (what ``help()`` shows); an option that another makes act on nothing
    is refused, as the programs refuse its flag (:func:`_check_acting`).
    """

    kind = "mixup"
    term = "mix"  # logged as d/mix

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, per_sample: bool = False,
                 partner: str = "permutation", smoothing: float = DEFAULT_SMOOTHING,
                 switch_prob: float = 0.5, mode: str = "add", weight: float = 1.0):
        super().__init__((self.kind,), alpha=alpha, prob=prob, per_sample=per_sample,
                         partner=partner, smoothing=smoothing, switch_prob=switch_prob)
        check_choice("mode", mode, ("add", "replace"))
        check_nonneg("weight", weight)
        _check_acting(self.kind, smoothing, mode, weight)
        self.mode, self.weight = mode, weight

    @property
    def replaces_clean(self) -> bool:
        return self.mode == "replace"

    def extra_d_term(self, score: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor,
                     loss, generator: torch.Generator | None = None) -> Tensor:
        """Reals mixed with fakes, D's mixed loss on them, times ``weight`` in add mode.

        Args:
            score: D's logits of a batch (in the programs, after their augmentation).
            x_real: Real batch.
            x_fake: Fake batch, same shape.
            loss: A :class:`robustrep.api.DLoss` (the programs pass their run's), whose
                ``mixed`` scores the mix; or a loss kind of ``losses.LOSSES``, scored as
                ``mixed_gan_loss(score(x), lam, kind).mean()``, the programs' DLoss for a D
                with one logit.
            generator: Random source on the batches' device.

        Returns:
            The loss, a scalar.
        """
        mixed_loss = _mixed_loss(loss)  # before any draw, so a wrong loss fails first
        mixed = self(x_real, x_b=x_fake, generator=generator)
        value = mixed_loss(score(mixed.x), mixed.lam)
        return (1.0 if self.replaces_clean else self.weight) * value


def _check_acting(kind: str, smoothing: float, mode: str, weight: float) -> None:
    """Refuse an option that would act on nothing. The defaults pass, so a caller that passes
    only what it sets (the programs drop the options their user left unset) is never refused;
    the programs refuse such flags first, in their own words (tasks/gan/config_checks.py)."""
    if mode == "replace" and weight != 1.0:
        raise ValueError(f"weight={weight} weighs the mixed loss added to D's clean terms "
                         f"(mode='add'), and mode='replace' has none; drop weight or use "
                         f"mode='add'")
    if kind != "srmix" and smoothing != DEFAULT_SMOOTHING:
        raise ValueError(f"smoothing={smoothing} is the edge ramp of SRMix's box, which {kind} "
                         f"does not draw; drop smoothing (or use srmix)")


def _mixed_loss(loss: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """The mixed D loss of ``loss``: a DLoss's ``mixed``, or for a kind string (as every other
    GAN function takes the loss) the batch mean of :func:`mixed_gan_loss`."""
    if isinstance(loss, str):
        check_choice("loss", loss, losses.LOSSES)
        return lambda logits, lam: mixed_gan_loss(logits, lam, loss).mean()
    if not callable(getattr(loss, "mixed", None)):
        raise TypeError(f"loss must be a loss kind ({', '.join(losses.LOSSES)}) or a "
                        f"robustrep.api.DLoss (a method mixed(logits, lam)), got "
                        f"{type(loss).__name__}")
    return loss.mixed


@register_regularizer("mixup", paper="Zhang et al., mixup, ICLR 2018",
                      acts={"gan": "extra D term", "classify": "input mixing"})
class Mixup(_OneKind):
    """Mixup: convex combinations of two inputs with lam ~ Beta(alpha, alpha).

    ``classify`` input mixing (:meth:`mix_inputs`) and ``gan`` extra D term
    (:meth:`extra_d_term`). ``weight`` other than 1 with ``mode="replace"``, and ``smoothing``
    other than its default, would act on nothing and are refused.

    Args:
        alpha: Beta concentration, > 0.
        prob: Probability of mixing, in [0, 1].
        per_sample: Draw lam, kind and the mix decision per sample rather than per batch.
        partner: ``"permutation"`` (random) or ``"flip"`` (``i`` with ``B - 1 - i``).
        smoothing: SRMix edge ramp width, a fraction of the image side; Mixup has no box, so only
            the default is accepted.
        switch_prob: Probability of switching from the first listed mixing method to another,
            when several are listed, in [0, 1].
        mode: GAN extra D term: add (clean D loss + mixed loss) or replace (the mixed real-by-fake
            loss replaces the clean one).
        weight: GAN extra D term: weight of the mixed loss in add mode.
    """

    kind = "mixup"


@register_regularizer("cutmix", paper="Yun et al., CutMix, ICCV 2019",
                      acts={"gan": "extra D term", "classify": "input mixing"})
class CutMix(_OneKind):
    """CutMix: a box of the partner pasted in; lam is the area the box leaves.

    ``classify`` input mixing (:meth:`mix_inputs`) and ``gan`` extra D term
    (:meth:`extra_d_term`). ``weight`` other than 1 with ``mode="replace"``, and ``smoothing``
    other than its default, would act on nothing and are refused.

    Args:
        alpha: Beta concentration, > 0.
        prob: Probability of mixing, in [0, 1].
        per_sample: Draw lam, kind and the mix decision per sample rather than per batch (the
            box's position is drawn per sample either way).
        partner: ``"permutation"`` (random) or ``"flip"`` (``i`` with ``B - 1 - i``).
        smoothing: SRMix edge ramp width, a fraction of the image side; CutMix's box is hard, so
            only the default is accepted.
        switch_prob: Probability of switching from the first listed mixing method to another,
            when several are listed, in [0, 1].
        mode: GAN extra D term: add (clean D loss + mixed loss) or replace (the mixed real-by-fake
            loss replaces the clean one).
        weight: GAN extra D term: weight of the mixed loss in add mode.
    """

    kind = "cutmix"


@register_regularizer("srmix", paper="Takamoto & Morishita, SRMix, MIPR 2021",
                      acts={"gan": "extra D term", "classify": "input mixing"})
class SRMix(_OneKind):
    """SRMix: a box with smoothed edges (``smoothing``); lam is the mask's mean.

    ``classify`` input mixing (:meth:`mix_inputs`) and ``gan`` extra D term
    (:meth:`extra_d_term`). ``weight`` other than 1 with ``mode="replace"`` would act on nothing
    and is refused. On sides of 8 pixels and less the mask mean falls below lam, most for small
    lams (the module doc gives the measured values); the lam returned is the exact mask mean.

    Args:
        alpha: Beta concentration, > 0.
        prob: Probability of mixing, in [0, 1].
        per_sample: Draw lam, kind and the mix decision per sample rather than per batch (the
            box's position is drawn per sample either way).
        partner: ``"permutation"`` (random) or ``"flip"`` (``i`` with ``B - 1 - i``).
        smoothing: SRMix edge ramp width as a fraction of the image side.
        switch_prob: Probability of switching from the first listed mixing method to another,
            when several are listed, in [0, 1].
        mode: GAN extra D term: add (clean D loss + mixed loss) or replace (the mixed real-by-fake
            loss replaces the clean one).
        weight: GAN extra D term: weight of the mixed loss in add mode.
    """

    kind = "srmix"
