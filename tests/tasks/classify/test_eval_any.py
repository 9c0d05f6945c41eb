"""`classify eval` and `ood score` on a classifier no run made (--model + --checkpoint)."""

import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from robustrep.tasks.cli import main
from robustrep.tasks.common.foreign_model import load_model

EVAL = ["--attacks", "none", "--corruptions", "--max-samples", "48", "--quiet"]


def _foreign(seed=0):
    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()
    with torch.no_grad():  # a head that matters: an untrained one gives ~uniform logits
        net.fc.bias.copy_(torch.linspace(-3, 3, 10))
        net.fc.weight.mul_(20)
    return net


@pytest.mark.parametrize("wrap", ["plain", "module", "state_dict+model", "safetensors"])
def test_load_model_reads_other_trainers_files(tmp_path, wrap):
    net = _foreign()
    state = net.state_dict()
    path = tmp_path / "ck.pth"
    if wrap == "module":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    elif wrap == "state_dict+model":
        torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    elif wrap == "safetensors":
        path = tmp_path / "ck.safetensors"
        save_file(state, str(path))
    else:
        torch.save(state, path)
    clf, config = load_model("test_resnet", checkpoint=path, mean=[0.0], std=[1.0])
    assert config["num_classes"] == 10 and config["channels"] == 1  # read off the weights
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(clf(x), net(x), atol=1e-5)  # every weight, head included


def test_load_model_reads_a_robustrep_checkpoint_with_its_normalisation(tmp_path):
    # a run's checkpoints/latest.pt: {"model": Classifier state (model.* and its mean/std), ...}
    from robustrep.nets.classifier import as_classifier
    clf = as_classifier(_foreign(), 1, [0.25], [0.5]).eval()
    torch.save({"step": 7, "model": clf.state_dict(), "ema": None}, tmp_path / "latest.pt")
    loaded, config = load_model("test_resnet", checkpoint=tmp_path / "latest.pt")
    assert (config["mean"], config["std"], config["num_classes"]) == ([0.25], [0.5], 10)
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(loaded(x), clf(x), atol=1e-5)
    mine, config = load_model("test_resnet", checkpoint=tmp_path / "latest.pt", mean=[0.0],
                              std=[1.0])  # the user's own normalisation wins
    assert config["mean"] == [0.0] and torch.allclose(mine(x), clf.model(x), atol=1e-5)


def test_a_robustrep_checkpoint_gives_its_ema_unless_no_ema(tmp_path, capsys):
    # was: --checkpoint RUN/checkpoints/latest.pt took the raw weights, unlike classify eval RUN
    # (the EMA's), and --no-ema did nothing
    from robustrep.nets.classifier import as_classifier
    raw, ema = (as_classifier(_foreign(seed), 1, [0.25], [0.5]).eval() for seed in (0, 1))
    torch.save({"step": 7, "model": raw.state_dict(), "ema": ema.state_dict()},
               tmp_path / "latest.pt")
    x = torch.rand(4, 1, 16, 16)
    loaded, _ = load_model("test_resnet", checkpoint=tmp_path / "latest.pt")
    assert torch.allclose(loaded(x), ema(x), atol=1e-5)
    assert "holds ema and model; ema, the EMA weights, is loaded" in capsys.readouterr().err
    loaded, _ = load_model("test_resnet", checkpoint=tmp_path / "latest.pt", use_ema=False)
    assert torch.allclose(loaded(x), raw(x), atol=1e-5) and capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="--no-ema takes a training checkpoint's raw weights"):
        load_model("test_resnet", pretrained=True, use_ema=False)


def test_a_timm_train_py_checkpoint_loads_and_nothing_else_rides_along(tmp_path):
    # timm's CheckpointSaver writes {"epoch", "arch", "state_dict", "optimizer", "version",
    # "args": argparse.Namespace, "state_dict_ema", "metric"}: was refused for the Namespace
    import argparse
    import os
    net = _foreign()
    args = argparse.Namespace(model="test_resnet", lr=0.1, epochs=3, mixup=0.2)
    torch.save({"epoch": 2, "arch": "test_resnet", "state_dict": net.state_dict(),
                "version": 2, "args": args, "metric": 71.2}, tmp_path / "last.pth.tar")
    clf, _ = load_model("test_resnet", checkpoint=tmp_path / "last.pth.tar", mean=[0.0],
                        std=[1.0])
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(clf(x), net(x), atol=1e-5)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)
    torch.save({"state_dict": net.state_dict(), "args": argparse.Namespace(p=Payload())},
               tmp_path / "bad.pth.tar")
    with pytest.raises(Exception, match="holds Python objects"):
        load_model("test_resnet", checkpoint=tmp_path / "bad.pth.tar")
    assert not marker.exists()


def test_mismatch_is_one_line_listing_the_keys(tmp_path):
    state = _foreign().state_dict()
    del state["layer1.0.conv1.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "ck.pth")
    with pytest.raises(ValueError) as err:
        load_model("test_resnet", checkpoint=tmp_path / "ck.pth")
    msg = str(err.value)
    assert "\n" not in msg and "layer1.0.conv1.weight" in msg and "extra.weight" in msg


def test_classify_eval_checkpoint_without_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = _foreign(1)
    torch.save(net.state_dict(), "ck.pth")
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "ck.pth",
                 "--mean", "0", "--std", "1", "--out", "rep", *EVAL]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["run"] is None and report["weights"] == "ck.pth"
    # the same accuracy as the network itself on the same 48 digits test images
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.data import build_datasets
    _, test, _ = build_datasets(ClassifyConfig(channels=1))
    x = torch.stack([test[i][0] for i in range(48)])
    y = torch.tensor([int(test[i][1]) for i in range(48)])
    with torch.no_grad():
        logits = net(x)
    assert report["clean"]["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    nll = torch.nn.functional.cross_entropy(logits, y).item()
    assert report["clean"]["nll"] == pytest.approx(nll, rel=1e-4)


def test_a_second_model_eval_into_its_out_replaces_its_report_as_a_runs_does(tmp_path,
                                                                             monkeypatch,
                                                                             capsys,
                                                                             undrawn_diagrams):
    # Was: `--out D already holds a report.json; choose a new folder` for the report an earlier
    # `classify eval --model` wrote there, while `classify eval RUN` replaced RUN/eval's
    monkeypatch.chdir(tmp_path)
    torch.save(_foreign(1).state_dict(), "ck.pth")
    torch.save(_foreign(2).state_dict(), "other.pth")
    base = ["classify", "eval", "--model", "test_resnet", "--mean", "0", "--std", "1",
            "--attacks", "none", "--max-samples", "16", "--quiet", "--out", "rep"]
    assert main([*base, "--checkpoint", "ck.pth", "--corruptions", "contrast",
                 "--severities", "1"]) == 0
    assert (tmp_path / "rep" / "corruptions.png").is_file()
    capsys.readouterr()
    assert main([*base, "--checkpoint", "ck.pth", "--corruptions"]) == 0  # the same model
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["corruptions"] == {} and report["n"] == 16
    # the earlier report's corruption diagram went with it (it was read as this report's)
    assert sorted(p.name for p in (tmp_path / "rep").iterdir() if not p.name.startswith(".")) \
        == ["reliability.png", "report.json"]
    assert "replaced: it held corruption_acc on 16 samples; this one holds clean accuracy " \
           "only on 16 samples" in capsys.readouterr().err
    # a call stopped between its report.json and its diagrams left the old diagram beside a
    # report without it: the next call removes it too (was kept for ever)
    (tmp_path / "rep" / "corruptions.png").write_bytes(b"an earlier call's")
    assert main([*base, "--checkpoint", "ck.pth", "--corruptions"]) == 0
    assert not (tmp_path / "rep" / "corruptions.png").exists()
    assert main([*base, "--checkpoint", "other.pth", "--corruptions"]) == 0  # another one
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["weights"] == "other.pth"
    assert (f"note: {Path('rep') / 'report.json'} replaced: it held the report of another "
            f"evaluation (weights 'ck.pth' -> 'other.pth'); give --out a new folder to keep "
            f"both") in capsys.readouterr().err


def test_a_files_raw_weights_after_its_ema_into_one_out_are_said_and_recorded(tmp_path,
                                                                               monkeypatch,
                                                                               capsys):
    # Was: --no-ema replaced the EMA report without a word, and both reports said only
    # "weights": "ck.pth.tar" (clean top-1 0.9567 -> 0.92 in a user's test)
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": _foreign(1).state_dict(), "state_dict_ema": _foreign(2).state_dict()},
               "ck.pth.tar")
    base = ["classify", "eval", "--model", "test_resnet", "--mean", "0", "--std", "1",
            "--attacks", "none", "--corruptions", "--max-samples", "16", "--quiet", "--out", "rep",
            "--checkpoint", "ck.pth.tar"]
    assert main(base) == 0
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["ema"] is True
    capsys.readouterr()
    assert main([*base, "--no-ema"]) == 0
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["ema"] is False
    assert (f"note: {Path('rep') / 'report.json'} replaced: it held the report of another "
            f"evaluation (ema True -> False); give --out a new folder to keep both"
            ) in capsys.readouterr().err


def test_no_ema_on_a_file_of_ema_weights_alone_says_so(tmp_path):
    # was: "... is not a state dict: expected a mapping of parameter names to tensors"
    torch.save({"epoch": 3, "state_dict_ema": _foreign().state_dict()}, tmp_path / "ema.pth.tar")
    with pytest.raises(ValueError, match=r"ema.pth.tar holds only state_dict_ema, EMA weights, "
                                         r"and no state_dict or model entry: --no-ema has no "
                                         r"raw weights to take; drop --no-ema$"):
        load_model("test_resnet", checkpoint=tmp_path / "ema.pth.tar", use_ema=False)
    load_model("test_resnet", checkpoint=tmp_path / "ema.pth.tar")  # its EMA weights load


@pytest.mark.parametrize("name, text", [("report.json", '{"mine": 1}\n'),
                                        ("reliability.png", "my picture")])
def test_a_users_file_in_a_model_evals_out_is_kept(tmp_path, monkeypatch, capsys, name, text):
    # a user's file of a name the eval writes is refused before any work, as for a run's --out
    monkeypatch.chdir(tmp_path)
    torch.save(_foreign(1).state_dict(), "ck.pth")
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / name).write_text(text)
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "ck.pth",
                 "--out", "rep", *EVAL]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classify eval replaces only its own files" in err
    assert (tmp_path / "rep" / name).read_text() == text
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [name]


def test_a_head_too_small_for_the_data_asks_for_the_classes_it_was_trained_on(tmp_path,
                                                                               monkeypatch,
                                                                               capsys):
    # Was: "num_classes=5 is too small for digits: its labels need 10 outputs": an option
    # classify eval --model never had from the user (the weights fix the head), and no word
    # of --classes, the fix for a classifier of digits 0-4
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(timm.create_model("test_resnet", num_classes=5, in_chans=1).state_dict(), "ck.pth")
    base = ["classify", "eval", "--model", "test_resnet", "--checkpoint", "ck.pth", *EVAL]
    assert main(base + ["--out", "a"]) == 2
    assert capsys.readouterr().err == (
        "robustrep classify eval: error: the model has 5 outputs (its head, from the weights) and "
        "digits holds more classes: its labels need 10 outputs (labels 0..9); name the labels "
        "it was trained on with --classes (--classes 0 1 2 3 4 for labels 0..4)\n")
    assert main(base + ["--num-classes", "5", "--out", "a"]) == 2
    assert "the model has 5 outputs (--num-classes 5) and digits" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert main(base + ["--classes", "0", "1", "2", "3", "4", "--out", "b"]) == 0
    # a run's own head (classify train --num-classes) keeps its line
    assert main(["classify", "train", "--num-classes", "3", "--dry-run"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: num_classes=3 is too small for digits: its labels need 10 outputs (labels "
        "0..9)\n")


def test_ood_score_checkpoint_without_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(_foreign(2).state_dict(), "ck.pth")
    assert main(["ood", "score", "--model", "test_resnet", "--checkpoint", "ck.pth",
                 "--ood", "gaussian", "--detectors", "MaxSoftmax", "--max-samples", "32",
                 "--no-plots", "--quiet", "--out", "ood"]) == 0
    result = json.loads((tmp_path / "ood" / "results.json").read_text())
    assert (result["run"], result["model"], result["weights"]) == (None, "test_resnet", "ck.pth")
    assert result["results"] and (tmp_path / "ood" / "results.csv").is_file()


@pytest.mark.parametrize("argv, needle", [
    (["classify", "eval"], "give a run folder RUN, or --model"),
    (["classify", "eval", "--model", "test_resnet"], "--pretrained or --checkpoint"),
    (["classify", "eval", "--checkpoint", "x.pth"], "--checkpoint x.pth does not exist"),
    (["classify", "eval", "RUN", "--model", "test_resnet", "--pretrained"], "not both"),
    (["classify", "eval", "--robustbench", "Standard"],
     "pip install 'git+https://github.com/RobustBench/robustbench"),
    (["ood", "score", "--model", "test_resnet", "--checkpoint", "missing.pth"], "missing.pth"),
    # was "cannot tell the number of classes of './nothere' from its weights"
    (["classify", "eval", "--model", "./nothere", "--pretrained"], "'./nothere': no such folder"),
    # were ignored beside a run folder: its own config.json was used without a word
    (["classify", "eval", "RUN", "--mean", "0.9", "--std", "0.01"],
     "--mean describes a model given with --model; the run folder RUN uses its own (its "
     "config.json): drop it"),
    (["classify", "eval", "RUN", "--dataset", "cifar10"], "--dataset describes a model given"),
    (["ood", "score", "RUN", "--image-size", "16"], "--image-size describes a model given"),
    (["classify", "eval", "RUN", "--threat-model", "L2"], "--threat-model applies only with "
                                                          "--robustbench NAME (the attacks' norm "
                                                          "is --norm)"),
    (["classify", "eval", "RUN", "--model-dir", "m"], "--model-dir applies only with "
                                                      "--robustbench NAME"),
])
def test_user_errors_are_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


@pytest.mark.parametrize("argv, needle", [
    (["--attacks", "pgd,pgd"], "--attacks: attack pgd is given twice"),  # was a traceback
    (["--attacks", "pgd", "--pgd-steps", "10", "10"], "step count 10 is given twice"),
    (["--attacks", "pgd", "--pgd-steps"], "needs at least one --pgd-steps"),  # ran no attack
    (["--attacks", "fgsm", "--pgd-steps", "5"], "--pgd-steps applies only with --attacks pgd"),
    (["--attacks", "none", "--eps", "0.1"], "--eps applies only with an attack"),
    (["--attacks", "none", "--norm", "L2"], "--norm applies only with an attack"),
    (["--attacks", "none", "--n-attack", "5"], "--n-attack applies only with an attack"),
    # were computed twice and shown once, or acted on nothing
    (["--corruptions", "contrast", "contrast"],
     "--corruptions: corruption contrast is given twice"),
    (["--severities", "2", "2"], "--severities: severity 2 is given twice"),
    (["--corruptions", "--severities", "3"], "--severities applies only with corruptions"),
])
def test_eval_attack_options_that_cannot_act_are_refused(argv, needle, capsys, monkeypatch):
    from robustrep.tasks.cli import main
    from robustrep.tasks.common import runtime

    def loading(*args, **kwargs):  # was: refused after torch's import and the device (~6 s)
        pytest.fail("the device was resolved before the attack options were checked")
    monkeypatch.setattr(runtime, "resolve_device", loading)
    assert main(["classify", "eval", "RUN", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, needle", [
    # were: none dropped and the corruptions run; "" read as none; fgsm at radius 0 reported
    (["--corruptions", "none", "contrast"], "argument --corruptions: none cannot be combined "
                                            "with other values; give none alone"),
    (["--attacks", ""], "argument --attacks: must be a list of values, each one of autoattack"),
    # none beside attacks: refused, not read as the attacks alone (or as none)
    (["--attacks", "none,pgd"], "argument --attacks: must be a list of values, each one of "
                                "autoattack, apgd-ce, apgd-t, fab-t, square, pgd, fgsm "
                                "(comma-separated), or "
                                "none; got 'none,pgd'"),
    (["--attacks", "fgsm,none"], "or none; got 'fgsm,none'"),
    (["--attacks", "none,none"], "or none; got 'none,none'"),
    (["--attacks", "fgsm", "--eps", "0"], "argument --eps: must be a finite number > 0"),
])
def test_eval_values_that_would_be_read_as_others_are_refused_by_the_parser(argv, needle, capsys):
    from robustrep.tasks.cli import main
    with pytest.raises(SystemExit) as info:
        main(["classify", "eval", "RUN", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and needle in err and err.count("\n") == 1


def test_two_model_evals_started_in_one_second_keep_their_own_folders(tmp_path, monkeypatch,
                                                                      undrawn_diagrams):
    # Was: both wrote runs/eval/<model>-<time>; the later one's report replaced the earlier's
    # (other weights), both exiting 0
    import time
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    for seed, name in ((1, "a.pth"), (2, "b.pth")):
        torch.save(_foreign(seed).state_dict(), name)
        assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", name,
                     "--mean", "0", "--std", "1", *EVAL]) == 0
    folders = [tmp_path / "runs" / "eval" / f"test_resnet-20260101-000000{n}" for n in ("", "-2")]
    assert [json.loads((f / "report.json").read_text())["weights"] for f in folders] == \
        ["a.pth", "b.pth"]


def test_a_runs_checkpoint_on_other_data_than_it_trained_on_is_noted(trained_run, tmp_path,
                                                                      monkeypatch, capsys,
                                                                      undrawn_diagrams):
    # was: --model --checkpoint RUN/checkpoints/latest.pt at the default --image-size 32 and
    # every label, for a run trained at 16 on labels 0-2: a report on other data, without a word
    monkeypatch.chdir(tmp_path)
    ckpt = str(trained_run / "checkpoints" / "latest.pt")
    base = ["classify", "eval", "--model", "test_resnet", "--checkpoint", ckpt, *EVAL]
    assert main([*base, "--out", "a", "--classes", "0", "1"]) == 0
    err = capsys.readouterr().err
    assert (f"note: {ckpt} is a classify run's checkpoint, evaluated here on other data than it "
            f"was trained on: --image-size 32 (the run's: 16); --classes 0,1 (the run's: 0,1,2); "
            f"`robustrep classify eval {trained_run}` evaluates it as trained") in err
    assert "timm's default" not in err  # the checkpoint's own mean/std
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["input_convention"]["norm_source"] == {"mean": "file", "std": "file"}
    shutil.copy(ckpt, "lone.pt")  # out of its run folder: the values to give
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "lone.pt",
                 "--classes", "0", "1", "2", "--out", "d", *EVAL]) == 0
    assert ("note: lone.pt is a classify run's checkpoint, evaluated here on other data than it "
            "was trained on: --image-size 32 (the run's: 16); give the run's values"
            ) in capsys.readouterr().err
    assert main([*base, "--out", "b", "--image-size", "16", "--classes", "0", "1", "2"]) == 0
    assert "other data" not in capsys.readouterr().err  # the run's own data: nothing to say
    torch.save(_foreign().state_dict(), "plain.pth")  # no run's config in it: nothing to say
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "plain.pth",
                 "--mean", "0", "--std", "1", "--out", "c", *EVAL]) == 0
    assert "other data" not in capsys.readouterr().err


def test_classify_eval_reads_a_runs_checkpoint_once(trained_run, tmp_path, monkeypatch,
                                                    capsys):
    # was: three reads of one file (load_model's, create_classifier's, the note's mmap load)
    from pathlib import Path
    monkeypatch.chdir(tmp_path)
    ckpt = trained_run / "checkpoints" / "latest.pt"
    reads, load = [], torch.load

    def counting_load(f, *args, **kwargs):
        reads.append(Path(f).resolve() if isinstance(f, (str, Path)) else f)
        return load(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", counting_load)
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", str(ckpt),
                 "--classes", "0", "1", "2", "--out", "a", *EVAL]) == 0
    assert reads.count(ckpt.resolve()) == 1
    # the note (the run trained at 16, evaluated at 32) comes from that one read
    assert "--image-size 32 (the run's: 16)" in capsys.readouterr().err


def test_classify_eval_says_a_checkpoint_was_evaluated_with_timms_default_normalisation(
        tmp_path, monkeypatch, capsys, undrawn_diagrams):
    # Was: the table showed the mean/std, not that they were --model's default in timm rather
    # than the weights' own or the user's (ood score said so); the report did not say either
    from robustrep.nets.classifier import default_norm
    monkeypatch.chdir(tmp_path)
    net = _foreign()
    torch.save(net.state_dict(), "ck.pth")
    (mean,), (std,) = default_norm(net, 1)
    base = ["classify", "eval", "--model", "test_resnet", "--checkpoint", "ck.pth", *EVAL]
    assert main([*base, "--out", "a"]) == 0
    assert (f"note: --checkpoint ck.pth: evaluated with input mean {mean:g}, std {std:g}, "
            f"timm's default for --model test_resnet (no --mean/--std given); if the weights "
            f"were trained with other values, give those with --mean/--std\n"
            ) in capsys.readouterr().err
    conv = json.loads((tmp_path / "a" / "report.json").read_text())["input_convention"]
    assert conv["norm_source"] == {"mean": "timm default", "std": "timm default"}
    assert main([*base, "--out", "b", "--mean", "0.1"]) == 0  # the one left to timm
    assert (f"evaluated with input std {std:g}, timm's default for --model test_resnet (no "
            f"--std given)") in capsys.readouterr().err
    assert main([*base, "--out", "c", "--mean", "0.1", "--std", "0.2"]) == 0
    assert "timm's default" not in capsys.readouterr().err
    conv = json.loads((tmp_path / "c" / "report.json").read_text())["input_convention"]
    assert conv["norm_source"] == {"mean": "given", "std": "given"}
    assert (conv["mean"], conv["std"]) == ([0.1], [0.2])
