"""robustrep.nets.wrn: the CIFAR wide ResNets as timm models."""

import pytest
import timm
import torch
from torch import nn

import robustrep.nets.wrn  # noqa: F401 - registers the names
from robustrep.nets.wrn import CIFAR_MEAN, CIFAR_STD, WideBasic, WideResNet


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_names_are_registered_and_do_not_shadow_timm():
    assert timm.list_models("wrn*") == ["wrn16_2", "wrn16_4", "wrn28_2", "wrn28_10", "wrn40_2"]
    assert "wide_resnet50_2" in timm.list_models("*wide*")


def test_wrn28_10_has_the_papers_36_5m_parameters_and_shapes():
    torch.manual_seed(0)
    model = timm.create_model("wrn28_10", num_classes=10)
    # 36,479,194: the WRN-28-10 count of the reference CIFAR implementations (36.5M).
    assert _count(model) == 36_479_194
    assert model.num_features == 640 and model.num_classes == 10
    blocks = [m for m in model.modules() if isinstance(m, WideBasic)]
    assert len(blocks) == 12  # (28 - 4) / 6 = 4 blocks per group, 3 groups
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.forward_features(x)
        assert maps.shape == (2, 640, 8, 8)
        z = model.forward_head(maps, pre_logits=True)
        torch.testing.assert_close(z, maps.mean((2, 3)))
        logits = model(x)  # one forward of the 36.5M model (0.25 s) for both checks
        torch.testing.assert_close(logits, model.get_classifier()(z))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name,depth,width,params", [
    ("wrn16_2", 16, 2, 691_674), ("wrn16_4", 16, 4, 2_748_890), ("wrn28_2", 28, 2, 1_467_610),
    ("wrn40_2", 40, 2, 2_243_546)])
def test_small_wrns(name, depth, width, params):
    model = timm.create_model(name, num_classes=10)
    assert _count(model) == params
    assert len([m for m in model.modules() if isinstance(m, WideBasic)]) == 3 * (depth - 4) // 6
    assert model.num_features == 64 * width
    # 1-channel 16x16 input, as the digits presets use.
    small = timm.create_model(name, num_classes=5, in_chans=1)
    assert small.forward_features(torch.rand(2, 1, 16, 16)).shape == (2, 64 * width, 4, 4)


def test_pretrained_cfg_carries_the_cifar_normalisation():
    from robustrep.nets.classifier import default_norm
    model = timm.create_model("wrn16_2", num_classes=3)
    cfg = model.pretrained_cfg
    assert cfg["mean"] == CIFAR_MEAN and cfg["std"] == CIFAR_STD and cfg["classifier"] == "fc"
    mean, std = default_norm(model, 3)
    assert mean == pytest.approx(CIFAR_MEAN) and std == pytest.approx(CIFAR_STD)


def test_reset_classifier_and_headless():
    model = timm.create_model("wrn16_2", num_classes=10)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3 and model.num_classes == 3
    headless = timm.create_model("wrn16_2", num_classes=0)
    assert isinstance(headless.get_classifier(), nn.Identity)
    assert headless(torch.rand(2, 3, 32, 32)).shape == (2, 128)


def test_dropout_sits_inside_each_block():
    model = timm.create_model("wrn16_2", num_classes=10, drop_rate=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 6 and all(d.p == 0.3 for d in drops)
    assert not any(isinstance(m, nn.Dropout) for m in timm.create_model("wrn16_2").modules())


def test_final_act_off_pools_the_raw_block_output():
    torch.manual_seed(0)
    model = WideResNet(16, 2, num_classes=4, final_act=False).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.forward_features(x)
        raw = model.layer3(model.layer2(model.layer1(model.conv1(x))))
    torch.testing.assert_close(maps, raw)
    assert float(maps.min()) < 0  # no ReLU: either sign, as the UoS references
    assert model.bn is None


def test_bad_depth():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(depth=20)


def test_old_module_paths_are_the_moved_modules():
    import robustrep
    import robustrep.nets.stylegan2
    import robustrep.wrn
    assert robustrep.wrn is robustrep.nets.wrn
    assert robustrep.stylegan2 is robustrep.nets.stylegan2
    from robustrep.stylegan2 import StyleGAN2Generator
    assert StyleGAN2Generator is robustrep.nets.stylegan2.StyleGAN2Generator
