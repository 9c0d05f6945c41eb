"""CelebA aligned images with the official partition file, as distributed."""

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import create_dataset
from robustrep.data.celeba import celeba, read_partition
from robustrep.tasks.cli import main

PARTS = [0, 2, 0, 1, 0, 2]  # 000001.jpg .. 000006.jpg


@pytest.fixture
def celeba_root(tmp_path):
    """Six flat-colour 22x18 JPEGs (the 218x178 aspect) whose red level encodes the file number."""
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    for i in range(1, 7):
        pixels = np.full((22, 18, 3), (40 * i, 100, 100), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=95)
    lines = [f"{i:06d}.jpg {p}" for i, p in enumerate(PARTS, 1)]
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def _numbers(ds):
    """File numbers of the images, read back from their red level."""
    return [round(float(ds[i][0][0].mean()) * 255 / 40) for i in range(len(ds))]


@pytest.mark.parametrize("split, numbers", [("train", [1, 3, 5]), ("valid", [4]),
                                            ("test", [2, 6]), ("all", [1, 2, 3, 4, 5, 6])])
def test_official_split(celeba_root, split, numbers):
    ds = celeba(celeba_root, split, size=8)
    assert _numbers(ds) == numbers
    assert ds[0][0].shape == (3, 8, 8) and ds[0][1] == 0


def test_create_dataset_maps_train_flag_to_splits(celeba_root):
    assert _numbers(create_dataset("celeba", celeba_root, train=True, size=8)) == [1, 3, 5]
    assert _numbers(create_dataset("celeba", celeba_root, train=False, size=8)) == [2, 6]


def test_crop_then_resize(celeba_root):
    assert celeba(celeba_root, "train", size=4, crop=12, channels=1)[0][0].shape == (1, 4, 4)


def test_bad_partition_line_and_missing_image(celeba_root):
    path = celeba_root / "list_eval_partition.txt"
    path.write_text("000001.jpg 0\n000002.jpg 3\n")
    with pytest.raises(ValueError, match="line 2"):
        read_partition(path)
    path.write_text("000001.jpg 0\n000009.jpg 0\n")
    with pytest.raises(FileNotFoundError, match="000009.jpg"):
        celeba(celeba_root, "train", size=8)
    (celeba_root / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        celeba(celeba_root, "train", size=8)


def test_gan_trains_two_steps_on_celeba(celeba_root):
    run = celeba_root / "run"
    assert main(["gan", "train", "--dataset", "celeba", "--data-root", str(celeba_root),
                 "--image-size", "16", "--g-width", "4", "--d-width", "4", "--z-dim", "8",
                 "--batch-size", "2", "--steps", "2", "--eval-every", "0", "--final-eval",
                 "false", "--num-workers", "0", "--device", "cpu", "--out", str(run),
                 "--quiet"]) == 0
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["step"] == 2
