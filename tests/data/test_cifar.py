"""CIFAR-10/100 from files written in the official python format (robustrep.data.cifar)."""

import importlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from robustrep.data import cifar, image_shape, num_classes

from .conftest import CIFAR10_NAMES, cifar_data, write_py2_pickle

def test_py2_pickle_helper_writes_python2_strings(tmp_path):
    write_py2_pickle(tmp_path / "batch", {"labels": [1], "names": ["cat"]})
    raw = (tmp_path / "batch").read_bytes()
    assert pickle.SHORT_BINSTRING + bytes([6]) + b"labels" in raw
    assert pickle.loads(raw, encoding="latin1") == {"labels": [1], "names": ["cat"]}


def test_cifar10_loads_train_and_test(cifar10_root):
    root, test_data = cifar10_root
    train = cifar(root, "cifar10", train=True)
    assert len(train) == 20 and train.classes == CIFAR10_NAMES
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert [train[k][1] for k in range(4)] == [4, 5, 6, 7]
    test = cifar(root, "cifar10", train=False)
    assert len(test) == 3 and [test[k][1] for k in range(3)] == [7, 8, 9]
    # 'data' rows are 1024 red, 1024 green, 1024 blue values of a row-major 32x32 image
    expected = torch.from_numpy(test_data[1].reshape(3, 32, 32).astype(np.float32) / 255)
    assert torch.allclose(test[1][0], expected)
    assert num_classes(train) == 10 and image_shape(test) == (3, 32, 32)


class _Payload:
    """Unpickles into a call of ``Path.touch``: code a foreign batch file could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_cifar10_equals_torchvision_on_the_same_files(cifar10_root, monkeypatch):
    from torchvision.datasets import CIFAR10
    root, _ = cifar10_root
    # test-made files cannot match torchvision's md5 sums
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    ours, theirs = cifar(root, "cifar10", train=True), CIFAR10(str(root), train=True)
    assert np.array_equal(ours.data, theirs.data) and ours.targets == theirs.targets
    assert ours.classes == theirs.classes


def test_a_cifar_batch_with_code_is_refused_without_running_it(cifar10_root, tmp_path):
    root, _ = cifar10_root
    marker = tmp_path / "ran"
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [_Payload(marker)]}, f)
    with pytest.raises(ValueError, match=r"test_batch is not in the CIFAR python format.*"
                                         r"refuses the global pathlib"):
        cifar(root, "cifar10", train=False)
    assert not marker.exists()


def test_cifar10_resize_and_grey(cifar10_root):
    root, _ = cifar10_root
    ds = cifar(root, "cifar10", train=False, size=16, channels=1)
    x, _ = ds[0]
    assert x.shape == (1, 16, 16) and 0 <= x.min() and x.max() <= 1


def test_cifar_md5_check_is_optional(cifar10_root):
    root, _ = cifar10_root
    # user-made files cannot match the official md5 sums; the opt-in check must reject them
    with pytest.raises(ValueError, match="md5"):
        cifar(root, "cifar10", check_md5=True)


def test_cifar_missing_root_names_expected_path(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        cifar(tmp_path / "nowhere", "cifar10")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py" / "data_batch_1") in message
    assert "Download is off" in message and "cifar-10-python.tar.gz" in message


def test_cifar_incomplete_layout_lists_missing_files(cifar10_root):
    root, _ = cifar10_root
    folder = root / "cifar-10-batches-py"
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as info:
        cifar(root, "cifar10", train=False)
    assert str(info.value).startswith(f"CIFAR-10 test split not found: expected "
                                      f"{folder / 'test_batch'} (missing under {folder}: "
                                      f"test_batch).")
    assert "holds test_batch and batches.meta (key 'label_names'), the test split's files" in (
        str(info.value))


@pytest.mark.parametrize("kept", ["test", "train"])
def test_a_cifar10_split_needs_only_its_own_batches_and_the_meta_file(cifar10_root, kept):
    # Was: the test split refused without data_batch_1..5 (`--ood cifar10:ROOT`, eval), and the
    # train split without test_batch
    root, _ = cifar10_root
    folder = root / "cifar-10-batches-py"
    other = ["test_batch"] if kept == "train" else [f"data_batch_{i}" for i in range(1, 6)]
    for name in other:
        (folder / name).unlink()
    split = cifar(root, "cifar10", train=kept == "train")
    assert len(split) == (20 if kept == "train" else 3)
    assert [split[k][1] for k in range(3)] == ([4, 5, 6] if kept == "train" else [7, 8, 9])
    with pytest.raises(FileNotFoundError) as info:  # the other split: named, with its file
        cifar(root, "cifar10", train=kept != "train")
    missing = "train split not found" if kept == "test" else "test split not found"
    assert missing in str(info.value) and str(folder / other[0]) in str(info.value)
    (folder / "batches.meta").unlink()  # the meta file: needed by either split
    with pytest.raises(FileNotFoundError, match=f"{kept} split not found: expected "
                                                f"{folder / 'batches.meta'}"):
        cifar(root, "cifar10", train=kept == "train")


def test_a_cifar100_test_split_needs_no_train_file(tmp_path):
    _cifar100_root(tmp_path, [1, 2]).unlink()  # cifar-100-python/train
    test = cifar(tmp_path, "cifar100", train=False)
    assert len(test) == 1 and test.classes[:2] == ["f0", "f1"]
    with pytest.raises(FileNotFoundError, match="CIFAR-100 train split not found: expected "
                                                f"{tmp_path / 'cifar-100-python' / 'train'} "):
        cifar(tmp_path, "cifar100", train=True)


def test_the_md5_check_of_a_split_reads_only_its_files(cifar10_root, monkeypatch):
    # check_md5 verifies the split's batches alone (torchvision's check wants both splits')
    root, _ = cifar10_root
    checked = []
    module = importlib.import_module("robustrep.data.cifar")  # the package's name: a function
    monkeypatch.setattr(module, "check_integrity",
                        lambda path, md5: checked.append(Path(path).name) or True)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (root / "cifar-10-batches-py" / name).unlink()
    assert len(cifar(root, "cifar10", train=False, check_md5=True)) == 3
    assert checked == ["test_batch"]


def test_cifar_root_pointing_inside_the_folder_gets_a_hint(cifar10_root):
    root, _ = cifar10_root
    with pytest.raises(FileNotFoundError, match="parent folder"):
        cifar(root / "cifar-10-batches-py", "cifar10")


def test_cifar_wrong_format_is_a_clear_error(cifar10_root):
    root, _ = cifar10_root
    write_py2_pickle(root / "cifar-10-batches-py" / "test_batch", {"images": np.zeros((2, 3072))})
    with pytest.raises(ValueError, match="CIFAR python format"):
        cifar(root, "cifar10", train=False)


def test_cifar100_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 6), ("test", 2)):
        write_py2_pickle(folder / split, {"filenames": ["x"] * n, "batch_label": split,
                                          "fine_labels": [99 - k for k in range(n)],
                                          "coarse_labels": [0] * n, "data": cifar_data(rng, n)})
    write_py2_pickle(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                                       "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    train = cifar(tmp_path, "cifar100", train=True)
    assert len(train) == 6 and [train[k][1] for k in range(3)] == [99, 98, 97]
    assert num_classes(train) == 100
    assert cifar(tmp_path, "cifar100", train=False)[0][0].shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        cifar(tmp_path / "empty", "cifar100")


def test_truncated_cifar_batch_is_named(cifar10_root):
    root, _ = cifar10_root
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(ValueError, match=f"{batch} is not in the CIFAR python format") as info:
        cifar(root, "cifar10", train=True)
    assert "\n" not in str(info.value)
    assert len(cifar(root, "cifar10", train=False)) == 3  # the test split does not read it


def _cifar100_root(tmp_path, fine_labels):
    """cifar-100-python/ whose train split is one batch of 2 images labelled ``fine_labels``."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_py2_pickle(folder / "train", {"fine_labels": fine_labels, "coarse_labels": [0, 0],
                                        "data": cifar_data(rng, 2)})
    write_py2_pickle(folder / "test", {"fine_labels": [0], "coarse_labels": [0],
                                       "data": cifar_data(rng, 1)})
    write_py2_pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                                       "coarse_label_names": [f"c{i}" for i in range(20)]})
    return folder / "train"


@pytest.mark.parametrize("change, problem", [
    ({"labels": [1, 2, 3, 4, 5]}, "'labels' holds 5 labels for the 4 images of 'data'"),
    ({"labels": [1, 2, 3]}, "'labels' holds 3 labels for the 4 images of 'data'"),
    ({"data": np.zeros((4, 1024), np.uint8)}, "'data' is uint8 [4, 1024]"),
    ({"data": np.zeros((4, 3072), np.int64)}, "'data' is int64 [4, 3072]"),
    ({"labels": [0, 1, 10, 2]}, "'labels' holds the label 10 (index 2), outside 0..9"),
    ({"labels": [-1, 1, 2, 3]}, "'labels' holds the label -1 (index 0), outside 0..9"),
    ({"labels": [0, 1.0, 2, 3]}, "'labels' holds 1.0 (index 1), not an integer"),
])
def test_a_cifar_batch_whose_contents_do_not_fit_is_one_line_naming_it(cifar10_root, change,
                                                                       problem):
    # Was: labels shifted against the images or an IndexError mid-run (other counts), [N, 1024]
    # reshaped into other images, a PIL TypeError traceback (int64), an IndexError in the loss
    root, _ = cifar10_root
    batch = root / "cifar-10-batches-py" / "data_batch_2"
    rng = np.random.default_rng(4)
    write_py2_pickle(batch, {"data": cifar_data(rng, 4), "labels": [0, 1, 2, 3], **change})
    with pytest.raises(ValueError) as info:
        cifar(root, "cifar10", train=True)
    assert str(info.value) == _format_error(batch, problem, "labels", 10, "batches.meta")
    assert len(cifar(root, "cifar10", train=False)) == 3  # the test split does not read it


@pytest.mark.parametrize("fine_labels, problem", [
    ([5, 100], "'fine_labels' holds the label 100 (index 1), outside 0..99"),
    ([5], "'fine_labels' holds 1 labels for the 2 images of 'data'"),
])
def test_a_cifar100_batch_is_checked_against_its_fine_labels(tmp_path, fine_labels, problem):
    batch = _cifar100_root(tmp_path, fine_labels)
    with pytest.raises(ValueError) as info:
        cifar(tmp_path, "cifar100", train=True)
    assert str(info.value) == _format_error(batch, problem, "fine_labels", 100, "meta")


def _format_error(batch, problem, key, classes, meta):
    return (f"{batch} is not in the CIFAR python format: {problem}; each batch must be a pickled "
            f"dict with 'data' (uint8 [N, 3072]) and '{key}' (N integers in 0..{classes - 1}, "
            f"the {classes} classes of {meta})")
