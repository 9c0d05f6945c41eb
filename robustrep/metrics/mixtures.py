"""Mode coverage and sample quality on 2-D Gaussian mixtures (ring, grid).

The protocol of VEEGAN (Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using
Implicit Variational Learning", NeurIPS 2017) as used again by PacGAN (Lin et al., "PacGAN: The
power of two samples in generative adversarial networks", NeurIPS 2018): a generated sample is
*high quality* if it lies within three standard deviations of its nearest mode, and a mode is
*covered* when high-quality samples are assigned to it.

Checked against ``fjxmlzn/PacGAN`` (``synthetic_data_experiments/PacGAN/pacgan/extensions.py``,
``MetricLogger``): each sample goes to the mode at the smallest std-scaled distance, counts when
that distance is ``< 3`` (strictly), and a mode is covered when its count is non-zero. That is
our default, ``min_count=1``; pass a larger ``min_count`` for a stricter criterion and report
the value used. The mode histogram's KL
divergence to the uniform distribution is also returned (PacGAN logs its entropy and JSD).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustrep._validate import check_point_sets, check_positive, check_tensor

__all__ = ["mode_stats"]


def mode_stats(samples: Tensor, centers: Tensor, std: float | Tensor, threshold: float = 3.0,
               min_count: int = 1) -> dict[str, float | int | Tensor]:
    """Mode coverage of generated ``samples`` ``[N, 2]`` on a mixture with ``centers`` ``[M, 2]``.

    Args:
        std: the mixture components' standard deviation, one number or ``[M]`` (isotropic per
            mode). Distances are measured in units of it.
        threshold: a sample is high quality if its std-scaled distance to the nearest mode is
            below this (VEEGAN/PacGAN: 3).
        min_count: high-quality samples a mode needs to count as covered (PacGAN code: 1).

    Returns:
        ``modes_covered`` (int), ``high_quality`` (share of samples that are high quality),
        ``counts`` (``[M]`` high-quality samples per mode, int64), ``kl_uniform`` (KL divergence
        of the normalised ``counts`` to the uniform distribution over modes, in nats; 0 for a
        perfectly even spread, ``log M`` for a single mode; NaN without high-quality samples:
        an empty histogram has no distribution to compare, so the KL is undefined, and
        ``gan eval`` records it as null with a note).
    """
    check_point_sets("samples", samples, "centers", centers)
    check_positive("threshold", threshold)
    check_positive("min_count", min_count, integer=True)
    num_modes = centers.shape[0]
    std = _checked_std(std, num_modes, samples.device)
    # Direct differences (not the matmul expansion): exact at the threshold, and cheap in 2-D.
    dist = torch.cdist(samples.detach().double(), centers.detach().double(),
                       compute_mode="donot_use_mm_for_euclid_dist") / std
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist < threshold
    counts = torch.bincount(nearest[good], minlength=num_modes)
    total = int(counts.sum())
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "high_quality": total / max(samples.shape[0], 1),
        "counts": counts,
        "kl_uniform": _kl_to_uniform(counts),
    }


def _checked_std(std: float | Tensor, num_modes: int, device: torch.device) -> float | Tensor:
    """``std`` checked: a number, or a 0-d or ``[num_modes]`` tensor (as float64 on ``device``)."""
    if not isinstance(std, Tensor):
        check_positive("std", std)
        return std
    check_tensor("std", std, ndim=(0, 1))
    if std.dim() == 1 and std.shape[0] != num_modes:
        raise ValueError(f"std must be a number or one value per mode ({num_modes}), got shape "
                         f"{tuple(std.shape)}")
    std = std.to(device=device, dtype=torch.float64)
    # as check_positive for a number: a negative std makes every distance negative (every
    # sample "high quality", at its farthest mode), zero or inf makes them inf or 0
    if not bool(((std > 0) & std.isfinite()).all()):
        raise ValueError(f"std must be > 0 and finite, got values in "
                         f"[{float(std.min()):g}, {float(std.max()):g}]")
    return std


def _kl_to_uniform(counts: Tensor) -> float:
    """KL divergence of the normalised histogram ``counts`` to the uniform one, in nats; NaN for
    an empty histogram (no distribution to compare)."""
    total = int(counts.sum())
    if not total:
        return math.nan
    p = counts.double() / total
    return float(torch.where(p > 0, p * torch.log(p * counts.shape[0]), 0.0).sum())
