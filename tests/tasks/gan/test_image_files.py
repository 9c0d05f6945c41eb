"""The PNG files of ``robustrep gan sample --outdir`` (tasks/gan/image_files.py)."""

import pytest

from robustrep.tasks.gan.image_files import ImageFiles


def test_outdir_file_names_are_made_as_they_are_written(tmp_path):
    """10^8 names are not built up front; the files already there are found by listing the
    folder once (a name per file test took as long)."""
    for name in ("000003.png", "000010.png", "100000000.png", "0000005.png", "x.png"):
        (tmp_path / name).write_bytes(b"")
    files = ImageFiles(tmp_path, None, 10**8)
    assert len(files) == 10**8 and files[-1] == tmp_path / "99999999.png"
    assert files[2:4] == [tmp_path / "000002.png", tmp_path / "000003.png"]
    assert files.taken() == [tmp_path / "000003.png", tmp_path / "000010.png"]
    assert ImageFiles(tmp_path, None, 10).taken() == [tmp_path / "000003.png"]
    seeds = ImageFiles(tmp_path / "none", [5, 3], 64)
    assert list(seeds) == [tmp_path / "none" / "seed0005.png", tmp_path / "none" / "seed0003.png"]
    assert seeds.taken() == []
    with pytest.raises(IndexError):
        files[10**8]
