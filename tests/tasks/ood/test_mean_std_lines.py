"""``--mean``/``--std`` of another length than the model's input channels: the refusal names
the options and where the channel count comes from (the library's line named neither)."""

import pytest
import torch

from robustrep.tasks.cli import main


@pytest.fixture
def rgb_weights(tmp_path):
    from robustrep.tasks.common.classifier import create_classifier
    torch.manual_seed(0)
    path = tmp_path / "tr10.pth"
    torch.save(create_classifier("test_resnet", 3, in_chans=3).model.state_dict(), path)
    return path


def _score(*argv):
    return main(["ood", "score", "--model", "test_resnet", "--image-size", "16", *argv,
                 "--classes", "0", "1", "2", "--detectors", "MaxSoftmax", "--quiet",
                 "--no-plots", "--device", "cpu"])


def test_mean_and_std_name_the_options_and_the_weights_channels(rgb_weights, tmp_path,
                                                                 capsys):
    # Was: "mean/std need 3 value(s) (one per input channel); got mean=[0.5], std=[0.5]"
    out = ["--out", str(tmp_path / "out")]
    assert _score("--checkpoint", str(rgb_weights), "--mean", "0.5", "--std", "0.5", *out) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --mean/--std: give 3 values, one per input channel of "
        f"{rgb_weights}'s weights (3 channels); got 1\n")
    assert _score("--checkpoint", str(rgb_weights), "--std", "0.5", "0.5", *out) == 2
    assert capsys.readouterr().err.endswith(
        f"error: --std: give 3 values, one per input channel of {rgb_weights}'s weights (3 "
        f"channels); got 2\n")


def test_mean_and_std_name_channels_given(fake_run, tmp_path, capsys):
    assert _score("--checkpoint", str(fake_run / "checkpoints" / "latest.pt"), "--channels", "1",
                  "--mean", "0.5", "0.5", "0.5", "--std", "0.2", "0.2", "--out",
                  str(tmp_path / "out")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "robustrep ood score: error: --mean/--std: give 1 value, one per input channel "
        "(--channels 1); got 3 and 2")
