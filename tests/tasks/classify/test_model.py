import json

import pytest
import timm
import torch

from robustrep.split import as_split
from robustrep.tasks.common.classifier import Classifier, create_classifier, load_run


def test_split_equals_forward_and_normalises_inside():
    torch.manual_seed(0)
    clf = create_classifier("test_resnet", 4, in_chans=1, mean=[0.3], std=[0.2]).eval()
    x = torch.rand(3, 1, 16, 16)
    z = clf.features(x)
    assert z.shape == (3, clf.model.num_features)
    assert torch.allclose(clf.head(z), clf(x))
    assert torch.allclose(clf(x), clf.model((x - 0.3) / 0.2), atol=1e-6)
    assert clf.feature_maps(x).dim() == 4
    assert as_split(clf) is clf  # the core sees the wrapper's own split


def test_wrong_channel_count_is_named():
    clf = create_classifier("test_resnet", 4, in_chans=3)
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\]"):
        clf(torch.rand(2, 1, 16, 16))


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError) as err:
        create_classifier("resnet10", 3)
    msg = str(err.value)
    assert "unknown timm model 'resnet10'" in msg and "resnet10t" in msg
    assert "timm.list_models" in msg


def test_pretrained_from_local_file_reinitialises_head(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("test_resnet", num_classes=7)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    clf = create_classifier("test_resnet", 5, in_chans=3, pretrained_file=path)
    got, want = clf.model.state_dict(), source.state_dict()
    head = clf.model.pretrained_cfg["classifier"] + "."
    trunk = [k for k in want if not k.startswith(head)]
    assert trunk and all(torch.equal(got[k], want[k]) for k in trunk)
    assert clf.model.get_classifier().weight.shape == (5, source.num_features)


def test_pretrained_file_adapts_to_one_channel(tmp_path):
    source = timm.create_model("test_resnet", num_classes=7)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, path)  # a checkpoint dict is accepted too
    clf = create_classifier("test_resnet", 3, in_chans=1, pretrained_file=path)
    conv = clf.model.pretrained_cfg["first_conv"] + ".weight"
    assert torch.allclose(clf.model.state_dict()[conv], source.state_dict()[conv].sum(1, True))


def test_pretrained_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "nope.pth")


def test_pretrained_file_of_another_model_is_refused(tmp_path):
    path = tmp_path / "convnext.pth"
    torch.save(timm.create_model("test_convnext").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit timm model 'test_resnet'"):
        create_classifier("test_resnet", 3, pretrained_file=path)
    # Same keys, wrong shapes (a wider stem):
    sd = timm.create_model("test_resnet").state_dict()
    key = next(k for k in sd
               if k.endswith("weight") and sd[k].dim() == 4 and not k.startswith("conv1"))
    sd[key] = torch.zeros(sd[key].shape[0] + 1, *sd[key].shape[1:])
    torch.save(sd, path)
    with pytest.raises(ValueError, match="wrong shapes"):
        create_classifier("test_resnet", 3, pretrained_file=path)


def test_load_run_contract(trained_run):
    model, config = load_run(trained_run)
    assert isinstance(model, Classifier) and not model.training
    for key in ("model", "num_classes", "dataset", "image_size", "channels", "data_root",
                "classes", "mean", "std"):
        assert key in config
    assert config["classes"] == [0, 1, 2] and config["num_classes"] == 3
    assert config["channels"] == 1 and config["weights"] == "ema"
    x = torch.rand(2, config["channels"], config["image_size"], config["image_size"])
    assert model(x).shape == (2, 3)
    state = torch.load(trained_run / "checkpoints" / "latest.pt", weights_only=False)
    raw, _ = load_run(trained_run, use_ema=False)
    assert all(torch.equal(raw.state_dict()[k], v) for k, v in state["model"].items())
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in state["model"].items())


def test_load_run_refuses_other_folders(tmp_path, trained_run):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "gan", "g_arch": "dcgan"}))
    with pytest.raises(ValueError, match="does not hold a classifier run"):
        load_run(tmp_path)
    other = tmp_path / "nockpt"
    other.mkdir()
    (other / "config.json").write_text((trained_run / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="has no checkpoint"):
        load_run(other)


def test_a_vit_is_built_for_the_run_image_size(tmp_path):
    # timm builds a ViT's patch grid for one input size; the run's size must reach it.
    from robustrep.tasks.cli import main
    run = tmp_path / "vit"
    assert main(["classify", "train", "--preset", "smoke", "--model", "vit_tiny_patch16_224",
                 "--image-size", "32", "--steps", "1", "--device", "cpu", "--out", str(run),
                 "--quiet"]) == 0
    model, config = load_run(run)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, config["num_classes"])
