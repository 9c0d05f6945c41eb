"""Image folders: class folders, flat folders, their errors (robustrep.data.folders)."""

import json

import numpy as np
import pytest
import torch

from robustrep.data import image_folder, num_classes
from robustrep.data.folder_splits import split_classes
from robustrep.errors import UnreadableImageError

from ..tasks.data.test_pack import pack, zip_folder
from .conftest import write_png
from .test_zipdata import DAMAGE, damaged_zip, png


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
    assert capsys.readouterr().err == f"robustrep classify train: error: {advice}\n"


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


# --- what the first mutation run of folders.py left open (docs/mutation.md) ------------------

ACCEPTED = ".png, .jpg, .jpeg, .bmp, .ppm, .pgm, .tif, .tiff, .webp"


def test_given_classes_set_the_labels_and_the_sample_order(tmp_path):
    for name in ("cat", "dog"):
        write_png(tmp_path / name / "0.png", (8, 8), (0, 0, 0))
    ds = image_folder(tmp_path, 8, classes=["dog", "cat"])
    assert [(p.split("/")[-2], y) for p, y in ds.samples] == [("dog", 0), ("cat", 1)]
    with pytest.raises(ValueError) as err:
        image_folder(tmp_path, 8, classes=["dog", "fox"])
    assert str(err.value) == (f"class folder {tmp_path / 'cat'} is not a class of the training "
                              f"split (dog, fox): its labels would be guessed; rename or remove "
                              f"it")
    flat = tmp_path / "cat"
    with pytest.raises(ValueError) as err:
        image_folder(flat, 8, classes=["cat", "dog"])
    assert str(err.value) == (f"{flat} holds images directly, but the training split has class "
                              f"folders (cat, dog): put its images in the same class folders, or "
                              f"their labels would all be 0")


def test_each_layout_asked_for_says_what_it_found_missing(tmp_path):
    write_png(tmp_path / "flat" / "0.png", (8, 8), (0, 0, 0))
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    cases = [("flat", "classes", f"no class folders in {tmp_path / 'flat'} (layout "
                                 f"root/<class>/<image> under {tmp_path / 'flat'}; accepted "
                                 f"extensions: {ACCEPTED})"),
             ("classes", "flat", f"no images found in {tmp_path / 'classes'} (accepted "
                                 f"extensions: {ACCEPTED})"),
             ("empty", "auto", f"no images found in {tmp_path / 'empty'}: expected "
                               f"root/<class>/<image> or images directly in root (accepted "
                               f"extensions: {ACCEPTED})")]
    for folder, layout, message in cases:
        with pytest.raises(FileNotFoundError) as err:
            image_folder(tmp_path / folder, 8, layout=layout)
        assert str(err.value) == message
    write_png(tmp_path / "classes" / "cat" / "0.png", (8, 8), (0, 0, 0))
    assert image_folder(tmp_path / "classes", 8, layout="classes").layout == "classes"
    with pytest.raises(ValueError) as err:
        image_folder(tmp_path / "flat", 8, layout="class")
    assert str(err.value) == "layout must be one of 'auto', 'classes', 'flat'; got 'class'"
    with pytest.raises(TypeError) as err:
        image_folder(tmp_path / "flat", None)
    assert str(err.value) == "size must be a positive int, got NoneType"


def test_a_hidden_folder_beside_images_leaves_the_folder_flat(tmp_path):
    write_png(tmp_path / "0.png", (8, 8), (0, 0, 0))
    write_png(tmp_path / ".ipynb_checkpoints" / "0-checkpoint.png", (8, 8), (0, 0, 0))
    ds = image_folder(tmp_path, 8)
    assert ds.layout == "flat" and len(ds) == 1


def test_a_flat_folder_alone_reads_label_0_in_the_channels_asked(tmp_path):
    from robustrep.data.folders import FlatImageFolder
    for k in range(2):
        write_png(tmp_path / f"{k}.png", (4, 4), (200, 100, 50))
    ds = FlatImageFolder(tmp_path)  # the default: RGB, no transform
    assert ds.targets == [0, 0] and ds.classes == [tmp_path.name] and ds[1][0].mode == "RGB"
    assert FlatImageFolder(tmp_path, channels=1)[0][0].mode == "L"
    with pytest.raises(ValueError) as err:
        FlatImageFolder(tmp_path, channels=2)
    assert str(err.value) == "channels must be one of 1, 3; got 2"


def test_class_folders_may_be_empty_when_allowed_as_torchvision_allows(tmp_path):
    from robustrep.data.folders import _ClassFolders
    write_png(tmp_path / "cat" / "0.png", (8, 8), (0, 0, 0))
    (tmp_path / "dog").mkdir()
    ds = _ClassFolders(str(tmp_path), allow_empty=True)
    assert ds.classes == ["cat", "dog"] and ds.targets == [0]
    with pytest.raises(FileNotFoundError, match=r"class folder .*dog holds no images$"):
        _ClassFolders(str(tmp_path))


def _zip(path, members):
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _encoded(image, format="png"):
    import io
    data = io.BytesIO()
    image.save(data, format=format)
    return data.getvalue()


def _rgb():
    from PIL import Image
    return Image.new("RGB", (4, 4), (200, 100, 50))


def _png_bytes(colour=(200, 100, 50), mode="RGB"):
    from PIL import Image
    return _encoded(Image.new(mode, (4, 4), colour))


def test_a_zipped_folder_reads_as_its_folder_lazily_and_pickles(tmp_path):
    """A flat zip with one bad member: not read until asked (no verify by default); each member
    decoded in the channels asked, through the transform; label 0; the handle left out of a
    pickle (DataLoader workers)."""
    import pickle

    from torchvision import transforms

    from robustrep.data.folders import ZipImageFolder
    path = _zip(tmp_path / "d.zip", {"a.png": _png_bytes(), "b.png": _png_bytes(),
                                     "c.png": b"not an image", "sub/.keep": b""})
    ds = ZipImageFolder(path)
    assert ds.targets == [0, 0, 0] and ds.skipped == [] and ds.unread == []
    assert ds.top is None and ds.layout == "flat" and ds.classes == ["d.zip"]
    assert ds[0][0].mode == "RGB" and ZipImageFolder(path, channels=1)[0][0].mode == "L"
    x = ZipImageFolder(path, transform=transforms.ToTensor())[1][0]
    assert torch.equal(x, transforms.ToTensor()(_rgb()))
    again = pickle.loads(pickle.dumps(ds))
    assert again[1][0].tobytes() == ds[1][0].tobytes()
    with pytest.raises(ValueError) as err:
        ds[2]
    assert str(err.value) == (f"cannot read {path}/c.png: UnidentifiedImageError: empty, or no "
                              f"image format PIL reads; remove or replace it")
    with pytest.raises(ValueError) as err:
        ZipImageFolder(path, channels=2)
    assert str(err.value) == "channels must be one of 1, 3; got 2"


def test_a_zipped_member_is_refused_naming_it_as_a_file_is(tmp_path):
    from PIL import Image

    from robustrep.data.folders import ZipImageFolder
    floats = _encoded(Image.fromarray(np.zeros((4, 4), np.float32)), "tiff")
    clear = _png_bytes((0, 0, 0, 0), "RGBA")
    path = _zip(tmp_path / "d.zip", {"a.tif": floats, "b.png": clear})
    ds = ZipImageFolder(path)
    with pytest.raises(ValueError) as err:
        ds[0]
    assert str(err.value).startswith(f"cannot read {path}/a.tif: 32-bit floating point pixels "
                                     f"(PIL mode F from a TIFF) have no known value range")
    with pytest.raises(ValueError) as err:
        ds[1]
    assert str(err.value).startswith(f"cannot read {path}/b.png: 16 of 16 pixels are "
                                     f"transparent")
    with pytest.raises(ValueError) as err:  # two bad: the first named, and one more
        ZipImageFolder(path, verify=True)
    assert str(err.value).startswith(f"unreadable image {path}/a.tif (and 1 more) under {path}: "
                                     f"32-bit floating point")


def test_a_member_damaged_in_the_zip_is_named_with_its_crc_error(tmp_path):
    from robustrep.data.folders import ZipImageFolder
    good = _png_bytes()
    path = _zip(tmp_path / "d.zip", {"a.png": good})
    raw = bytearray(path.read_bytes())
    at = raw.index(good) + len(good) // 2  # stored (no compression): the member's own bytes
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    crc = "damaged in the zip (BadZipFile: Bad CRC-32 for file 'a.png')"
    with pytest.raises(ValueError) as err:
        ZipImageFolder(path, verify=True)
    assert str(err.value) == f"unreadable image {path}/a.png under {path}: {crc}; re-create " \
                             f"the zip"
    with pytest.raises(ValueError) as err:
        ZipImageFolder(path)[0]
    assert str(err.value) == f"cannot read {path}/a.png: {crc}; re-create the zip"


@pytest.mark.parametrize("method, module, at, reason", DAMAGE[1:],
                         ids=["deflate", "bzip2", "lzma"])
def test_a_compressed_member_damaged_in_the_zip_is_one_line(tmp_path, capsys, method, module,
                                                            at, reason):
    """Was: zlib.error / LZMAError tracebacks from ZipImageFolder, verified or read, and from
    data pack SRC.zip (bzip2's OSError was named): the zip, the member and the fix."""
    from robustrep.tasks.cli import main

    from robustrep.data.folders import ZipImageFolder
    pytest.importorskip(module)
    noise = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = damaged_zip(tmp_path / "d.zip", png(noise), method, at, members=("a.png", "b.png"))
    line = f"{path}/a.png under {path}: damaged in the zip ({reason}); re-create the zip"
    with pytest.raises(ValueError) as err:
        ZipImageFolder(path, verify=True)
    assert str(err.value) == f"unreadable image {line}"
    with pytest.raises(UnreadableImageError) as err:
        ZipImageFolder(path)[0]
    assert str(err.value) == f"cannot read {path}/a.png: damaged in the zip ({reason}); " \
                             f"re-create the zip"
    out = tmp_path / "out.zip"
    assert main(["data", "pack", str(path), str(out), "--resolution", "16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"robustrep data pack: error: unreadable image {line}\n" and not out.exists()


def test_a_zip_of_one_folder_and_hidden_members_is_read_from_inside_it(tmp_path):
    from robustrep.data.folders import ZipImageFolder
    path = _zip(tmp_path / "d.zip", {"data/cat/a.png": _png_bytes(), ".DS_Store": b"x",
                                     "data/dog/b.png": _png_bytes()})
    ds = ZipImageFolder(path)
    assert ds.top == "data" and ds.classes == ["cat", "dog"] and ds.targets == [0, 1]


def test_macos_forks_unzipped_into_a_folder_are_skipped_as_in_its_zip(tmp_path):
    """A folder unzipped from a zip macOS's Finder made holds __MACOSX/: was refused (`class
    folder mix/__MACOSX holds no images`), or, with a visible image under it, read as a class
    named __MACOSX; a zip of that folder skipped it. Now both skip it, at the top or deeper,
    and pack to the same bytes, with the same notes."""
    root = tmp_path / "mix"
    write_png(root / "cat" / "1.png", (16, 16), (200, 0, 0))
    write_png(root / "dog" / "2.png", (16, 16), (0, 200, 0))
    (root / "__MACOSX" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "cat" / "._1.png").write_bytes(b"\x00\x05\x16\x07 a fork")
    ds = image_folder(root, 16)
    assert ds.classes == ["cat", "dog"] and len(ds) == 2 and ds.unread == []
    write_png(root / "__MACOSX" / "x.png", (16, 16), (0, 0, 200))  # visible: still a fork's
    write_png(root / "dog" / "__MACOSX" / "y.png", (16, 16), (0, 0, 200))
    (root / "dog" / "__MACOSX" / "notes.txt").write_text("x")
    (root / "dog" / "notes.txt").write_text("x")
    ds = image_folder(root, 16, verify=True)
    assert ds.classes == ["cat", "dog"] and len(ds) == 2
    assert ds.unread == [str(root / "dog" / "notes.txt")]
    code, out, err = pack(root, tmp_path / "f.zip")
    assert code == 0 and json.loads(out)["labels"]["names"] == ["cat", "dog"]
    source = zip_folder(root, tmp_path / "src.zip")  # __MACOSX/ at its top, as Finder's
    assert pack(source, tmp_path / "z.zip") == (0, out.replace(str(tmp_path / "f.zip"),
                                                               str(tmp_path / "z.zip")),
                                                err.replace(str(root), str(source)))
    assert (tmp_path / "z.zip").read_bytes() == (tmp_path / "f.zip").read_bytes()
    flat = tmp_path / "flat"
    write_png(flat / "1.png", (16, 16), (200, 0, 0))
    (flat / "__MACOSX").mkdir()
    (flat / "__MACOSX" / "._1.png").write_bytes(b"\x00\x05\x16\x07 a fork")
    assert image_folder(flat, 16).layout == "flat"


@pytest.mark.parametrize("classes", [("a",), ("a", "b")])
def test_a_folder_of_one_folder_of_class_folders_packs_as_its_zips_do(tmp_path, classes):
    """one/only/<class>/: the folder was one class, `only`, its class folders merged (two
    classes packed as one label), where its zip (from inside one, or of one) is read from
    inside its one folder (ZipImageFolder.top): classes a (and b). Now the folder is read from
    inside too, as the zips are and as the comments on a zip of one folder mean: the three
    pack to the same bytes and summary."""
    root = tmp_path / "one"
    for k, name in enumerate(classes):
        write_png(root / "only" / name / f"{k}.png", (16, 16), (200, 50 * k, 0))
    inside = zip_folder(root, tmp_path / "in.zip")  # cd one && zip -r ../in.zip .
    outside = zip_folder(root, tmp_path / "out.zip", wrapped=True)  # zip -r out.zip one
    packed = []
    for k, src in enumerate((root, inside, outside)):
        code, out, err = pack(src, tmp_path / f"p{k}.zip")
        assert code == 0, err
        packed.append(((tmp_path / f"p{k}.zip").read_bytes(), {**json.loads(out), "zip": ""}))
    assert packed[1] == packed[0] and packed[2] == packed[0]
    assert packed[0][1]["labels"] == {"classes": len(classes), "names": list(classes)}
    ds = image_folder(root, 16)
    assert ds.classes == list(classes) and ds.targets == list(range(len(classes)))


def test_a_lone_folder_named_as_a_training_class_is_that_class(tmp_path):
    """train/only/<class>/ is read from inside (only would merge a and b), by split_classes as
    by image_folder; val/a/deep/ is not: a is a class of the training split, not a folder of
    class folders."""
    root = tmp_path / "data"
    write_png(root / "train" / "only" / "a" / "1.png", (16, 16), (200, 0, 0))
    write_png(root / "train" / "only" / "b" / "2.png", (16, 16), (0, 200, 0))
    write_png(root / "val" / "a" / "deep" / "3.png", (16, 16), (200, 0, 0))
    assert image_folder(root / "train", 16).classes == ["a", "b"]
    given = split_classes(root / "val")
    assert given == ["a", "b"]
    ds = image_folder(root / "val", 16, classes=given)
    assert ds.classes == ["a", "b"] and ds.targets == [0]
