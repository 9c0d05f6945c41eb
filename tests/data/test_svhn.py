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


LAYOUT = ("expected 'X' uint8 [32, 32, 3, N] and 'y' [N, 1] of labels 1..10 (10 is the digit 0)")


def _write_svhn(path, y, x_dtype=np.uint8):
    from scipy.io import savemat

    X = np.zeros((32, 32, 3, 5), x_dtype)
    savemat(path, {"X": X, "y": np.asarray(y, np.uint8).reshape(-1, 1)})
    return path


@pytest.mark.parametrize("y, x_dtype, problem", [
    ([10, 1, 2, 3], np.uint8, "'y' is [4, 1] for 5 images"),
    ([10, 1, 2, 3, 4, 5], np.uint8, "'y' is [6, 1] for 5 images"),
    ([10, 1, 11, 3, 4], np.uint8, "'y' holds the label 11 (index 2), outside 1..10"),
    ([10, 1, 2, 3, 0], np.uint8, "'y' holds the label 0 (index 4), outside 1..10"),
    ([10, 1, 2, 3, 4], np.int64, "'X' is int64 [32, 32, 3, 5]"),
])
def test_an_svhn_file_whose_arrays_do_not_fit_is_one_line_naming_it(tmp_path, y, x_dtype,
                                                                    problem):
    # Was: an IndexError mid-run (other label counts), 12 classes from labels 0 and 11
    path = _write_svhn(tmp_path / "test_32x32.mat", y, x_dtype)
    with pytest.raises(ValueError) as info:
        svhn(tmp_path, "test")
    assert str(info.value) == f"{path} is not an SVHN .mat file (format 2): {problem}; {LAYOUT}"


def test_a_truncated_svhn_file_is_one_line_naming_it(tmp_path):
    # Was: "OSError: could not read bytes" with scipy's traceback
    path = _write_svhn(tmp_path / "test_32x32.mat", [10, 1, 2, 3, 4])
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError) as info:
        svhn(tmp_path, "test")
    assert str(info.value) == (
        f"{path} cannot be read as a MATLAB .mat file (OSError: could not read bytes; truncated "
        f"or damaged?); fetch it again from http://ufldl.stanford.edu/housenumbers/")


def test_a_matlab_v73_file_is_named_as_such_not_as_an_md5_failure(tmp_path):
    # Was: "failed the md5 check (check_md5=True): Please use HDF reader ..." (no md5 check ran)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116)
    path = tmp_path / "train_32x32.mat"  # v7.3: the MATLAB header, then an HDF5 file at 512
    path.write_bytes((header + bytes(8) + b"\x00\x02IM").ljust(512, b"\x00")
                     + b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError) as info:
        svhn(tmp_path, "train")
    assert str(info.value) == (
        f"{path} is a MATLAB v7.3 (HDF5) .mat file, which scipy cannot read; re-save it as v7 "
        f"(save(..., '-v7') in MATLAB) or use the official files from "
        f"http://ufldl.stanford.edu/housenumbers/")


def test_svhn_md5_failure_is_named_only_with_check_md5(tmp_path):
    path = _write_svhn(tmp_path / "test_32x32.mat", [10, 1, 2, 3, 4])
    assert len(svhn(tmp_path, "test")) == 5
    with pytest.raises(ValueError, match=f"^{path} failed the md5 check \\(check_md5=True\\)"):
        svhn(tmp_path, "test", check_md5=True)
