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


def test_outdir_moved_while_an_image_is_written_keeps_no_temp_file(tmp_path, monkeypatch):
    """--outdir renamed while a PNG was being saved: gan sample stops with its line, and the
    PNG's temporary file is not left behind in the moved folder."""
    import os

    import torch
    from PIL import Image

    from robustrep.tasks.common.errors import FolderGone
    from robustrep.tasks.common.folder_guard import forget_folder
    from robustrep.tasks.gan.image_files import write_images
    out, moved = tmp_path / "images", tmp_path / "moved"
    files = ImageFiles(out, [0, 1], 2)
    save = Image.Image.save

    def save_then_move(self, handle, **kwargs):
        save(self, handle, **kwargs)
        os.rename(out, moved)
    monkeypatch.setattr(Image.Image, "save", save_then_move)
    files.make()
    try:
        with pytest.raises(FolderGone, match="--outdir .* was removed or moved while gan sample"):
            write_images(torch.zeros(2, 3, 4, 4), files)
    finally:
        forget_folder(out)
    assert list(tmp_path.rglob("*")) == [moved]
