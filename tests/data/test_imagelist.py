"""OpenOOD image lists (robustrep.data.imagelist)."""

import pytest
import torch

from robustrep.data import image_list

from .conftest import write_png

def test_image_list_openood_format(tmp_path):
    write_png(tmp_path / "images" / "cifar10" / "test" / "a b.png", (32, 32), (255, 255, 255))
    write_png(tmp_path / "images" / "svhn" / "c.png", (32, 32), (0, 0, 0))
    listing = tmp_path / "test_cifar10.txt"
    listing.write_text("# OpenOOD imglist\ncifar10/test/a b.png 3\n\nsvhn/c.png -1\n")
    ds = image_list(tmp_path / "images", listing, size=16)
    assert len(ds) == 2 and [ds[0][1], ds[1][1]] == [3, -1]
    assert torch.allclose(ds[0][0], torch.ones(3, 16, 16))
    assert ds[1][0].shape == (3, 16, 16) and ds[1][0].max() == 0


def test_image_list_missing_file_names_line_and_path(tmp_path):
    write_png(tmp_path / "ok.png", (8, 8), (0, 0, 0))
    listing = tmp_path / "list.txt"
    listing.write_text("ok.png 0\ngone.png 1\n")
    with pytest.raises(FileNotFoundError) as info:
        image_list(tmp_path, listing, size=8)
    assert "line 2" in str(info.value) and str(tmp_path / "gone.png") in str(info.value)
    listing.write_text("ok.png zero\n")
    with pytest.raises(ValueError, match="line 1"):
        image_list(tmp_path, listing, size=8)


@pytest.mark.parametrize("second", ["ok.png 0", "./sub/../ok.png 1"])
def test_image_list_naming_one_image_twice_is_refused(tmp_path, second):
    # was read twice: counted twice in the OOD set's size and its AUROC
    write_png(tmp_path / "ok.png", (8, 8), (0, 0, 0))
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text(f"ok.png 0\n# a comment\n{second}\n")
    with pytest.raises(ValueError, match=r"list\.txt lines 1 and 3 list the same image "):
        image_list(tmp_path, listing, size=8)


def test_a_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    # Was: "image imgs/\ufeffa.png not found": Notepad's UTF-8 byte order mark read as text
    write_png(tmp_path / "imgs" / "a.png", (8, 8), (0, 0, 0))
    write_png(tmp_path / "imgs" / "b.png", (8, 8), (0, 0, 0))
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbfimgs/a.png 1\r\nimgs/b.png 2\r\n")
    ds = image_list(tmp_path, listing, size=8)
    assert [(p.name, label) for p, label in ds.samples] == [("a.png", 1), ("b.png", 2)]
    listing.write_bytes("imgs/a.png 1\n".encode("utf-16"))  # Notepad's "Unicode"
    with pytest.raises(ValueError) as info:
        image_list(tmp_path, listing, size=8)
    assert str(info.value) == (f"image list {listing} is not UTF-8 text (byte 0: invalid start "
                               f"byte); save it as UTF-8")


def test_an_absolute_path_is_refused_as_openood_refuses_it(tmp_path):
    # was read from wherever it pointed, outside root
    write_png(tmp_path / "elsewhere.png", (8, 8), (0, 0, 0))
    (tmp_path / "root").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'elsewhere.png'} 0\n")
    with pytest.raises(ValueError) as info:
        image_list(tmp_path / "root", listing, size=8)
    assert str(info.value) == (
        f"{listing} line 1: {tmp_path / 'elsewhere.png'} is an absolute path; accepted: paths "
        f"relative to root {tmp_path / 'root'}, as OpenOOD's image lists name them")
