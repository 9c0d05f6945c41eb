"""Shared fixtures: tiny models and seeded generators, CPU-only and fast."""

import os

import pytest
import torch
from torch import nn

torch.set_num_threads(1)
# No test may reach the network: downloads (FID Inception, datasets, the Hugging Face hub) read
# only the cache unless a test points them at its own 127.0.0.1 server and lifts this.
os.environ.setdefault("ROBUSTREP_OFFLINE", "1")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


class TinyTrunk(nn.Module):
    """A batch-permutation-equivariant trunk with BatchNorm (as a DCGAN D's conv stack)."""

    def __init__(self, channels=3, width=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def tiny_split():
    from robustrep.split import FeatureSplit
    torch.manual_seed(0)
    return FeatureSplit(TinyTrunk(), nn.Linear(8 * 2 * 2, 1))
