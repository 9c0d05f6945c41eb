"""load_run (robustrep.tasks.common.classifier): a classify run folder -> (classifier, config),
the contract classify eval and the OOD program read runs through."""

import json

import pytest
import torch

from robustrep.nets.classifier import Classifier
from robustrep.tasks.common.classifier import load_run
from robustrep.tasks.common.errors import RunFolderError


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
    with pytest.raises(RunFolderError, match=r"^RUN \S*missing does not exist \(expected a "
                                             r"folder holding config.json"):
        load_run(tmp_path / "missing")
    # was: "run folder .../latest.pt does not exist", of a file that does
    ckpt = trained_run / "checkpoints" / "latest.pt"
    with pytest.raises(RunFolderError, match=rf"^RUN {ckpt} is a file, not a run folder .*; for "
                                             rf"a checkpoint give its run folder: {trained_run};"):
        load_run(ckpt)
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
