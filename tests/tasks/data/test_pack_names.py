"""``data pack``: a zip SRC cut short, and an OUT named ``.zip`` alone, each refused in one line
that names the path and what is accepted."""

import zipfile

import numpy as np
from PIL import Image

from robustrep.tasks.cli import main


def _zip_of_images(path):
    """A zip of an image folder, two classes of one 16x16 image each."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("cat/0.png", "dog/0.png"):
            image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
            with archive.open(name, "w") as handle:
                image.save(handle, format="PNG")
    return path


def test_a_zip_cut_short_is_named_as_src_with_what_is_accepted(tmp_path, capsys):
    """Was: "robustrep data: error: src.zip is not a zip archive": neither SRC nor what the
    command takes; a download cut short is the usual cause."""
    whole = _zip_of_images(tmp_path / "whole.zip")
    cut = tmp_path / "src.zip"
    cut.write_bytes(whole.read_bytes()[:200])
    out = tmp_path / "o.zip"
    assert main(["data", "pack", str(cut), str(out), "--resolution", "16"]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep data pack: error: SRC {cut} is not a readable zip archive (cut "
                   f"short by a download or copy, damaged, or another format named .zip); give an "
                   f"image folder (SRC/<class>/<image> or images directly in SRC) or a .zip of "
                   f"one\n")
    assert not out.exists()
    assert main(["data", "pack", str(whole), str(out), "--resolution", "16"]) == 0  # the whole


def test_out_named_only_zip_is_told_to_give_a_name(tmp_path, capsys):
    """Was: "OUT .zip: give a path ending in .zip", the very name given (to Python a hidden
    file's whole name, with no suffix)."""
    src = _zip_of_images(tmp_path / "src.zip")
    assert main(["data", "pack", str(src), str(tmp_path / ".zip"), "--resolution", "16"]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep data pack: error: OUT {tmp_path / '.zip'}: give a file name before "
                   f".zip (e.g. dataset.zip)\n")
    assert main(["data", "pack", str(src), str(tmp_path / "o.txt"), "--resolution", "16"]) == 2
    assert capsys.readouterr().err.endswith(": give a path ending in .zip (e.g. dataset.zip)\n")
    assert sorted(tmp_path.iterdir()) == [src]  # nothing written beside it


LIMIT = "and a file or folder name may have at most 255 bytes (the system's limit)"


def test_a_name_too_long_is_named_as_src_or_out_with_the_limit(tmp_path, monkeypatch, capsys):
    """Was "robustrep data: error: File name too long: aaa..." (the whole 300 characters) from
    ``Path.exists()``, before data pack checked OUT: neither the option nor the limit."""
    monkeypatch.chdir(tmp_path)
    src = _zip_of_images(tmp_path / "src.zip")
    long = "a" * 300
    for args, line in (
            ([str(src), f"{long}.zip"], f"OUT.zip aaaaaaaaaaaaaaaaaaaa...aaaaaaaa.zip: its name "
                                        f"is 304 bytes long, {LIMIT}; give a shorter name"),
            ([str(src), f"{long}/d.zip"], f"OUT.zip aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa/d.zip: "
                                          f"the folder name aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa "
                                          f"in it is 300 bytes long, {LIMIT}; give a shorter "
                                          f"name"),
            ([long, "o.zip"], f"SRC aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa: its name is 300 bytes "
                              f"long, {LIMIT}; give a shorter name")):
        assert main(["data", "pack", *args, "--resolution", "16"]) == 2
        assert capsys.readouterr().err == f"robustrep data pack: error: {line}\n"
    assert sorted(tmp_path.iterdir()) == [src]
