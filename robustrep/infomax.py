r"""InfoMax-GAN: a contrastive InfoNCE term between D's local and global features.

Paper: Lee, Tran & Cheung, "InfoMax-GAN: Improved Adversarial Image Generation via Information
Maximization and Contrastive Learning", WACV 2021, arXiv 2007.04589. Reference code:
``kwotsin/mimicry`` (``torch_mimicry/nets/infomax_gan/infomax_gan_base.py`` and
``infomax_gan_32.py``, release 0.1.16; its InfoNCE follows ``rdevon/DIM``
``cortex_DIM/functions/dim_losses.py``), which ``iceli1007/DAT-GAN`` forks unchanged for its
InfoMax-GAN rows (DAT's ``advtrain_step`` keeps this term on the *clean* reals).

D's trunk is split at a feature map: ``local = f_l(x)`` ``[N, C_l, H, W]`` and
``global = f_g(local)`` ``[N, C_g]`` (the vector D's GAN head reads). Two projection heads map both
into an RKHS of ``nrkhs`` dimensions, each a ReLU MLP with a linear shortcut (1x1 convolutions for
the local map, linear layers for the global vector):

.. math::

    \phi(v) = W_b\,\mathrm{relu}(W_a v) + W_{sc} v, \qquad
    s_{ij,k} = \langle \phi_g(\mathrm{global}_i),\ \phi_l(\mathrm{local}_j)_{k} \rangle,

    L_{nce} = -\frac{1}{N L} \sum_{i,k} \log
      \frac{e^{s_{ii,k}}}{e^{s_{ii,k}} + \sum_{j, k'} \tilde s_{ij,k'}},
    \qquad \tilde s_{ij,k'} = e^{s_{ij,k'}}\ (j \ne i), \ \ e^{-10}\ (j = i),

with ``L = H W`` locations. The positive pairs a location with the global vector of its own image;
the negatives pair that global vector with every location of every other image.

Facts taken from the reference (checked against the mimicry package in ``tests/test_infomax.py``):

1. **Masking the image's own locations.** They stay in the softmax with the logit -10
   (``u_n = n_mask * u_n - 10 * (1 - n_mask)``), not -inf, so they add ``L e^{-10}`` to each
   denominator; :data:`SELF_LOGIT` keeps that.
2. **Weights.** ``infomax_loss_scale = 0.2`` for D on reals (``BaseDiscriminator``) and 0.2 for G
   on fakes (``InfoMaxGANBaseGenerator``, here ``g_infomax_loss_scale``); ``nrkhs = 1024``.
3. **Heads.** ``a``: C -> C, ``b``: C -> nrkhs, ``sc``: C -> nrkhs, all spectral-normed with
   Xavier-uniform init (gain 1); ReLU between ``a`` and ``b``.
4. **Which maps.** SNGAN-ResNet 32x32 (``tasks/gan``'s D, as mimicry's
   ``InfoMaxGANDiscriminator32``): local = the output of the third residual block, before any
   activation (``[N, width, 8, 8]``); global = the fourth block, ReLU, spatial sum
   (``[N, width]``, the trunk's output): ``InfoMax.from_sequential(d, 3, ...)``. DCGAN
   (no reference; our choice): local = the 8x8 map after its LeakyReLU (the stage before the last
   stride-2 convolution), global = the trunk's 4x4 map flattened:
   ``from_sequential(d, len(d.trunk) - 3)`` with BatchNorm, ``- 2`` without.

:class:`InfoMaxTask` is the registered ``--reg infomax`` of the GAN program (place "D auxiliary
task", :class:`robustrep.api.DAuxTask`): it splits the program's D at the local map the program
names and wraps it in :class:`InfoMax`.

Nothing here is random.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from robustrep._validate import (check_nonneg, check_positive, check_same_device,
                                 check_task_scales, check_tensor, options_repr)
from robustrep.registry import register_regularizer
from robustrep.split import placed_like, probe_shape

SELF_LOGIT = -10.0  # the reference's logit for an image's own locations among the negatives


def infonce_loss(local: Tensor, global_: Tensor) -> Tensor:
    """Mean InfoNCE loss between projected ``local [N, R, H, W]`` and ``global_ [N, R]``."""
    check_tensor("local", local, ndim=4, floating=True)
    check_tensor("global_", global_, ndim=2, floating=True)
    check_same_device(local=local, global_=global_)
    n, r = global_.shape
    if local.shape[:2] != (n, r):
        raise ValueError(f"local must be [N, R, H, W] with N, R = {n}, {r} as global_, "
                         f"got {tuple(local.shape)}")
    scores = torch.einsum("ir,jrl->ijl", global_, local.flatten(2))  # s[i, j, k]
    pos = scores.diagonal(dim1=0, dim2=1).T  # [N, L]: image i's own location k
    own = torch.eye(n, dtype=torch.bool, device=scores.device)[:, :, None]
    neg = scores.masked_fill(own, SELF_LOGIT).reshape(n, -1)  # [N, N L]
    log_denominator = torch.logaddexp(pos, torch.logsumexp(neg, dim=1, keepdim=True))
    return (log_denominator - pos).mean()


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    nn.init.xavier_uniform_(module.weight, 1.0)
    return _spectral_norm(module) if enabled else module


class _Projection(nn.Module):
    """``b(relu(a(v))) + sc(v)`` with 1x1 convolutions (``conv=True``) or linear layers."""

    def __init__(self, dim_in: int, nrkhs: int, conv: bool, spectral_norm: bool):
        super().__init__()
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.a = _sn(layer(dim_in, dim_in), spectral_norm)
        self.b = _sn(layer(dim_in, nrkhs), spectral_norm)
        self.sc = _sn(layer(dim_in, nrkhs), spectral_norm)

    def forward(self, v: Tensor) -> Tensor:
        return self.b(F.relu(self.a(v))) + self.sc(v)


class InfoMaxHead(nn.Module):
    """The two projection heads: ``(local [N, C_l, H, W], global [N, C_g])`` -> RKHS features."""

    def __init__(self, local_channels: int, global_dim: int, nrkhs: int = 1024,
                 spectral_norm: bool = True):
        super().__init__()
        check_positive("nrkhs", nrkhs, integer=True)
        self.local_proj = _Projection(local_channels, nrkhs, True, spectral_norm)
        self.global_proj = _Projection(global_dim, nrkhs, False, spectral_norm)

    def forward(self, local: Tensor, global_: Tensor) -> tuple[Tensor, Tensor]:
        return self.local_proj(local), self.global_proj(global_.flatten(1))


class InfoMax(nn.Module):
    """A discriminator ``head(rest(local(x)))`` with InfoMax projection heads.

    ``features(x) = rest(local(x))``, so ``forward`` is the unchanged GAN logit.

    Args:
        local: the trunk up to the local feature map.
        rest: the trunk from the local map to the global features.
        head: D's GAN head.
        local_channels: channels of the local map.
        global_dim: size of the global features flattened per sample.
        nrkhs: RKHS dimension of the projections (reference: 1024).
        infomax_loss_scale: weight of the InfoNCE loss on reals in D's loss (reference: 0.2).
        g_infomax_loss_scale: weight of the InfoNCE loss on fakes in G's loss (reference: 0.2).
        spectral_norm: spectral norm on the projection heads (the reference's SN layers).
    """

    def __init__(self, local: nn.Module, rest: nn.Module, head: nn.Module, local_channels: int,
                 global_dim: int, nrkhs: int = 1024, infomax_loss_scale: float = 0.2,
                 g_infomax_loss_scale: float = 0.2, spectral_norm: bool = True):
        super().__init__()
        check_nonneg("infomax_loss_scale", infomax_loss_scale)
        check_nonneg("g_infomax_loss_scale", g_infomax_loss_scale)
        self.local, self.rest, self.top = local, rest, head
        self.projection = InfoMaxHead(local_channels, global_dim, nrkhs, spectral_norm)
        self.infomax_loss_scale = infomax_loss_scale
        self.g_infomax_loss_scale = g_infomax_loss_scale

    @classmethod
    def from_sequential(cls, d: nn.Module, local_end: int, **kwargs) -> InfoMax:
        """Split a D whose ``trunk`` is an ``nn.Sequential`` after layer ``local_end - 1``."""
        trunk = _sequential_trunk(d, local_end)
        return cls(trunk[:local_end], trunk[local_end:], d.top, **kwargs)

    def features(self, x: Tensor) -> Tensor:
        return self.rest(self.local(x))

    def head(self, z: Tensor) -> Tensor:
        return self.top(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.top(self.features(x))

    def logits_and_loss(self, x: Tensor, scale: float) -> tuple[Tensor, Tensor]:
        """One trunk pass: the GAN logits of ``x`` and ``scale * L_nce(x)``."""
        local = self.local(x)
        global_ = self.rest(local)
        loss = infonce_loss(*self.projection(local, global_))
        return self.top(global_), scale * loss

    def d_loss(self, reals: Tensor) -> dict[str, Tensor]:
        """D's extra term on reals: ``dict(loss=infomax_loss_scale * L_nce)``."""
        return {"loss": self.logits_and_loss(reals, self.infomax_loss_scale)[1]}

    def g_loss(self, fakes: Tensor) -> dict[str, Tensor]:
        """G's extra term on fakes (not detached): ``g_infomax_loss_scale * L_nce``."""
        return {"loss": self.logits_and_loss(fakes, self.g_infomax_loss_scale)[1]}


@register_regularizer("infomax", paper="Lee et al., InfoMax-GAN, WACV 2021",
                      acts={"gan": "D auxiliary task"}, excludes={"gan": ("rpgan",)})
class InfoMaxTask:
    """InfoMax-GAN as a D auxiliary task: :meth:`InfoMax.from_sequential` at ``local_end``,
    projection heads sized from D's maps.

    Args:
        nrkhs: RKHS dimension of the projections (reference: 1024).
        d_scale: weight of the InfoNCE loss on reals in D's loss (reference
            ``infomax_loss_scale``: 0.2).
        g_scale: weight of the InfoNCE loss on fakes in G's loss (reference: 0.2).
    """

    term = "infomax"

    def __init__(self, nrkhs: int = 1024, d_scale: float = 0.2, g_scale: float = 0.2):
        check_positive("nrkhs", nrkhs, integer=True)
        check_task_scales(d_scale, g_scale)
        self.nrkhs, self.d_scale, self.g_scale = nrkhs, d_scale, g_scale

    def wrap(self, d: nn.Module, sample_shape: tuple[int, ...], local_end: int | None) -> InfoMax:
        if local_end is None:
            raise ValueError("infomax needs a discriminator whose trunk has a local feature map")
        trunk = _sequential_trunk(d, local_end)
        local_channels = probe_shape(d, trunk[:local_end], sample_shape)[0]
        global_dim = probe_shape(d, trunk, sample_shape)
        return placed_like(InfoMax.from_sequential(
            d, local_end, local_channels=local_channels, global_dim=math.prod(global_dim),
            nrkhs=self.nrkhs, infomax_loss_scale=self.d_scale, g_infomax_loss_scale=self.g_scale),
            d)

    def d_aux_loss(self, D: InfoMax, x_real: Tensor) -> Tensor:
        return D.d_loss(x_real)["loss"]

    def g_aux_loss(self, D: InfoMax, x_fake: Tensor) -> Tensor:
        return D.g_loss(x_fake)["loss"]

    __repr__ = options_repr


def _sequential_trunk(d: nn.Module, local_end: int) -> nn.Sequential:
    """``d.trunk``, checked to be an ``nn.Sequential`` that ``local_end`` splits."""
    trunk = getattr(d, "trunk", None)
    if not isinstance(trunk, nn.Sequential) or not 0 < local_end < len(trunk):
        what = (f"an nn.Sequential of {len(trunk)} layers" if isinstance(trunk, nn.Sequential)
                else type(trunk).__name__)
        raise ValueError(f"d.trunk must be an nn.Sequential longer than local_end={local_end} "
                         f"(and d.top its last layers), got {what}")
    return trunk
