"""The UoS recipe as its references train it (zaeemzadeh/OOD, WentianZhang-ML/AdaptiveMix
classification/): final BN-ReLU off under a UoS head, plain momentum SGD, weight decay on every
parameter, and the preset's dry run showing them."""

import json

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.optim import build_optimizer
from robustrep.tasks.common.classifier import create_classifier
from robustrep.tasks.common.config import ConfigError


def test_final_act_is_off_under_uos_and_on_otherwise():
    assert ClassifyConfig(model="wrn16_2", head="uos").final_act is False
    assert ClassifyConfig(model="wrn16_2").final_act is True
    assert ClassifyConfig(model="wrn16_2", head="uos", final_act=True).final_act is True
    assert ClassifyConfig(model="test_resnet").final_act is None
    with pytest.raises(ConfigError, match="--final-act applies only to the wrn"):
        ClassifyConfig(model="test_resnet", final_act=False)
    off = create_classifier("wrn16_2", 3, head="uos", final_act=False)
    on = create_classifier("wrn16_2", 3, head="uos", final_act=True)
    assert off.model.bn is None and on.model.bn is not None
    x = torch.rand(4, 3, 16, 16)
    assert float(off.model.forward_features(x).detach().min()) < 0  # raw block output: either sign


def _groups(opt):
    return [(g["weight_decay"], len(g["params"]), g.get("nesterov")) for g in opt.param_groups]


def test_momentum_sgd_and_decay_on_every_parameter():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))  # 4 tensors
    timm_way, _ = build_optimizer(ClassifyConfig(steps=4), model)
    assert sorted(_groups(timm_way)) == [(0.0, 3, True), (5e-4, 1, True)]  # Nesterov, no BN decay
    ref, _ = build_optimizer(ClassifyConfig(steps=4, optimizer="momentum", wd_all=True), model)
    assert _groups(ref) == [(5e-4, 4, False)]
    assert type(ref).__name__ == "SGD" and ref.param_groups[0]["momentum"] == 0.9


def test_preset_dry_run_shows_the_references_recipe(capsys):
    assert main(["classify", "train", "--preset", "cifar10-wrn-uos", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["optimizer"], shown["momentum"], shown["weight_decay"], shown["wd_all"]) == (
        "momentum", 0.9, 5e-4, True)
    assert (shown["final_act"], shown["drop_rate"], shown["head"]) == (False, 0.0, "uos")
