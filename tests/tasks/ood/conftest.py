"""Tiny classifiers, toy feature models and fake run folders for the OOD program's tests (CPU)."""

import json

import pytest
import torch
from torch import nn

from robustrep.data import ImageTensorDataset


@pytest.fixture(scope="session")
def tiny_classifier():
    """timm's ``test_resnet`` (96-d features, 1x1 last map at 16x16 input) for 1-channel images,
    3 classes, in eval mode, wrapped with normalisation like a classify run."""
    from robustrep.tasks.common.classifier import create_classifier
    torch.manual_seed(0)
    return create_classifier("test_resnet", 3, in_chans=1).eval()


@pytest.fixture(scope="session")
def tiny_data():
    """Random 1x16x16 images: ID train (3 classes), ID test, one OOD set (label -1)."""
    gen = torch.Generator().manual_seed(0)

    def make(n, label):
        images = torch.rand(n, 1, 16, 16, generator=gen)
        labels = torch.arange(n) % 3 if label is None else torch.full((n,), label)
        return ImageTensorDataset(images, labels)

    return make(60, None), make(12, None), {"noise": make(10, -1)}


class ToyNet(nn.Module):
    """``feature_maps(x) = x`` for images ``[B, D, 1, 1]`` and a linear head: the features are
    exactly the pixels, so tests control the feature distribution directly."""

    def __init__(self, centers):
        super().__init__()
        self.fc = nn.Linear(centers.shape[1], centers.shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(centers)
            self.fc.bias.zero_()

    def forward_features(self, x):
        return x

    def forward_head(self, maps, pre_logits=False):
        z = maps.flatten(1)
        return z if pre_logits else self.fc(z)

    def get_classifier(self):
        return self.fc


@pytest.fixture
def toy_clusters():
    """Three well-separated Gaussian classes in 8-d (centres 6 e_k, std 0.5), as 1x1 'images'."""
    gen = torch.Generator().manual_seed(1)
    dim, classes = 8, 3
    centers = torch.zeros(classes, dim)
    centers[torch.arange(classes), torch.arange(classes)] = 6.0

    def sample(n, where=None, label=None):
        y = torch.arange(n) % classes
        mean = centers[y] if where is None else where.expand(n, dim)
        z = mean + 0.5 * torch.randn(n, dim, generator=gen)
        labels = y if label is None else torch.full((n,), label)
        return ImageTensorDataset(z[:, :, None, None], labels)

    return ToyNet(centers).eval(), centers, sample


@pytest.fixture
def fake_run(tmp_path, tiny_classifier):
    """A run folder as `robustrep classify train` writes it (config.json + checkpoints/latest.pt):
    test_resnet on digits 0-2 at 1x16x16, untrained."""
    return _write_run(tmp_path / "run", tiny_classifier)


def _write_run(path, classifier, num_classes=3, channels=1, image_size=16, classes=(0, 1, 2)):
    (path / "checkpoints").mkdir(parents=True)
    config = {"model": "test_resnet", "num_classes": num_classes, "dataset": "digits",
              "image_size": image_size, "channels": channels, "data_root": None,
              "classes": list(classes), "mean": classifier.mean.flatten().tolist(),
              "std": classifier.std.flatten().tolist(), "drop_rate": 0.0}
    (path / "config.json").write_text(json.dumps(config))
    torch.save({"step": 0, "model": classifier.state_dict(), "ema": None},
               path / "checkpoints" / "latest.pt")
    return path
