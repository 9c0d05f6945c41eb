"""Datasets by name, in the classifier's shape; unknown names and other shapes are clear errors."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import image_shape
from robustrep.tasks.ood.data_specs import default_id
from robustrep.tasks.ood.datasets import DataContext, ShapeMismatch, id_dataset, ood_dataset

CTX = DataContext(shape=(1, 16, 16), classes=[0, 1, 2])


@pytest.mark.parametrize("name", ["digits59", "gaussian", "uniform", "photos", "rotated",
                                  "inverted"])
def test_builtin_ood_sets_take_the_classifier_shape(name):
    ds = ood_dataset(name, CTX, limit=20)
    assert len(ds) == 20 and image_shape(ds) == (1, 16, 16)
    assert all(ds[i][1] == -1 for i in range(3))


def test_digits_id_keeps_the_run_classes():
    train, test = id_dataset("digits", CTX, train=True), id_dataset("digits", CTX, train=False)
    assert set(train.targets.tolist()) == {0, 1, 2} and set(test.targets.tolist()) == {0, 1, 2}
    assert len(train) > len(test)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits59.*cifar10.*imagefolder"):
        ood_dataset("mnist", CTX)
    with pytest.raises(ValueError, match="use digits59"):
        ood_dataset("digits", CTX)
    with pytest.raises(ValueError, match="built-in OOD set"):
        id_dataset("gaussian", CTX, train=False)
    with pytest.raises(ValueError, match="--data-root"):
        ood_dataset("cifar10", CTX)


def _png_folder(root, size, mode="L", n=3):
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size, size) + ((3,) if mode == "RGB" else ()), 40 * i,
                                np.uint8), mode).save(root / f"{i}.png")
    return root


def test_image_folders_take_the_classifiers_input_shape(tmp_path):
    """8x8 RGB images become the (1, 16, 16) input of the run without --resize (issue 8)."""
    folder = _png_folder(tmp_path / "imgs", 8, "RGB")
    for ctx in (CTX, DataContext((1, 16, 16), resize=True)):
        resized = ood_dataset(f"imagefolder:{folder}", ctx)
        assert image_shape(resized) == (1, 16, 16) and len(resized) == 3
        # grey level 40 * i of image i, resized: the conversion keeps the values
        assert [round(float(resized[i][0].mean()) * 255) for i in range(3)] == [0, 40, 80]
    same = ood_dataset(f"imagefolder:{_png_folder(tmp_path / 'ok', 16)}", CTX)
    assert image_shape(same) == (1, 16, 16)


def test_imagelist_openood_format(tmp_path):
    folder = _png_folder(tmp_path / "data" / "sub", 16)
    listing = tmp_path / "test_ood.txt"
    listing.write_text("# OpenOOD imglist\nsub/0.png 0\nsub/2.png 0\n")
    ds = ood_dataset(f"imagelist:{folder.parent}:{listing}", CTX)
    assert len(ds) == 2 and image_shape(ds) == (1, 16, 16)


def test_cifar_format_needs_resize_for_a_grey_model(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))
    with pytest.raises(ShapeMismatch, match=r"\(3, 32, 32\)"):
        ood_dataset(f"cifar10:{tmp_path}", CTX)
    ds = ood_dataset("cifar10", DataContext((1, 16, 16), data_root=str(tmp_path), resize=True))
    assert image_shape(ds) == (1, 16, 16) and len(ds) == 4
    # as the ID set of a 3-channel CIFAR run, restricted to the run's classes
    id_set = id_dataset("cifar10", DataContext((3, 32, 32), classes=[1, 2],
                                               data_root=str(tmp_path)), train=True)
    labels = [int(id_set[i][1]) for i in range(len(id_set))]
    assert set(labels) == {1, 2} and len(labels) == 10  # 5 train batches x 2 kept images


def test_subsampling_is_seeded():
    a = ood_dataset("gaussian", DataContext((1, 16, 16), seed=3), limit=5)
    b = ood_dataset("gaussian", DataContext((1, 16, 16), seed=3), limit=5)
    assert torch.equal(a[0][0], b[0][0])


def test_timm_split_layout_train_and_val(tmp_path):
    from robustrep.data import create_dataset
    from robustrep.data.local import folder_split
    from robustrep.tasks.ood.data_specs import has_train_split
    root = tmp_path / "split"
    _png_folder(root / "train" / "a", 16, n=5)
    _png_folder(root / "val" / "a", 16, n=2)
    assert folder_split(root, True) == root / "train" and folder_split(root, False) == root / "val"
    assert folder_split(root, None) == root
    assert len(id_dataset(f"imagefolder:{root}", CTX, train=True)) == 5
    assert len(id_dataset(f"imagefolder:{root}", CTX, train=False)) == 2
    assert len(ood_dataset(f"imagefolder:{root}", CTX)) == 2  # OOD sets score the val split
    assert len(create_dataset("imagefolder", root, train=True, size=16)) == 5
    assert len(create_dataset("imagefolder", root, train=False, size=16)) == 2
    assert has_train_split(f"imagefolder:{root}")
    assert default_id({"dataset": "imagefolder", "data_root": str(root)}) == f"imagefolder:{root}"
    plain = _png_folder(tmp_path / "plain" / "a", 16, n=3).parent
    assert not has_train_split(f"imagefolder:{plain}")
    _png_folder(root / "train" / "b", 16, n=1)
    (root / "val" / "a").rename(root / "val" / "b")  # val lacks a: b keeps train's label 1
    assert {y for _, y in id_dataset(f"imagefolder:{root}", CTX, train=False)} == {1}
    assert len(id_dataset(f"imagefolder:{plain}", CTX, train=True)) == 3


def test_an_ood_zip_of_label_vectors_is_read_without_its_labels(tmp_path):
    # Was: refused ("reads integer class labels >= 0 only"), though an OOD set needs no labels;
    # stylegan2-ada writes float or one-hot vectors there for conditioning
    import io
    import json
    import zipfile
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as archive:
        for i in range(3):
            png = io.BytesIO()
            Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(png, format="PNG")
            archive.writestr(f"{i}.png", png.getvalue())
        archive.writestr("dataset.json", json.dumps({"labels": [["0.png", [0.0, 1.0]]]}))
    ds = ood_dataset(f"imagefolder:{tmp_path / 'v.zip'}", CTX)
    assert len(ds) == 3 and image_shape(ds) == (1, 16, 16)
    assert float(ds[2][0].max()) > float(ds[1][0].max())  # the images, in order
