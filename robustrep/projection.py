"""Multiple random projections: K fixed projections of the image, one small discriminator each.

Paper: Neyshabur, Bhojanapalli, Chakrabarti, "Stabilizing GAN Training with Multiple Random
Projections", arXiv 1705.07831 (ICLR 2018 submission). Reference code (TensorFlow):
https://github.com/ayanc/rpgan (``filts/rproj.py``, ``rpglib/disc.py``, ``train.py``).

Each view ``k`` sees ``P_k(x)``: a fixed 8x8 conv with stride 2 whose single output filter is drawn
i.i.d. N(0, 1) and scaled to unit Frobenius norm (64x64x3 -> 32x32x1). Discriminator ``D_k`` is a
DCGAN-style stack on that map, with its own weights. The losses (non-saturating in the reference)
are

.. math::

    L_D = \\sum_k \\tfrac12 \\big[\\mathbb{E}\\,\\ell_{real}(D_k(P_k x)) +
          \\mathbb{E}\\,\\ell_{fake}(D_k(P_k G(z)))\\big], \\qquad
    L_G = \\tfrac1K \\sum_k \\mathbb{E}\\,\\ell_G(D_k(P_k G(z))).

Layout. The reference loops over the K members. Here all K projections are the output channels of
one conv (``[B, K*p, h, w]``) and every discriminator layer is one grouped conv with
``groups=K``, which reads exactly that channel layout: member ``k`` owns channel block ``k`` of
every activation and row block ``k`` of every weight. :meth:`ProjectionEnsemble.forward_loop`
keeps the per-member loop as the reference path for tests and benchmarks.

Spectral normalisation (not in the reference) must be per member: :class:`GroupedSpectralNorm`
runs a batched power iteration over the K weight blocks, so each member is divided by its own
largest singular value.

The ensemble for 2-D points (K random directions, one small MLP per projection) is
:class:`robustrep.nets.mlp.MLPProjectionEnsemble`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from robustrep import losses
from robustrep._validate import (check_bool, check_choice, check_generator, check_model_dtype,
                                 check_positive, check_same_device, check_tensor, first_tensor)
from robustrep.mixing import mixed_gan_loss
from robustrep.registry import register_discriminator

IMPLS = ("grouped", "loop")
STRIDE = 2  # rpglib/disc.py reads it from filts.npz; every shipped filter set uses 2.


def random_projection_filters(num_views: int, in_channels: int = 3, out_channels: int = 1,
                              kernel_size: int = 8, generator: torch.Generator | None = None
                              ) -> Tensor:
    """Draw the fixed projection filters, as in ``filts/rproj.py``.

    Args:
        num_views: number of projections K.
        in_channels: image channels.
        out_channels: output channels per view (1 in the reference).
        kernel_size: square kernel size (8 in the reference).
        generator: CPU generator for the Gaussian draw.

    Returns:
        Conv weight ``[num_views * out_channels, in_channels, kernel_size, kernel_size]``; view
        ``k`` owns rows ``k*out_channels:(k+1)*out_channels`` and every row (one filter) has unit
        Frobenius norm.
    """
    check_positive("num_views", num_views, integer=True)
    check_positive("in_channels", in_channels, integer=True)
    check_positive("out_channels", out_channels, integer=True)
    _check_kernel_size(kernel_size)
    check_generator(generator, torch.device("cpu"))
    w = torch.randn(num_views * out_channels, in_channels, kernel_size, kernel_size,
                    generator=generator)
    return w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def _check_kernel_size(kernel_size: int) -> None:
    check_positive("kernel_size", kernel_size, integer=True)
    if kernel_size < STRIDE or (kernel_size - STRIDE) % 2:
        raise ValueError(f"kernel_size must be an even int >= {STRIDE} (so that padding "
                         f"(kernel_size - {STRIDE}) // 2 halves the image exactly), "
                         f"got {kernel_size}")


def _check_power_of_two(name: str, value: int, minimum: int, why: str) -> None:
    check_positive(name, value, integer=True)
    if value < minimum or value & (value - 1):
        raise ValueError(f"{name} must be a power of 2 >= {minimum} ({why}), got {value}")


class RandomProjection(nn.Module):
    """K fixed random projections computed as one strided conv.

    The filters are a buffer: saved in the ``state_dict``, moved by ``.to()``, never trained.
    Padding ``(kernel_size - 2) // 2`` (3 for the reference 8x8 kernel) makes the output exactly
    half the input size.

    Args:
        num_views: number of projections K.
        in_channels: image channels.
        out_channels: output channels per view.
        kernel_size: even kernel size.
        generator: CPU generator for the filters.
        filters: use these filters (layout of :func:`random_projection_filters`, e.g. loaded from
            the reference's ``filts.npz``) instead of drawing new ones.
    """

    stride = STRIDE

    def __init__(self, num_views: int, in_channels: int = 3, out_channels: int = 1,
                 kernel_size: int = 8, generator: torch.Generator | None = None,
                 filters: Tensor | None = None):
        super().__init__()
        if filters is None:
            filters = random_projection_filters(num_views, in_channels, out_channels, kernel_size,
                                                generator)
        else:
            check_tensor("filters", filters, ndim=4, floating=True)
            want = (num_views * out_channels, in_channels, kernel_size, kernel_size)
            if tuple(filters.shape) != want:
                raise ValueError(f"filters must have shape {want} (num_views * out_channels, "
                                 "in_channels, kernel_size, kernel_size), "
                                 f"got {tuple(filters.shape)}")
            filters = filters.detach().clone()
        self.num_views = num_views
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = (kernel_size - STRIDE) // 2
        self.register_buffer("filters", filters)

    @property
    def weight(self) -> Tensor:
        """The filters under a conv's attribute name (member views read ``weight``)."""
        return self.filters

    def forward(self, x: Tensor) -> Tensor:
        """Project ``x [B, C, H, W]`` (H, W even) to ``[B, K * out_channels, H/2, W/2]``."""
        _check_image(x, self.in_channels, self)
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"x must have even height and width, got {tuple(x.shape[-2:])}")
        return F.conv2d(x, self.filters, stride=STRIDE, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"num_views={self.num_views}, in_channels={self.in_channels}, "
                f"out_channels={self.out_channels}, kernel_size={self.kernel_size}")


def _check_image(x: Tensor, channels: int, module: nn.Module, size: int | None = None) -> None:
    """Check an image batch ``[B, channels, size, size]`` on ``module``'s device, in its dtype
    (outside autocast; else the conv's own error names neither x nor the module)."""
    check_tensor("x", x, ndim=4, floating=True)
    if x.shape[1] != channels:
        raise ValueError(f"x must have {channels} channels (dim 1 of [B, C, H, W]), "
                         f"got shape {tuple(x.shape)}")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"x must be {size}x{size} (image_size), got {tuple(x.shape[-2:])}")
    check_same_device(x=x, module_weights=first_tensor(module))
    check_model_dtype("x", x, module)


class GroupedSpectralNorm(nn.Module):
    """Spectral normalisation of each group of a grouped conv weight by its own sigma.

    The weight ``[K * out_k, in_k, kh, kw]`` is viewed as K matrices ``[out_k, in_k * kh * kw]``
    and one batched power iteration estimates every member's largest singular value. As in
    ``torch.nn.utils.parametrizations.spectral_norm`` (same update order, so a member matches
    torch's spectral norm on that member alone): ``n_power_iterations`` steps per forward in
    training mode, none in eval mode; ``u``/``v`` are buffers updated in place; 15 steps at
    construction.

    Register with :func:`grouped_spectral_norm`.
    """

    def __init__(self, weight: Tensor, groups: int, n_power_iterations: int = 1,
                 eps: float = 1e-12, generator: torch.Generator | None = None):
        super().__init__()
        check_positive("groups", groups, integer=True)
        check_positive("n_power_iterations", n_power_iterations, integer=True)
        if weight.dim() < 2 or weight.shape[0] % groups:
            raise ValueError(f"weight must have rank >= 2 and dim 0 divisible by groups={groups}, "
                             f"got shape {tuple(weight.shape)}")
        self.groups = groups
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        mat = self._matrices(weight.detach())
        k, rows, cols = mat.shape
        u = torch.randn(k, rows, generator=generator).to(mat)
        v = torch.randn(k, cols, generator=generator).to(mat)
        self.register_buffer("_u", F.normalize(u, dim=1, eps=eps))
        self.register_buffer("_v", F.normalize(v, dim=1, eps=eps))
        self._power_method(mat, 15)

    def _matrices(self, weight: Tensor) -> Tensor:
        return weight.reshape(self.groups, weight.shape[0] // self.groups, -1)

    @torch.no_grad()
    def _power_method(self, mat: Tensor, steps: int) -> None:
        # In place, like torch's spectral_norm, so DataParallel replicas update the real buffers.
        for _ in range(steps):
            F.normalize(torch.einsum("kon,kn->ko", mat, self._v), dim=1, eps=self.eps, out=self._u)
            F.normalize(torch.einsum("kon,ko->kn", mat, self._u), dim=1, eps=self.eps, out=self._v)

    def sigma(self, weight: Tensor) -> Tensor:
        """Current estimate ``u^T W_k v`` of each member's largest singular value, ``[K]``."""
        # u, v are cloned because the next training forward updates them in place while this
        # graph may still be needed (D(real) and D(fake) before one backward).
        u = self._u.clone()
        v = self._v.clone()
        return torch.einsum("ko,kon,kn->k", u, self._matrices(weight), v)

    def normalize(self, weight: Tensor) -> Tensor:
        """``weight`` with each group divided by its sigma estimate (no power iteration)."""
        sigma = self.sigma(weight)
        return (self._matrices(weight) / sigma.view(-1, 1, 1)).reshape(weight.shape)

    def forward(self, weight: Tensor) -> Tensor:
        # The power iteration and sigma run in the weight's dtype even under autocast: a bf16
        # sigma would carry bf16 rounding into the scale of every member.
        with torch.autocast(weight.device.type, enabled=False):
            if self.training:
                self._power_method(self._matrices(weight.detach()), self.n_power_iterations)
            return self.normalize(weight)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, n_power_iterations={self.n_power_iterations}"


def grouped_spectral_norm(conv: nn.Conv2d, n_power_iterations: int = 1, eps: float = 1e-12,
                          generator: torch.Generator | None = None) -> nn.Conv2d:
    """Register :class:`GroupedSpectralNorm` on ``conv.weight`` with ``groups=conv.groups``."""
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    check_generator(generator, torch.device("cpu"))  # u, v are drawn on the CPU, then moved
    sn = GroupedSpectralNorm(conv.weight, conv.groups, n_power_iterations, eps, generator)
    parametrize.register_parametrization(conv, "weight", sn)
    return conv


class _MemberView(nn.Module):
    """Member k's block of a stacked conv, read from its owner at every call.

    It owns no parameters: gradients flow into the owner's weights. The owner is deliberately not
    registered as a submodule, so the view neither lists nor moves the ensemble's weights.
    """

    def __init__(self, owner: nn.Module, k: int, groups: int):
        super().__init__()
        object.__setattr__(self, "owner", owner)
        self.k = k
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        weight = self.owner.weight
        rows = weight.shape[0] // self.groups
        block = slice(self.k * rows, (self.k + 1) * rows)
        bias = getattr(self.owner, "bias", None)
        return F.conv2d(x, weight[block], None if bias is None else bias[block],
                        stride=self.owner.stride, padding=self.owner.padding)


@register_discriminator("rpgan", paper="Neyshabur, Bhojanapalli & Chakrabarti, "
                      "Stabilizing GAN Training with Multiple Random Projections, 2017",
                      acts={"gan": "D function"})
class ProjectionEnsemble(nn.Module):
    """K random projections, each followed by its own DCGAN-style discriminator, run batched.

    Member k: ``P_k`` (8x8, stride 2) -> [conv 4x4 stride 2 pad 1 (``base_channels * 2**j``
    channels) -> LeakyReLU(0.2)] x ``num_layers`` -> conv ``final_size`` x ``final_size`` to one
    logit. No normalisation layers (``rpglib/disc.py``); biases start at 0 and weights at
    U(+-sqrt(3 / fan_in)), as in the reference. ``num_layers`` halves the projected map
    (``image_size / 2``) down to ``final_size``.

    The ensemble runs as one conv for all projections and one grouped conv (``groups=K``) per
    layer; ``forward_loop`` is the per-member reference and :meth:`member` exposes one member.

    Args:
        num_views: number of projections / discriminators K (12, 24, 48 in the reference).
        image_size: input height and width, a power of 2 (64 in the reference).
        in_channels: image channels.
        proj_channels: output channels per projection (1 in the reference).
        base_channels: channels of the first layer, doubled per layer (reference ``df``: 128 for
            faces, 64 for dogs).
        kernel_size: projection kernel size (8 in the reference).
        final_size: spatial size the stride-2 layers stop at, consumed by the last conv. Default 4
            (DCGAN head, 4x4 conv); the reference goes down to 2 and ends with a 2x2 conv
            (``final_size=2``).
        spectral_norm: per-member spectral normalisation of every trained conv (not in the
            reference, which uses none).
        impl: ``"grouped"`` (one batched call) or ``"loop"`` (``forward_loop``) for ``forward``.
        generator: CPU generator for the projections, the weights and the power-iteration init.
    """

    def __init__(self, num_views: int, image_size: int, in_channels: int = 3,
                 proj_channels: int = 1, base_channels: int = 64, kernel_size: int = 8,
                 final_size: int = 4, spectral_norm: bool = False, impl: str = "grouped",
                 generator: torch.Generator | None = None):
        super().__init__()
        check_positive("num_views", num_views, integer=True)
        check_positive("in_channels", in_channels, integer=True)
        check_positive("proj_channels", proj_channels, integer=True)
        check_positive("base_channels", base_channels, integer=True)
        _check_power_of_two("final_size", final_size, 1, "the stride-2 layers halve a power of 2")
        _check_power_of_two("image_size", image_size, 4 * final_size,
                            f"the projection halves it, then at least one stride-2 layer reaches "
                            f"final_size={final_size}")
        check_bool("spectral_norm", spectral_norm)
        check_choice("impl", impl, IMPLS)
        check_generator(generator, torch.device("cpu"))
        self.num_views = num_views
        self.image_size = image_size
        self.in_channels = in_channels
        self.spectral_norm = spectral_norm
        self.impl = impl
        self.num_layers = int(math.log2(image_size // STRIDE // final_size))
        self.projection = RandomProjection(num_views, in_channels, proj_channels, kernel_size,
                                           generator)
        self.layers = self._build_layers(proj_channels, base_channels, final_size, generator)

    def _build_layers(self, proj_channels: int, base_channels: int, final_size: int,
                      generator: torch.Generator | None) -> nn.Sequential:
        k = self.num_views
        widths = [proj_channels] + [base_channels * 2 ** j for j in range(self.num_layers)]
        layers: list[nn.Module] = []
        # skip_init: every weight is drawn below (from ``generator``); the default init would
        # draw from the global generator first
        conv = functools.partial(nn.utils.skip_init, nn.Conv2d)
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [conv(k * c_in, k * c_out, 4, 2, 1, groups=k), nn.LeakyReLU(0.2)]
        layers.append(conv(k * widths[-1], k, final_size, 1, 0, groups=k))
        for conv in layers[::2]:
            bound = math.sqrt(3.0 / conv.weight[0].numel())  # per-member fan_in, disc.py's `sq`
            with torch.no_grad():
                conv.weight.copy_(torch.rand(conv.weight.shape, generator=generator) * 2 - 1)
                conv.weight.mul_(bound)
                conv.bias.zero_()
            if self.spectral_norm:
                grouped_spectral_norm(conv, generator=generator)
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, K]`` of every member on images ``x [B, C, image_size, image_size]``."""
        if self.impl == "loop":
            return self.forward_loop(x)
        _check_image(x, self.in_channels, self, self.image_size)
        if x.device.type == "cpu":
            # oneDNN's grouped convolutions are slow in the default (NCHW) layout on CPU and fast
            # in channels-last; scripts/bench_regularizers.py measures both against the loop.
            x = x.contiguous(memory_format=torch.channels_last)
        return self.layers(self.projection(x)).flatten(1)

    def forward_loop(self, x: Tensor) -> Tensor:
        """Same as ``forward``, one member at a time: the reference's loop, for tests/benchmarks."""
        _check_image(x, self.in_channels, self, self.image_size)
        # Cached: each spectral-normalised weight (and its power step) is computed once, not once
        # per member, so the loop advances u/v exactly like the grouped path.
        with parametrize.cached():
            return torch.cat([self.member(k)(x) for k in range(self.num_views)], dim=1)

    def member(self, k: int, copy: bool = False) -> nn.Sequential:
        """Member ``k`` as an ``nn.Sequential``: image ``[B, C, H, W]`` -> logit ``[B, 1]``.

        Args:
            k: member index in ``[0, num_views)``.
            copy: False gives views that read the ensemble's current weights (no parameters of
                their own; gradients reach the ensemble). True gives independent modules holding
                copies of member k's weights: plain ``nn.Conv2d`` layers (with
                ``spectral_norm=True``, torch's own spectral norm carrying this member's u/v) and
                a one-view :class:`RandomProjection`.

        With ``spectral_norm=True`` in training mode, every read of a view's weight advances the
        power iteration; run views inside ``torch.nn.utils.parametrize.cached()`` (as
        ``forward_loop`` does) to advance it once per forward.
        """
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if not 0 <= k < self.num_views:
            raise ValueError(f"k must be in [0, {self.num_views}) (num_views), got {k}")
        make = self._copy_conv if copy else (lambda conv, k: _MemberView(conv, k, self.num_views))
        # the copies' default init (then overwritten) and spectral norm's first u would draw
        # from the global RNG: the library's draws come from generators only
        with torch.random.fork_rng(devices=[]):
            mods = [self._copy_projection(k) if copy else _MemberView(self.projection, k,
                                                                      self.num_views)]
            for layer in self.layers:
                mods.append(make(layer, k) if isinstance(layer, nn.Conv2d) else nn.LeakyReLU(0.2))
        member = nn.Sequential(*mods, nn.Flatten(1))
        return member.train(self.training)

    def _copy_projection(self, k: int) -> RandomProjection:
        p = self.projection
        rows = p.out_channels
        return RandomProjection(1, p.in_channels, rows, p.kernel_size,
                                filters=p.filters[k * rows:(k + 1) * rows])

    def _copy_conv(self, conv: nn.Conv2d, k: int) -> nn.Conv2d:
        groups = self.num_views
        raw = conv.parametrizations.weight.original if self.spectral_norm else conv.weight
        rows = raw.shape[0] // groups
        block = slice(k * rows, (k + 1) * rows)
        out = nn.Conv2d(raw.shape[1], rows, conv.kernel_size, conv.stride, conv.padding)
        out = out.to(device=raw.device, dtype=raw.dtype)
        with torch.no_grad():
            out.weight.copy_(raw[block])
            out.bias.copy_(conv.bias[block])
        if self.spectral_norm:
            sn = conv.parametrizations.weight[0]
            nn.utils.parametrizations.spectral_norm(out, n_power_iterations=sn.n_power_iterations,
                                                    eps=sn.eps)
            torch_sn = out.parametrizations.weight[0]
            with torch.no_grad():
                torch_sn._u.copy_(sn._u[k])
                torch_sn._v.copy_(sn._v[k])
        return out


def _per_member(logits: Tensor, name: str) -> Tensor:
    check_tensor(name, logits, ndim=2, min_batch=1, floating=True)  # an empty batch: NaN means
    return logits


def _half_member_sum(per_sample: Tensor, logits: Tensor) -> Tensor:
    """``1/2 * sum_k mean_b``: each member's batch mean, halved and summed over members."""
    return 0.5 * per_sample.view_as(logits).mean(0).sum()


def ensemble_real_loss(logits: Tensor, kind: str = "ns") -> Tensor:
    """D's loss on samples it should call real: ``1/2 * sum_k mean_b loss_real(D_k)``, the
    real half of :func:`ensemble_d_loss`."""
    _per_member(logits, "logits")
    return _half_member_sum(losses.loss_real(logits.reshape(-1), kind), logits)


def ensemble_fake_loss(logits: Tensor, kind: str = "ns") -> Tensor:
    """D's loss on samples it should call fake, the fake half of :func:`ensemble_d_loss`."""
    _per_member(logits, "logits")
    return _half_member_sum(losses.loss_fake(logits.reshape(-1), kind), logits)


def ensemble_mixed_loss(logits: Tensor, lam: float | Tensor, kind: str = "ns") -> Tensor:
    """D's loss on real-by-fake mixed samples (``lam`` per sample ``[B]`` or one float, the
    real share):
    every member scores the sample with :func:`robustrep.mixing.mixed_gan_loss`, combined as
    :func:`ensemble_d_loss` combines its halves."""
    _per_member(logits, "logits")
    batch, members = logits.shape
    lam = torch.as_tensor(lam, dtype=torch.float32, device=logits.device)
    if lam.dim() > 1 or (lam.dim() == 1 and len(lam) != batch):
        raise ValueError(f"lam must be a float or one value per sample ({batch}), got shape "
                         f"{tuple(lam.shape)}")
    lam = lam.expand(batch).repeat_interleave(members)  # row-major [B, K]: member k of sample b
    return _half_member_sum(mixed_gan_loss(logits.reshape(-1), lam, kind), logits)


def ensemble_d_loss(logits_real: Tensor, logits_fake: Tensor, kind: str = "ns") -> Tensor:
    """Discriminator loss of the ensemble: the SUM over members of each member's loss.

    Member k's loss is the reference's ``(mean_b loss_real + mean_b loss_fake) / 2``
    (``train.py``: ``dloss = (or2r + of2f) / 2``). Summing (not averaging) over members makes
    each member's gradient exactly what it would get alone, so one elementwise optimizer (Adam,
    AdamW, SGD) over the stacked grouped weights performs the same steps as the reference's K
    separate Adams, one per member. This does not hold for optimizers that couple elements
    (LAMB/LARS trust ratios, clipping by a global gradient norm).

    Args:
        logits_real: ``[B_real, K]`` ensemble logits on real images.
        logits_fake: ``[B_fake, K]`` ensemble logits on generated images.
        kind: loss kind of :mod:`robustrep.losses` (``"ns"`` in the reference).

    Returns:
        Scalar loss.
    """
    _per_member(logits_real, "logits_real")
    _per_member(logits_fake, "logits_fake")
    if logits_real.shape[1] != logits_fake.shape[1]:
        raise ValueError("logits_real and logits_fake must have the same number of members "
                         f"(dim 1), got {tuple(logits_real.shape)} and {tuple(logits_fake.shape)}")
    return ensemble_real_loss(logits_real, kind) + ensemble_fake_loss(logits_fake, kind)


def ensemble_g_loss(logits_fake: Tensor, kind: str = "ns") -> Tensor:
    """Generator loss: the MEAN over members of each member's batch-mean loss (reference 1/K)."""
    _per_member(logits_fake, "logits_fake")
    return losses.g_loss(logits_fake.reshape(-1), kind).mean()
