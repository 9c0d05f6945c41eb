"""Local loaders on small data written in the real on-disk formats inside tmp_path."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import (cifar, create_dataset, image_folder, image_list, image_shape,
                            list_datasets, num_classes, svhn)
from robustrep.data.local import find_bad_images

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


class _Py2Str(bytes):
    """A Python 2 ``str``, the type of every key and name in the official CIFAR pickles."""


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing ``_Py2Str`` with the (SHORT_)BINSTRING opcodes Python 2 used."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2_str


def _as_py2(obj):
    if isinstance(obj, str):
        return _Py2Str(obj.encode("latin1"))
    if isinstance(obj, dict):
        return {_as_py2(k): _as_py2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_as_py2(v) for v in obj]
    return obj


def _pickle(path, obj):
    """Write ``obj`` as the official files were written: a Python 2 cPickle, protocol 2."""
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(_as_py2(obj))


def test_py2_pickle_helper_writes_python2_strings(tmp_path):
    _pickle(tmp_path / "batch", {"labels": [1], "names": ["cat"]})
    raw = (tmp_path / "batch").read_bytes()
    assert pickle.SHORT_BINSTRING + bytes([6]) + b"labels" in raw
    assert pickle.loads(raw, encoding="latin1") == {"labels": [1], "names": ["cat"]}


def _cifar_data(rng, n):
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture
def cifar10_root(tmp_path):
    """cifar-10-batches-py/ with five train batches of 4, a test batch of 3 and batches.meta."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "data": _cifar_data(rng, 4),
            "labels": [(4 * i + k) % 10 for k in range(4)],
            "filenames": [f"img_{i}_{k}.png" for k in range(4)]})
    test = _cifar_data(rng, 3)
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": test,
                                    "labels": [7, 8, 9], "filenames": ["a", "b", "c"]})
    _pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": 4,
                                      "num_vis": 3072})
    return tmp_path, test


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
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        cifar(root, "cifar10", train=True)


def test_cifar_root_pointing_inside_the_folder_gets_a_hint(cifar10_root):
    root, _ = cifar10_root
    with pytest.raises(FileNotFoundError, match="parent folder"):
        cifar(root / "cifar-10-batches-py", "cifar10")


def test_cifar_wrong_format_is_a_clear_error(cifar10_root):
    root, _ = cifar10_root
    _pickle(root / "cifar-10-batches-py" / "test_batch", {"images": np.zeros((2, 3072))})
    with pytest.raises(ValueError, match="CIFAR python format"):
        cifar(root, "cifar10", train=False)


def test_cifar100_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 6), ("test", 2)):
        _pickle(folder / split, {"filenames": ["x"] * n, "batch_label": split,
                                 "fine_labels": [99 - k for k in range(n)],
                                 "coarse_labels": [0] * n, "data": _cifar_data(rng, n)})
    _pickle(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                              "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    train = cifar(tmp_path, "cifar100", train=True)
    assert len(train) == 6 and [train[k][1] for k in range(3)] == [99, 98, 97]
    assert num_classes(train) == 100
    assert cifar(tmp_path, "cifar100", train=False)[0][0].shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        cifar(tmp_path / "empty", "cifar100")


def test_svhn_mat_file(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [3], [9]], dtype=np.uint8)  # SVHN stores digit 0 as 10
    savemat(tmp_path / "test_32x32.mat", {"X": X, "y": y})
    ds = svhn(tmp_path, "test")
    assert len(ds) == 5 and [ds[k][1] for k in range(5)] == [0, 1, 2, 3, 9]
    x, _ = ds[2]
    expected = torch.from_numpy(X[:, :, :, 2].astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.allclose(x, expected)
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        svhn(tmp_path, "train")


def _write_png(path, size, color, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_image_folder_with_classes(tmp_path):
    _write_png(tmp_path / "cat" / "a.png", (40, 20), (255, 0, 0))
    _write_png(tmp_path / "cat" / "b.jpg", (20, 20), (0, 255, 0))
    _write_png(tmp_path / "dog" / "c.png", (24, 30), (0, 0, 255))
    ds = image_folder(tmp_path, size=16)
    assert len(ds) == 3 and ds.classes == ["cat", "dog"]
    assert [ds[k][1] for k in range(3)] == [0, 0, 1]
    x, _ = ds[0]
    assert x.shape == (3, 16, 16)
    assert torch.allclose(x[0], torch.ones(16, 16)) and x[1:].abs().max() < 1e-6  # pure red
    grey = image_folder(tmp_path, size=8, channels=1)
    assert grey[2][0].shape == (1, 8, 8)
    assert num_classes(ds) == 2


def test_flat_image_folder(tmp_path):
    for k in range(3):
        _write_png(tmp_path / f"{k:06d}.png", (20, 24), (60 * k, 60 * k, 60 * k))
    (tmp_path / "._000000.png").write_bytes(b"not an image")  # a macOS companion file
    (tmp_path / "list_attr.txt").write_text("not an image")
    ds = image_folder(tmp_path, size=12, channels=1)
    assert len(ds) == 3 and {ds[k][1] for k in range(3)} == {0}
    x, _ = ds[2]
    assert x.shape == (1, 12, 12)
    assert torch.allclose(x, torch.full_like(x, 120 / 255), atol=1 / 255)


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"\.png"):
        image_folder(empty, size=8)
    with pytest.raises(FileNotFoundError, match="missing"):
        image_folder(tmp_path / "missing", size=8)
    mixed = tmp_path / "mixed"
    _write_png(mixed / "top.png", (8, 8), (0, 0, 0))
    _write_png(mixed / "cls" / "in.png", (8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="layout"):
        image_folder(mixed, size=8)
    assert len(image_folder(mixed, size=8, layout="flat")) == 1


def test_image_list_openood_format(tmp_path):
    _write_png(tmp_path / "images" / "cifar10" / "test" / "a b.png", (32, 32), (255, 255, 255))
    _write_png(tmp_path / "images" / "svhn" / "c.png", (32, 32), (0, 0, 0))
    listing = tmp_path / "test_cifar10.txt"
    listing.write_text("# OpenOOD imglist\ncifar10/test/a b.png 3\n\nsvhn/c.png -1\n")
    ds = image_list(tmp_path / "images", listing, size=16)
    assert len(ds) == 2 and [ds[0][1], ds[1][1]] == [3, -1]
    assert torch.allclose(ds[0][0], torch.ones(3, 16, 16))
    assert ds[1][0].shape == (3, 16, 16) and ds[1][0].max() == 0


def test_image_list_missing_file_names_line_and_path(tmp_path):
    _write_png(tmp_path / "ok.png", (8, 8), (0, 0, 0))
    listing = tmp_path / "list.txt"
    listing.write_text("ok.png 0\ngone.png 1\n")
    with pytest.raises(FileNotFoundError) as info:
        image_list(tmp_path, listing, size=8)
    assert "line 2" in str(info.value) and str(tmp_path / "gone.png") in str(info.value)
    listing.write_text("ok.png zero\n")
    with pytest.raises(ValueError, match="line 1"):
        image_list(tmp_path, listing, size=8)


def test_registry_names_and_errors(cifar10_root):
    assert list_datasets() == ["celeba", "cifar10", "cifar100", "digits", "imagefolder", "imagelist",
                               "lsun", "svhn", "zip"]
    with pytest.raises(ValueError, match="cifar10, cifar100, digits, imagefolder"):
        create_dataset("mnist")
    with pytest.raises(ValueError, match="root"):
        create_dataset("cifar10")
    root, _ = cifar10_root
    with pytest.raises(ValueError, match="size"):
        create_dataset("imagefolder", root=root)


def test_create_dataset_builds_each_kind(cifar10_root):
    root, _ = cifar10_root
    ds = create_dataset("cifar10", root=root, train=False, size=None, check_md5=None)
    assert len(ds) == 3 and image_shape(ds) == (3, 32, 32)
    grey = create_dataset("digits", train=False, size=16, classes=[0, 1])
    assert image_shape(grey) == (1, 16, 16) and set(grey.targets.tolist()) == {0, 1}
    _write_png(root / "pics" / "x.png", (10, 10), (9, 9, 9))
    assert image_shape(create_dataset("imagefolder", root=root / "pics", size=8)) == (3, 8, 8)
    with pytest.raises(FileNotFoundError, match="test_32x32.mat"):
        create_dataset("svhn", root=root, train=False)


def test_truncated_cifar_batch_is_named(cifar10_root):
    root, _ = cifar10_root
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(ValueError, match=f"{batch} is not in the CIFAR python format") as info:
        cifar(root, "cifar10", train=True)
    assert "\n" not in str(info.value)
    assert len(cifar(root, "cifar10", train=False)) == 3  # the test split does not read it


def _bad_image_folder(tmp_path):
    """class a: two good PNGs, a truncated PNG and a text file named .png; class b: a JPEG
    cut short."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    _write_png(tmp_path / "a" / "1.png", (12, 12), (200, 0, 0))
    _write_png(tmp_path / "a" / "2.png", (12, 12), (0, 200, 0))
    noise = Image.frombytes("RGB", (64, 64), bytes(np.random.default_rng(0).integers(
        0, 256, 64 * 64 * 3, dtype=np.uint8)))
    noise.save(tmp_path / "a" / "3.png")
    raw = (tmp_path / "a" / "3.png").read_bytes()
    (tmp_path / "a" / "3.png").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "a" / "4.png").write_text("not an image")
    noise.save(tmp_path / "b" / "1.jpg", quality=95)
    raw = (tmp_path / "b" / "1.jpg").read_bytes()
    (tmp_path / "b" / "1.jpg").write_bytes(raw[: len(raw) // 2])
    _write_png(tmp_path / "b" / "2.png", (12, 12), (0, 0, 200))
    return tmp_path


def test_verify_names_the_first_unreadable_image(tmp_path):
    root = _bad_image_folder(tmp_path)
    assert len(image_folder(root, 8)) == 6  # without verify the folder is read lazily
    with pytest.raises(ValueError, match=rf"unreadable image {root / 'a' / '3.png'} \(and 2 "
                                         rf"more\) under {root}: .*skip_bad=True"):
        image_folder(root, 8, verify=True)


def test_find_bad_images_catches_truncation_and_impostors(tmp_path):
    root = _bad_image_folder(tmp_path)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    bad = [p.relative_to(root).as_posix() for p, _ in find_bad_images(files)]
    assert bad == ["a/3.png", "a/4.png", "b/1.jpg"]


def test_skip_bad_drops_and_counts(tmp_path):
    root = _bad_image_folder(tmp_path)
    ds = image_folder(root, 8, verify=True, skip_bad=True)
    assert len(ds) == 3 and len(ds.skipped) == 3
    assert [Path(p).name for p, _ in ds.samples] == ["1.png", "2.png", "2.png"]
    assert ds.targets == [0, 0, 1] and ds.imgs == ds.samples
    assert [ds[i][1] for i in range(3)] == [0, 0, 1]
    flat = root / "a"
    ds = image_folder(flat, 8, verify=True, skip_bad=True)
    assert len(ds) == 2 and ds.skipped == [str(flat / "3.png"), str(flat / "4.png")]
    listing = root / "list.txt"
    listing.write_text("a/1.png 0\na/4.png 1\nb/2.png 2\n")
    with pytest.raises(ValueError, match=f"unreadable image {root / 'a' / '4.png'} under"):
        image_list(root, listing, 8, verify=True)
    ds = image_list(root, listing, 8, verify=True, skip_bad=True)
    assert ds.targets == [0, 2] and ds.skipped == [str(root / "a" / "4.png")]
