"""The CIFAR-C reader on tiny fake files in the released layout."""

import numpy as np
import pytest
import torch

from robustrep.data.cifar_c import CIFAR_C_CORRUPTIONS, cifar_c, cifar_c_files


@pytest.fixture
def root(tmp_path):
    """5 severities x 4 images per corruption; pixel (0, 0, 0) = 10 * severity + index."""
    np.save(tmp_path / "labels.npy", np.tile(np.array([3, 1, 4, 1], dtype=np.uint8), 5))
    for k, name in enumerate(CIFAR_C_CORRUPTIONS):
        images = np.full((20, 8, 8, 3), k, dtype=np.uint8)
        for row in range(20):
            images[row, 0, 0, 0] = 10 * (row // 4 + 1) + row % 4
        images[:, 0, 1, 2] = 255  # channel order: HWC on disk -> CHW out
        np.save(tmp_path / f"{name}.npy", images)
    return tmp_path


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_each_severity_is_its_own_block_of_rows(root, severity):
    x, y = cifar_c(root, "snow", severity)
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32
    assert (x[:, 0, 0, 0] * 255).round().long().tolist() == [10 * severity + i for i in range(4)]
    assert y.tolist() == [3, 1, 4, 1] and y.dtype == torch.int64
    assert torch.all(x[:, 2, 0, 1] == 1.0) and torch.all(x[:, 1, 0, 1] == 7 / 255)  # snow: k=7


def test_missing_root_or_file_names_the_path(tmp_path, root):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        cifar_c(tmp_path / "nowhere", "fog", 1)
    (root / "fog.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"fog\.npy is missing"):
        cifar_c(root, "fog", 1)
    with pytest.raises(FileNotFoundError, match=r"fog\.npy is missing"):
        cifar_c_files(root)
    assert cifar_c_files(root, ("snow",))["snow"] == root / "snow.npy"


def test_bad_arguments_and_layout(root):
    with pytest.raises(ValueError, match="severity must be an integer 1..5"):
        cifar_c(root, "fog", 6)
    with pytest.raises(ValueError, match="corruption must be one of"):
        cifar_c(root, "rain", 1)
    np.save(root / "fog.npy", np.zeros((19, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"uint8 \[5 \* N, H, W, 3\]"):
        cifar_c(root, "fog", 1)
