"""``ood score --openood``: OpenOOD's ID lists are the classifier's data, or refused; its train
list is named as the user gave it."""

import json
import shutil

import numpy as np
import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.ood import score

LISTS = ("train_cifar10", "test_cifar10", "test_cifar100", "test_tin", "test_mnist", "test_svhn",
         "test_texture", "test_places365")


def _layout(root, mode="L", train_classes=3, n=6):
    """OpenOOD's data folder for cifar10 in miniature: 16x16 PNGs (``mode`` "L" or "RGB") under
    images_classic/, the lists under benchmark_imglist/cifar10/; ID labels i % 3 (the train
    list's i % ``train_classes``), OOD ones -1."""
    from PIL import Image
    rng = np.random.default_rng(0)
    lists = root / "benchmark_imglist" / "cifar10"
    lists.mkdir(parents=True)
    for name in LISTS:
        folder = root / "images_classic" / name
        folder.mkdir(parents=True)
        lines = []
        for i in range(3 * n if name.startswith("train") else n):
            shape = (16, 16) if mode == "L" else (16, 16, 3)
            level = 0 if name.endswith("_cifar10") else 150
            Image.fromarray((level + rng.integers(0, 100, shape)).astype(np.uint8), mode).save(
                folder / f"{i}.png")
            label = (i % (train_classes if name.startswith("train") else 3)
                     if name.endswith("_cifar10") else -1)
            lines.append(f"{name}/{i}.png {label}")
        (lists / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


def _run(fake_run, tmp_path, dataset, classes=None):
    """A copy of ``fake_run`` (1x16x16, classes 0-2) trained on ``dataset``; with ``classes``, a
    head of their number of outputs."""
    run = tmp_path / f"run-{dataset}"
    shutil.copytree(fake_run, run)
    config = json.loads((run / "config.json").read_text())
    config["dataset"] = dataset
    if classes is not None:
        from robustrep.tasks.common.classifier import create_classifier
        torch.manual_seed(0)
        net = create_classifier("test_resnet", len(classes), in_chans=1)
        torch.save({"step": 0, "model": net.state_dict(), "ema": None},
                   run / "checkpoints" / "latest.pt")
        config.update(num_classes=len(classes), classes=list(classes))
    (run / "config.json").write_text(json.dumps(config))
    return run


def _score(*argv):
    return main(["ood", "score", *argv, "--no-plots", "--quiet", "--device", "cpu"])


def _no_extraction(*args, **kwargs):
    raise AssertionError("refused before any feature is extracted")


@pytest.mark.parametrize("dataset, fix", [
    ("digits", "OpenOOD v1.5 has no digits benchmark: score its own OOD sets without --openood"),
    ("svhn", "OpenOOD v1.5 has no svhn benchmark: score its own OOD sets without --openood"),
    ("cifar100", "drop --openood-id (the run's cifar100 benchmark is the default)"),
])
def test_openood_lists_of_another_dataset_than_the_runs_are_refused(
        dataset, fix, fake_run, tmp_path, capsys, monkeypatch):
    # Was: a digits 0-4 run scored on CIFAR-10's images turned grey, labels 0-4 kept: "ID test
    # accuracy 20.00%", exit 0, no note (--id cifar10 is refused: another shape)
    data = _layout(tmp_path / "data")
    run = fake_run if dataset == "digits" else _run(fake_run, tmp_path, dataset)
    monkeypatch.setattr(score, "extract", _no_extraction)
    assert _score(str(run), "--openood", str(data), "--openood-id", "cifar10", "--detectors",
                  "MaxSoftmax", "--out", str(tmp_path / "out")) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --openood-id cifar10: the run was trained on {dataset}, "
        f"not cifar10, so OpenOOD's cifar10 test and train lists are no in-distribution data "
        f"for it (the images would be converted to its input, the labels read as its classes); "
        f"{fix}\n")
    assert not (tmp_path / "out").exists()


def test_a_model_declared_to_be_of_other_data_is_refused(fake_run, tmp_path, capsys):
    data = _layout(tmp_path / "data")
    assert _score("--model", "test_resnet", "--checkpoint",
                  str(fake_run / "checkpoints" / "latest.pt"), "--image-size", "16",
                  "--dataset", "cifar100", "--openood", str(data), "--openood-id", "cifar10",
                  "--detectors", "MaxSoftmax", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("robustrep ood score: error: --openood-id cifar10: --dataset cifar100 "
                          "says the model was trained on cifar100, not cifar10, ")
    assert err.endswith("; give --openood-id cifar100")


def test_openood_lists_of_another_shape_take_the_resize_rule(fake_run, tmp_path, capsys):
    # a model from elsewhere names no data: CIFAR-10's colour images for its 1-channel input
    # are refused as --id cifar10 is, and converted with --resize
    data = _layout(tmp_path / "data", mode="RGB")
    model = ["--model", "test_resnet", "--checkpoint", str(fake_run / "checkpoints" / "latest.pt"),
             "--image-size", "16", "--classes", "0", "1", "2", "--openood", str(data),
             "--openood-id", "cifar10", "--detectors", "MaxSoftmax"]
    assert _score(*model, "--out", str(tmp_path / "a")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "robustrep ood score: error: --openood-id cifar10: OpenOOD's cifar10 images have shape "
        "(3, 16, 16) (C, H, W) but the classifier takes (1, 16, 16); pass --resize to resize and "
        "convert them to (1, 16, 16), or give ID data of that shape with --id and --fit-data")
    assert _score(*model, "--resize", "--out", str(tmp_path / "b")) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["resize"] is True
    # a run of cifar10 reads its own data as it was trained on it
    run = _run(fake_run, tmp_path, "cifar10")
    assert _score(str(run), "--openood", str(data), "--detectors", "MaxSoftmax") == 0


def test_classes_left_out_of_openood_lists_are_noted(fake_run, tmp_path, capsys):
    data = _layout(tmp_path / "data")
    run = _run(fake_run, tmp_path, "cifar10", classes=(0, 1))
    assert _score(str(run), "--openood", str(data), "--detectors", "MaxSoftmax,KNN",
                  "--param", "KNN.k=2") == 0
    err = capsys.readouterr().err
    for role in ("test", "train"):
        assert (f"note: left out the images of class 2 of OpenOOD's cifar10 {role} list: the ID "
                f"classes are the run's classes 0, 1\n") in err


def test_openoods_train_list_is_named_as_given(fake_run, tmp_path, capsys, monkeypatch):
    # Was: "... 18 in --fit-data imagelist:DATA/images_classic:DATA/benchmark_imglist/...; give
    # --param KNN.k=18 or lower, or fit on more images (--fit-data)": no --fit-data was given
    data = _layout(tmp_path / "data", train_classes=2)
    run = _run(fake_run, tmp_path, "cifar10")
    monkeypatch.setattr(score, "extract", _no_extraction)
    given = ["--openood", str(data), "--out", str(tmp_path / "out")]
    assert _score(str(run), *given, "--detectors", "KNN") == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: KNN.k (default 50): KNN takes its k nearest neighbours "
        "among the images it is fitted on, 18 in OpenOOD's train list benchmark_imglist/cifar10/"
        "train_cifar10.txt (--openood), so KNN.k must be at most 18; give --param KNN.k=18 or "
        "lower\n")
    assert _score(str(run), *given, "--detectors", "Mahalanobis") == 2
    assert capsys.readouterr().err.startswith(
        "robustrep ood score: error: OpenOOD's train list benchmark_imglist/cifar10/"
        "train_cifar10.txt (--openood) holds no image of ID class 2 (it holds 0, 1): ")
