"""Image folders: class folders, flat folders, their errors (robustrep.data.folders)."""

import pytest
import torch

from robustrep.data import create_dataset, image_folder, num_classes
from robustrep.data.local import split_classes

from .conftest import write_png

def test_image_folder_with_classes(tmp_path):
    write_png(tmp_path / "cat" / "a.png", (40, 20), (255, 0, 0))
    write_png(tmp_path / "cat" / "b.jpg", (20, 20), (0, 255, 0))
    write_png(tmp_path / "dog" / "c.png", (24, 30), (0, 0, 255))
    ds = image_folder(tmp_path, size=16)
    assert len(ds) == 3 and ds.classes == ["cat", "dog"]
    assert [ds[k][1] for k in range(3)] == [0, 0, 1]
    x, _ = ds[0]
    assert x.shape == (3, 16, 16)
    assert torch.allclose(x[0], torch.ones(16, 16)) and x[1:].abs().max() < 1e-6  # pure red
    grey = image_folder(tmp_path, size=8, channels=1)
    assert grey[2][0].shape == (1, 8, 8)
    assert num_classes(ds) == 2


def test_flat_image_folder(tmp_path):
    for k in range(3):
        write_png(tmp_path / f"{k:06d}.png", (20, 24), (60 * k, 60 * k, 60 * k))
    (tmp_path / "._000000.png").write_bytes(b"not an image")  # a macOS companion file
    (tmp_path / "list_attr.txt").write_text("not an image")
    ds = image_folder(tmp_path, size=12, channels=1)
    assert len(ds) == 3 and {ds[k][1] for k in range(3)} == {0}
    x, _ = ds[2]
    assert x.shape == (1, 12, 12)
    assert torch.allclose(x, torch.full_like(x, 120 / 255), atol=1 / 255)


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"\.png"):
        image_folder(empty, size=8)
    with pytest.raises(FileNotFoundError, match="missing"):
        image_folder(tmp_path / "missing", size=8)
    mixed = tmp_path / "mixed"
    write_png(mixed / "top.png", (8, 8), (0, 0, 0))
    write_png(mixed / "cls" / "in.png", (8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="layout"):
        image_folder(mixed, size=8)
    assert len(image_folder(mixed, size=8, layout="flat")) == 1


def _split_layout(root, train=("cat", "dog", "fox"), val=("cat", "fox")):
    for split, names in (("train", train), ("val", val)):
        for name in names:
            write_png(root / split / name / "0.png", (8, 8), (0, 0, 0))
    return root


def test_the_val_split_takes_the_training_splits_labels(tmp_path):
    root = _split_layout(tmp_path)  # val lacks "dog": its own sorted folders would make fox 1
    assert split_classes(root / "val") == ["cat", "dog", "fox"]
    assert split_classes(root / "train") is None and split_classes(root) is None
    val = create_dataset("imagefolder", root, train=False, size=8)
    assert [label for _, label in val.samples] == [0, 2]
    assert val.classes == ["cat", "dog", "fox"]
    assert [label for _, label in create_dataset("imagefolder", root, size=8).samples] == [0, 1, 2]
    alone = image_folder(root / "val", size=8)  # read without its training split: own order
    assert [label for _, label in alone.samples] == [0, 1]


def test_a_val_class_the_training_split_lacks_is_refused(tmp_path):
    root = _split_layout(tmp_path, val=("cat", "wolf"))
    with pytest.raises(ValueError, match=r"class folder .*wolf is not a class of the training"):
        create_dataset("imagefolder", root, train=False, size=8)
    flat = tmp_path / "flat"
    _split_layout(flat, val=())
    write_png(flat / "val" / "0.png", (8, 8), (0, 0, 0))
    with pytest.raises(ValueError, match="holds images directly"):
        create_dataset("imagefolder", flat, train=False, size=8)


def test_a_folder_of_images_and_subfolders_says_what_to_move(tmp_path, capsys):
    """Was: advice to pass layout='classes' or layout='flat', which no program accepts; the
    advice is now a change to the folder, which works for the programs and the library."""
    from robustrep.tasks.cli import main
    mixed = tmp_path / "mixed"
    write_png(mixed / "top.png", (8, 8), (0, 0, 0))
    write_png(mixed / "cls" / "in.png", (8, 8), (0, 0, 0))
    advice = (f"{mixed} holds both images and subfolders, so it is neither a flat folder nor "
              f"root/<class>/<image>; move its loose images (e.g. top.png) into a class "
              f"subfolder, or move the subfolders out (from Python, layout='classes' or 'flat' "
              f"chooses one)")
    with pytest.raises(ValueError) as err:
        image_folder(mixed, size=8)
    assert str(err.value) == advice
    assert main(["classify", "train", "--dataset", "imagefolder", "--data-root", str(mixed),
                 "--image-size", "8", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"robustrep classify: error: {advice}\n"


def test_an_empty_subfolder_beside_images_leaves_the_folder_flat(tmp_path):
    # Was: "holds both images and subfolders" for a stray empty folder (or one holding only
    # .DS_Store), which holds no class and no image
    flat = tmp_path / "flat"
    for name in ("a.png", "b.png"):
        write_png(flat / name, (8, 8), (0, 0, 0))
    (flat / "empty").mkdir()
    (flat / "mac").mkdir()
    (flat / "mac" / ".DS_Store").write_bytes(b"x")
    ds = image_folder(flat, size=8)
    assert len(ds) == 2 and ds.classes == ["flat"]
    (flat / "empty" / "note.txt").write_text("a file: the folder may be a class in the making")
    with pytest.raises(ValueError, match="holds both images and subfolders"):
        image_folder(flat, size=8)
    only_empty = tmp_path / "only_empty"
    (only_empty / "empty").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images found in"):
        image_folder(only_empty, size=8)


def test_files_not_taken_for_their_extension_are_listed_in_unread(tmp_path):
    for name in ("a.png", "b.JPG", "c.gif", "d.jfif", ".hidden.png"):
        write_png(tmp_path / "flat" / name, (8, 8), (0, 0, 0))
    (tmp_path / "flat" / "nested").mkdir()
    write_png(tmp_path / "flat" / "nested" / "e.gif", (8, 8), (0, 0, 0))  # flat: not read
    ds = image_folder(tmp_path / "flat", 8, layout="flat")
    assert len(ds) == 2
    assert ds.unread == [str(tmp_path / "flat" / n) for n in ("c.gif", "d.jfif")]
    write_png(tmp_path / "classes" / "x" / "deep" / "f.png", (8, 8), (0, 0, 0))
    (tmp_path / "classes" / "x" / "deep" / "g.bin").write_bytes(b"x")
    ds = image_folder(tmp_path / "classes", 8)
    assert len(ds) == 1 and ds.unread == [str(tmp_path / "classes" / "x" / "deep" / "g.bin")]


@pytest.mark.parametrize("as_zip", [False, True])
def test_the_image_check_reports_each_image_and_prints_nothing(tmp_path, capsys, as_zip):
    """``data pack`` checks every image before its bar (about 1.4 ms a 300x300 JPEG: 100 s of
    silence for 70k); the scan calls ``checked(done, total)`` after each, and the program draws
    the count, so the library stays silent (a bad image is still counted, then refused)."""
    import zipfile

    from robustrep.data.folders import ZipImageFolder
    for k, cls in enumerate(("cat", "cat", "dog")):
        write_png(tmp_path / "src" / cls / f"{k}.png", (8, 8), (40 * k, 0, 0))
    (tmp_path / "src" / "dog" / "bad.png").write_bytes(b"not an image")
    src = tmp_path / "src"
    if as_zip:
        with zipfile.ZipFile(tmp_path / "src.zip", "w") as archive:
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(src).as_posix())
    calls = []
    with pytest.raises(ValueError, match="unreadable image .*bad.png"):
        if as_zip:
            ZipImageFolder(tmp_path / "src.zip", verify=True,
                           checked=lambda *counts: calls.append(counts))
        else:
            image_folder(src, 8, verify=True, checked=lambda *counts: calls.append(counts))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    (src / "dog" / "bad.png").unlink()
    (tmp_path / "src.zip").unlink(missing_ok=True)
    calls.clear()
    assert len(image_folder(src, 8, verify=True, checked=lambda *c: calls.append(c))) == 3
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert capsys.readouterr() == ("", "")
