import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.classify.data import build_datasets
from robustrep.tasks.common.errors import DataError
from robustrep.tasks.classify.train import train
from robustrep.tasks.common.config import ConfigError, resolve_config
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.presets import PRESETS

from .conftest import tiny_config


def _write_cifar10(root, per_batch=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(per_batch)], "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def test_images_too_large_for_memory_name_the_image_size(monkeypatch, capsys):
    # Was: `classify train --image-size 100000` (also eval) gave a traceback from torch's
    # allocator, resizing the digits in memory
    from robustrep.tasks.classify import data
    from robustrep.tasks.cli import main

    def refuse(message):
        def create(*args, **kwargs):
            raise RuntimeError(message)
        monkeypatch.setattr(data, "create_dataset", create)

    refuse("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
           "memory: you tried to allocate 57520000000000 bytes. Error code 12")
    assert main(["classify", "train", "--model", "test_resnet", "--image-size", "100000",
                 "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "robustrep classify train: error: --image-size 100000: the digits images resized to "
        "100000x100000 do not fit in this machine's memory (the resized images are held in "
        "memory); give a smaller --image-size\n")
    refuse("another failure")  # not hidden behind the memory line
    with pytest.raises(RuntimeError, match="^another failure$"):
        build_datasets(tiny_config())


def test_cifar10_from_files_in_the_real_format(tmp_path):
    _write_cifar10(tmp_path)
    cfg = tiny_config(dataset="cifar10", data_root=str(tmp_path), classes=[0, 1, 2], batch_size=4)
    train_set, eval_set, info = build_datasets(cfg)
    assert (info.channels, info.num_classes, len(train_set), len(eval_set)) == (3, 3, 15, 3)
    assert train_set[0][0].shape == (3, 16, 16)
    train(cfg, tmp_path / "run", quiet=True)  # two steps on it


def _write_folder(root, size=(20, 24), classes=("cat", "dog"), splits=("train", "val")):
    for split in splits:
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(4):
                arr = np.full((*size, 3), 40 * (c + 1) + i, dtype=np.uint8)
                Image.fromarray(arr).save(root / split / name / f"{i}.png")


def test_image_folder_with_train_and_val(tmp_path):
    _write_folder(tmp_path)
    cfg = tiny_config(dataset="imagefolder", data_root=str(tmp_path), classes=None, batch_size=4)
    train_set, eval_set, info = build_datasets(cfg)
    assert (info.num_classes, info.channels, info.eval_split) == (2, 3, "test")
    assert len(train_set) == len(eval_set) == 8
    assert train_set[0][0].shape == (3, 16, 16)


def test_timms_validation_split_is_the_evaluation_split(tmp_path):
    # Was: validation/ (timm's default --val-split) left out: classify train held out 20% of
    # train/, and classify eval --checkpoint scored train/ as the whole folder ("all"), silently
    _write_folder(tmp_path, splits=("training", "validation"))
    for i in range(2):  # the evaluation split told apart by its size: 6 images, not 8
        (tmp_path / "validation" / "cat" / f"{i}.png").unlink()
    cfg = tiny_config(dataset="imagefolder", data_root=str(tmp_path), classes=None, batch_size=4)
    for whole_folder in (False, True):
        train_set, eval_set, info = build_datasets(cfg, whole_folder=whole_folder)
        assert (len(train_set), len(eval_set), info.eval_split) == (8, 6, "test")
    (tmp_path / "validation").rename(tmp_path / "dev")
    with pytest.raises(DataError) as err:  # not guessed: an evaluation split by another name
        build_datasets(cfg)
    assert str(err.value) == (  # the library's line (folder_splits.split_folders), its option named
        f"--data-root {tmp_path} holds training/ beside dev/, none an evaluation split (val, "
        f"valid, validation, eval, evaluation, test): read as timm's split layout, only "
        f"training/ would be read; if training/ is a class, rename that folder; if these are "
        f"splits, put them in training/ and val/")


def test_folders_beside_train_and_val_are_said_to_be_left_out(tmp_path, capsys):
    # Was: ROOT/extra/ and ROOT/test/ beside train/ and val/ left out without a word
    _write_folder(tmp_path)
    cfg = tiny_config(dataset="imagefolder", data_root=str(tmp_path), classes=None, batch_size=4)
    build_datasets(cfg)
    assert "note" not in capsys.readouterr().err
    _write_folder(tmp_path, splits=("extra", "test"))
    train_set, eval_set, _ = build_datasets(cfg)
    assert len(train_set) == len(eval_set) == 8  # train/ and val/ alone, as before
    assert capsys.readouterr().err == (
        f"note: --data-root {tmp_path} holds extra/, test/ beside train/ and val/, read as "
        f"timm's training and evaluation splits: they are left out\n")
    # --val-fraction holds out a share of train/: val/ is left out too (was: unsaid)
    build_datasets(tiny_config(dataset="imagefolder", data_root=str(tmp_path), classes=None,
                               batch_size=4, val_fraction=0.25))
    assert capsys.readouterr().err == (
        f"note: --data-root {tmp_path} holds extra/, test/, val/ beside train/, read as "
        f"timm's training split: they are left out\n")


def test_image_folder_val_missing_a_class_keeps_the_training_labels(tmp_path):
    _write_folder(tmp_path, classes=("cat", "dog", "fox"))
    shutil.rmtree(tmp_path / "val" / "dog")
    cfg = tiny_config(dataset="imagefolder", data_root=str(tmp_path), classes=None, batch_size=4)
    _, eval_set, info = build_datasets(cfg)
    assert info.num_classes == 3
    assert sorted({eval_set[k][1] for k in range(len(eval_set))}) == [0, 2]  # fox stays 2
    (tmp_path / "val" / "wolf").mkdir()
    shutil.copy(tmp_path / "val" / "cat" / "0.png", tmp_path / "val" / "wolf")
    with pytest.raises(DataError, match="wolf is not a class of the training split"):
        build_datasets(cfg)


def test_missing_dataset_root_is_named(tmp_path):
    with pytest.raises(DataError, match="needs|give --data-root"):
        build_datasets(tiny_config(dataset="cifar10"))
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        build_datasets(tiny_config(dataset="cifar10", data_root=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        build_datasets(tiny_config(dataset="cifar10", data_root=str(tmp_path)))


def test_a_given_data_root_is_answered_with_what_it_holds(tmp_path):
    # Was: "dataset root X does not exist (...): give --data-root", to a user who gave it; and
    # a file or a folder without the dataset was read as one ("expected X/cifar-10-batches-py")
    (tmp_path / "cifar").mkdir()
    (tmp_path / "cifar" / "readme.txt").write_text("x")
    (tmp_path / "cifar" / "batches").mkdir()
    fetch = "; add --download to fetch it"
    for dataset, root, error in (
            ("cifar10", "nope", f"--data-root {tmp_path / 'nope'} does not exist (expected the "
                                f"folder holding cifar-10-batches-py/; {tmp_path} holds "
                                f"cifar/){fetch}"),
            ("cifar10", "cifar", f"--data-root {tmp_path / 'cifar'} has no cifar-10-batches-py/, "
                                 f"which dataset cifar10 reads; it holds batches/, readme.txt"
                                 f"{fetch}"),
            ("svhn", "cifar", f"--data-root {tmp_path / 'cifar'} has no train_32x32.mat, which "
                              f"dataset svhn reads; it holds batches/, readme.txt{fetch}"),
            ("cifar100", "cifar/readme.txt", f"--data-root {tmp_path / 'cifar/readme.txt'} is a "
                                             f"file, not a folder (expected the folder holding "
                                             f"cifar-100-python/)"),
            ("imagefolder", "nope", f"--data-root {tmp_path / 'nope'} does not exist (expected a "
                                    f"folder of images (ROOT/<class>/<image>, or the images in "
                                    f"ROOT); {tmp_path} holds cifar/)"),
            # was: "dataset zip not found: expected a file at ...", of a folder that exists
            ("zip", "cifar", f"--data-root {tmp_path / 'cifar'} is a folder, not a file "
                             f"(expected a dataset .zip (robustrep data pack writes one)); it "
                             f"holds batches/, readme.txt")):
        cfg = tiny_config(dataset=dataset, data_root=str(tmp_path / root), channels=3)
        with pytest.raises(DataError) as err:
            build_datasets(cfg)
        assert str(err.value) == error
        assert "give --data-root" not in str(err.value)


def test_shape_channel_and_class_mismatches_are_named(tmp_path):
    cfg = tiny_config()
    cfg.channels = 2  # the config refuses 2 itself; the data layer's own check is tested here
    with pytest.raises(DataError, match="channels must be 1 or 3"):
        build_datasets(cfg)
    with pytest.raises(DataError, match=r"num_classes=2 is too small .*\(labels 0\.\.2\)"):
        build_datasets(tiny_config(num_classes=2))
    _write_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"classes \[11\] do not occur"):
        build_datasets(tiny_config(dataset="cifar10", data_root=str(tmp_path), classes=[0, 11]))


def test_unknown_option_and_preset_list_choices():
    with pytest.raises(ConfigError, match="batch_sise in the command line; did you mean "
                                          "'batch_size'"):
        resolve_config(ClassifyConfig, PRESETS, None, overrides={"batch_sise": 3})
    with pytest.raises(ConfigError, match="valid presets: digits"):
        resolve_config(ClassifyConfig, PRESETS, "digitz")
    with pytest.raises(ConfigError, match="dataset must be one of digits, cifar10"):
        resolve_config(ClassifyConfig, PRESETS, None, overrides={"dataset": "mnist"})


def test_wrong_image_size_is_named():
    from robustrep.data import ImageTensorDataset
    from robustrep.tasks.classify.data import check_datasets
    ds = ImageTensorDataset(torch.rand(4, 1, 20, 20), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(DataError, match="are 20x20; expected 16x16"):
        check_datasets(tiny_config(), ds, ds)
    with pytest.raises(DataError, match="have 1 channel.*expected 3"):
        check_datasets(tiny_config(image_size=20, channels=3), ds, ds)


def test_a_relative_data_root_is_saved_absolute(tmp_path, monkeypatch, capsys):
    # Was: config.json kept "data", so `classify eval RUN` from another folder found no data,
    # and a resume could not be pointed at data that had moved.
    from robustrep.tasks.cli import main
    _write_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "imagefolder",
                 "--data-root", "data", "--image-size", "16", "--batch-size", "4", "--out",
                 "run", "--stop-after", "2", "--quiet"]) == 0
    config = tmp_path / "run" / "config.json"
    assert json.loads(config.read_text())["data_root"] == str(tmp_path / "data")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["classify", "eval", str(tmp_path / "run"), "--attacks", "none",
                 "--corruptions", "--out", "e", "--quiet"]) == 0
    # an unfinished run is evaluated at its checkpoint, and says so
    assert "is unfinished: this is its checkpoint at step 2 of 4" in capsys.readouterr().out
    report = json.loads((tmp_path / "elsewhere" / "e" / "report.json").read_text())
    assert (report["step"], report["steps"]) == (2, 4)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").rename(tmp_path / "moved")
    assert main(["classify", "train", "--resume", "run", "--data-root", "moved", "--quiet"]) == 0
    assert json.loads(config.read_text())["data_root"] == str(tmp_path / "moved")


def test_a_runs_class_names_keep_its_labels_on_other_folders(tmp_path, monkeypatch, capsys):
    # evaluating a run on a data root without one of its classes renumbered the others (the
    # folder's own sorted names): clean accuracy 0.0 for a model right on every image
    from robustrep.tasks.cli import main
    _write_folder(tmp_path / "data", classes=("cat", "dog", "fox"))
    monkeypatch.chdir(tmp_path)
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "imagefolder",
                 "--data-root", "data", "--image-size", "16", "--batch-size", "4", "--steps", "1",
                 "--out", "run", "--quiet"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["class_names"] == [
        "cat", "dog", "fox"]
    shutil.copytree(tmp_path / "data", tmp_path / "some")
    for split in ("train", "val"):
        shutil.rmtree(tmp_path / "some" / split / "cat")
    cfg = tiny_config(dataset="imagefolder", data_root=str(tmp_path / "some"), classes=None,
                      class_names=["cat", "dog", "fox"], batch_size=4)
    train_set, eval_set, info = build_datasets(cfg)
    assert sorted({eval_set[k][1] for k in range(len(eval_set))}) == [1, 2]  # not 0, 1
    assert info.class_names == ["cat", "dog", "fox"]
    assert main(["classify", "eval", "run", "--data-root", "some", "--attacks", "none",
                 "--corruptions", "--out", "e", "--quiet"]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["n"] == 8  # the val images of dog and fox, under the run's labels 1 and 2


@pytest.mark.parametrize("layout", ["flat", "one class folder"])
def test_training_data_of_one_label_is_refused(tmp_path, capsys, layout):
    # was: a 1-output head, loss 0 from step 1, accuracy 1.0, exit 0
    from robustrep.tasks.cli import main
    folder = tmp_path / "data" / ("" if layout == "flat" else "cat")
    folder.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(folder / f"{i}.png")
    code = main(["classify", "train", "--preset", "smoke", "--dataset", "imagefolder",
                 "--data-root", str(tmp_path / "data"), "--image-size", "16", "--batch-size",
                 "2", "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "training data at" in err and "holds one label (0): nothing to classify" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("labels", [None, [0, 0, 0, 0]])
def test_a_zip_of_one_label_names_where_its_labels_come_from(tmp_path, capsys, labels):
    """Was: "holds one label (0) ... Give images in class folders (ROOT/<class>/<image>)" of a
    zip that held class folders: a zip is read as a stylegan2-ada dataset zip (its labels its
    dataset.json's), which data pack writes from the class folders, as the line now says."""
    import zipfile
    from robustrep.tasks.cli import main
    src = tmp_path / "tree.zip"
    with zipfile.ZipFile(src, "w") as archive:
        for i, name in enumerate(["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]):
            Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(tmp_path / "x.png")
            archive.write(tmp_path / "x.png", name)
        if labels is not None:
            archive.writestr("dataset.json", json.dumps({"labels": [
                [name, label] for name, label in zip(["cat/0.png", "cat/1.png", "dog/0.png",
                                                      "dog/1.png"], labels)]}))
    run = ["classify", "train", "--preset", "smoke", "--dataset", "imagefolder",
           "--image-size", "16", "--batch-size", "2", "--steps", "1", "--quiet"]
    assert main(run + ["--data-root", str(src), "--out", str(tmp_path / "run")]) == 2
    held = "it has none" if labels is None else "which gives every image label 0"
    assert capsys.readouterr().err == (
        f"robustrep classify train: error: the imagefolder training data at {src} holds one "
        f"label (0): nothing to classify. A zip is read as a stylegan2-ada dataset zip, "
        f"labelled by its top-level dataset.json ({held}); for a zip of class folders "
        f"(<class>/<image>), `robustrep data pack {src} OUT.zip --resolution 16` writes one "
        f"labelled by its class folders: give --data-root OUT.zip\n")
    assert not (tmp_path / "run").exists()
    if labels is None:  # the advice, followed, trains
        out = tmp_path / "OUT.zip"
        assert main(["data", "pack", str(src), str(out), "--resolution", "16", "--quiet"]) == 0
        assert main(run + ["--data-root", str(out), "--out", str(tmp_path / "run")]) == 0


def _labelled_zip(path, labels):
    """A dataset zip of 16x16 images labelled ``labels`` in its dataset.json."""
    import io
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(len(labels)):
            buffer = io.BytesIO()
            Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(buffer, format="png")
            archive.writestr(f"00000/img{i:08d}.png", buffer.getvalue())
        archive.writestr("dataset.json", json.dumps({"labels": [
            [f"00000/img{i:08d}.png", label] for i, label in enumerate(labels)]}))
    return path


def test_a_zip_whose_labels_skip_ids_gets_max_label_plus_one_outputs(tmp_path, capsys):
    """Was: labels {0, 7} gave a head of 2 outputs (the labels present) and "IndexError: Target
    7 is out of bounds" at step 1, a run folder left behind; stylegan2-ada's label_dim is
    max + 1. The ids no image has are said in a note."""
    from robustrep.tasks.cli import main
    src = _labelled_zip(tmp_path / "gap.zip", [0, 7] * 4)
    run = tmp_path / "run"
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "zip", "--data-root",
                 str(src), "--image-size", "16", "--batch-size", "4", "--steps", "1", "--quiet",
                 "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["num_classes"] == 8
    assert capsys.readouterr().err == (
        "note: the zip data's labels run to 7, and 6 of the 8 ids have no image (1, 2, 3, 4, 5, "
        "6): the head has an output for each (max label + 1, as stylegan2-ada's label_dim), "
        "never trained\n")
    cfg = ClassifyConfig(dataset="zip", data_root=str(_labelled_zip(tmp_path / "all.zip",
                                                                    [0, 1, 2] * 2)),
                         image_size=16)
    assert build_datasets(cfg)[2].num_classes == 3 and capsys.readouterr().err == ""


def test_a_zip_of_conditioning_vectors_is_refused_for_classes_naming_the_remedy(tmp_path,
                                                                                capsys):
    """stylegan2-ada's one-hot labels: a valid zip, which gan train reads (no labels used); a
    program that reads classes names what to write instead."""
    from robustrep.tasks.cli import main
    src = _labelled_zip(tmp_path / "onehot.zip", [[1.0, 0.0], [0.0, 1.0]] * 2)
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "zip", "--data-root",
                 str(src), "--image-size", "16", "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        f"robustrep classify train: error: {src}: dataset.json label of 00000/img00000000.png "
        f"is [1.0, 0.0] (a vector: stylegan2-ada's conditioning labels, no class); classes are "
        f"integer labels >= 0: give each image its class index in dataset.json (or pack class "
        f"folders with robustrep data pack)\n")
    assert not (tmp_path / "run").exists()
