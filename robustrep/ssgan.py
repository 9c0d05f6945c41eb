r"""SSGAN: a discriminator that also predicts the rotation of its input.

Paper: Chen, Zhai, Lucic & Houlsby, "Self-Supervised GANs via Auxiliary Rotation Loss",
CVPR 2019, arXiv 1811.11212. Reference code: ``kwotsin/mimicry`` (``torch_mimicry/nets/ssgan/
ssgan_base.py`` and ``ssgan_32.py``, release 0.1.16), which ``iceli1007/DAT-GAN`` forks unchanged
for its SSGAN rows (DAT adds only ``advtrain_step``; the rotation loss stays on *clean* reals).

D gains a rotation head ``r`` next to its GAN head, both reading the same features ``f(x)``:

.. math::

    L_{ss}(x) = \mathrm{CE}\big(r(f(\rho(x))),\ k\big), \qquad
    \rho(x)_i = \mathrm{rot90}(x_i, k_i), \quad k_i = \lfloor 4 i / N \rfloor,

    L_D \mathrel{+}= \texttt{ss\_loss\_scale} \cdot L_{ss}(x_{real}), \qquad
    L_G \mathrel{+}= \texttt{g\_ss\_loss\_scale} \cdot L_{ss}(G(z)).

Facts taken from the reference (checked against the mimicry package in
``tests/test_ssgan.py``):

1. **Which samples, how many.** Every sample of the batch is rotated once: the first quarter of
   the batch by 0°, the second by 90°, the third by 180°, the last by 270° (label
   ``k_i = 4 i // N``, so an N not divisible by 4 gives uneven quarters, as the reference). The
   paper rotates every image four ways; the reference (and we) keep the batch size.
2. **Direction.** Label ``k`` is ``torch.rot90(x, k, dims=(-2, -1))`` (counter-clockwise as
   displayed); the reference's transpose/flip formulas give the same tensors.
3. **Which loss where.** D: cross-entropy on rotated *reals* only, weight ``ss_loss_scale = 1.0``
   (``SSGANBaseDiscriminator``). G: cross-entropy on rotated *fakes*, weight 0.2 (the reference's
   ``SSGANBaseGenerator.ss_loss_scale``, here ``g_ss_loss_scale``); G is rewarded when D
   recognises the rotation of its samples. The GAN loss itself sees upright images only.
4. **The head.** One linear layer from the pooled features to 4 logits (``l_y``; spectral norm
   and Xavier-uniform init with gain 1, as the GAN head). It reads whatever ``features`` returns:
   for the SNGAN-ResNet D of ``tasks/gan`` that is the ReLU + spatial-sum vector (the reference's
   ``h``); for the DCGAN D it is the flattened 4x4 map (the reference has no DCGAN SSGAN).

:class:`SSGANTask` is the registered ``--reg ssgan`` of the GAN program (place "D auxiliary
task", :class:`robustrep.api.DAuxTask`): it wraps the program's D in :class:`SSGAN`.

Nothing here is random: the rotation of each sample depends on its position in the batch only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from robustrep._validate import check_nonneg, check_task_scales, check_tensor, options_repr
from robustrep.registry import register_regularizer
from robustrep.split import as_split, placed_like, probe_shape

NUM_ROTATIONS = 4


def rotation_labels(n: int, device: torch.device | str | None = None) -> Tensor:
    """Labels ``[n]`` (int64): sample ``i`` gets ``4 * i // n`` (quarters of the batch)."""
    return torch.arange(n, device=device) * NUM_ROTATIONS // n


def rotate(x: Tensor, labels: Tensor) -> Tensor:
    """Rotate image ``i`` of ``x [N, C, H, W]`` by ``labels[i] * 90`` degrees (``torch.rot90``).

    Square images only, so the batch keeps one shape.
    """
    check_tensor("x", x, ndim=4)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must hold square images to rotate, got {tuple(x.shape)}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(labels.shape)}")
    out = x.clone()
    for k in range(1, NUM_ROTATIONS):
        idx = (labels == k).nonzero().flatten()
        if idx.numel():
            out[idx] = torch.rot90(x[idx], k, dims=(-2, -1))
    return out


def rotate_quarters(x: Tensor) -> tuple[Tensor, Tensor]:
    """The reference's rotated batch: ``(rotated x, labels)`` with quarter labels."""
    labels = rotation_labels(x.shape[0], x.device)
    return rotate(x, labels), labels


def rotation_loss(logits: Tensor, labels: Tensor, scale: float = 1.0) -> Tensor:
    """``scale`` times the mean cross-entropy of rotation ``logits [N, 4]`` against ``labels``."""
    check_tensor("logits", logits, ndim=2, floating=True)
    if logits.shape[1] != NUM_ROTATIONS:
        raise ValueError(f"logits must have {NUM_ROTATIONS} columns, got {tuple(logits.shape)}")
    return scale * F.cross_entropy(logits, labels)


class RotationHead(nn.Module):
    """Linear map from D's features (flattened) to 4 rotation logits."""

    def __init__(self, feature_dim: int, spectral_norm: bool = True):
        super().__init__()
        linear = nn.Linear(feature_dim, NUM_ROTATIONS)
        nn.init.xavier_uniform_(linear.weight, 1.0)  # as the reference's l_y
        self.linear = _spectral_norm(linear) if spectral_norm else linear

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z.flatten(1))


class SSGAN(nn.Module):
    """A discriminator with a rotation head; ``forward`` is the unchanged GAN logit.

    Args:
        d: the discriminator, anything :func:`robustrep.split.as_split` accepts.
        feature_dim: size of ``d.features(x)`` flattened per sample.
        ss_loss_scale: weight of the rotation loss on reals in D's loss (reference: 1.0).
        g_ss_loss_scale: weight of the rotation loss on fakes in G's loss (reference: 0.2).
        spectral_norm: spectral norm on the rotation head (the reference's ``SNLinear``).
    """

    def __init__(self, d: nn.Module, feature_dim: int, ss_loss_scale: float = 1.0,
                 g_ss_loss_scale: float = 0.2, spectral_norm: bool = True):
        super().__init__()
        check_nonneg("ss_loss_scale", ss_loss_scale)
        check_nonneg("g_ss_loss_scale", g_ss_loss_scale)
        self.d = as_split(d)
        self.rotation_head = RotationHead(feature_dim, spectral_norm)
        self.ss_loss_scale = ss_loss_scale
        self.g_ss_loss_scale = g_ss_loss_scale

    def features(self, x: Tensor) -> Tensor:
        return self.d.features(x)

    def head(self, z: Tensor) -> Tensor:
        return self.d.head(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.d(x)

    def rotation_logits(self, x: Tensor) -> Tensor:
        return self.rotation_head(self.d.features(x))

    def ss_loss(self, x: Tensor, scale: float) -> Tensor:
        """``scale * L_ss(x)``: rotate ``x`` by quarters, one D trunk pass, cross-entropy."""
        x_rot, labels = rotate_quarters(x)
        return rotation_loss(self.rotation_logits(x_rot), labels, scale)

    def d_loss(self, reals: Tensor) -> dict[str, Tensor]:
        """D's extra term on a batch of reals: ``dict(loss=ss_loss_scale * L_ss)``."""
        return {"loss": self.ss_loss(reals, self.ss_loss_scale)}

    def g_loss(self, fakes: Tensor) -> dict[str, Tensor]:
        """G's extra term on a batch of fakes (not detached): ``g_ss_loss_scale * L_ss``."""
        return {"loss": self.ss_loss(fakes, self.g_ss_loss_scale)}


@register_regularizer("ssgan", paper="Chen et al., Self-Supervised GANs via Auxiliary Rotation "
                      "Loss, CVPR 2019", acts={"gan": "D auxiliary task"},
                      excludes={"gan": ("rpgan",)})
class SSGANTask:
    """SSGAN as a D auxiliary task: wraps D in :class:`SSGAN` (head sized from D's features).

    Args:
        d_scale: weight of the rotation loss on reals in D's loss (reference ``ss_loss_scale``:
            1.0).
        g_scale: weight of the rotation loss on fakes in G's loss (reference: 0.2).
    """

    term = "ss"

    def __init__(self, d_scale: float = 1.0, g_scale: float = 0.2):
        check_task_scales(d_scale, g_scale)
        self.d_scale, self.g_scale = d_scale, g_scale

    def wrap(self, d: nn.Module, sample_shape: tuple[int, ...],
             local_end: int | None = None) -> SSGAN:
        split = as_split(d)
        dim = math.prod(probe_shape(d, split.features, sample_shape))
        return placed_like(SSGAN(d, dim, self.d_scale, self.g_scale), d)

    def d_aux_loss(self, D: SSGAN, x_real: Tensor) -> Tensor:
        return D.d_loss(x_real)["loss"]

    def g_aux_loss(self, D: SSGAN, x_fake: Tensor) -> Tensor:
        return D.g_loss(x_fake)["loss"]

    __repr__ = options_repr
