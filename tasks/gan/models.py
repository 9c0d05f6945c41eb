"""Generators and discriminators of the GAN program.

Every discriminator is a :class:`robustrep.split.FeatureSplit`: ``trunk`` is everything up to the
representation the regularizers act on, ``head`` the last layer, so ``D(x) = head(trunk(x))``
returns one logit per sample ``[B]``. Trunks are batch-permutation equivariant (BatchNorm is
allowed, minibatch-std would not be), as the core contract requires.

- DCGAN (Radford, Metz & Chintala, ICLR 2016, arXiv 1511.06434), any power-of-2 side >= 16
  (presets use 32 and 64): G is a linear map to 4x4 then stride-2 transposed convs with BatchNorm
  and ReLU, tanh out; D mirrors it with stride-2 convs and LeakyReLU(0.2). D's trunk ends at the
  4x4 map (the layer AdaptiveMix's reference embeds, before its StyleGAN2 epilogue); the head is
  the 4x4 conv to one logit. BatchNorm in D is dropped with spectral norm (as StudioGAN's
  ``deep_conv``) and for the Wasserstein critic (a gradient penalty is per sample; Gulrajani et al.
  2017 advise against batch normalisation in the critic).
- SNGAN-ResNet 32x32 (Miyato et al., ICLR 2018, arXiv 1802.05957; the CIFAR-10 networks of its
  appendix, as in kwotsin/mimicry ``sngan_32``): three up residual blocks in G, an optimised first
  block plus three residual blocks in D, ReLU and a spatial sum; the trunk ends at the pooled
  vector and the head is the (spectral-normed) linear layer.
- MLP G and D for the 2-D mixtures (VEEGAN/PacGAN setting); the D trunk ends at the last hidden
  layer.
- StyleGAN2 (Karras et al., CVPR 2020; ``robustrep/stylegan2.py``): mapping network, modulated
  convs, skip G, residual D whose trunk is every block down to the 4x4 map and whose head is the
  epilogue (minibatch-std, conv, fc, out), as AdaptiveMix's reference splits it.
- :class:`MLPProjectionEnsemble`: RP-GAN for 2-D points, our adaptation of Neyshabur et al.
  (arXiv 1705.07831). The reference projects images with random 8x8 convolutions; a 2-D point is
  projected on K random unit directions instead, and member k is a small MLP on its 1-D
  projection. Members run batched (one einsum per layer), logits ``[B, K]``.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from robustrep.projection import ProjectionEnsemble
from robustrep.split import FeatureSplit
from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


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


def _num_ups(image_size: int) -> int:
    return int(math.log2(image_size // 4))


# ---------------------------------------------------------------------------------------------
# DCGAN


class DCGANGenerator(nn.Module):
    """z ``[B, z_dim]`` -> images ``[B, channels, image_size, image_size]`` in [-1, 1]."""

    def __init__(self, z_dim: int, image_size: int = 32, channels: int = 3, width: int = 64):
        super().__init__()
        n = _num_ups(image_size)
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


def dcgan_discriminator(image_size: int = 32, channels: int = 3, width: int = 64,
                        spectral_norm: bool = False, batchnorm: bool = True) -> FeatureSplit:
    """DCGAN D as trunk (convs down to a 4x4 map) + head (4x4 conv to one logit per sample)."""
    n = _num_ups(image_size)
    layers: list[nn.Module] = [_sn(nn.Conv2d(channels, width, 4, 2, 1), spectral_norm),
                               nn.LeakyReLU(0.2, True)]
    for i in range(n - 1):
        c_in = width * 2 ** i
        layers.append(_sn(nn.Conv2d(c_in, 2 * c_in, 4, 2, 1, bias=not batchnorm), spectral_norm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(2 * c_in))
        layers.append(nn.LeakyReLU(0.2, True))
    trunk = nn.Sequential(*layers)
    head = nn.Sequential(_sn(nn.Conv2d(width * 2 ** (n - 1), 1, 4, 1, 0), spectral_norm),
                         nn.Flatten(0))
    d = FeatureSplit(trunk, head)
    _dcgan_init(d)
    return d


# ---------------------------------------------------------------------------------------------
# SNGAN-ResNet 32x32


class _GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3 with an up-conv1 shortcut (Miyato et al. 2018, G block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class _DBlock(nn.Module):
    """ReLU-conv3-ReLU-conv3[-avgpool] with a conv1[-avgpool] shortcut; ``first`` = optimised."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, sn: bool):
        super().__init__()
        main: list[nn.Module] = [] if first else [nn.ReLU()]
        main += [_sn(nn.Conv2d(c_in, c_out, 3, 1, 1), sn), nn.ReLU(),
                 _sn(nn.Conv2d(c_out, c_out, 3, 1, 1), sn)]
        if down:
            main.append(nn.AvgPool2d(2))
        self.main = nn.Sequential(*main)
        skip: list[nn.Module] = []
        if first and down:
            skip.append(nn.AvgPool2d(2))
        if c_in != c_out or down:
            skip.append(_sn(nn.Conv2d(c_in, c_out, 1), sn))
        if down and not first:
            skip.append(nn.AvgPool2d(2))
        self.skip = nn.Sequential(*skip)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class _SumPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x).sum(dim=(2, 3))


class SNGANGenerator(nn.Module):
    """SNGAN-ResNet G for 32x32: linear to 4x4 x width, three up blocks, BN-ReLU-conv3-tanh."""

    def __init__(self, z_dim: int = 128, channels: int = 3, width: int = 256):
        super().__init__()
        self.z_dim = z_dim
        self.fc = nn.Sequential(nn.Linear(z_dim, width * 16), nn.Unflatten(1, (width, 4, 4)))
        self.blocks = nn.Sequential(_GBlock(width, width), _GBlock(width, width),
                                    _GBlock(width, width), nn.BatchNorm2d(width), nn.ReLU(),
                                    nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, 1.0 if m.weight.shape[-1] == 1 else math.sqrt(2))
                nn.init.zeros_(m.bias)

    def forward(self, z: Tensor) -> Tensor:
        return self.blocks(self.fc(z))


def sngan_discriminator(channels: int = 3, width: int = 128,
                        spectral_norm: bool = True) -> FeatureSplit:
    """SNGAN-ResNet D for 32x32 as trunk (blocks, ReLU, spatial sum) + head (linear)."""
    sn = spectral_norm
    trunk = nn.Sequential(_DBlock(channels, width, down=True, first=True, sn=sn),
                          _DBlock(width, width, down=True, first=False, sn=sn),
                          _DBlock(width, width, down=False, first=False, sn=sn),
                          _DBlock(width, width, down=False, first=False, sn=sn), _SumPool())
    head = nn.Sequential(_sn(nn.Linear(width, 1), sn), nn.Flatten(0))
    return FeatureSplit(trunk, head)


# ---------------------------------------------------------------------------------------------
# 2-D mixtures


class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` -> points ``[B, 2]``: ``depth`` ReLU hidden layers of ``width`` units."""

    def __init__(self, z_dim: int = 16, width: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(z_dim if i == 0 else width, width), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def mlp_discriminator(width: int = 128, depth: int = 3, in_dim: int = 2,
                      spectral_norm: bool = False) -> FeatureSplit:
    """MLP D as trunk (``depth`` LeakyReLU hidden layers) + head (linear to one logit)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [_sn(nn.Linear(in_dim if i == 0 else width, width), spectral_norm),
                   nn.LeakyReLU(0.2, True)]
    head = nn.Sequential(_sn(nn.Linear(width, 1), spectral_norm), nn.Flatten(0))
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


# ---------------------------------------------------------------------------------------------
# factory


def build_generator(cfg, shape: tuple[int, ...]) -> nn.Module:
    """G for ``cfg.arch``; ``shape`` is one sample's shape (``(C, H, W)`` or ``(2,)``)."""
    if cfg.arch == "mlp":
        return MLPGenerator(cfg.z_dim, cfg.g_width, cfg.mlp_depth, shape[0])
    if cfg.arch == "sngan":
        return SNGANGenerator(cfg.z_dim, shape[0], cfg.g_width)
    if cfg.arch == "stylegan2":
        return StyleGAN2Generator(cfg.z_dim, shape[-1], shape[0], **_given(
            w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers, channel_base=cfg.channel_base,
            channel_max=cfg.channel_max, conv_clamp=cfg.conv_clamp, num_fp16_res=cfg.fp16_res))
    return DCGANGenerator(cfg.z_dim, shape[-1], shape[0], cfg.g_width)


def build_discriminator(cfg, shape: tuple[int, ...], discriminator: str | None = None,
                        generator: torch.Generator | None = None,
                        aux_task: Any = None) -> nn.Module:
    """D for ``cfg.arch``: a FeatureSplit, or the registered discriminator ``discriminator``
    (``--reg rpgan``: the projection ensemble, with this program's options and 2-D variant; any
    other registered one built with its defaults for the data's size and channels). A D
    auxiliary task (``aux_task``, :class:`robustrep.api.DAuxTask`) wraps the D it returns."""
    d = _base_discriminator(cfg, shape, discriminator, generator)
    if aux_task is None:
        return d
    return aux_task.wrap(d, tuple(shape), local_feature_end(cfg, d))


def local_feature_end(cfg, d: nn.Module) -> int | None:
    """Where D's trunk ends at its last map above 4x4 (InfoMax-GAN's local features): SNGAN after
    its third block (mimicry's ``InfoMaxGANDiscriminator32``); DCGAN after the LeakyReLU before
    its last stride-2 conv (our choice, ``robustrep.infomax`` fact 4). None for other D's."""
    if cfg.arch == "sngan":
        return 3
    if cfg.arch == "dcgan":  # trunk ends [conv stride 2, (BatchNorm), LeakyReLU]
        return len(d.trunk) - (3 if isinstance(d.trunk[-2], nn.BatchNorm2d) else 2)
    return None


def _base_discriminator(cfg, shape: tuple[int, ...], discriminator: str | None,
                        generator: torch.Generator | None) -> nn.Module:
    if discriminator == "rpgan":
        return _build_ensemble(cfg, shape, generator)
    if discriminator is not None:
        from robustrep.registry import create_regularizer
        return create_regularizer(discriminator, image_size=shape[-1], in_channels=shape[0])
    if cfg.arch == "mlp":
        return mlp_discriminator(cfg.d_width, cfg.mlp_depth, shape[0], cfg.spectral_norm)
    if cfg.arch == "sngan":
        return sngan_discriminator(shape[0], cfg.d_width, cfg.spectral_norm)
    if cfg.arch == "stylegan2":
        return StyleGAN2Discriminator(shape[-1], shape[0], **_given(
            channel_base=cfg.channel_base, channel_max=cfg.channel_max,
            mbstd_group=cfg.mbstd_group, conv_clamp=cfg.conv_clamp, architecture=cfg.d_arch,
            num_fp16_res=cfg.fp16_res))
    batchnorm = not cfg.spectral_norm and cfg.loss != "wasserstein"
    return dcgan_discriminator(shape[-1], shape[0], cfg.d_width, cfg.spectral_norm, batchnorm)


def _given(**kwargs):
    """Drop None values so the network's own defaults apply."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _build_ensemble(cfg, shape: tuple[int, ...], generator: torch.Generator | None) -> nn.Module:
    k = cfg.rp_num_views if cfg.rp_num_views is not None else 48  # reference face48 model
    width = cfg.rp_base_channels if cfg.rp_base_channels is not None else cfg.d_width
    if cfg.arch == "mlp":
        if cfg.spectral_norm:
            raise ValueError("spectral_norm is not implemented for the 2-D projection ensemble "
                             "(the reference RP-GAN uses none); drop --spectral-norm")
        return MLPProjectionEnsemble(k, width, max(1, cfg.mlp_depth - 1), shape[0], generator)
    kwargs = {} if cfg.rp_kernel_size is None else {"kernel_size": cfg.rp_kernel_size}
    return ProjectionEnsemble(k, shape[-1], in_channels=shape[0], base_channels=width,
                              spectral_norm=cfg.spectral_norm, generator=generator, **kwargs)


@torch.no_grad()
def generate(G: nn.Module, num: int, device: torch.device, seed: int,
             batch: int = 500) -> Tensor:
    """``num`` samples from ``G`` in eval mode with a fixed seed, in G's range (on ``device``).

    G's train/eval mode is restored afterwards; the global RNG is untouched.
    """
    return torch.cat(list(generate_batches(G, num, device, seed, batch)))


def generate_batches(G: nn.Module, num: int, device: torch.device, seed: int,
                     batch: int = 500) -> Iterator[Tensor]:
    """:func:`generate`'s samples, batch by batch (the same values), so 50k samples at 256x256
    never sit in memory at once."""
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = G.training
    G.eval()
    try:
        for i in range(0, num, batch):
            z = torch.randn(min(batch, num - i), G.z_dim, generator=gen, device=device)
            with torch.no_grad():
                out = G(z).float()
            yield out
    finally:
        G.train(was_training)
