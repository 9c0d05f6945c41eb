"""A GAN network family from outside the package: a generator and a discriminator of two
convolutions each, small enough to train in seconds on a CPU (it shows the plugin contract; it
is not a good GAN).

Load it with ``--plugin tests/plugins/tiny_gan.py`` and select it with ``--arch tinyconv``.
"""

from torch import nn

from robustrep.nets import register_network
from robustrep.split import FeatureSplit


def _check_image(shape, kernel):
    if len(shape) != 3 or shape[-1] % 4:
        raise ValueError(f"tinyconv needs images (C, S, S) with S divisible by 4, got {shape}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd and >= 1, got {kernel}")


@register_network("tinyconv", "generator")
class TinyConvGenerator(nn.Module):
    """z ``[B, z_dim]`` -> a map of half the side -> up-convolution -> convolution -> tanh.

    Args:
        z_dim: latent dimension.
        shape: one image's shape ``(C, S, S)``, S divisible by 4.
        width: channels of the hidden maps.
        kernel: side of the last convolution, odd.
    """

    def __init__(self, z_dim: int, shape: tuple, width: int = 16, kernel: int = 3):
        super().__init__()
        _check_image(shape, kernel)
        channels, half = shape[0], shape[-1] // 2
        self.z_dim = z_dim  # the contract: G says its latent size
        self.net = nn.Sequential(
            nn.Linear(z_dim, width * half * half), nn.Unflatten(1, (width, half, half)),
            nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, channels, kernel, 1, kernel // 2), nn.Tanh())

    def forward(self, z):
        return self.net(z)


@register_network("tinyconv", "discriminator")
def tiny_conv_discriminator(shape: tuple, width: int = 16, slope: float = 0.2) -> FeatureSplit:
    """Two stride-2 convolutions (the features), then a linear head: one logit per sample.

    Args:
        shape: one image's shape ``(C, S, S)``, S divisible by 4.
        width: channels of the first convolution (the second doubles them).
        slope: negative slope of the LeakyReLUs, in [0, 1).
    """
    _check_image(shape, 1)
    if not 0 <= slope < 1:
        raise ValueError(f"slope must be in [0, 1), got {slope}")
    side = shape[-1] // 4
    trunk = nn.Sequential(nn.Conv2d(shape[0], width, 4, 2, 1), nn.LeakyReLU(slope),
                          nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(slope))
    head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * side * side, 1), nn.Flatten(0))
    return FeatureSplit(trunk, head)
