"""timm's split layout of an image folder, train/ beside val/ (robustrep.data.folder_splits)."""

import pytest

from robustrep.data import create_dataset, image_folder
from robustrep.data.folder_splits import (folder_split, left_out_line, split_classes,
                                          split_folders)

from .conftest import write_png


def _split_layout(root, train=("cat", "dog", "fox"), val=("cat", "fox")):
    for split, names in (("train", train), ("val", val)):
        for name in names:
            write_png(root / split / name / "0.png", (8, 8), (0, 0, 0))
    return root


def test_the_val_split_takes_the_training_splits_labels(tmp_path):
    root = _split_layout(tmp_path)  # val lacks "dog": its own sorted folders would make fox 1
    assert split_classes(root / "val") == ["cat", "dog", "fox"]
    assert split_classes(root / "train") is None and split_classes(root) is None
    val = create_dataset("imagefolder", root, train=False, size=8)
    assert [label for _, label in val.samples] == [0, 2]
    assert val.classes == ["cat", "dog", "fox"]
    assert [label for _, label in create_dataset("imagefolder", root, size=8).samples] == [0, 1, 2]
    alone = image_folder(root / "val", size=8)  # read without its training split: own order
    assert [label for _, label in alone.samples] == [0, 1]


def test_a_val_class_the_training_split_lacks_is_refused(tmp_path):
    root = _split_layout(tmp_path, val=("cat", "wolf"))
    with pytest.raises(ValueError, match=r"class folder .*wolf is not a class of the training"):
        create_dataset("imagefolder", root, train=False, size=8)
    flat = tmp_path / "flat"
    _split_layout(flat, val=())
    write_png(flat / "val" / "0.png", (8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="holds images directly"):
        create_dataset("imagefolder", flat, train=False, size=8)


# --- left open by the first mutation run of folders.py, the rule's module then (docs/mutation.md)

def test_timms_test_split_and_a_lone_train_split(tmp_path):
    for split in ("train", "test"):
        write_png(tmp_path / "a" / split / "cat" / "0.png", (8, 8), (0, 0, 0))
    write_png(tmp_path / "a" / "train" / "dog" / "0.png", (8, 8), (0, 0, 0))
    assert folder_split(tmp_path / "a", False) == tmp_path / "a" / "test"
    assert split_classes(tmp_path / "a" / "test") == ["cat", "dog"]
    write_png(tmp_path / "b" / "train" / "cat" / "0.png", (8, 8), (0, 0, 0))
    assert [folder_split(tmp_path / "b", t) for t in (True, False, None)] == [
        tmp_path / "b" / "train", tmp_path / "b" / "train", tmp_path / "b"]
    for split in ("training", "validation"):  # timm's other names (its default --val-split)
        write_png(tmp_path / "c" / split / "cat" / "0.png", (8, 8), (0, 0, 0))
    write_png(tmp_path / "c" / "training" / "dog" / "0.png", (8, 8), (0, 0, 0))
    assert [folder_split(tmp_path / "c", t) for t in (True, False)] == [
        tmp_path / "c" / "training", tmp_path / "c" / "validation"]
    assert split_classes(tmp_path / "c" / "validation") == ["cat", "dog"]


def test_a_class_folder_named_train_is_no_split(tmp_path):
    # Was: v/{bus,car,train}/ read as timm's train/ split, its 5 images of 15, one class,
    # silently (gan train; ood score called it a flat folder); a train/ beside val/ or alone is
    # a split still, and a folder that is not v's own split is not refused for v's layout
    for name in ("bus", "car", "train"):
        write_png(tmp_path / "v" / name / "0.png", (8, 8), (0, 0, 0))
    message = (f"{tmp_path / 'v'} holds train/ beside bus/, car/, none an evaluation split "
               f"(val, valid, validation, eval, evaluation, test): read as timm's split layout, "
               f"only train/ would be read; if train/ is a class, rename that folder; if these "
               f"are splits, put them in train/ and val/")
    for train in (True, False):
        with pytest.raises(ValueError) as err:
            create_dataset("imagefolder", tmp_path / "v", train=train, size=8)
        assert str(err.value) == message
    assert len(image_folder(tmp_path / "v", 8)) == 3  # the whole folder (data pack, gan fid)
    assert folder_split(tmp_path / "v", None) == tmp_path / "v"
    assert split_classes(tmp_path / "v" / "bus") is None
    write_png(tmp_path / "v" / "val" / "bus" / "0.png", (8, 8), (0, 0, 0))
    assert folder_split(tmp_path / "v", False) == tmp_path / "v" / "val"


def test_folders_beside_both_splits_are_named_as_left_out(tmp_path):
    # Was: extra/ (or a test/ beside val/) left out without a word; the library names them and
    # the programs say so (classify: tasks/classify/data.py)
    root = _split_layout(tmp_path)
    assert split_folders(root) == (root / "train", root / "val", (), ())
    for name in ("test", "extra", ".cache", "__MACOSX"):  # the hidden ones are no folders here
        (root / name).mkdir()
    (root / "notes.txt").write_text("a file, not a folder")
    splits = split_folders(root)
    assert (splits.train, splits.evaluation, splits.left_out) == (
        root / "train", root / "val", ("extra", "test"))


def test_what_a_program_leaves_out_is_one_line_whatever_splits_it_reads(tmp_path):
    # Was: gan train read train/ alone and ood score an OOD set's val/ alone, leaving the rest
    # out without a word, and an image beside the splits was left out by every program unsaid;
    # one line says it for each (classify, gan train, ood score)
    root = _split_layout(tmp_path)
    splits = split_folders(root)
    both = (splits.train, splits.evaluation)
    assert left_out_line("R", splits, both) is None  # all read: nothing to say
    assert left_out_line("R", splits, both[:1]) == (
        "R holds val/ beside train/, read as timm's training split: it is left out")
    write_png(root / "loose.png", (8, 8), (0, 0, 0))
    write_png(root / "._loose.png", (8, 8), (0, 0, 0))  # hidden: no image (macOS's companion)
    for name in ("extra", "test", ".cache"):
        write_png(root / name / "0.png", (8, 8), (0, 0, 0))
    splits = split_folders(root)
    assert splits.images == ("loose.png",)
    assert left_out_line("R", splits, both) == (
        "R holds extra/, loose.png, test/ beside train/ and val/, read as timm's training and "
        "evaluation splits: they are left out")
    assert left_out_line("imagefolder:R", splits, both[1:]) == (
        "imagefolder:R holds extra/, loose.png, test/, train/ beside val/, read as timm's "
        "evaluation split: they are left out")
    for name in ("a", "b"):
        (root / name).mkdir()
    assert left_out_line("R", split_folders(root), both).startswith(
        "R holds a/, b/, extra/, loose.png and 1 more beside train/ and val/")
    lone = tmp_path / "lone"  # a training split alone is read for both roles
    write_png(lone / "train" / "cat" / "0.png", (8, 8), (0, 0, 0))
    assert left_out_line("R", split_folders(lone), (lone / "train",)) is None
    write_png(lone / "0.png", (8, 8), (0, 0, 0))  # no folder beside it: not refused, named
    assert left_out_line("R", split_folders(lone), (lone / "train",)) == (
        "R holds 0.png beside train/, read as timm's training split: it is left out")
