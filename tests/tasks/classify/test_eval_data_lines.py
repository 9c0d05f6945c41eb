"""What `classify eval` needs of its data and weights, and the one line when it lacks them."""

import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.data import build_datasets
from robustrep.tasks.common.errors import DataError
from robustrep.tasks.cli import main

EVAL = ["--dataset", "imagefolder", "--image-size", "16", "--attacks", "none", "--corruptions",
        "--device", "cpu", "--quiet"]


def _images(folder, n):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")


@pytest.fixture
def weights(tmp_path):
    """A 2-class test_resnet's weights, and the network (eval mode, [0, 1] inputs)."""
    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=2).eval()
    torch.save(net.state_dict(), tmp_path / "resnet.pth")
    return tmp_path / "resnet.pth", net


@pytest.mark.parametrize("n", [1, 6])
def test_one_class_folder_is_evaluated_against_its_label(tmp_path, weights, n):
    # Was refused: "the imagefolder training data at D holds one label (0): nothing to
    # classify" (6 images) / "the imagefolder training split is empty" (1 image: the holdout)
    path, net = weights
    _images(tmp_path / "data" / "cat", n)
    out = tmp_path / "out"
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", str(path),
                 "--mean", "0", "0", "0", "--std", "1", "1", "1",
                 "--data-root", str(tmp_path / "data"), "--out", str(out), *EVAL]) == 0
    report = json.loads((out / "report.json").read_text())
    _, eval_set, _ = build_datasets(ClassifyConfig(model="test_resnet", dataset="imagefolder",
                                                   data_root=str(tmp_path / "data"),
                                                   image_size=16), evaluating=True,
                                    whole_folder=True)
    x = torch.stack([eval_set[i][0] for i in range(len(eval_set))])
    with torch.no_grad():
        want = (net(x).argmax(1) == 0).float().mean().item()  # the one folder is label 0
    # a model from elsewhere is scored on the whole folder (was: a random 20% of it)
    assert report["n"] == len(eval_set) == n and report["split"] == "all"
    assert report["clean"]["acc"] == pytest.approx(want)


def test_a_runs_class_names_label_a_one_class_folder(tmp_path):
    """A run's recorded class folders give the one folder here its trained label."""
    _images(tmp_path / "data" / "dog", 5)
    cfg = ClassifyConfig(model="test_resnet", dataset="imagefolder", image_size=16,
                         data_root=str(tmp_path / "data"), class_names=["cat", "dog"])
    train_set, eval_set, info = build_datasets(cfg, evaluating=True)
    labels = [eval_set[i][1] for i in range(len(eval_set))]
    assert labels == [1] and info.num_classes == 2 and len(train_set) == 4
    with pytest.raises(DataError, match="training data at .* holds one label"):
        build_datasets(cfg)  # training still needs two labels


def test_a_flat_folder_has_no_labels_to_evaluate_against(tmp_path, weights, capsys):
    _images(tmp_path / "flat", 4)
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", str(weights[0]),
                 "--data-root", str(tmp_path / "flat"), "--out", str(tmp_path / "o"),
                 *EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training" not in err
    assert err == (f"robustrep classify eval: error: the imagefolder evaluation data at "
                   f"{tmp_path / 'flat'} has no labels to score the model against (its images "
                   f"are not in class folders); give images in class folders "
                   f"(ROOT/<class>/<image>; one class is enough), or a dataset zip with a "
                   f"top-level dataset.json of labels")


def test_weights_of_another_architecture_are_named_as_such(tmp_path, capsys):
    # Was: "cannot tell the number of classes of 'test_resnet' from its weights; give
    # --num-classes N" (a ViT's head is head.*, a ResNet's fc.*)
    torch.save(timm.create_model("test_vit", num_classes=2).state_dict(), tmp_path / "vit.pth")
    _images(tmp_path / "data" / "a", 2)
    _images(tmp_path / "data" / "b", 2)
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint",
                 str(tmp_path / "vit.pth"), "--data-root", str(tmp_path / "data"),
                 "--out", str(tmp_path / "o"), *EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "number of classes" not in err
    assert err.startswith(f"robustrep classify eval: error: weights file {tmp_path / 'vit.pth'} "
                          f"does not fit timm model 'test_resnet': ")
    assert "parameter(s) missing (e.g. bn1.bias" in err and "unexpected (e.g. blocks.0." in err
    assert err.endswith("Give the weights of the same architecture.")


def test_headless_weights_of_the_model_still_ask_for_num_classes(tmp_path, capsys):
    state = {k: v for k, v in timm.create_model("test_resnet").state_dict().items()
             if not k.startswith("fc.")}
    torch.save(state, tmp_path / "body.pth")
    from robustrep.tasks.common.config import ConfigError
    from robustrep.tasks.common.foreign_model import load_model
    with pytest.raises(ConfigError, match=r"cannot tell the number of classes of 'test_resnet' "
                                          r"from its weights; give --num-classes N"):
        load_model("test_resnet", checkpoint=tmp_path / "body.pth")


def test_a_zip_without_labels_has_none_to_evaluate_against(tmp_path, weights, capsys):
    from robustrep.data.zippack import pack_images
    images = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(4)]
    with open(tmp_path / "data.zip", "wb") as out:
        pack_images(images, out, 16)  # dataset.json says "labels": null
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", str(weights[0]),
                 "--data-root", str(tmp_path / "data.zip"), "--out", str(tmp_path / "o"),
                 *EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"robustrep classify eval: error: the imagefolder evaluation data at "
                          f"{tmp_path / 'data.zip'} has no labels to score the model against "
                          f"(no dataset.json labels); give images in class folders")
    assert len(err.splitlines()) == 1


def test_a_run_is_scored_on_the_share_its_training_held_out(tmp_path):
    """Only a model from elsewhere gets the whole folder: a run trained on 80% of it."""
    for name in ("cat", "dog"):
        _images(tmp_path / "data" / name, 5)
    run = tmp_path / "run"
    assert main(["classify", "train", "--model", "test_resnet", "--dataset", "imagefolder",
                 "--data-root", str(tmp_path / "data"), "--image-size", "16", "--steps", "1",
                 "--batch-size", "4", "--eval-every", "0", "--out", str(run), "--quiet"]) == 0
    assert main(["classify", "eval", str(run), "--attacks", "none", "--corruptions",
                 "--quiet"]) == 0
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["split"] == "holdout" and report["n"] == 2  # 20% of 10


def test_svhn_with_its_test_file_alone_is_evaluated(tmp_path, capsys):
    """SVHN's train_32x32.mat is a download of its own: eval refused a root without it
    ("has no train_32x32.mat"), although it scores the test file alone."""
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    savemat(tmp_path / "test_32x32.mat",
            {"X": rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8),
             "y": np.array([[10], [1], [2], [3], [4], [5]], dtype=np.uint8)})
    torch.manual_seed(0)
    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), tmp_path / "w.pth")
    out = tmp_path / "out"
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint",
                 str(tmp_path / "w.pth"), "--dataset", "svhn", "--data-root", str(tmp_path),
                 "--attacks", "none", "--corruptions", "--device", "cpu", "--quiet", "--out",
                 str(out)]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 6 and report["split"] == "test"
