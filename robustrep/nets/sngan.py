"""SNGAN-ResNet generator and discriminator for 32x32 images.

Paper: Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for Generative Adversarial
Networks", ICLR 2018, arXiv 1802.05957 (the CIFAR-10 networks of its appendix); checked against
``kwotsin/mimicry`` (``torch_mimicry/nets/sngan/sngan_32.py``).

G: a linear map to 4x4 x ``width``, three up residual blocks, BN-ReLU-conv3x3-tanh. D: an
optimised first block plus three residual blocks, ReLU and a spatial sum; the trunk ends at the
pooled vector and the head is the (spectral-normed) linear layer. InfoMax-GAN's local features
end after the third block (mimicry's ``InfoMaxGANDiscriminator32``), D's ``local_end``.

Initialisation as mimicry's (``modules/resblocks.py``, ``sngan_32.py``): Xavier-uniform with
gain sqrt(2) on the blocks' 3x3 convolutions, gain 1 on their 1x1 shortcuts, G's input linear
map and output convolution and D's linear head; biases keep PyTorch's default. Spectral norm
wraps the layer after its weight is drawn.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from robustrep.nets import register_network
from robustrep.nets._layers import check_shape, maybe_spectral_norm
from robustrep.split import FeatureSplit

__all__ = ["SNGANGenerator", "sngan_discriminator"]


def _xavier(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Conv2d | nn.Linear:
    nn.init.xavier_uniform_(layer.weight, gain)
    return layer


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Conv2d:
    """A block's conv: 3x3 with gain sqrt(2) (it feeds a ReLU), 1x1 shortcut with gain 1."""
    return _xavier(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2),
                   math.sqrt(2) if kernel == 3 else 1.0)


def _check_32(shape: tuple[int, ...], what: str) -> None:
    check_shape(shape, 3, what)
    if tuple(shape[1:]) != (32, 32):
        raise ValueError(f"{what} is the 32x32 SNGAN-ResNet; got images of {tuple(shape)}")


class _GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3 with an up-conv1 shortcut (Miyato et al. 2018, G block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2), _conv(c_in, c_out, 3),
            nn.BatchNorm2d(c_out), nn.ReLU(), _conv(c_out, c_out, 3))
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), _conv(c_in, c_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class _DBlock(nn.Module):
    """ReLU-conv3-ReLU-conv3[-avgpool] with a conv1[-avgpool] shortcut; ``first`` = optimised."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, sn: bool):
        super().__init__()
        main: list[nn.Module] = [] if first else [nn.ReLU()]
        main += [maybe_spectral_norm(_conv(c_in, c_out, 3), sn), nn.ReLU(),
                 maybe_spectral_norm(_conv(c_out, c_out, 3), sn)]
        if down:
            main.append(nn.AvgPool2d(2))
        self.main = nn.Sequential(*main)
        skip: list[nn.Module] = []
        if first and down:
            skip.append(nn.AvgPool2d(2))
        if c_in != c_out or down:
            skip.append(maybe_spectral_norm(_conv(c_in, c_out, 1), sn))
        if down and not first:
            skip.append(nn.AvgPool2d(2))
        self.skip = nn.Sequential(*skip)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class _SumPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x).sum(dim=(2, 3))


@register_network("sngan", "generator")
class SNGANGenerator(nn.Module):
    """z ``[B, z_dim]`` -> images ``[B, C, 32, 32]`` in [-1, 1].

    Args:
        z_dim: latent dimension.
        shape: one image's shape ``(C, 32, 32)``.
        width: channels of every block.
    """

    def __init__(self, z_dim: int = 128, shape: tuple[int, ...] = (3, 32, 32), width: int = 256):
        super().__init__()
        _check_32(shape, "SNGANGenerator")
        self.z_dim = z_dim
        self.fc = nn.Sequential(_xavier(nn.Linear(z_dim, width * 16), 1.0),
                                nn.Unflatten(1, (width, 4, 4)))
        self.blocks = nn.Sequential(_GBlock(width, width), _GBlock(width, width),
                                    _GBlock(width, width), nn.BatchNorm2d(width), nn.ReLU(),
                                    _xavier(nn.Conv2d(width, shape[0], 3, 1, 1), 1.0), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.blocks(self.fc(z))


@register_network("sngan", "discriminator")
def sngan_discriminator(shape: tuple[int, ...] = (3, 32, 32), width: int = 128,
                        spectral_norm: bool = True) -> FeatureSplit:
    """SNGAN-ResNet D as trunk (blocks, ReLU, spatial sum) + head (linear).

    Args:
        shape: one image's shape ``(C, 32, 32)``.
        width: channels of every block.
        spectral_norm: spectral normalisation on every layer (the paper's D).
    """
    _check_32(shape, "sngan_discriminator")
    sn = spectral_norm
    trunk = nn.Sequential(_DBlock(shape[0], width, down=True, first=True, sn=sn),
                          _DBlock(width, width, down=True, first=False, sn=sn),
                          _DBlock(width, width, down=False, first=False, sn=sn),
                          _DBlock(width, width, down=False, first=False, sn=sn), _SumPool())
    head = nn.Sequential(maybe_spectral_norm(_xavier(nn.Linear(width, 1), 1.0), sn),
                         nn.Flatten(0))
    d = FeatureSplit(trunk, head)
    d.local_end = 3
    return d
