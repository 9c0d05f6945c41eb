"""Unreadable image files found, named or skipped (robustrep.data.images)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustrep.data import image_folder, image_list
from robustrep.data.images import find_bad_images

from .conftest import write_png

def _bad_image_folder(tmp_path):
    """class a: two good PNGs, a truncated PNG and a text file named .png; class b: a JPEG
    cut short."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    write_png(tmp_path / "a" / "1.png", (12, 12), (200, 0, 0))
    write_png(tmp_path / "a" / "2.png", (12, 12), (0, 200, 0))
    noise = Image.frombytes("RGB", (64, 64), bytes(np.random.default_rng(0).integers(
        0, 256, 64 * 64 * 3, dtype=np.uint8)))
    noise.save(tmp_path / "a" / "3.png")
    raw = (tmp_path / "a" / "3.png").read_bytes()
    (tmp_path / "a" / "3.png").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "a" / "4.png").write_text("not an image")
    noise.save(tmp_path / "b" / "1.jpg", quality=95)
    raw = (tmp_path / "b" / "1.jpg").read_bytes()
    (tmp_path / "b" / "1.jpg").write_bytes(raw[: len(raw) // 2])
    write_png(tmp_path / "b" / "2.png", (12, 12), (0, 0, 200))
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
