"""load_run (robustrep.tasks.common.classifier_run): a classify run folder -> (classifier, config),
the contract classify eval and the OOD program read runs through."""

import json

import pytest
import torch

from robustrep.nets.classifier import Classifier
from robustrep.tasks.common.classifier_run import load_run
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


@pytest.mark.parametrize("key,value,what", [
    ("channels", [1], "1 or 3"), ("channels", 2, "1 or 3"), ("channels", True, "1 or 3"),
    ("num_classes", "10", "an integer >= 1"), ("num_classes", 0, "an integer >= 1"),
    ("model", 3, "a model name"), ("mean", [], "a list of numbers"),
    ("mean", "0.5", "a list of numbers"), ("std", [0.5, 0], "a list of numbers > 0"),
    ("std", [None], "a list of numbers > 0")])
def test_an_edited_config_value_is_one_line_naming_the_file(tmp_path, trained_run, key, value,
                                                              what, capsys):
    """Was: a TypeError traceback from int([1]) in load_run (ood score RUN, --fid-features
    run:RUN), or a model built with what the edit said."""
    import shutil

    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, key: value}))
    assert main(["ood", "score", str(run), "--detectors", "MaxSoftmax", "--quiet",
                 "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: {run / 'config.json'}: {key} must be {what}, got "
        f"{json.dumps(value)}; was the file edited? (classify train writes it)\n")


def test_a_vit_is_built_for_the_run_image_size(tmp_path):
    # timm builds a ViT's patch grid for one input size; the run's size must reach it.
    from robustrep.tasks.cli import main
    run = tmp_path / "vit"
    assert main(["classify", "train", "--preset", "smoke", "--model", "vit_tiny_patch16_224",
                 "--image-size", "32", "--steps", "1", "--device", "cpu", "--out", str(run),
                 "--quiet"]) == 0
    model, config = load_run(run)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, config["num_classes"])
