import pytest
import timm
import torch
from torch import nn

from robustrep.split import FeatureSplit, TimmSplit, as_split


def test_feature_split_composes():
    split = FeatureSplit(nn.Linear(4, 3), nn.Linear(3, 1))
    x = torch.randn(2, 4)
    assert torch.allclose(split(x), split.head(split.features(x)))


def test_timm_split_equals_model_forward():
    model = timm.create_model("resnet10t", num_classes=5, in_chans=1).eval()
    split = as_split(model)
    assert isinstance(split, TimmSplit)
    x = torch.randn(2, 1, 32, 32)
    z = split.features(x)
    assert z.shape == (2, model.num_features)
    assert torch.allclose(split.head(z), model(x), atol=1e-5)


def test_timm_features_are_batch_permutation_equivariant():
    model = timm.create_model("resnet10t", num_classes=5, in_chans=1).train()
    split = as_split(model)
    x, perm = torch.randn(6, 1, 32, 32), torch.randperm(6)
    assert torch.allclose(split.features(x[perm]), split.features(x)[perm], atol=1e-5)


def test_as_split_rejects_unsplittable():
    with pytest.raises(TypeError, match="cannot split Linear"):
        as_split(nn.Linear(2, 2))
