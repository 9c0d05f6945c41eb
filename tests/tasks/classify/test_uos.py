"""The classify program's UoS head (``--head uos``) and WRN names (the UoS recipe's multistep
schedule: test_train.py)."""

import pytest
import torch
import torch.nn.functional as F

from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.presets import PRESETS
from robustrep.tasks.common.classifier import create_classifier
from robustrep.tasks.common.classifier_run import load_run
from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.uos import UoSHead


def _uos_classifier(name="test_resnet", classes=3, chans=1, seed=0):
    torch.manual_seed(seed)
    return create_classifier(name, classes, in_chans=chans, head="uos").eval()


@pytest.mark.parametrize("name", ["test_resnet", "wrn16_2"])
def test_uos_head_replaces_the_classifier_and_keeps_forward(name):
    model = _uos_classifier(name)
    head = model.model.get_classifier()
    assert isinstance(head, UoSHead) and head is model.uos_head
    assert head.weight.shape == (3, model.model.num_features)
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        raw = model.model.forward_head(model.feature_maps(x), pre_logits=True)
        v = model.features(x)
        # features are the unit-norm embedding, head is |W v| without renormalisation
        torch.testing.assert_close(v, raw / raw.norm(dim=1, keepdim=True))
        torch.testing.assert_close(model.head(v), (v @ head.weight.T).abs())
        torch.testing.assert_close(model(x), model.model(model.prepare(x)))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert id(head.weight) not in trainable
    assert "model.fc.weight" in model.state_dict() and "model.fc.bias" not in model.state_dict()


def test_linear_head_is_the_default_and_bad_heads_are_refused():
    model = create_classifier("test_resnet", 3, in_chans=1)
    assert model.uos_head is None and isinstance(model.model.get_classifier(), torch.nn.Linear)
    with pytest.raises(ValueError, match="head must be one of linear, uos"):
        create_classifier("test_resnet", 3, in_chans=1, head="cosine")
    with pytest.raises(ConfigError, match="head must be one of"):
        from robustrep.tasks.common.config import resolve_config
        resolve_config(ClassifyConfig, PRESETS, None, overrides={"head": "cosine"})


def test_adaptivemix_on_the_uos_head_is_the_reference_computation():
    """AdaptiveMix's reference classifier: MSE on unit features, logits |W z_lin| + |W v_mix|
    with z_lin = lam v + (1 - lam) v[pi] not renormalised (AdaptiveMix classification/models.py)."""
    from robustrep.adaptivemix import adaptivemix
    model = _uos_classifier()
    x = torch.rand(6, 1, 16, 16)
    lam, index = 0.3, torch.tensor([5, 4, 3, 2, 1, 0])
    with torch.no_grad():
        out = adaptivemix(model, x, lam, index, noise_std=0.0, distance="mse")
        v = model.features(x)
        v_mix = model.features(lam * x + (1 - lam) * x[index])
        z_lin = lam * v + (1 - lam) * v[index]
    w = model.uos_head.weight
    torch.testing.assert_close(out["logits"], (z_lin @ w.T).abs() + (v_mix @ w.T).abs())
    torch.testing.assert_close(out["loss"], F.mse_loss(v_mix, z_lin))
    assert float(z_lin.norm(dim=1).min()) < 0.999  # so a renormalising head would differ


def test_reference_preset_resolves():
    from robustrep.tasks.common.config import resolve_config
    cfg = resolve_config(ClassifyConfig, PRESETS, "cifar10-wrn-uos")
    assert (cfg.model, cfg.head, cfg.reg, cfg.schedule) == ("wrn28_10", "uos", "adaptivemix",
                                                            "multistep")
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (0.1, 0.9, 5e-4, 128)
    assert cfg.milestones == [0.3, 0.6, 0.8] and cfg.lr_decay == 0.2 and cfg.augment


def test_program_trains_wrn_uos_adaptivemix_and_keeps_W(tmp_path):
    run = tmp_path / "run"
    assert main(["classify", "train", "--model", "wrn16_2", "--head", "uos", "--reg",
                 "adaptivemix", "--image-size", "16", "--classes", "0,1,2", "--steps", "3",
                 "--batch-size", "8", "--lr", "0.1", "--eval-every", "0", "--ckpt-every", "3",
                 "--quiet", "--device", "cpu", "--run-dir", str(run)]) == 0
    model, config = load_run(run)
    assert config["head"] == "uos" and config["model"] == "wrn16_2"
    # The run seeds torch right before building the model, so a fresh build has the initial W.
    torch.manual_seed(config["seed"])
    fresh = create_classifier("wrn16_2", config["num_classes"], config["channels"], head="uos")
    assert torch.equal(model.uos_head.weight, fresh.uos_head.weight)
    assert not torch.equal(model.model.conv1.weight, fresh.model.conv1.weight)  # it did train
    w = model.uos_head.weight
    torch.testing.assert_close(w @ w.T, torch.eye(w.shape[0]), atol=1e-5, rtol=0)
