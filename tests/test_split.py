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


@pytest.mark.parametrize("name,size", [
    ("rexnet_100", 64),  # features/head submodules that are not its split: as_split took them
    ("dla34", 64),  # a 1x1-conv classifier on the pooled [B, C]
    ("efficientformerv2_s0", 224),  # two distillation heads, averaged
    ("sequencer2d_s", 64),  # get_classifier() is the whole ClassifierHead
    # two heads on two tokens (class, distillation): was both heads on the tokens' mean, 2
    # logits off with these weights
    ("deit_tiny_distilled_patch16_224", 32),
    ("pit_ti_distilled_224", 224),
])
def test_as_split_equals_the_forward_of_timm_families_with_unusual_heads(name, size):
    extra = {"img_size": size} if name.startswith("deit") else {}
    model = timm.create_model(name, num_classes=5, **extra).eval()
    torch.manual_seed(0)
    for head in model.get_classifier() if isinstance(model.get_classifier(), tuple) else ():
        nn.init.normal_(head.weight)  # timm zeroes some heads: both must count
    split = as_split(model)
    assert isinstance(split, TimmSplit)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(split.head(split.features(x)), model(x), rtol=0, atol=1e-6)


@pytest.mark.skipif("efficientvim_m1" not in timm.list_models(),
                    reason="timm before 1.0.30 has no EfficientViM")
def test_a_head_of_several_classifiers_is_refused():
    with pytest.raises(TypeError, match=r"^EfficientViM's classifier \(ModuleList\) is not one "
                                        r"function of the pooled pre-logits"):
        as_split(timm.create_model("efficientvim_m1", num_classes=5))


def test_heads_that_are_not_one_function_of_the_pre_logits_are_refused():
    class Volo(nn.Module):  # VOLO's shape: forward_head adds aux_head's logits to head's
        def __init__(self):
            super().__init__()
            self.head, self.aux_head = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward_features(self, x):
            return x

        def forward_head(self, x, pre_logits=False):
            return x

        def get_classifier(self):
            return self.head

    with pytest.raises(TypeError, match="Volo's logits add an auxiliary head's"):
        as_split(Volo())


def test_timm_split_without_classifier_gives_features_but_no_logits():
    # timm's num_classes=0 leaves an Identity classifier: its "logits" would be the features
    model = timm.create_model("resnet10t", num_classes=0)
    split = TimmSplit(model)
    x = torch.rand(2, 3, 32, 32)
    assert split.features(x).shape == (2, model.num_features)
    with pytest.raises(ValueError, match=r"^ResNet has no classifier \(num_classes=0\), so it "
                                         r"has no head to give logits; create it with "
                                         r"num_classes=N"):
        split(x)
