"""The one line ``--fid-features run:X`` gives for a folder that is no classify run."""

import json

import pytest

from robustrep.tasks.common.classifier_run import load_run_features
from robustrep.tasks.common.errors import RunFolderError


@pytest.mark.parametrize("layout", ["empty", "checkpoints-folder", "gan-run"])
def test_a_folder_that_is_no_classify_run_says_what_is_expected_once(tmp_path, layout):
    # Was, for a folder without config.json (an empty one, a run's checkpoints/ given for the
    # run): "... no config.json (expected RUN/config.json and RUN/checkpoints/latest.pt written
    # by `robustrep classify train`) (expected a folder written by `robustrep classify train`)"
    folder = tmp_path / "x"
    (folder / "checkpoints").mkdir(parents=True)
    if layout == "checkpoints-folder":
        folder = folder / "checkpoints"
    if layout == "gan-run":
        (folder / "config.json").write_text(json.dumps({"arch": "dcgan", "reg": "none"}))
    with pytest.raises(RunFolderError) as err:
        load_run_features(folder)
    line = str(err.value)
    assert "\n" not in line and line.startswith(str(folder))
    assert line.count("expected ") == 1 and line.count("robustrep classify train") == 1


def test_a_classify_run_without_its_checkpoint_is_named_once(tmp_path):
    config = {"model": "test_resnet", "num_classes": 3, "channels": 1, "mean": [0.5],
              "std": [0.5]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunFolderError) as err:
        load_run_features(tmp_path)
    line = str(err.value)
    assert line == (f"{tmp_path} has no checkpoint: expected "
                    f"{tmp_path / 'checkpoints' / 'latest.pt'} (has the training run written "
                    f"its first checkpoint yet?)")


def test_gan_fid_names_the_folder_once_exit_2(tmp_path, capsys):
    from robustrep.tasks.cli import main
    import numpy as np
    from PIL import Image
    images, empty = tmp_path / "images", tmp_path / "empty"
    images.mkdir(), empty.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(images / f"{i}.png")
    assert main(["gan", "fid", str(images), str(images), "--fid-features", f"run:{empty}",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(f"{empty} is not a robustrep run folder: no config.json (expected "
                        f"RUN/config.json and RUN/checkpoints/latest.pt written by `robustrep "
                        f"classify train`)")
