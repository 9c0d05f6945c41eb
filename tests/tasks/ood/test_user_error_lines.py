"""Refusals ``ood score`` made only through its blanket conversion of every ValueError and
TypeError into a user error (which also hid robustrep's bugs as user errors; that conversion is
gone, test_internal_errors.py): each is now a UserError where it is found, one line, exit 2."""

import json

import pytest

from robustrep.tasks.cli import main


def _images(folder, n=3):
    from PIL import Image
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("L", (16, 16), 40 * i).save(folder / f"{i}.png")


def _vit_checkpoint(tmp_path):
    import timm
    import torch
    path = tmp_path / "vit.pt"
    torch.save(timm.create_model("test_vit", num_classes=3, in_chans=1, img_size=16).state_dict(),
               path)
    return path


def _cases(tmp_path, run):
    """name -> (the command's words after `ood score`, what its one line says)."""
    foreign = ["--model", "test_resnet", "--checkpoint", str(run / "checkpoints" / "latest.pt"),
               "--dataset", "digits", "--image-size", "16", "--channels", "1"]
    _images(tmp_path / "two" / "a")
    _images(tmp_path / "two" / "b")  # labels 0 and 1
    (tmp_path / "empty.txt").write_text("# no image\n")
    cifar = tmp_path / "cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (cifar / name).write_bytes(b"not a pickle")
    _images(tmp_path / "flat")
    (tmp_path / "flat.txt").write_text("0.png 0\n1.png 1\n2.png 2\n")
    (tmp_path / "damaged" / "results.json").parent.mkdir()
    (tmp_path / "damaged" / "results.json").write_text(json.dumps({"detectors": [],
                                                                   "results": [1]}))
    return {
        "no digit": ([*foreign, "--classes", "12"],
                     "--classes 12: the digits' classes must be one of 0, 1, 2, 3, 4, 5, 6, 7, 8, "
                     "9; got 12"),
        "no ID class": ([*foreign, "--classes", "5", "6", "--id", f"imagefolder:{tmp_path}/two"],
                        f"classes [5, 6] do not occur in the ID data imagefolder:{tmp_path}/two; "
                        f"its labels are [0, 1]; give ID data of the classes the classifier was "
                        f"trained on"),
        "token maps": (["--model", "test_vit", "--checkpoint", str(_vit_checkpoint(tmp_path)),
                        "--dataset", "digits", "--classes", "0", "1", "2", "--image-size", "16",
                        "--channels", "1", "--detectors", "ReAct"],
                       "--detectors ReAct: feature-map detectors need 4-D maps [B, C, H, W], "
                       "but this model's forward_features gives shape [B, 2, 64] (a "
                       "transformer's tokens?); pass --feature-maps pooled to shape the pooled "
                       "pre-logit vector instead"),
        "empty list": ([str(run), "--ood", f"imagelist:{tmp_path}:{tmp_path}/empty.txt"],
                       f"image list {tmp_path}/empty.txt lists no images"),
        "list without root": ([str(run), "--ood", "imagelist:x"],
                              "imagelist needs a root and a list file: imagelist:ROOT:LISTFILE"),
        "damaged CIFAR": ([str(run), "--ood", f"cifar10:{tmp_path}/cifar", "--resize"],
                          f"{cifar}/test_batch is not in the CIFAR python format"),
        "no train split": ([str(run), "--id", f"imagelist:{tmp_path}/flat:{tmp_path}/flat.txt",
                            "--detectors", "KNN"],
                           f"imagelist:{tmp_path}/flat:{tmp_path}/flat.txt has no train split; "
                           f"name the data the detectors are fitted on with --fit-data"),
        "damaged results": ([str(run), "--out", str(tmp_path / "damaged")],
                            f"{tmp_path}/damaged/results.json is damaged (its results are not "
                            f"rows with detector and ood); remove it or give --out another "
                            f"folder"),
    }


@pytest.mark.parametrize("case", ["no digit", "no ID class", "token maps", "empty list",
                                  "list without root", "damaged CIFAR", "no train split",
                                  "damaged results"])
def test_a_users_mistake_is_one_line(case, fake_run, tmp_path, capsys):
    words, line = _cases(tmp_path, fake_run)[case]
    defaults = {"--ood": ["gaussian"], "--detectors": ["MaxSoftmax"],
                "--out": [str(tmp_path / "o")]}
    argv = ["ood", "score", *words, "--quiet"]
    for flag, value in defaults.items():
        argv += [] if flag in words else [flag, *value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"robustrep ood score: error: {line}"), err
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------------
# Mistakes a sweep of wrong `ood score` / `ood bench` commands met as a traceback or a late
# failure once the blanket conversion was gone: each is refused where the input enters.


def _sweep_cases(tmp_path, run):
    """name -> (the command's words after `ood`, what its one line says)."""
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x01")
    return {
        "list not UTF-8": (["score", str(run), "--ood", f"imagelist:{tmp_path}:{tmp_path}/bin.txt"],
                           f"image list {tmp_path}/bin.txt is not UTF-8 text (byte 0: invalid "
                           f"start byte); give a text file of 'relative/path label' lines, saved "
                           f"as UTF-8"),
        "function param": (["score", str(run), "--detectors", "ASH", "--param",
                            "ASH.detector=EnergyBased"],
                           "--param ASH.detector=EnergyBased: ASH.detector takes a Python "
                           "function, which --param cannot give (it takes numbers, strings, "
                           "booleans and lists); leave ASH.detector out to use its default"),
        "criterion": (["score", str(run), "--detectors", "ODIN", "--param", "ODIN.criterion=abc"],
                      "--param ODIN.criterion=abc: ODIN.criterion takes a Python function"),
        "norm_std not a list": (["score", str(run), "--detectors", "ODIN", "--param",
                                 "ODIN.norm_std=abc"],
                                "--param ODIN.norm_std=abc: ODIN.norm_std takes a list of "
                                "numbers > 0, one normalisation std per input channel (e.g. "
                                "[0.5] or [0.247, 0.243, 0.261]), got 'abc'; default None: the "
                                "gradient step eps is in pixel units"),
        "norm_std below 0": (["score", str(run), "--detectors", "MahalanobisODIN", "--param",
                              "MahalanobisODIN.norm_std=[-1]"],
                             "--param MahalanobisODIN.norm_std=[-1]: MahalanobisODIN.norm_std "
                             "takes a list of numbers > 0"),
        "norm_std per channel": (["score", str(run), "--detectors", "ODIN", "--param",
                                  "ODIN.norm_std=[0.5,0.5]"],
                                 "--param ODIN.norm_std=[0.5, 0.5]: ODIN.norm_std takes one "
                                 "normalisation std per input channel, and this classifier "
                                 "takes 1-channel images; give one"),
        "knn_kwargs": (["score", str(run), "--detectors", "KNN", "--param", "KNN.knn_kwargs=3"],
                       "KNN has no settable parameter 'knn_kwargs'; valid: k, normalize"),
        "choice of another kind": (["score", str(run), "--detectors", "ASH", "--param",
                                    "ASH.variant=3"],
                                   "--param ASH.variant=3: ASH.variant takes one of ash-s, "
                                   "ash-p, ash-b (default 'ash-s'), got 3"),
        "train-opt seed": (["bench", "--regs", "none", "--seeds", "0", "1", "--train-opt",
                            "seed=5"],
                           "--train-opt seed=5: seed is the bench's to set for each run (from "
                           "--seeds); drop it"),
        "setting reg": (["bench", "--regs", "none@reg=mixup", "--seeds", "0"],
                        "--regs 'none@reg=mixup': reg=mixup: reg is the bench's to set for each "
                        "run (from --regs); drop it"),
        "train-opt out": (["bench", "--regs", "none", "--train-opt", "run-dir=elsewhere"],
                          "--train-opt run-dir=elsewhere: run_dir is the bench's to set for each "
                          "run (under --out, as OUT/runs/SETTING-sSEED); drop it"),
    }


def _sweep_argv(words, tmp_path):
    defaults = {"--ood": ["gaussian"], "--detectors": ["MaxSoftmax"],
                "--out": [str(tmp_path / "o")]}
    argv = ["ood", *words, "--quiet"]
    for flag, value in defaults.items():
        argv += [] if flag in words else [flag, *value]
    return argv


@pytest.mark.parametrize("case", ["list not UTF-8", "function param", "criterion",
                                  "norm_std not a list", "norm_std below 0",
                                  "norm_std per channel", "knn_kwargs", "train-opt seed",
                                  "setting reg", "train-opt out", "choice of another kind"])
def test_a_mistake_the_sweep_found_is_one_line(case, fake_run, tmp_path, capsys):
    words, line = _sweep_cases(tmp_path, fake_run)[case]
    assert main(_sweep_argv(words, tmp_path)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"robustrep ood {words[0]}: error: {line}"), err


@pytest.mark.parametrize("root", [None, "data"])
def test_a_model_from_elsewhere_on_one_folder_names_its_folder(root, fake_run, tmp_path, capsys,
                                                               monkeypatch):
    # Was: "the run was trained on None, one set of images": --data-root was not read, and
    # there is no run
    monkeypatch.chdir(tmp_path)
    _images(tmp_path / "data" / "a")
    _images(tmp_path / "data" / "b")
    argv = ["ood", "score", "--model", "test_resnet", "--checkpoint",
            str(fake_run / "checkpoints" / "latest.pt"), "--dataset", "imagefolder",
            "--image-size", "16", "--channels", "1", "--num-classes", "3", "--detectors",
            "MaxSoftmax", "--quiet", "--out", "o", *(["--data-root", root] if root else [])]
    assert main(argv) == 2
    give_id = ("name the in-distribution test data with --id imagefolder:PATH (a folder or "
               "dataset zip; and the train data for fitting with --fit-data imagefolder:PATH)")
    first = ("--dataset imagefolder names no folder: give --data-root ROOT (with ROOT/train "
             "and ROOT/val or ROOT/test), or " if root is None
             else "--data-root data is one set of images (no val/ or test/ split); ")
    assert capsys.readouterr().err == f"robustrep ood score: error: {first}{give_id}\n"
