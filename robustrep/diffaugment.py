"""DiffAugment: differentiable augmentation of both real and generated images before D.

Paper: Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020, arXiv 2006.10738. Reference code: ``mit-han-lab/data-efficient-gans``
(``DiffAugment_pytorch.py``). The same transform is applied to reals and fakes in both the D and
the G step, and it is differentiable, so G's gradient flows through it.

Policies (comma-separated, applied in the order given; one draw per sample):

- ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c`` (mean over
  channels), contrast ``(x - mean) * (u + 0.5) + mean`` (mean over channels and pixels), with
  ``u ~ U(0, 1)`` drawn per sample for each of the three.
- ``translation``: an integer shift of up to ``round(ratio * side)`` pixels (ratio 1/8) per axis,
  drawn uniformly from ``[-s, s]``; pixels shifted in are zero.
- ``cutout``: a square of side ``round(ratio * side)`` (ratio 1/2) set to zero, its centre drawn
  uniformly (it may be cut by the border, as in the reference).

Every draw comes from the ``generator`` passed in, so a fixed generator gives a fixed transform.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._validate import check_generator, check_tensor
from robustrep._lists import check_no_empty_item

POLICIES = ("color", "translation", "cutout")


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def rand_brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return x + (_uniform(x, generator) - 0.5)


def rand_saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def rand_contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Brightness, then saturation, then contrast (the reference's ``color`` list)."""
    return rand_contrast(rand_saturation(rand_brightness(x, generator), generator), generator)


def _randint(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randint(low, high, (n,), generator=generator, device=x.device)


def translate(x: Tensor, shift_y: Tensor, shift_x: Tensor) -> Tensor:
    """Shift sample i by ``(shift_y[i], shift_x[i])`` pixels, zero fill (differentiable in x).

    Output pixel ``(r, c)`` takes input pixel ``(r + shift_y, c + shift_x)`` when it exists.
    """
    n, ch, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) + shift_y.view(n, 1, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) + shift_x.view(n, 1, 1)
    # pad one zero pixel on every side and point everything outside the image at it
    rows = rows.clamp(-1, h) + 1
    cols = cols.clamp(-1, w) + 1
    padded = F.pad(x, [1, 1, 1, 1])
    flat = padded.reshape(n, ch, (h + 2) * (w + 2))
    index = (rows * (w + 2) + cols).reshape(n, 1, h * w).expand(n, ch, h * w)
    return flat.gather(2, index).reshape(n, ch, h, w)


def rand_translation(x: Tensor, ratio: float = 0.125,
                     generator: torch.Generator | None = None) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = _randint(-sy, sy + 1, n, x, generator)
    shift_x = _randint(-sx, sx + 1, n, x, generator)
    return translate(x, shift_y, shift_x)


def cutout(x: Tensor, center_y: Tensor, center_x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size`` box per sample, rows ``center - size // 2`` onwards (clipped at borders)."""
    n, _, h, w = x.shape
    top = (center_y - size[0] // 2).view(n, 1, 1)
    left = (center_x - size[1] // 2).view(n, 1, 1)
    r = torch.arange(h, device=x.device).view(1, h, 1)
    c = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (r >= top) & (r < top + size[0]) & (c >= left) & (c < left + size[1])
    return x * (~inside).unsqueeze(1).to(x.dtype)


def rand_cutout(x: Tensor, ratio: float = 0.5,
                generator: torch.Generator | None = None) -> Tensor:
    n, _, h, w = x.shape
    size = (int(h * ratio + 0.5), int(w * ratio + 0.5))
    # centres over the whole image (one more position for an even box, as the reference)
    center_y = _randint(0, h + (1 - size[0] % 2), n, x, generator)
    center_x = _randint(0, w + (1 - size[1] % 2), n, x, generator)
    return cutout(x, center_y, center_x, size)


_OPS = {"color": color, "translation": rand_translation, "cutout": rand_cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; ``""`` -> ``()``."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str, got {type(policy).__name__}")
    check_no_empty_item("policy", policy, f"transform names separated by commas "
                        f"({', '.join(POLICIES)})")
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"policy: unknown DiffAugment transform {name!r}; valid: "
                             f"{', '.join(POLICIES)} (comma-separated)")
    return names


def diff_augment(x: Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> Tensor:
    """Apply the policy's transforms to images ``x [B, C, H, W]``; ``""`` returns ``x`` itself."""
    names = parse_policy(policy)
    if not names:
        return x
    check_tensor("x", x, ndim=(4,), min_batch=1, floating=True)
    check_generator(generator, x.device)
    for name in names:
        x = _OPS[name](x, generator=generator)
    return x


class DiffAugment:
    """The policy as a callable: ``DiffAugment("color,translation,cutout")(x, generator)``."""

    def __init__(self, policy: str = "color,translation,cutout"):
        self.names = parse_policy(policy)
        self.policy = ",".join(self.names)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return diff_augment(x, self.policy, generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.policy!r})"
