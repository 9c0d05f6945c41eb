r"""ADA: adaptive discriminator augmentation.

Paper: Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020, arXiv 2006.06676. Reference code:
``NVlabs/stylegan2-ada-pytorch``: ``training/augment.py`` (``AugmentPipe``, the ``bgc`` pipeline of
``train.py``'s ``augpipe_specs``) and ``training/training_loop.py`` (the adaptive ``p``).

Every image D sees (reals and fakes, in the D and the G step) goes through the same stochastic,
differentiable pipeline; each transform is applied to a sample with probability ``p`` (times the
transform's multiplier, 1 in ``bgc``). Order and distributions as the reference:

- pixel blitting: x-flip (``i ~ {0, 1}``), 90° rotations (``i ~ {0..3}``), integer translation
  (``t ~ U(-0.125, 0.125)`` of the side, rounded to pixels);
- general geometry: isotropic scaling ``2^N(0, 0.2²)``, pre-rotation ``U(-π, π)``, anisotropic
  scaling ``2^N(0, 0.2²)`` (x by ``s``, y by ``1/s``), post-rotation, fractional translation
  ``N(0, 0.125²)`` of the side. The rotations are each taken with ``1 - sqrt(1 - p)``, so that one
  of the two happens with ``p``;
- colour (a 4x4 affine map of RGB): brightness ``+N(0, 0.2²)``, contrast ``×2^N(0, 0.5²)`` (about 0,
  the images being in [-1, 1]), luma flip (Householder reflection of the luma axis
  ``v = (1, 1, 1)/√3``), hue rotation about ``v`` by ``U(-π, π)``, saturation ``×2^N(0, 1)`` of the
  part orthogonal to ``v``. On one-channel images hue and saturation are skipped and the matrix is
  averaged over its rows, as the reference.

All geometric transforms are composed into one inverse matrix (output pixel -> input pixel) and
executed once: reflect padding by the margin the transformed corners need, 2x up-sampling with
the orthogonal ``sym6`` wavelet low-pass filter, bilinear ``grid_sample`` (zeros outside,
``align_corners=False``), then 2x down-sampling with the mirrored filter. For integer shifts the
round trip is exact (the filter is orthogonal); a flip or 90° rotation also mirrors the filter's
phase, so it is a mirror up to a slight low-pass (about 3% of the range on a smooth blob), as in
the reference. Every random draw comes from the optional ``generator``; with ``generator=None``
and the same global seed, the draws are the reference's, in its order, and the output equals
``AugmentPipe``'s to 1e-5 (``scripts/ada_reference_check.py``).

The adaptive probability (:class:`AdaptiveP`): the overfitting heuristic
``r_t = E[sign(D(x_real))]`` is accumulated over ``interval`` (4) iterations; then
``p += sign(r_t - target) * images / (kimg * 1000)`` with ``images`` the reals shown over the
interval, target 0.6 and ``kimg`` 500 (p can move by 1 in 500k images), and ``p`` is clamped at
``>= 0`` (not above 1, as the reference).

Differences from the reference: the pipeline is skipped when ``p == 0`` (the reference still
resamples, which is the identity up to the filter's rounding); only ``bgc``'s transforms are
implemented (no image-space filtering, noise or cutout).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._validate import check_generator, check_nonneg, check_positive, check_tensor

# Transform -> probability multiplier (stylegan2-ada train.py augpipe_specs).
BGC = dict(xflip=1.0, rotate90=1.0, xint=1.0, scale=1.0, rotate=1.0, aniso=1.0, xfrac=1.0,
           brightness=1.0, contrast=1.0, lumaflip=1.0, hue=1.0, saturation=1.0)
PIPELINES: dict[str, dict[str, float]] = {
    "blit": {k: BGC[k] for k in ("xflip", "rotate90", "xint")},
    "geom": {k: BGC[k] for k in ("scale", "rotate", "aniso", "xfrac")},
    "color": {k: BGC[k] for k in ("brightness", "contrast", "lumaflip", "hue", "saturation")},
    "bg": {k: BGC[k] for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")},
    "bgc": BGC,
}
# Ranges and standard deviations (AugmentPipe's defaults).
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
# sym6 wavelet low-pass taps (Daubechies symlet, 12 taps; the reference's ``Hz_geom``).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
ADA_TARGET, ADA_INTERVAL, ADA_KIMG = 0.6, 4, 500.0


# ---------------------------------------------------------------------------------------------
# batched homogeneous matrices ([B, 3, 3] in 2-D, [B, 4, 4] for colour)


def _eye(n: int, size: int, like: Tensor) -> Tensor:
    return torch.eye(size, dtype=like.dtype, device=like.device).expand(n, size, size).clone()


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: Tensor) -> Tensor:
    """Counter-clockwise in (x right, y down) pixel coordinates, i.e. clockwise on screen."""
    m = _eye(theta.shape[0], 3, theta)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def translate3d(t: Tensor) -> Tensor:
    """Add ``t [B]`` to every colour channel."""
    m = _eye(t.shape[0], 4, t)
    m[:, :3, 3] = t[:, None]
    return m


def scale3d(s: Tensor) -> Tensor:
    m = _eye(s.shape[0], 4, s)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def _luma_axis(like: Tensor) -> Tensor:
    return torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=like.dtype, device=like.device) / math.sqrt(3)


def luma_flip3d(i: Tensor) -> Tensor:
    """``I - 2 i v v^T``: for ``i = 1`` the reflection of the luma axis (Householder)."""
    v = _luma_axis(i)
    return _eye(i.shape[0], 4, i) - 2 * torch.outer(v, v) * i[:, None, None]


def hue3d(theta: Tensor) -> Tensor:
    """Rotation by ``theta`` about the luma axis (Rodrigues' formula in homogeneous form)."""
    vx = vy = vz = 1 / math.sqrt(3)
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    m = _eye(theta.shape[0], 4, theta)
    rows = [[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s],
            [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s],
            [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c]]
    for r, row in enumerate(rows):
        for k, value in enumerate(row):
            m[:, r, k] = value
    return m


def saturation3d(s: Tensor) -> Tensor:
    """``v v^T + (I - v v^T) s``: keeps luma, scales the chroma by ``s`` (0 gives gray)."""
    v = _luma_axis(s)
    vv = torch.outer(v, v)
    return vv + (_eye(s.shape[0], 4, s) - vv) * s[:, None, None]


# ---------------------------------------------------------------------------------------------
# random parameters


class _Draw:
    """The reference's draws: a value per sample, kept with probability ``mult * p``."""

    def __init__(self, n: int, p: float, device: torch.device, generator: torch.Generator | None):
        self.n, self.p, self.device, self.gen = n, p, device, generator

    def rand(self, *shape: int) -> Tensor:
        return torch.rand(self.n, *shape, generator=self.gen, device=self.device)

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(self.n, *shape, generator=self.gen, device=self.device)

    def gate(self, value: Tensor, identity: float, prob: float) -> Tensor:
        keep = self.rand(*([1] * (value.dim() - 1))) < prob
        return torch.where(keep, value, torch.full_like(value, identity))


def geometric_matrix(draw: _Draw, spec: dict[str, float], height: int, width: int) -> Tensor | None:
    """The composed inverse transform ``[B, 3, 3]`` (output pixel -> input pixel, centred
    coordinates), or None when the spec has no geometric transform."""
    if not any(spec.get(k, 0) > 0 for k in PIPELINES["bg"]):
        return None
    m = _eye(draw.n, 3, torch.empty(0, device=draw.device))
    p = draw.p
    if spec.get("xflip", 0) > 0:
        i = draw.gate(torch.floor(draw.rand() * 2), 0.0, spec["xflip"] * p)
        m = m @ scale2d(1 - 2 * i, torch.ones_like(i))
    if spec.get("rotate90", 0) > 0:
        i = draw.gate(torch.floor(draw.rand() * 4), 0.0, spec["rotate90"] * p)
        m = m @ rotate2d(math.pi / 2 * i)
    if spec.get("xint", 0) > 0:
        t = draw.gate((draw.rand(2) * 2 - 1) * XINT_MAX, 0.0, spec["xint"] * p)
        m = m @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
    if spec.get("scale", 0) > 0:
        s = draw.gate(torch.exp2(draw.randn() * SCALE_STD), 1.0, spec["scale"] * p)
        m = m @ scale2d(1 / s, 1 / s)
    p_rot = 1 - math.sqrt(min(max(1 - spec.get("rotate", 0) * p, 0.0), 1.0))
    if spec.get("rotate", 0) > 0:  # before the anisotropic scaling
        m = m @ rotate2d(draw.gate((draw.rand() * 2 - 1) * math.pi * ROTATE_MAX, 0.0, p_rot))
    if spec.get("aniso", 0) > 0:
        s = draw.gate(torch.exp2(draw.randn() * ANISO_STD), 1.0, spec["aniso"] * p)
        m = m @ scale2d(1 / s, s)
    if spec.get("rotate", 0) > 0:  # after it
        m = m @ rotate2d(draw.gate((draw.rand() * 2 - 1) * math.pi * ROTATE_MAX, 0.0, p_rot))
    if spec.get("xfrac", 0) > 0:
        t = draw.gate(draw.randn(2) * XFRAC_STD, 0.0, spec["xfrac"] * p)
        m = m @ translate2d(-t[:, 0] * width, -t[:, 1] * height)
    return m


def color_matrix(draw: _Draw, spec: dict[str, float], channels: int) -> Tensor | None:
    """The composed colour transform ``[B, 4, 4]`` (applied to ``(r, g, b, 1)``), or None."""
    if not any(spec.get(k, 0) > 0 for k in PIPELINES["color"]):
        return None
    c = _eye(draw.n, 4, torch.empty(0, device=draw.device))
    p = draw.p
    if spec.get("brightness", 0) > 0:
        b = draw.gate(draw.randn() * BRIGHTNESS_STD, 0.0, spec["brightness"] * p)
        c = translate3d(b) @ c
    if spec.get("contrast", 0) > 0:
        s = draw.gate(torch.exp2(draw.randn() * CONTRAST_STD), 1.0, spec["contrast"] * p)
        c = scale3d(s) @ c
    if spec.get("lumaflip", 0) > 0:
        i = draw.gate(torch.floor(draw.rand() * 2), 0.0, spec["lumaflip"] * p)
        c = luma_flip3d(i) @ c
    if spec.get("hue", 0) > 0 and channels > 1:
        theta = draw.gate((draw.rand() * 2 - 1) * math.pi * HUE_MAX, 0.0, spec["hue"] * p)
        c = hue3d(theta) @ c
    if spec.get("saturation", 0) > 0 and channels > 1:
        s = draw.gate(torch.exp2(draw.randn() * SATURATION_STD), 1.0, spec["saturation"] * p)
        c = saturation3d(s) @ c
    return c


# ---------------------------------------------------------------------------------------------
# execution


def _fir(x: Tensor, taps: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
         gain: float = 1.0, flip: bool = True) -> Tensor:
    """Separable upfirdn2d (the reference's ``_upfirdn2d_ref``): zero insertion, padding
    (negative crops), the 1-D filter along x then y, decimation. ``flip=True`` is a true
    convolution, ``False`` a correlation."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    f = taps * math.sqrt(gain)
    f = (f.flip(0) if flip else f).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, f, groups=c)  # along x: [c, 1, 1, taps]
    x = F.conv2d(x, f.transpose(2, 3), groups=c)  # along y: [c, 1, taps, 1]
    return x[:, :, ::down, ::down]


def apply_geometric(x: Tensor, g_inv: Tensor) -> Tensor:
    """Resample ``x [B, C, H, W]`` with the inverse transforms ``g_inv [B, 3, 3]`` (centred pixel
    coordinates), as the reference: reflect padding, 2x sym6 up-sampling, bilinear sampling,
    2x down-sampling."""
    n, ch, h, w = x.shape
    taps = torch.tensor(SYM6, dtype=torch.float32, device=x.device)
    taps = taps / taps.sum()
    hz_pad = len(SYM6) // 4
    g_inv = g_inv.to(torch.float32)
    # the padding the transformed corners need (plus the filter's support), at most one image
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]],
                           dtype=torch.float32, device=x.device)
    cp = (g_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, B * 4]
    margin = torch.cat([-cp, cp]).max(dim=1).values  # [x0, y0, x1, y1]
    margin = margin + torch.tensor([hz_pad * 2 - cx, hz_pad * 2 - cy] * 2, device=x.device)
    upper = torch.tensor([w - 1, h - 1] * 2, dtype=torch.float32, device=x.device)
    margin = margin.clamp(min=0).minimum(upper)
    mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
    x = F.pad(x, [mx0, mx1, my0, my1], mode="reflect")
    ones = torch.ones(n, device=x.device)
    g_inv = translate2d(ones * (mx0 - mx1) / 2, ones * (my0 - my1) / 2) @ g_inv
    # 2x up-sampling; the matrix follows to the up-sampled pixel grid
    fw = len(SYM6)
    x = _fir(x, taps, up=2, pad=((fw + 1) // 2, (fw - 2) // 2), gain=4.0)
    g_inv = scale2d(ones * 2, ones * 2) @ g_inv @ scale2d(ones / 2, ones / 2)
    g_inv = translate2d(-ones / 2, -ones / 2) @ g_inv @ translate2d(ones / 2, ones / 2)
    # sample on the output grid (normalised coordinates, as affine_grid wants)
    out_h, out_w = (h + hz_pad * 2) * 2, (w + hz_pad * 2) * 2
    g_inv = (scale2d(2 / x.shape[3] * ones, 2 / x.shape[2] * ones) @ g_inv
             @ scale2d(out_w / 2 * ones, out_h / 2 * ones))
    grid = F.affine_grid(g_inv[:, :2, :].to(x.dtype), [n, ch, out_h, out_w], align_corners=False)
    x = grid_sample_bilinear(x, grid)
    # 2x down-sampling with the mirrored filter, cropping the filter's support
    return _fir(x, taps, down=2, pad=(-hz_pad * 2 + (fw - 1) // 2, -hz_pad * 2 + (fw - 2) // 2),
                flip=False)


class _GridSample(torch.autograd.Function):
    """``y = A x``: bilinear ``grid_sample`` (zeros outside, ``align_corners=False``), linear in
    ``x`` for a fixed grid. Its backward is :class:`_GridSampleAdjoint`, so it differentiates
    twice."""

    @staticmethod
    def forward(ctx, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(x, grid)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, grid = ctx.saved_tensors
        return _GridSampleAdjoint.apply(grad_y, x, grid), None


class _GridSampleAdjoint(torch.autograd.Function):
    """``g_x = A^T g_y``; its own derivative with respect to ``g_y`` is ``A`` again."""

    @staticmethod
    def forward(ctx, grad_y: Tensor, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(grid)
        # aten's backward of grid_sample: interpolation 0 = bilinear, padding 0 = zeros
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_y, x, grid, 0, 0, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad_x: Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad_grad_x, grid), None, None


def grid_sample_bilinear(x: Tensor, grid: Tensor) -> Tensor:
    """Bilinear ``grid_sample`` (zeros outside, ``align_corners=False``) that R1 can
    differentiate twice through augmented reals on every torch the package accepts: torch before
    2.12 has no derivative for ``grid_sampler_2d_backward`` (stylegan2-ada's
    ``grid_sample_gradfix`` exists for the same reason). The grid gets no gradient (ADA's grid is
    drawn, not learned); a grid that requires one takes torch's own op."""
    if grid.requires_grad:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _GridSample.apply(x, grid)


def apply_color(x: Tensor, c: Tensor) -> Tensor:
    """Apply colour transforms ``c [B, 4, 4]`` to RGB (or, row-averaged, to gray) images."""
    n, ch, h, w = x.shape
    flat = x.reshape(n, ch, h * w)
    c = c.to(x.dtype)
    if ch == 3:
        flat = c[:, :3, :3] @ flat + c[:, :3, 3:]
    elif ch == 1:
        c = c[:, :3, :].mean(dim=1, keepdim=True)
        flat = flat * c[:, :, :3].sum(dim=2, keepdim=True) + c[:, :, 3:]
    else:
        raise ValueError(f"x: ADA's colour transforms need 1 or 3 channels, got {ch}")
    return flat.reshape(n, ch, h, w)


def _spec(pipeline: str | dict[str, float]) -> dict[str, float]:
    if isinstance(pipeline, dict):
        unknown = set(pipeline) - set(BGC)
        if unknown:
            raise ValueError(f"pipeline: unknown ADA transform(s) {sorted(unknown)}; "
                             f"valid: {', '.join(BGC)}")
        return pipeline
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline: unknown ADA pipeline {pipeline!r}; valid: "
                         f"{', '.join(PIPELINES)}")
    return PIPELINES[pipeline]


def ada_augment(x: Tensor, p: float, pipeline: str | dict[str, float] = "bgc",
                generator: torch.Generator | None = None) -> Tensor:
    """Augment images ``x [B, C, H, W]`` (C = 1 or 3, values around [-1, 1]) with probability
    ``p`` per transform; differentiable in ``x``. ``pipeline`` is a name of :data:`PIPELINES`
    or a dict transform -> probability multiplier. ``p == 0`` returns ``x`` itself."""
    spec = _spec(pipeline)
    check_nonneg("p", p)
    if p == 0:
        return x
    check_tensor("x", x, ndim=(4,), min_batch=1, floating=True)
    check_generator(generator, x.device)
    n, ch, h, w = x.shape
    draw = _Draw(n, float(p), x.device, generator)
    g_inv = geometric_matrix(draw, spec, h, w)
    if g_inv is not None:
        x = apply_geometric(x, g_inv)
    c = color_matrix(draw, spec, ch)
    if c is not None:
        x = apply_color(x, c)
    return x


class AdaptiveP:
    """The augmentation probability and the overfitting heuristic that steers it.

    Call :meth:`accumulate` with D's logits of the (augmented) reals (summed on their device,
    read only when ``p`` is adjusted), and :meth:`step` once per training iteration with the
    number of reals D saw in it; every ``interval`` iterations
    ``p += sign(r_t - target) * images / (kimg * 1000)``, clamped at 0 (stylegan2-ada
    ``training_loop.py``). ``target=None`` keeps ``p`` fixed. ``state_dict`` holds ``p``, the
    accumulator and the iteration count, so a resumed run continues the same schedule.
    """

    def __init__(self, p: float = 0.0, target: float | None = ADA_TARGET,
                 interval: int = ADA_INTERVAL, kimg: float = ADA_KIMG):
        check_nonneg("p", p)
        check_positive("interval", interval, integer=True)
        check_positive("kimg", kimg)
        self.p, self.target, self.interval, self.kimg = float(p), target, int(interval), kimg
        self.sign_sum, self.count, self.images, self.iterations = 0.0, 0, 0, 0

    @property
    def sign_sum(self) -> float:
        """The sum of the accumulated signs; reading it reads the device once."""
        if self._signs is not None:
            self._sign_sum += float(self._signs)
            self._signs = None
        return self._sign_sum

    @sign_sum.setter
    def sign_sum(self, value: float) -> None:
        self._sign_sum, self._signs = float(value), None

    @property
    def adaptive(self) -> bool:
        return self.target is not None

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add the signs of D's real logits (``[B]``; an ensemble's ``[B, K]`` is summed)."""
        if not self.adaptive:
            return
        logits = real_logits.detach().float()
        if logits.dim() == 2:
            logits = logits.sum(1)
        signs = logits.sign().sum(dtype=torch.float64)  # summed on the device: no host sync
        self._signs = signs if self._signs is None else self._signs + signs
        self.count += logits.numel()

    def rt(self) -> float | None:
        """The heuristic ``E[sign(D(x_real))]`` over what was accumulated (None if nothing)."""
        return self.sign_sum / self.count if self.count else None

    def step(self, images: int) -> None:
        """One training iteration in which D saw ``images`` reals; adjusts ``p`` when due."""
        self.iterations += 1
        self.images += int(images)
        if not self.adaptive or self.iterations % self.interval != 0:
            return
        rt = self.rt()
        if rt is not None:
            sign = (rt > self.target) - (rt < self.target)
            self.p = max(self.p + sign * self.images / (self.kimg * 1000), 0.0)
        self.sign_sum, self.count, self.images = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count,
                "images": self.images, "iterations": self.iterations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.sign_sum, self.count = float(state["sign_sum"]), int(state["count"])
        self.images, self.iterations = int(state["images"]), int(state["iterations"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(p={self.p:.4f}, target={self.target}, "
                f"interval={self.interval}, kimg={self.kimg})")
