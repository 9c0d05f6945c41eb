"""load_run and load_run_features (robustrep.tasks.common.classifier_run): a classify run folder
read back, its normalisation said to be the run's; a folder of another program named once."""

import json

import pytest
import torch

from robustrep.tasks.common.classifier import create_classifier
from robustrep.tasks.common.classifier_run import load_run, load_run_features
from robustrep.tasks.common.errors import RunFolderError


def test_a_folder_that_is_no_classify_run_is_named_once_as_such(tmp_path):
    # Was: "... (is it a GAN or OOD run? expected a folder written by `robustrep classify
    # train`) (expected a folder written by `robustrep classify train`)"
    (tmp_path / "config.json").write_text('{"arch": "dcgan", "reg": "none"}')
    with pytest.raises(RunFolderError) as err:
        load_run_features(tmp_path)
    assert str(err.value).count("expected a folder written by `robustrep classify train`") == 1
    with pytest.raises(RunFolderError, match="expected a folder written by"):
        load_run_features(tmp_path / "nothere")


def test_a_run_folders_normalisation_is_said_to_be_the_runs(tmp_path):
    clf = create_classifier("test_resnet", 3, in_chans=1, mean=[0.2], std=[0.4])
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": "test_resnet", "num_classes": 3, "channels": 1, "mean": [0.2], "std": [0.4]}))
    torch.save({"step": 1, "model": clf.state_dict()}, tmp_path / "checkpoints" / "latest.pt")
    _, config = load_run(tmp_path)
    assert config["norm_source"] == {"mean": "run", "std": "run"}
