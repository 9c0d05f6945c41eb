"""The share of an image folder held out for evaluation: per class, seeded, the head sized from
every class of the folder (tasks/classify/data.py's _holdout, held_counts, check_datasets)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import labels as dataset_labels
from robustrep.tasks.classify.config import ClassifyConfig, saved_config
from robustrep.tasks.classify.data import _holdout, build_datasets, held_counts
from robustrep.tasks.classify.train import config_for_resume
from robustrep.tasks.cli import main
from robustrep.tasks.common.errors import DataError

from .conftest import tiny_config

TRAIN = ["--model", "test_resnet", "--dataset", "imagefolder", "--image-size", "16", "--steps",
         "2", "--batch-size", "4", "--device", "cpu", "--quiet"]


def _folder(root, **counts):
    """``root/<class>/<i>.png``, ``counts[class]`` 16x16 images each, told apart by colour."""
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.full((16, 16, 3), (37 * c + 5 * i) % 256, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _cfg(root, **overrides):
    return tiny_config(dataset="imagefolder", data_root=str(root), classes=None, batch_size=4,
                       **overrides)


def _per_class(dataset, classes):
    return np.bincount(dataset_labels(dataset).numpy(), minlength=classes).tolist()


def test_a_last_class_of_one_image_is_trained_on_and_noted(tmp_path, capsys):
    # Was: its one image held out, a 2-output head, checkpoints written, then "IndexError:
    # Target 2 is out of bounds" from the evaluation, exit 1 and no finished.json
    data, run = _folder(tmp_path / "s", a=10, b=10, c=1), tmp_path / "run"
    assert main(["classify", "train", *TRAIN, "--data-root", str(data), "--out", str(run)]) == 0
    assert (run / "finished.json").exists()
    config = json.loads((run / "config.json").read_text())
    assert (config["num_classes"], config["holdout"]) == (3, "stratified")
    note = ("note: class c has one image, kept for training: none is held out for evaluation, "
            "so the accuracy does not measure it\n")
    assert capsys.readouterr().err == note
    assert main(["classify", "eval", str(run), "--attacks", "none", "--corruptions",
                 "--quiet"]) == 0
    assert capsys.readouterr().err.endswith(note)  # the evaluation says it too
    assert json.loads((run / "eval" / "report.json").read_text())["n"] == 4  # 2 + 2 + 0


def test_a_first_class_of_one_image_is_trained_on_and_noted(tmp_path, capsys):
    # Was: class a held out whole, never trained on, a 3-class accuracy reported, no note
    train_set, eval_set, info = build_datasets(_cfg(_folder(tmp_path, a=1, b=12, c=12)))
    assert (_per_class(train_set, 3), _per_class(eval_set, 3)) == ([1, 10, 10], [0, 2, 2])
    assert (info.num_classes, info.class_names, info.eval_split) == (3, ["a", "b", "c"],
                                                                     "holdout")
    assert "note: class a has one image, kept for training" in capsys.readouterr().err


def test_the_head_has_every_class_of_the_folder(tmp_path):
    """Sized from the folder's class list, never from the training share's labels: the random
    rule of earlier runs holds out the one image of c (its head had 2 outputs)."""
    from robustrep.data import num_classes
    cfg = _cfg(_folder(tmp_path, a=10, b=10, c=1), holdout="random")
    train_set, eval_set, info = build_datasets(cfg)
    assert (_per_class(train_set, 3), _per_class(eval_set, 3)) == ([9, 8, 0], [1, 2, 1])
    assert num_classes(train_set) == 2 and info.num_classes == 3


def test_each_class_holds_out_its_share_rounded_half_up(tmp_path):
    data = _folder(tmp_path, a=2, b=5, c=12, d=31, e=1)
    for fraction, held in ((0.2, [1, 1, 2, 6, 0]), (0.5, [1, 3, 6, 16, 0])):
        train_set, eval_set, _ = build_datasets(_cfg(data, val_fraction=fraction))
        assert _per_class(eval_set, 5) == held
        assert _per_class(train_set, 5) == [n - h for n, h in zip([2, 5, 12, 31, 1], held)]
        assert sorted(train_set.indices + eval_set.indices) == list(range(51))
    # at least one of a class of two or more, never its last one
    assert held_counts({0: 1, 1: 2, 2: 3, 3: 10}, 0.9) == {0: 0, 1: 1, 2: 2, 3: 9}
    assert held_counts({0: 2, 1: 7, 2: 8}, 0.01) == {0: 1, 1: 1, 2: 1}


def test_the_split_is_a_function_of_the_seed(tmp_path):
    data = _folder(tmp_path, a=9, b=14)
    train_set, eval_set, _ = build_datasets(_cfg(data))
    again = build_datasets(_cfg(data))
    assert (again[0].indices, again[1].indices) == (train_set.indices, eval_set.indices)
    other = _holdout(train_set.dataset, 0.2, 99)[1]  # another seed: other images, same shares
    assert sorted(other.indices) != sorted(eval_set.indices)
    assert _per_class(other, 2) == _per_class(eval_set, 2) == [2, 3]


def test_a_run_saved_before_keeps_its_random_holdout(tmp_path):
    """A config.json without ``holdout`` is a run of the random 20% over all images: its
    resume and evaluation must draw that split, or trained images would be scored."""
    data = _folder(tmp_path / "data", a=3, b=3, c=4)
    run = tmp_path / "run"
    assert main(["classify", "train", *TRAIN, "--data-root", str(data), "--out", str(run)]) == 0
    assert config_for_resume(run, {}).holdout == "stratified"
    config = json.loads((run / "config.json").read_text())
    del config["holdout"]
    (run / "config.json").write_text(json.dumps(config))
    cfg = config_for_resume(run, {})
    assert cfg.holdout == saved_config({"dataset": "imagefolder"})["holdout"] == "random"
    # where nothing is held out, no rule is recorded: ood bench compares a run's options with
    # the ones asked for, and refused every run saved before holdout existed
    assert "holdout" not in saved_config({"dataset": "digits", "val_fraction": 0.0})
    assert ClassifyConfig(steps=20).holdout is None  # digits, its test split
    assert ClassifyConfig(steps=20, val_fraction=0.2).holdout == "stratified"
    train_set, eval_set, _ = build_datasets(cfg)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1234)).tolist()
    assert (eval_set.indices, train_set.indices) == (perm[:2], perm[2:])  # the earlier rule
    assert len(build_datasets(_cfg(data))[1]) == 3  # stratified: one of each class


def test_a_folder_with_no_class_of_two_images_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"^no class of the training data has two images, so "
                                        r"none can be held out for evaluation"):
        build_datasets(_cfg(_folder(tmp_path, a=1, b=1, c=1)))
