"""stylegan2-ada dataset zips: reading (any path, dataset.json labels or none) and the x-flip
duplicate of --mirror=1; writing them is tests/data/test_zippack.py."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import create_dataset
from robustrep.errors import UnreadableImageError
from robustrep.data.zipdata import XFlip, ZipImageDataset


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="png")
    return buffer.getvalue()


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_images_at_any_path_sorted_by_name_with_labels(arrays, tmp_path):
    path = write_zip(tmp_path / "d.zip", {
        "b/deep/x.png": png(arrays[1]), "a.png": png(arrays[0]), "c.png": png(arrays[2]),
        "readme.txt": b"not an image",
        "dataset.json": json.dumps({"labels": [["c.png", 2], ["a.png", 0], ["b/deep/x.png", 5]]})})
    ds = ZipImageDataset(path)
    assert ds.names == ["a.png", "b/deep/x.png", "c.png"] and ds.targets == [0, 5, 2]
    for (image, _), array in zip(ds, arrays):
        assert torch.equal(image, torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert len(create_dataset("zip", root=path)) == 3
    assert len(create_dataset("imagefolder", root=path, size=8)) == 3  # .zip read as a folder


def test_no_labels_and_null_labels_give_zeros(arrays, tmp_path):
    for meta in ({}, {"dataset.json": json.dumps({"labels": None})}):
        path = write_zip(tmp_path / "n.zip", {"a.png": png(arrays[0]), **meta})
        ds = ZipImageDataset(path)
        assert ds.targets == [0] and not ds.has_labels


@pytest.mark.parametrize("members, expect", [
    ({"readme.txt": b"x"}, "holds no images"),
    ({"a.png": b"", "dataset.json": b"{"}, "dataset.json must be"),
    ({"a.png": b"", "dataset.json": json.dumps({"labels": [["b.png", 1]]})}, "no label for"),
    ({"a.png": b"", "dataset.json": json.dumps({"labels": [["a.png", [0.5, 1.0]]]})},
     "classes are integer labels >= 0"),
])
def test_bad_zips_name_the_problem(tmp_path, members, expect):
    with pytest.raises(ValueError, match=expect):
        ZipImageDataset(write_zip(tmp_path / "bad.zip", members))


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_text("hello")
    with pytest.raises(ValueError, match="not a zip"):
        ZipImageDataset(tmp_path / "x.zip")
    with pytest.raises(FileNotFoundError, match="not found"):
        ZipImageDataset(tmp_path / "missing.zip")


def test_xflip_appends_the_mirror_image_of_each_sample(arrays, tmp_path):
    path = write_zip(tmp_path / "d.zip", {f"{i}.png": png(a) for i, a in enumerate(arrays)})
    base = ZipImageDataset(path)
    flipped = XFlip(base)
    assert len(flipped) == 6
    for i in range(3):
        assert torch.equal(flipped[i][0], base[i][0])
        assert torch.equal(flipped[i + 3][0], base[i][0].flip(-1))  # x-flip: width reversed
    assert torch.equal(flipped[-1][0], flipped[5][0])


def test_16_bit_images_in_a_zip_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="png")  # a 16-bit greyscale PNG
    write_zip(tmp_path / "d.zip", {"0.png": buffer.getvalue()})
    ds = ZipImageDataset(tmp_path / "d.zip")
    x = ds[0][0]
    assert ds.channels == 1 and x.shape == (1, 8, 8)
    assert x.min() == 0 and x.max() == 1 and abs(float(x.mean()) - 0.5) < 0.01
    assert len(x.unique()) > 50  # the gradient survives (clipping left 2 values)


def test_macos_forks_and_hidden_members_are_no_images(arrays, tmp_path):
    """Was: __MACOSX/._a.png (a resource fork Finder adds) taken for an image, and a PIL
    traceback when it was read; skipped, as image folders skip hidden files."""
    path = write_zip(tmp_path / "mac.zip", {
        "a.png": png(arrays[0]), "__MACOSX/._a.png": b"\x00\x05\x16\x07 AppleDouble",
        "._b.png": b"\x00\x05\x16\x07", "sub/.cache/c.png": b"", "./d.png": png(arrays[1])})
    ds = ZipImageDataset(path, verify=True)
    assert ds.names == ["./d.png", "a.png"] and len(create_dataset("zip", root=path)) == 2


def truncated_png(array):
    data = png(array)
    return data[: len(data) // 2]


@pytest.mark.parametrize("bad, reason", [
    (b"", "UnidentifiedImageError: empty, or no image format PIL reads"),
    ("truncated", "OSError: "),
])
def test_an_undecodable_member_is_one_line_naming_zip_and_member(arrays, tmp_path, bad, reason):
    # 8x8, the size of a.png: a zip of two sizes is refused before any member is decoded
    bad = truncated_png(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)) \
        if bad == "truncated" else bad
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0]), "b.png": bad})
    line = f"{path}: member b.png is not a readable image ({reason}"
    with pytest.raises(ValueError) as err:  # at scan time, before any work
        ZipImageDataset(path, verify=True)
    assert str(err.value).startswith(line) and "\n" not in str(err.value)
    assert str(err.value).endswith("); remove it from the zip or re-create the zip")
    ds = ZipImageDataset(path)  # unverified: when the member is read
    assert ds[0][0].shape == (3, 8, 8)
    with pytest.raises(ValueError) as err:
        ds[1]
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


@pytest.mark.parametrize("argv", [
    ["gan", "fid", "ZIP", "digits"],
    ["classify", "train", "--dataset", "zip", "--data-root", "ZIP", "--image-size", "8",
     "--out", "OUT"],
    ["gan", "train", "--dataset", "zip", "--data-root", "ZIP", "--image-size", "16",
     "--out", "OUT"],
])
def test_programs_name_the_member_that_is_no_image(arrays, tmp_path, capsys, argv):
    from robustrep.tasks.cli import main
    path = write_zip(tmp_path / "x.zip", {"a.png": png(arrays[0]), "b.png": png(arrays[1]),
                                          "c.png": b""})
    argv = [str(path) if a == "ZIP" else str(tmp_path / "run") if a == "OUT" else a
            for a in argv]
    assert main([*argv, "--quiet"] if "train" in argv else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err
    assert f"{path}: member c.png is not a readable image" in err
    assert not (tmp_path / "run").exists()


def test_a_zip_mixing_grey_and_colour_is_refused_when_channels_come_from_it(arrays, tmp_path):
    # Was: the first member's mode set the channels, so colour images after a grey one were
    # trained as grey (classify's --dataset zip) without a word
    grey = np.asarray(Image.fromarray(arrays[0]).convert("L"))
    path = write_zip(tmp_path / "m.zip", {"a.png": png(grey), "b.png": png(arrays[1])})
    with pytest.raises(ValueError, match=r"^.*m.zip: member b.png is colour but a.png is "
                                         r"greyscale, .* read all as colour with channels=3 "
                                         r"\(--channels 3\)$"):
        ZipImageDataset(path, verify=True)
    ds = ZipImageDataset(path, channels=3, verify=True)
    assert ds[0][0].shape == ds[1][0].shape == (3, 8, 8)
    assert ZipImageDataset(write_zip(tmp_path / "g.zip", {"a.png": png(grey)}),
                           verify=True).channels == 1


@pytest.mark.parametrize("argv", [
    ["classify", "train", "--dataset", "zip", "--data-root", "ZIP", "--image-size", "8",
     "--skip-bad-images", "--out", "OUT"],
    ["classify", "train", "--dataset", "imagefolder", "--data-root", "ZIP", "--image-size", "8",
     "--skip-bad-images", "--out", "OUT"],
])
def test_skipping_bad_members_of_a_zip_is_refused_not_ignored(arrays, tmp_path, capsys, argv):
    # Was: classify accepted --skip-bad-images with a zip and then stopped at the bad member
    # anyway (the zip reader dropped the option)
    from robustrep.tasks.cli import main
    path = write_zip(tmp_path / "x.zip", {"a.png": png(arrays[0]), "c.png": b""})
    with pytest.raises(ValueError, match=r"x.zip: a zip cannot skip unreadable members"):
        create_dataset("zip", root=path, size=8, verify=True, skip_bad=True)
    argv = [str(path) if a == "ZIP" else str(tmp_path / "run") if a == "OUT" else a
            for a in argv]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--skip-bad-images applies only with --dataset "
                                     "imagefolder" in err or "cannot skip unreadable" in err)
    assert not (tmp_path / "run").exists()


def test_a_member_name_held_twice_is_refused(arrays, tmp_path):
    # Was: both copies counted as images, each read as the last one appended
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("a.png", png(arrays[0]))
        archive.writestr("a.png", png(arrays[1]))
    with pytest.raises(ValueError, match=r"d.zip holds two members named a.png; re-create"):
        ZipImageDataset(path)


def patch_member(path, name, flag_bits=None, method=None):
    """Rewrite member ``name``'s general purpose flags or compression method in its local header
    and its central directory entry, as a zip tool that encrypts or uses Deflate64 writes them
    (zipfile writes neither)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    central = data.index(b"PK\x01\x02")
    while data[central + 46: central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    for offset, value in ((6, flag_bits), (8, method)):  # local; the central entry is 2 further
        if value is not None:
            data[local + offset: local + offset + 2] = value.to_bytes(2, "little")
            data[central + offset + 2: central + offset + 4] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("flag_bits, method, problem", [
    (0x1, None, "is encrypted (password-protected), which robustrep does not read; re-create "
                "the zip without a password"),
    (None, 9, "is compressed with Deflate64 (method 9), which Python's zipfile cannot read; "
              "accepted: stored, deflate, bzip2, LZMA members; re-create the zip (e.g. zip -r, "
              "or robustrep data pack)"),
])
def test_a_member_zipfile_cannot_read_is_refused_at_construction(arrays, tmp_path, flag_bits,
                                                                 method, problem):
    # Was: RuntimeError "b.png is encrypted, password required" / NotImplementedError "That
    # compression method is not supported" with zipfile's traceback, when the member was read
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0]), "b.png": png(arrays[1])})
    patch_member(path, "b.png", flag_bits, method)
    for make in (lambda: ZipImageDataset(path), lambda: create_dataset("zip", root=path)):
        with pytest.raises(ValueError) as err:
            make()
        assert str(err.value) == f"{path}: member b.png {problem}"


def test_a_dataset_json_below_the_top_is_refused_not_ignored(arrays, tmp_path):
    # Was: mydata/dataset.json (zip -r of the packed folder) ignored: every label read as 0
    path = write_zip(tmp_path / "d.zip", {
        "mydata/00000/img00000000.png": png(arrays[0]),
        "mydata/dataset.json": json.dumps({"labels": [["00000/img00000000.png", 3]]})})
    with pytest.raises(ValueError) as err:
        ZipImageDataset(path)
    assert str(err.value) == (
        f"{path} holds mydata/dataset.json, but labels are read only from a top-level "
        f"dataset.json (as stylegan2-ada reads them), so its images would be unlabelled: "
        f"re-create the zip from inside the folder holding dataset.json (cd FOLDER && zip -r "
        f"../d.zip .)")


def test_a_zip_of_two_sizes_is_refused_naming_two_members(arrays, tmp_path):
    # Was: the first member's size taken as the zip's, the others resized without a word
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0]), "b.png": png(arrays[1]),
                                          "c.png": png(arrays[2][:6])})
    line = (f"{path}: member c.png is 8x6 but a.png is 8x8; a dataset zip holds images of one "
            f"size (as stylegan2-ada requires): re-create it at one resolution (robustrep data "
            f"pack --resolution)")
    for kind in ("zip", "imagefolder"):  # the programs' readers of a zip
        with pytest.raises(ValueError) as err:
            create_dataset(kind, root=path, size=8)
        assert str(err.value) == line
    ds = ZipImageDataset(path)  # read as it goes: the member is named when read
    assert ds.stored_size == (8, 8) and ds[1][0].shape == (3, 8, 8)
    with pytest.raises(UnreadableImageError) as err:
        ds[2]
    assert str(err.value) == line
    # with a size, each image resized as in a folder (gan fid's reading of a zip)
    assert ZipImageDataset(path, size=4)[2][0].shape == (3, 4, 4)


def test_zip_tree_shows_a_zip_as_folders_and_refuses_what_no_folder_holds(arrays, tmp_path):
    """``zip_tree`` (data pack's view of a zip of an image folder): folders implied by member
    names are made, __MACOSX/ is left out, hidden names kept (the folder scan skips them); a
    name twice, or as a file and a folder, is refused."""
    from robustrep.data.zipdata import zip_tree
    path = write_zip(tmp_path / "d.zip", {"cat/x/a.png": png(arrays[0]), "cat/.b.png": b"",
                                          "__MACOSX/cat/._a.png": b"", "dog/": b""})
    top = zip_tree(path)
    assert sorted(p.name for p in top.iterdir()) == ["cat", "dog"]
    cat = top / "cat"
    assert [(p.name, p.is_dir()) for p in sorted(cat.iterdir())] == [(".b.png", False),
                                                                    ("x", True)]
    image = next((cat / "x").iterdir())
    assert (image.member, str(image), image.suffix) == ("cat/x/a.png", f"{path}/cat/x/a.png",
                                                        ".png")
    assert list((top / "dog").iterdir()) == []
    for members, second in (({"a.png": b"", "a.png/b.png": b""}, "a.png/b.png"),
                            ({"a.png/b.png": b"", "a.png": b""}, "a.png")):
        with pytest.raises(ValueError) as err:
            zip_tree(write_zip(tmp_path / "e.zip", members))
        assert str(err.value) == (f"{tmp_path / 'e.zip'}: 'a.png' is both a file and a folder "
                                  f"(member {second!r} makes it the other); re-create the zip "
                                  f"with one of them")
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as archive, pytest.warns(UserWarning):
        archive.writestr("a.png", b"1")
        archive.writestr("a.png", b"2")
    with pytest.raises(ValueError, match="member 'a.png' is held twice; re-create the zip"):
        zip_tree(tmp_path / "f.zip")


# --- what the first mutation run of zipdata.py left open (docs/mutation.md) ------------------

def test_xflip_takes_indices_from_minus_2n_to_2n_minus_1(arrays, tmp_path):
    base = ZipImageDataset(write_zip(tmp_path / "d.zip", {f"{i}.png": png(a)
                                                         for i, a in enumerate(arrays)}))
    flipped = XFlip(base)
    assert torch.equal(flipped[-6][0], base[0][0])  # -2n: the first sample, not flipped
    assert torch.equal(flipped[-4][0], base[2][0])
    assert torch.equal(flipped[-3][0], base[0][0].flip(-1))
    for index in (6, -7):
        with pytest.raises(IndexError) as err:
            flipped[index]
        assert str(err.value) == f"index {index} out of range for 6 samples"


@pytest.mark.parametrize("kwargs, kind, message", [
    (dict(size=0), ValueError, "size must be > 0, got 0"),
    (dict(size=2.0), TypeError, "size must be a positive int, got float"),
    (dict(channels=2), ValueError, "channels must be one of 1, 3; got 2"),
])
def test_a_dataset_zip_refuses_size_and_channels_saying_what_is_accepted(arrays, tmp_path,
                                                                         kwargs, kind, message):
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0])})
    with pytest.raises(kind) as err:
        ZipImageDataset(path, **kwargs)
    assert str(err.value) == message


def test_a_dataset_zips_labels_classes_grey_reading_and_pickle(arrays, tmp_path):
    import pickle
    path = write_zip(tmp_path / "d.zip", {
        "a.png": png(arrays[0]), "b.png": png(arrays[1]),
        "dataset.json": json.dumps({"labels": [["a.png", 5], ["b.png", 2]]})})
    ds = ZipImageDataset(path, channels=1)
    # the class ids 0..5, as stylegan2-ada's label_dim (max + 1): ids no image has included
    assert ds.has_labels is True and ds.classes == [0, 1, 2, 3, 4, 5]
    assert ds[0][0].shape == (1, 8, 8)
    grey = np.asarray(Image.fromarray(arrays[0]).convert("L"))
    assert torch.equal(ds[0][0][0], torch.from_numpy(grey.copy()).float() / 255)
    assert ZipImageDataset(write_zip(tmp_path / "n.zip", {"a.png": png(arrays[0])})
                           ).has_labels is False
    again = pickle.loads(pickle.dumps(ds))  # after a read: the open handle is left out
    assert torch.equal(again[1][0], ds[1][0])


def test_a_1_bit_zip_reads_as_one_channel(tmp_path):
    buffer = io.BytesIO()
    Image.new("1", (8, 8), 1).save(buffer, format="png")
    ds = ZipImageDataset(write_zip(tmp_path / "d.zip", {"a.png": buffer.getvalue()}))
    assert ds.channels == 1 and torch.equal(ds[0][0], torch.ones(1, 8, 8))


def test_windows_names_in_dataset_json_and_its_malformed_pairs(arrays, tmp_path):
    members = {"00000/a.png": png(arrays[0]),
               "dataset.json": json.dumps({"labels": [["00000\\a.png", 4]]})}
    assert ZipImageDataset(write_zip(tmp_path / "w.zip", members)).targets == [4]
    for labels in ([["a.png"]], [5]):
        path = write_zip(tmp_path / "p.zip", {"a.png": png(arrays[0]),
                                              "dataset.json": json.dumps({"labels": labels})})
        with pytest.raises(ValueError) as err:
            ZipImageDataset(path)
        assert str(err.value) == f"{path}: dataset.json labels must be [name, label] pairs"
    path = write_zip(tmp_path / "m.zip", {"a.png": png(arrays[0]),
                                          "dataset.json": json.dumps({"labels": []})})
    with pytest.raises(ValueError) as err:
        ZipImageDataset(path)
    assert str(err.value) == (f"{path}: dataset.json has no label for image a.png, and classes "
                              f"are read from it: {REMEDY}")


def test_members_under_macosx_or_in_a_hidden_folder_are_no_images(arrays, tmp_path):
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0]), "__MACOSX/b.png": b"",
                                          ".X/c.png": b""})
    assert ZipImageDataset(path).names == ["a.png"]


def test_an_encrypted_dataset_json_and_an_unknown_method_are_refused(arrays, tmp_path):
    path = write_zip(tmp_path / "d.zip", {"a.png": png(arrays[0]),
                                          "dataset.json": json.dumps({"labels": None})})
    patch_member(path, "dataset.json", flag_bits=0x1)
    with pytest.raises(ValueError, match=r"member dataset.json is encrypted \(password"):
        ZipImageDataset(path)
    path = patch_member(write_zip(tmp_path / "e.zip", {"a.png": png(arrays[0])}), "a.png",
                        method=77)
    with pytest.raises(ValueError) as err:
        ZipImageDataset(path)
    assert str(err.value).startswith(f"{path}: member a.png is compressed with an unknown "
                                     f"method (method 77), which Python's zipfile")


def _damage(path, offset_in, flip):
    """``path`` with the byte ``offset_in(data)`` XOR ``flip``."""
    data = bytearray(path.read_bytes())
    data[offset_in(bytes(data))] ^= flip
    path.write_bytes(bytes(data))
    return path


def _member_start(path, name):
    """Where member ``name``'s data starts in the zip at ``path`` (after its local header)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as f:  # the local header's own name and extra lengths
        f.seek(info.header_offset + 26)
        lengths = f.read(4)
    return info.header_offset + 30 + int.from_bytes(lengths[:2], "little") + \
        int.from_bytes(lengths[2:], "little")


# (method, its module, byte of the member's data flipped, what zipfile raised, in the message)
DAMAGE = [
    (zipfile.ZIP_STORED, None, "middle", "BadZipFile: Bad CRC-32 for file 'a.png'"),
    (zipfile.ZIP_DEFLATED, "zlib", 0,
     "zlib.error: Error -3 while decompressing data: invalid block type"),
    (zipfile.ZIP_BZIP2, "bz2", 0, "OSError: Invalid data stream"),
    (zipfile.ZIP_LZMA, "lzma", 10, "LZMAError: Corrupt input data"),
]


def damaged_zip(path, image, method, at, members=("a.png",)):
    """A zip of ``members`` (each ``image``, compressed by ``method``), the first damaged by
    flipping the byte ``at`` of its data (``"middle"``: the middle one)."""
    with zipfile.ZipFile(path, "w", method) as archive:
        for name in members:
            archive.writestr(name, image)
    start = _member_start(path, members[0])
    size = zipfile.ZipFile(path).getinfo(members[0]).compress_size
    return _damage(path, lambda data: start + (size // 2 if at == "middle" else at), 0xFF)


@pytest.mark.parametrize("method, module, at, reason", DAMAGE,
                         ids=["stored-crc", "deflate", "bzip2", "lzma"])
def test_a_member_damaged_in_the_zip_is_one_line_naming_zip_and_member(arrays, tmp_path,
                                                                       method, module, at,
                                                                       reason):
    """Was: zlib.error / LZMAError tracebacks (deflate, LZMA), zipfile's BadZipFile naming
    neither the zip nor a fix when read unverified, and bzip2's OSError not naming the member.
    Verified, read unverified, or read at construction (the channels of the first member)."""
    if module is not None:
        pytest.importorskip(module)
    path = damaged_zip(tmp_path / "d.zip", png(arrays[0]), method, at)
    line = f"{path}: member a.png is damaged in the zip ({reason}); re-create the zip"
    for read in (lambda: ZipImageDataset(path, verify=True),
                 lambda: ZipImageDataset(path, channels=3)[0], lambda: ZipImageDataset(path)):
        with pytest.raises(UnreadableImageError) as err:
            read()
        assert str(err.value) == line


def test_a_damaged_dataset_json_is_named(arrays, tmp_path):
    """Was: a zlib.error traceback at construction (the labels are read there)."""
    path = damaged_zip(tmp_path / "d.zip", json.dumps({"labels": [["a.png", 0]]}).encode() * 4,
                       zipfile.ZIP_DEFLATED, 0, members=("dataset.json",))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("a.png", png(arrays[0]))
    with pytest.raises(UnreadableImageError) as err:
        ZipImageDataset(path)
    assert str(err.value).startswith(f"{path}: member dataset.json is damaged in the zip "
                                     f"(zlib.error: Error -3 while decompressing data: ")
    assert str(err.value).endswith("); re-create the zip")


def test_verify_reads_every_member_as_testzip_did(arrays, tmp_path):
    """A member damaged in the zip that is no image is refused by verify (which checks every
    member's CRC, as ZipFile.testzip does), and never read without it; one zipfile cannot read
    (encrypted, Deflate64) is let be (was: testzip's RuntimeError / NotImplementedError)."""
    path = damaged_zip(tmp_path / "d.zip", b"notes " * 50, zipfile.ZIP_DEFLATED, 0,
                       members=("notes.txt",))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("a.png", png(arrays[0]))
    assert ZipImageDataset(path)[0][0].shape == (3, 8, 8)
    with pytest.raises(UnreadableImageError) as err:
        ZipImageDataset(path, verify=True)
    assert str(err.value).startswith(f"{path}: member notes.txt is damaged in the zip "
                                     f"(zlib.error: ")
    for flag_bits, method in ((0x1, None), (None, 9)):
        path = write_zip(tmp_path / "e.zip", {"a.png": png(arrays[0]), "notes.txt": b"x"})
        patch_member(path, "notes.txt", flag_bits, method)
        assert len(ZipImageDataset(path, verify=True)) == 1


def test_gan_fid_names_a_deflated_member_damaged_in_the_zip(arrays, tmp_path, capsys):
    """Was: a zlib.error traceback from gan fid ZIP (which verifies the zip)."""
    from robustrep.tasks.cli import main
    path = damaged_zip(tmp_path / "x.zip", png(arrays[0]), zipfile.ZIP_DEFLATED, 0,
                       members=("a.png", "b.png"))
    assert main(["gan", "fid", str(path), "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        f"error: {path}: member a.png is damaged in the zip (zlib.error: Error -3 while "
        f"decompressing data: invalid block type); re-create the zip\n")


def test_one_size_reads_past_a_member_that_is_no_image(arrays, tmp_path):
    path = write_zip(tmp_path / "d.zip", {"a.png": b"", "b.png": png(arrays[1]),
                                          "c.png": png(arrays[2][:6])})
    with pytest.raises(ValueError, match=r"member c.png is 8x6 but b.png is 8x8"):
        ZipImageDataset(path, one_size=True)


def test_a_transparent_member_read_unverified_is_named(arrays, tmp_path):
    """Was: convert_image's refusal wrapped in another (`member X is not a readable image
    (UnreadableImageError: cannot read ...`) and cut at 160 characters, its advice lost."""
    from robustrep.data.images import ACCEPTED_ALPHA
    clear = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(clear, format="png")
    name = "a-long-member-name-" * 5 + ".png"
    path = write_zip(tmp_path / "d.zip", {name: clear.getvalue()})
    with pytest.raises(UnreadableImageError) as err:
        ZipImageDataset(path, channels=3)[0]
    assert str(err.value) == (f"cannot read {path}: member {name}: 64 of 64 pixels are "
                              f"transparent (alpha below 255), and their colour without a "
                              f"background is a guess; {ACCEPTED_ALPHA}")


def test_zip_entries_behave_as_paths_do(arrays, tmp_path):
    from robustrep.data.zipdata import zip_tree
    path = write_zip(tmp_path / "d.zip", {"cat/a.png": png(arrays[0]), "X/": b""})
    top = zip_tree(path)
    image = top / "cat" / "a.png"
    assert repr(image) == f"ZipEntry({str(path / 'cat' / 'a.png')!r})"
    assert (image.is_symlink(), image.exists(), sorted(p.name for p in top.iterdir())) == (
        False, True, ["X", "cat"])
    for step, kind, message in ((lambda: top / "dog", FileNotFoundError,
                                 f"{path}/dog is not in the zip"),
                                (lambda: image / "b", FileNotFoundError,
                                 f"{path}/cat/a.png/b is not in the zip"),
                                (image.iterdir, NotADirectoryError, f"{path}/cat/a.png is a file"),
                                (lambda: zip_tree(tmp_path / "none.zip"), FileNotFoundError,
                                 f"zip not found: expected a file at {tmp_path / 'none.zip'}"),
                                (lambda: zip_tree(tmp_path), FileNotFoundError,
                                 f"zip not found: expected a file at {tmp_path}")):
        with pytest.raises(kind) as err:
            step()
        assert str(err.value) == message
    (tmp_path / "x.zip").write_text("hello")
    with pytest.raises(ValueError) as err:
        zip_tree(tmp_path / "x.zip")
    assert str(err.value) == f"{tmp_path / 'x.zip'} is not a zip archive"


@pytest.mark.parametrize("members, bad", [
    ({"cat//a.png": b""}, "cat//a.png"),
    ({"./a.png": b""}, "./a.png"),
    ({"cat/a.png": b"", "cat/a.png/b.png": b""}, None),
])
def test_zip_tree_refuses_empty_and_dot_steps_and_names_the_whole_clash(tmp_path, members, bad):
    from robustrep.data.zipdata import zip_tree
    path = write_zip(tmp_path / "d.zip", members)
    with pytest.raises(ValueError) as err:
        zip_tree(path)
    if bad is not None:
        assert str(err.value).startswith(f"{path}: member {bad!r} is not a plain relative path")
    else:
        assert str(err.value).startswith(f"{path}: 'cat/a.png' is both a file and a folder")


REMEDY = ("give each image its class index in dataset.json (or pack class folders with robustrep "
          "data pack)")


def test_class_ids_run_to_the_highest_label_as_stylegan2_ada_label_dim(arrays, tmp_path):
    """Was: classes = the labels present ({0, 7}: 2), so classify built 2 outputs and failed at
    its first step with "IndexError: Target 7 is out of bounds" (a run folder left behind)."""
    from robustrep.data import num_classes
    path = write_zip(tmp_path / "gap.zip", {
        "a.png": png(arrays[0]), "b.png": png(arrays[1]), "c.png": png(arrays[2]),
        "dataset.json": json.dumps({"labels": [["a.png", 0], ["b.png", 7], ["c.png", 7]]})})
    ds = ZipImageDataset(path)
    assert ds.classes == list(range(8)) and num_classes(ds) == 8 and ds.targets == [0, 7, 7]
    no_labels = ZipImageDataset(write_zip(tmp_path / "n.zip", {"a.png": png(arrays[0])}))
    assert no_labels.classes == [0] and num_classes(no_labels) == 1


@pytest.mark.parametrize("labels, refusal", [
    ([["a.png", [0.0, 1.0]], ["b.png", [1.0, 0.0]]],  # one-hot: stylegan2-ada's conditioning
     "label of a.png is [0.0, 1.0] (a vector: stylegan2-ada's conditioning labels, no class); "
     "classes are integer labels >= 0: "),
    ([["a.png", [0.25, -3.5]], ["b.png", [1.0, 2.0]]],
     "label of a.png is [0.25, -3.5] (a vector: stylegan2-ada's conditioning labels, no "
     "class); classes are integer labels >= 0: "),
    ([["a.png", 1]], "has no label for image b.png, and classes are read from it: "),
    ([["a.png", 1.5], ["b.png", 0]], "label of a.png is 1.5; classes are integer labels >= 0: "),
])
def test_labels_are_read_only_where_a_program_uses_them(arrays, tmp_path, labels, refusal):
    """A zip stylegan2-ada reads unconditionally (use_labels=False leaves dataset.json unread:
    vectors, an image without a label) is read with labels=False, every label 0 (was: refused
    for gan train and gan fid too, which use none); read for classes, it is refused naming
    the remedy."""
    path = write_zip(tmp_path / "v.zip", {"a.png": png(arrays[0]), "b.png": png(arrays[1]),
                                          "dataset.json": json.dumps({"labels": labels})})
    ds = ZipImageDataset(path, labels=False, verify=True)
    assert ds.targets == [0, 0] and not ds.has_labels and ds.classes == [0] and len(ds) == 2
    with pytest.raises(ValueError) as err:
        ZipImageDataset(path)
    assert str(err.value) == f"{path}: dataset.json {refusal}{REMEDY}"


def test_a_zip_read_without_labels_leaves_any_dataset_json_unread(arrays, tmp_path):
    """As the reference's unconditional reader: a dataset.json that is no JSON, one below the
    top, or an encrypted one, is no reason to refuse images a program reads without labels."""
    paths = [write_zip(tmp_path / "j.zip", {"a.png": png(arrays[0]), "dataset.json": b"{"}),
             write_zip(tmp_path / "n.zip", {"d/a.png": png(arrays[0]),
                                            "d/dataset.json": json.dumps({"labels": None})}),
             patch_member(write_zip(tmp_path / "e.zip", {
                 "a.png": png(arrays[0]), "dataset.json": json.dumps({"labels": None})}),
                 "dataset.json", flag_bits=0x1)]
    for path in paths:
        assert ZipImageDataset(path, labels=False, verify=True).targets == [0]
        with pytest.raises(ValueError):
            ZipImageDataset(path)
