"""DCGAN generator and discriminator for square images of any power-of-2 side.

Paper: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016, arXiv 1511.06434; reference code
``Newmu/dcgan_code`` (the authors' code). The presets use 32x32 and 64x64.

G is a linear map to a 4x4 map, then stride-2 transposed convolutions with BatchNorm and ReLU,
tanh out; D mirrors it with stride-2 convolutions and LeakyReLU(0.2). D's trunk ends at the 4x4
map (the layer AdaptiveMix's reference embeds, before its StyleGAN2 epilogue); the head is the
4x4 conv to one logit. BatchNorm in D is dropped with spectral norm (as StudioGAN's
``deep_conv``, ``POSTECH-CVLab/PyTorch-StudioGAN``) and, by the GAN program, for the Wasserstein
critic (a gradient penalty is per sample; Gulrajani et al. 2017 advise against batch
normalisation in the critic). The trunk is batch-permutation equivariant (BatchNorm is allowed,
minibatch-std would not be), as the core contract requires.
"""

from __future__ import annotations

from torch import Tensor, nn

from robustrep.nets import register_network
from robustrep.nets._layers import maybe_spectral_norm, num_doublings, square_side
from robustrep.split import FeatureSplit

__all__ = ["DCGANGenerator", "dcgan_discriminator"]


def _dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv/linear weights, N(1, 0.02) BatchNorm scales (Radford et al. 2016)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") \
                else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register_network("dcgan", "generator")
class DCGANGenerator(nn.Module):
    """z ``[B, z_dim]`` -> images ``[B, *shape]`` in [-1, 1].

    Args:
        z_dim: latent dimension.
        shape: one image's shape ``(C, S, S)``, S a power of 2 >= 8.
        width: channels of the last up-block (each block below doubles them).
    """

    def __init__(self, z_dim: int, shape: tuple[int, ...] = (3, 32, 32), width: int = 64):
        super().__init__()
        channels, n = shape[0], num_doublings(square_side(shape, "DCGANGenerator"))
        top = width * 2 ** (n - 1)
        self.z_dim = z_dim
        self.fc = nn.Sequential(nn.Linear(z_dim, top * 16, bias=False),
                                nn.Unflatten(1, (top, 4, 4)),
                                nn.BatchNorm2d(top), nn.ReLU(True))
        blocks: list[nn.Module] = []
        for i in range(n - 1):
            c_in = top // 2 ** i
            blocks += [nn.ConvTranspose2d(c_in, c_in // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c_in // 2), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        _dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.blocks(self.fc(z))


class OneLogit(nn.Module):
    """The head conv's ``[B, 1, 1, 1]`` as one logit per sample ``[B]``.

    An image larger than the D was built for leaves a map wider than 4x4 at the head, whose conv
    then gives a map of logits; flattening it would return several logits per sample (50 for
    a batch of 2 at twice the side), which every loss averages without a word.
    """

    def __init__(self, side: int):
        super().__init__()
        self.side = side

    def forward(self, out: Tensor) -> Tensor:
        if out.dim() != 4 or tuple(out.shape[1:]) != (1, 1, 1):
            raise ValueError(f"dcgan_discriminator takes images [B, C, {self.side}, {self.side}] "
                             f"(the shape it was built for); its head gave logits of shape "
                             f"{tuple(out.shape)}, not one per sample")
        return out.flatten(0)

    def extra_repr(self) -> str:
        return f"side={self.side}"


@register_network("dcgan", "discriminator")
def dcgan_discriminator(shape: tuple[int, ...] = (3, 32, 32), width: int = 64,
                        spectral_norm: bool = False, batchnorm: bool = True) -> FeatureSplit:
    """DCGAN D as trunk (convs down to a 4x4 map) + head (4x4 conv to one logit per sample).

    Args:
        shape: one image's shape ``(C, S, S)``, S a power of 2 >= 8.
        width: channels of the first conv (each stride-2 conv below doubles them).
        spectral_norm: spectral normalisation on every layer.
        batchnorm: BatchNorm after every conv but the first and the head.

    ``local_end`` (InfoMax-GAN's local features, ``robustrep.infomax`` fact 4: our choice) is the
    LeakyReLU before the last stride-2 conv.
    """
    side = square_side(shape, "dcgan_discriminator")
    channels, n = shape[0], num_doublings(side)
    layers: list[nn.Module] = [maybe_spectral_norm(nn.Conv2d(channels, width, 4, 2, 1),
                                                   spectral_norm), nn.LeakyReLU(0.2, True)]
    for i in range(n - 1):
        c_in = width * 2 ** i
        layers.append(maybe_spectral_norm(nn.Conv2d(c_in, 2 * c_in, 4, 2, 1, bias=not batchnorm),
                                          spectral_norm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(2 * c_in))
        layers.append(nn.LeakyReLU(0.2, True))
    trunk = nn.Sequential(*layers)
    head = nn.Sequential(maybe_spectral_norm(nn.Conv2d(width * 2 ** (n - 1), 1, 4, 1, 0),
                                             spectral_norm), OneLogit(side))
    d = FeatureSplit(trunk, head)
    _dcgan_init(d)
    d.local_end = len(trunk) - (3 if batchnorm else 2)  # before [conv, (BatchNorm), LeakyReLU]
    return d
