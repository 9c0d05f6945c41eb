"""robustrep.nets.classifier: a timm model with normalisation inside, seen as head(features(x))."""

import pytest
import timm
import torch

from robustrep.nets.classifier import (Classifier, as_classifier, check_model_name,
                                       default_norm, use_uos_head)
from robustrep.split import as_split
from robustrep.uos import UoSHead


def test_split_equals_forward_and_normalises_inside():
    torch.manual_seed(0)
    clf = as_classifier(timm.create_model("test_resnet", num_classes=4, in_chans=1), 1,
                        mean=[0.3], std=[0.2]).eval()
    x = torch.rand(3, 1, 16, 16)
    z = clf.features(x)
    assert z.shape == (3, clf.model.num_features)
    assert torch.allclose(clf.head(z), clf(x))
    assert torch.allclose(clf(x), clf.model((x - 0.3) / 0.2), atol=1e-6)
    assert clf.feature_maps(x).dim() == 4
    assert as_split(clf) is clf  # the core sees the wrapper's own split


def test_wrong_channel_count_is_named():
    clf = as_classifier(timm.create_model("test_resnet", num_classes=4))
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\]"):
        clf(torch.rand(2, 1, 16, 16))


def test_unknown_model_lists_close_matches_and_knows_the_wrns():
    with pytest.raises(ValueError, match=r"model 'resnet10'; close matches: .*resnet10t"):
        check_model_name("resnet10")
    check_model_name("wrn28_10")  # registered with timm by importing the module


def test_uos_head_normalises_features_and_keeps_forward():
    torch.manual_seed(0)
    clf = as_classifier(timm.create_model("test_resnet", num_classes=4), head="uos").eval()
    assert isinstance(clf.uos_head, UoSHead) and clf.model.get_classifier() is clf.uos_head
    x = torch.rand(3, 3, 16, 16)
    z = clf.features(x)
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(clf.head(z), clf(x))
    assert torch.allclose(clf(x), clf.model(clf.prepare(x)), atol=1e-6)  # timm's own forward


def test_default_norm_is_the_pretrained_cfg_averaged_for_one_channel():
    model = timm.create_model("wrn16_2")  # CIFAR statistics: three different means
    mean, std = (model.pretrained_cfg[k] for k in ("mean", "std"))
    assert default_norm(model, 3) == (list(mean), list(std))
    one_mean, one_std = default_norm(model, 1)
    assert one_mean == pytest.approx([sum(mean) / 3]) and one_std == pytest.approx([sum(std) / 3])
    clf = as_classifier(model)
    assert clf.mean.flatten().tolist() == pytest.approx(list(mean))


def test_bad_head_and_norm_are_refused():
    model = timm.create_model("test_resnet")
    with pytest.raises(ValueError, match="head must be one of linear, uos; got 'cosine'"):
        as_classifier(model, head="cosine")
    with pytest.raises(ValueError, match=r"mean/std need 3 value\(s\)"):
        as_classifier(model, mean=[0.5], std=[0.5])
    with pytest.raises(ValueError, match="std > 0"):
        Classifier(model, [0.5] * 3, [0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="classifier is one nn.Linear"):
        use_uos_head(timm.create_model("test_resnet", num_classes=0))
