"""MLP generator and discriminator for 2-D points, and RP-GAN's projection ensemble for them.

The setting is the 2-D Gaussian mixtures (ring, grid) of VEEGAN (Srivastava et al., NeurIPS 2017,
arXiv 1705.07761) and PacGAN (Lin et al., NeurIPS 2018, arXiv 1712.04086, ``fjxmlzn/PacGAN``):
small fully connected G and D with ``depth`` hidden layers. D's trunk ends at its last hidden
layer, its head is the linear layer to one logit.

:class:`MLPProjectionEnsemble` is RP-GAN for 2-D points, our adaptation of Neyshabur,
Bhojanapalli & Chakrabarti, "Stabilizing GAN Training with Multiple Random Projections",
arXiv 1705.07831 (``ayanc/rpgan``). The reference projects images with random 8x8 convolutions
(:class:`robustrep.projection.ProjectionEnsemble`); a 2-D point is projected on K random unit
directions instead, and member k is a small MLP on its 1-D projection. Members run batched (one
einsum per layer), logits ``[B, K]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from robustrep.nets import register_network
from robustrep.nets._layers import check_shape, maybe_spectral_norm
from robustrep.split import FeatureSplit

__all__ = ["MLPGenerator", "mlp_discriminator", "MLPProjectionEnsemble"]


@register_network("mlp", "generator")
class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` -> points ``[B, *shape]``: ``depth`` ReLU hidden layers of ``width`` units.

    Args:
        z_dim: latent dimension.
        shape: one point's shape ``(D,)``.
        width: hidden units.
        depth: hidden layers.
    """

    def __init__(self, z_dim: int = 16, shape: tuple[int, ...] = (2,), width: int = 128,
                 depth: int = 3):
        super().__init__()
        check_shape(shape, 1, "MLPGenerator")
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(z_dim if i == 0 else width, width), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Linear(width, shape[0]))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


@register_network("mlp", "discriminator")
def mlp_discriminator(shape: tuple[int, ...] = (2,), width: int = 128, depth: int = 3,
                      spectral_norm: bool = False) -> FeatureSplit:
    """MLP D as trunk (``depth`` LeakyReLU hidden layers) + head (linear to one logit).

    Args:
        shape: one point's shape ``(D,)``.
        width: hidden units.
        depth: hidden layers.
        spectral_norm: spectral normalisation on every layer.
    """
    check_shape(shape, 1, "mlp_discriminator")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [maybe_spectral_norm(nn.Linear(shape[0] if i == 0 else width, width),
                                       spectral_norm), nn.LeakyReLU(0.2, True)]
    head = nn.Sequential(maybe_spectral_norm(nn.Linear(width, 1), spectral_norm), nn.Flatten(0))
    return FeatureSplit(nn.Sequential(*layers), head)


class MLPProjectionEnsemble(nn.Module):
    """RP-GAN for 2-D points: K fixed random unit directions, one small MLP per projection.

    Member k scores ``<u_k, x>`` with its own weights; all members run as one batched einsum per
    layer. Weights start at U(+-sqrt(3 / fan_in)) and biases at 0, as the reference
    (``rpglib/disc.py``) initialises its members.

    Args:
        num_views: K.
        width: hidden units per member.
        depth: hidden layers per member.
        in_dim: point dimension.
        generator: CPU generator for the directions and weights.
    """

    def __init__(self, num_views: int, width: int = 64, depth: int = 2, in_dim: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        dirs = torch.randn(num_views, in_dim, generator=generator)
        self.register_buffer("directions", dirs / dirs.norm(dim=1, keepdim=True))
        self.num_views = num_views
        sizes = [1] + [width] * depth + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = math.sqrt(3.0 / fan_in)
            w = (torch.rand(num_views, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(num_views, fan_out)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, K]`` for points ``x [B, in_dim]``."""
        h = (x @ self.directions.T).unsqueeze(-1)  # [B, K, 1]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.einsum("bki,kio->bko", h, w) + b
            if i < last:
                h = torch.nn.functional.leaky_relu(h, 0.2)
        return h.squeeze(-1)

