"""A checkpoint of timm's train.py read with its options: the model it names and the mean/std
it was trained with (its ``args``), in classify eval and ood score alike.

Was: its ``args`` were dropped on reading, so ``--checkpoint last.pth.tar`` was evaluated with
timm's default normalisation (top-1 0.11 where the file's own mean/std gave 0.99) and, without
``--model``, refused with "--checkpoint needs --model NAME" though the file names its model.
"""

import argparse
import json

import pytest
import timm
import torch
from safetensors.torch import save_file

from robustrep.tasks.cli import main
from robustrep.tasks.common.foreign_model import load_model
from robustrep.tasks.common.weights_file import named_model, read_weights

EVAL = ["--attacks", "none", "--corruptions", "--max-samples", "16", "--quiet"]
MEAN, STD = (0.2, 0.2, 0.2), (0.3, 0.3, 0.3)


def _net():
    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=10).eval()
    with torch.no_grad():  # a head that matters: an untrained one gives ~uniform logits
        net.fc.bias.copy_(torch.linspace(-3, 3, 10))
        net.fc.weight.mul_(20)
    return net


def _timm_checkpoint(path, mean=MEAN, std=STD, **args):
    """A file as timm's train.py (CheckpointSaver._save) writes it, DDP's prefix included."""
    net = _net()
    options = dict(model="test_resnet", mean=mean, std=std, num_classes=10, img_size=None,
                   input_size=None)
    options.update(args)
    torch.save({"epoch": 3, "arch": options["model"], "version": 2,
                "state_dict": {"module." + k: v for k, v in net.state_dict().items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
                "args": argparse.Namespace(**options)}, path)
    return path


def test_the_files_args_normalise_the_inputs_unless_mean_and_std_are_given(tmp_path):
    path = _timm_checkpoint(tmp_path / "last.pth.tar")
    model, config = load_model("test_resnet", path)
    assert model.mean.flatten().tolist() == pytest.approx(MEAN)
    assert model.std.flatten().tolist() == pytest.approx(STD)
    assert config["norm_source"] == {"mean": "file", "std": "file"}
    assert config["trained_norm"] == {"mean": "args", "std": "args"}
    x = torch.rand(2, 3, 16, 16)
    given, _ = load_model("test_resnet", path, mean=list(MEAN), std=list(STD))
    with torch.no_grad():
        assert torch.equal(model(x), given(x))  # the very inputs the explicit values give
    # --mean/--std given win over the file's
    other, config = load_model("test_resnet", path, mean=[0.1] * 3, std=[0.5] * 3)
    assert other.mean.flatten().tolist() == pytest.approx([0.1] * 3)
    assert config["norm_source"] == {"mean": "given", "std": "given"}
    assert config["trained_norm"] == {}
    # timm's --mean 0.2: one value, every channel's (resolve_data_config repeats it)
    one, _ = load_model("test_resnet", _timm_checkpoint(tmp_path / "one.pth.tar", mean=[0.2],
                                                        std=[0.3]))
    assert one.mean.flatten().tolist() == pytest.approx(MEAN)


def test_classify_eval_uses_and_says_the_files_normalisation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar")
    base = ["classify", "eval", "--model", "test_resnet", "--checkpoint", "last.pth.tar", *EVAL]
    assert main([*base, "--out", "a"]) == 0
    err = capsys.readouterr().err
    assert ("note: --checkpoint last.pth.tar: evaluated with input mean 0.2 0.2 0.2, std 0.3 "
            "0.3 0.3, from its timm train.py options (args.mean/args.std)\n") in err
    assert "timm's default" not in err and "names its model" not in err
    conv = json.loads((tmp_path / "a" / "report.json").read_text())["input_convention"]
    assert (conv["mean"], conv["std"]) == ([0.2] * 3, [0.3] * 3)
    assert conv["norm_source"] == {"mean": "file", "std": "file"}
    assert main([*base, "--out", "b", "--mean", "0.1", "0.1", "0.1"]) == 0  # std: the file's
    err = capsys.readouterr().err
    assert "evaluated with input std 0.3 0.3 0.3, from its timm train.py options (args.std)" \
        in err
    conv = json.loads((tmp_path / "b" / "report.json").read_text())["input_convention"]
    assert (conv["mean"], conv["norm_source"]) == ([0.1] * 3, {"mean": "given", "std": "file"})


def test_args_without_mean_and_std_trained_with_timms_default(tmp_path, monkeypatch, capsys):
    # timm's train.py takes None as the model's pretrained_cfg: robustrep's default too, so
    # the note says the file trained with it, not "if trained with other values, give those"
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar", mean=None, std=None)
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "last.pth.tar",
                 "--out", "a", *EVAL]) == 0
    err = capsys.readouterr().err
    assert ("note: --checkpoint last.pth.tar: evaluated with input mean 0.5 0.5 0.5, std 0.5 "
            "0.5 0.5, timm's default for --model test_resnet, as its timm train.py options "
            "(args.mean/args.std None) trained it\n") in err
    conv = json.loads((tmp_path / "a" / "report.json").read_text())["input_convention"]
    assert conv["norm_source"] == {"mean": "timm default", "std": "timm default"}


def test_the_model_comes_from_the_file_when_model_is_not_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar")
    assert main(["classify", "eval", "--checkpoint", "last.pth.tar", "--out", "a", *EVAL]) == 0
    err = capsys.readouterr().err
    assert ("note: --model test_resnet, as --checkpoint last.pth.tar names it (its timm "
            "train.py args.model)\n") in err
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["model"] == "test_resnet"
    assert report["input_convention"]["mean"] == [0.2] * 3
    # without args, timm's saver writes the class name as arch ("resnet"): not a model name
    data = torch.load("last.pth.tar", weights_only=False)
    del data["args"]
    torch.save(dict(data, arch="test_resnet"), "arch.pth.tar")
    torch.save(dict(data, arch="resnet"), "class.pth.tar")
    assert named_model(tmp_path / "arch.pth.tar").model == "test_resnet"
    assert main(["classify", "eval", "--checkpoint", "class.pth.tar", "--out", "b", *EVAL]) == 2
    assert capsys.readouterr().err == (
        "robustrep classify eval: error: --checkpoint class.pth.tar names no timm model (timm "
        "train.py's args.model, or an arch timm knows): give --model NAME, the model it "
        "holds\n")
    save_file(_net().state_dict(), str(tmp_path / "w.safetensors"))  # no options in it
    assert named_model(tmp_path / "w.safetensors") is None


def test_a_classify_runs_checkpoint_alone_points_to_its_run(tmp_path, monkeypatch, capsys):
    # Was: "--checkpoint RUN/checkpoints/latest.pt names no timm model", though the run's
    # config.json names it and `classify eval RUN` evaluates it as trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model": "test_resnet"}))
    for name in ("latest.pt", "step_00000002.pt"):  # as classify train saves one
        torch.save({"step": 2, "model": _net().state_dict(), "ema": None,
                    "config": {"model": "test_resnet"}}, tmp_path / "run" / "checkpoints" / name)
    head = ("robustrep classify eval: error: --checkpoint run/checkpoints/{} is a checkpoint of "
            "the classify run run (model test_resnet, as its config.json names it): evaluate the "
            "run, robustrep classify eval run")
    assert main(["classify", "eval", "--checkpoint", "run/checkpoints/latest.pt", *EVAL]) == 2
    assert capsys.readouterr().err == head.format("latest.pt") + "\n"
    assert main(["classify", "eval", "--checkpoint", "run/checkpoints/step_00000002.pt",
                 *EVAL]) == 2
    assert capsys.readouterr().err == head.format("step_00000002.pt") + (
        " (it evaluates its checkpoints/latest.pt), or add --model test_resnet to evaluate this "
        "file\n")
    (tmp_path / "run" / "config.json").write_text(json.dumps({"arch": "dcgan"}))  # a GAN run's
    assert main(["classify", "eval", "--checkpoint", "run/checkpoints/latest.pt", *EVAL]) == 2
    assert "names no timm model" in capsys.readouterr().err


def test_a_model_given_other_than_the_files_is_kept_and_said(tmp_path, monkeypatch, capsys):
    # the user may know the name it has here (a model registered under another name)
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar", model="my_resnet")
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "last.pth.tar",
                 "--out", "a", *EVAL]) == 0
    err = capsys.readouterr().err
    assert ("note: --checkpoint last.pth.tar names its model my_resnet (its timm train.py "
            "args.model); it is loaded as --model test_resnet, as given\n") in err
    assert json.loads((tmp_path / "a" / "report.json").read_text())["model"] == "test_resnet"
    # a pretrained tag names weights, not another model: nothing to say
    _timm_checkpoint(tmp_path / "tag.pth.tar", model="test_resnet.r160_in1k")
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "tag.pth.tar",
                 "--out", "b", *EVAL]) == 0
    assert "names its model" not in capsys.readouterr().err


def test_ood_score_reads_the_files_model_and_normalisation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar")
    assert main(["ood", "score", "--checkpoint", "last.pth.tar", "--ood", "gaussian",
                 "--detectors", "MaxSoftmax", "--max-samples", "16", "--no-plots", "--quiet",
                 "--out", "ood"]) == 0
    err = capsys.readouterr().err
    assert "note: --model test_resnet, as --checkpoint last.pth.tar names it" in err
    assert ("note: --checkpoint last.pth.tar: scored with input mean 0.2 0.2 0.2, std 0.3 0.3 "
            "0.3, from its timm train.py options (args.mean/args.std)") in err
    result = json.loads((tmp_path / "ood" / "results.json").read_text())
    assert (result["model"], result["mean"], result["std"]) == ("test_resnet", [0.2] * 3,
                                                                [0.3] * 3)
    assert result["norm_source"] == {"mean": "file", "std": "file"}


def test_args_mean_of_another_channel_count_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _timm_checkpoint(tmp_path / "last.pth.tar", mean=[0.2, 0.2])
    assert main(["classify", "eval", "--checkpoint", "last.pth.tar", "--out", "a", *EVAL]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "robustrep classify eval: error: weights file last.pth.tar: its timm train.py args.mean "
        "has 2 values for 3-channel inputs (its weights'); give --mean and --std, one value per "
        "channel")


def test_read_weights_keeps_what_the_options_say(tmp_path):
    read = read_weights(_timm_checkpoint(tmp_path / "last.pth.tar"))
    assert (read.trained.model, read.trained.where) == ("test_resnet", "args.model")
    assert read.trained.norm == {"mean": list(MEAN), "std": list(STD)}
    assert read.normalisation == {} and list(read.state) == list(_net().state_dict())
    # another trainer's args (DeiT's main.py saves its Namespace too) say nothing of mean/std
    data = torch.load(tmp_path / "last.pth.tar", weights_only=False)
    data["args"] = argparse.Namespace(model="test_resnet", lr=0.1)
    torch.save(data, tmp_path / "deit.pth")
    assert read_weights(tmp_path / "deit.pth").trained.norm == {}


def test_given_values_that_replace_the_files_own_are_said(tmp_path, capsys):
    """Was: --mean/--std other than the file's training values replaced them without a word
    (ID accuracy 50% -> 37.5%); the same values, one standing for every channel, say nothing."""
    path = _timm_checkpoint(tmp_path / "last.pth.tar")
    capsys.readouterr()
    load_model("test_resnet", path, mean=[0.1] * 3, std=list(STD))
    assert capsys.readouterr().err == (
        f"note: --mean 0.1 0.1 0.1 replaces the mean 0.2 0.2 0.2 that {path} records (its "
        f"training's); the given values are used\n")
    one = _timm_checkpoint(tmp_path / "one.pth.tar", mean=[0.2], std=[0.3])
    capsys.readouterr()
    load_model("test_resnet", one, mean=list(MEAN), std=list(STD))
    assert capsys.readouterr().err == ""
