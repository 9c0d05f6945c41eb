"""load_model and its notes (robustrep.tasks.common.foreign_model): weights no robustrep run made,
read with where their mean/std came from, and the notes on what they were used with."""

import pytest
import timm
import torch

from robustrep.nets.classifier import default_norm
from robustrep.tasks.common.classifier import create_classifier
from robustrep.tasks.common.foreign_model import default_norm_note, load_model


@pytest.mark.parametrize("entries", [("state_dict",), ("model", "ema"), ()],
                         ids=["timm", "robustrep-ema-off", "bare"])
def test_no_ema_on_a_file_without_an_ema_copy_says_so_once(entries, tmp_path, capsys):
    # Was: silent, while --no-ema on a run folder without EMA says so (classify eval/ood score
    # --checkpoint FILE --no-ema read through load_model)
    raw = timm.create_model("test_resnet", num_classes=5).state_dict()
    data = {e: (None if e == "ema" else raw) for e in entries} if entries else raw
    path = tmp_path / "ckpt.pth"
    torch.save(data, path)
    load_model("test_resnet", checkpoint=path, use_ema=False)
    assert capsys.readouterr().err == (
        f"note: --no-ema: {path} keeps no EMA copy (no state_dict_ema, model_ema or ema entry); "
        f"its raw weights, the only ones, are used, as they would be without --no-ema\n")
    load_model("test_resnet", checkpoint=path)  # without --no-ema nothing is asked of it
    assert capsys.readouterr().err == ""


def test_load_model_says_where_each_of_mean_and_std_came_from(tmp_path):
    # Was: said nowhere, and ood score guessed it by comparing the values with timm's: a file
    # whose own mean/std buffers equal the default was noted as scored with timm's default
    own = create_classifier("test_resnet", 5)  # robustrep's buffers, holding timm's default
    assert own.norm_source == {"mean": "timm default", "std": "timm default"}
    torch.save(own.state_dict(), tmp_path / "own.pth")
    torch.save(own.model.state_dict(), tmp_path / "bare.pth")  # no normalisation of its own
    default = dict(zip(("mean", "std"), default_norm(own.model, 3)))
    _, config = load_model("test_resnet", checkpoint=tmp_path / "own.pth")
    assert config["norm_source"] == {"mean": "file", "std": "file"}
    assert (config["mean"], config["std"]) == (pytest.approx(default["mean"]),
                                               pytest.approx(default["std"]))
    _, config = load_model("test_resnet", checkpoint=tmp_path / "bare.pth", std=[0.3] * 3)
    assert config["norm_source"] == {"mean": "timm default", "std": "given"}
    assert config["mean"] == pytest.approx(default["mean"])
    _, config = load_model("test_resnet", checkpoint=tmp_path / "own.pth", mean=[0.1] * 3)
    assert config["norm_source"] == {"mean": "given", "std": "file"}
    assert config["mean"] == pytest.approx([0.1] * 3)
    clf = create_classifier("test_resnet", 5, pretrained_file=tmp_path / "own.pth")
    assert clf.norm_source == {"mean": "file", "std": "file"}  # fine-tuning from a run's file


@pytest.mark.parametrize("command, done", [("ood score", "scored"),
                                           ("classify eval", "evaluated")])
def test_the_default_normalisation_note_names_only_timms_values(command, done):
    foreign = {"name": "test_resnet", "checkpoint": "m.pth", "pretrained": False}
    config = {"mean": [0.5, 0.25], "std": [0.125, 0.5],
              "norm_source": {"mean": "timm default", "std": "timm default"}}
    assert default_norm_note(foreign, config, command) == (
        f"--checkpoint m.pth: {done} with input mean 0.5 0.25, std 0.125 0.5, timm's default "
        f"for --model test_resnet (no --mean/--std given); if the weights were trained with "
        f"other values, give those with --mean/--std")
    mixed = {**config, "norm_source": {"mean": "given", "std": "timm default"}}
    assert default_norm_note(foreign, mixed, command) == (
        f"--checkpoint m.pth: {done} with input std 0.125 0.5, timm's default for --model "
        f"test_resnet (no --std given); if the weights were trained with other values, give "
        f"those with --std")
    for source in ("file", "given", "run"):  # the values are the weights' or the user's own
        own = {**config, "norm_source": {"mean": source, "std": source}}
        assert default_norm_note(foreign, own, command) is None
    pretrained = {**foreign, "checkpoint": None, "pretrained": True}  # timm's are theirs
    assert default_norm_note(pretrained, config, command) is None
    assert default_norm_note(foreign, {"mean": [0.5], "std": [0.5]}, command) is None  # none said


def test_channels_other_than_the_weights_first_conv_are_said(tmp_path, capsys):
    # was silent: timm repeated a 1-channel conv over 3 channels, scaled by 1/3 (AUROC 8.5 ->
    # 54.5 on one OOD set, the gaussian noise drawn in 3 channels too)
    path = tmp_path / "grey.pth"
    torch.save(timm.create_model("test_resnet", num_classes=3, in_chans=1).state_dict(), path)
    model, _ = load_model("test_resnet", checkpoint=path, in_chans=3)
    assert model.in_chans == 3
    assert capsys.readouterr().err == (
        f"note: --channels 3: {path}'s first conv takes 1 channel, adapted by timm to 3 (its "
        f"adapt_input_conv), so the model sees a mix of the channels, not images as it was "
        f"trained on; --channels 1, or no --channels, scores them as trained\n")
    for given in (1, None):  # as trained: nothing to say
        load_model("test_resnet", checkpoint=path, in_chans=given)
        assert capsys.readouterr().err == ""
