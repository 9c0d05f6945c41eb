"""SVHN from a .mat file in the official format 2 layout (robustrep.data.svhn)."""

import numpy as np
import pytest
import torch

from robustrep.data import svhn

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
