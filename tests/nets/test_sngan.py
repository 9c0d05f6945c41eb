"""SNGAN-ResNet 32x32: the initialisation of mimicry's ``sngan_32.py`` and ``resblocks.py``."""

import math

import pytest
import torch
from torch import nn

from robustrep.nets.sngan import SNGANGenerator, sngan_discriminator


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    """The drawn weight (under spectral norm, the parametrization's original)."""
    if hasattr(layer, "parametrizations"):
        return layer.parametrizations.weight.original
    return layer.weight


def _mimicry_gain(name: str, layer: nn.Module) -> float:
    # mimicry: xavier_uniform_(gain sqrt 2) on a block's c1/c2 (3x3), gain 1 on its 1x1
    # shortcut c_sc, on G's l1 and c5 and on D's l5.
    in_block = ".main." in name
    return math.sqrt(2) if in_block and layer.kernel_size == (3, 3) else 1.0


@pytest.mark.parametrize("build", [lambda: SNGANGenerator(z_dim=16, width=16),
                                   lambda: sngan_discriminator(width=16),
                                   lambda: sngan_discriminator(width=16, spectral_norm=False)],
                         ids=["G", "D", "D-no-sn"])
def test_layers_are_drawn_as_mimicry_draws_them(build):
    torch.manual_seed(0)
    net = build()
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 11
    for name, layer in layers:
        w = _raw_weight(layer)
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        bound = _mimicry_gain(name, layer) * math.sqrt(6 / (fan_in + fan_out))
        top = w.abs().max().item()
        # uniform on [-bound, bound]: never above it, and with >= 64 draws some above bound / sqrt 2
        assert bound / math.sqrt(2) < top <= bound * (1 + 1e-6), name
        # biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as mimicry's
        assert layer.bias.abs().max().item() <= 1 / math.sqrt(fan_in) and layer.bias.any(), name
