"""The dataset registry and create_dataset (robustrep.data.local)."""

import pytest

from robustrep.data import create_dataset, image_shape, list_datasets

from .conftest import write_png

def test_registry_names_and_errors(cifar10_root):
    assert list_datasets() == ["celeba", "cifar10", "cifar100", "digits", "imagefolder",
                               "imagelist", "lsun", "svhn", "zip"]
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
    write_png(root / "pics" / "x.png", (10, 10), (9, 9, 9))
    assert image_shape(create_dataset("imagefolder", root=root / "pics", size=8)) == (3, 8, 8)
    with pytest.raises(FileNotFoundError, match="test_32x32.mat"):
        create_dataset("svhn", root=root, train=False)
