"""``robustrep data pack``: the zip holds the folder's images and labels, and the gan and
classify programs read it (``--dataset zip``, or a ``.zip`` as ``--data-root`` of imagefolder)."""

import fcntl
import json
import os
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import image_folder
from robustrep.data.zipdata import ZipImageDataset
from robustrep.tasks.cli import main

from ...data.test_zipdata import patch_member


@pytest.fixture
def folder(tmp_path):
    """Two classes of 16x16 RGB images (stored at the packed size, so no resampling)."""
    rng = np.random.default_rng(0)
    for c, n in (("cat", 3), ("dog", 4)):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                tmp_path / "src" / c / f"{i}.png")
    return tmp_path / "src"


def test_packed_zip_gives_the_folders_images_and_labels(folder, tmp_path, capsys):
    out = tmp_path / "d.zip"
    assert main(["data", "pack", str(folder), str(out), "--resolution", "16"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 7 and summary["labels"]["names"] == ["cat", "dog"]
    packed, source = ZipImageDataset(out), image_folder(folder, 16)
    assert len(packed) == len(source) == 7
    for (a, la), (b, lb) in zip(packed, source):
        assert torch.equal(a, b) and la == lb
    assert packed.targets == [0, 0, 0, 1, 1, 1, 1]


def test_files_left_out_for_their_extension_are_named(folder, tmp_path, capsys):
    # were left out without a word: a web scrape's .jfif and .gif photos, and stray files
    Image.new("RGB", (16, 16)).save(folder / "cat" / "web.jfif", "JPEG")
    Image.new("RGB", (16, 16)).save(folder / "dog" / "anim.gif")
    (folder / "dog" / "notes.txt").write_text("x")
    (folder / "dog" / ".DS_Store").write_text("x")  # hidden: not the user's data
    assert main(["data", "pack", str(folder), str(tmp_path / "d.zip"), "--resolution", "16",
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 7
    note = captured.err.strip()
    assert len(note.splitlines()) == 1
    assert note.startswith("note: 3 file(s) not read as images, by their extension (.gif x1, "
                           ".jfif x1, .txt x1; images are .png .jpg")
    assert str(folder / "cat" / "web.jfif") in note and ".DS_Store" not in note


def test_packing_counts_the_images_unless_quiet(folder, tmp_path, capsys):
    """A 70k-image folder packs for minutes: it was silent until the summary (dataset_tool.py
    shows a bar). Off a terminal the count is a plain line; --quiet turns it off."""
    assert main(["data", "pack", str(folder), str(tmp_path / "a.zip"), "--resolution", "16"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("packing: image 7/7 (100%) ") and err.count("\n") == 1, err
    assert main(["data", "pack", str(folder), str(tmp_path / "b.zip"), "--resolution", "16",
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_image_check_before_packing_is_counted_unless_quiet(folder, tmp_path, capsys,
                                                               monkeypatch):
    """Every image is opened before the packing bar: 70k 300x300 JPEGs took about 100 s with
    nothing printed. Its own bar counts them with an estimate (a stage: cleared when done, off a
    terminal a line only once LOG_INTERVAL passes, so here every interval); --quiet: none."""
    from robustrep.tasks.common import progress as bars
    from robustrep.tasks.data import pack

    def every_update(*args, **kwargs):
        return bars.progress(*args, **{**kwargs, "interval": 0})
    monkeypatch.setattr(pack, "progress", every_update)
    assert main(["data", "pack", str(folder), str(tmp_path / "a.zip"), "--resolution", "16"]) == 0
    lines = capsys.readouterr().err.splitlines()
    checking = [line for line in lines if line.startswith("checking: ")]
    assert [line.split(" (")[0] for line in checking] == [
        f"checking: image {k}/7" for k in range(1, 8)], lines
    assert " image/s ETA " in checking[0] and lines.index(checking[-1]) == 6, lines
    assert lines[7].startswith("packing: image 1/7 ")  # after the check
    assert main(["data", "pack", str(folder), str(tmp_path / "b.zip"), "--resolution", "16",
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_stop_mid_pack_prints_its_line_after_the_bars_last(folder, tmp_path, capsys,
                                                               monkeypatch):
    """The bar's generator was closed only when collected, after the stop line had printed, so
    the count came last, below the line that says what was kept."""
    def packs_three(images, handle, *args):
        for _, _ in zip(range(3), images):
            pass
        raise KeyboardInterrupt

    monkeypatch.setattr("robustrep.tasks.data.pack.pack_images", packs_three)
    assert main(["data", "pack", str(folder), str(tmp_path / "a.zip"), "--resolution", "16"]) \
        == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("packing: image 2/7 ") and len(lines) == 2, lines
    assert lines[1].startswith("robustrep data pack: interrupted (Ctrl-C); ")
    assert not (tmp_path / "a.zip").exists()


def test_flat_folder_has_null_labels_and_resizes(folder, tmp_path, capsys):
    out = tmp_path / "flat.zip"
    assert main(["data", "pack", str(folder / "dog"), str(out), "--resolution", "8",
                 "--channels", "1"]) == 0
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("dataset.json")) == {"labels": None}
    image, label = ZipImageDataset(out)[0]
    assert image.shape == (1, 8, 8) and label == 0


@pytest.mark.parametrize("args, expect", [
    (["MISSING", "o.zip"], "MISSING does not exist; give an image folder"),
    (["NOTES", "o.zip"], "NOTES is not a folder or a .zip; give an image folder"),
    (["SRC", "o.txt"], "ending in .zip"),
    (["SRC", "EXISTS"], "exists; remove it"),
])
def test_pack_errors_are_one_line(folder, tmp_path, capsys, args, expect):
    (tmp_path / "e.zip").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    named = {"SRC": folder, "EXISTS": tmp_path / "e.zip", "MISSING": tmp_path / "missing",
             "NOTES": tmp_path / "notes.txt"}
    args = [str(named.get(a, tmp_path / a.lower())) for a in args]
    assert main(["data", "pack", *args, "--resolution", "16"]) == 2
    err = capsys.readouterr().err
    for name, path in named.items():
        expect = expect.replace(name, str(path))
    assert err.count("\n") == 1 and err.startswith("robustrep data pack: error:") and expect in err


def test_a_dangling_link_as_out_is_refused_not_replaced(folder, tmp_path, capsys):
    """Was: exists() is False for a link to nothing, so the link was replaced by the zip."""
    out = tmp_path / "link.zip"
    os.symlink(tmp_path / "nowhere" / "target.zip", out)
    assert main(["data", "pack", str(folder), str(out), "--resolution", "16"]) == 2
    assert capsys.readouterr().err == (f"robustrep data pack: error: OUT {out} is a symbolic link; "
                                       f"remove it or choose another path\n")
    assert out.is_symlink() and not out.exists()  # the link left as it was


def test_classify_and_gan_read_a_zip(folder, tmp_path):
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.data import build_datasets
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    from robustrep.tasks.gan.data import build_data
    out = tmp_path / "d.zip"
    assert main(["data", "pack", str(folder), str(out), "--resolution", "16"]) == 0
    for name in ("zip", "imagefolder"):
        train, held_out, info = build_datasets(ClassifyConfig(dataset=name, data_root=str(out),
                                                              image_size=16))
        assert info.num_classes == 2 and len(train) + len(held_out) == 7
    cfg = GanConfig(**{**PRESETS["imagefolder-dcgan64"], "dataset": "zip", "data_root": str(out),
                       "image_size": 16, "mirror": True})
    data = build_data(cfg)
    assert len(data) == 14 and data.shape == (3, 16, 16)
    assert torch.equal(data.dataset[7 + 2][0], data.dataset[2][0].flip(-1))
    assert len(data.unmirrored()) == 7


def test_gan_trains_a_greyscale_zip_in_one_channel(folder, tmp_path):
    # was: read as RGB, a 3-channel G for greyscale data (stylegan2-ada takes the zip's mode)
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    from robustrep.tasks.gan.data import build_data
    out = tmp_path / "grey.zip"
    assert main(["data", "pack", str(folder), str(out), "--resolution", "16",
                 "--channels", "1"]) == 0
    cfg = {**PRESETS["imagefolder-dcgan64"], "dataset": "zip", "data_root": str(out),
           "image_size": 16}
    assert build_data(GanConfig(**cfg)).shape == (1, 16, 16)
    assert build_data(GanConfig(**cfg, channels=3)).shape == (3, 16, 16)


def test_gan_mirror_doubles_a_pool_with_flipped_copies():
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    from robustrep.tasks.gan.data import build_data
    plain = build_data(GanConfig(**PRESETS["digits-dcgan"]))
    mirrored = build_data(GanConfig(**{**PRESETS["digits-dcgan"], "mirror": True}))
    n = len(plain)
    assert len(mirrored) == 2 * n
    assert torch.equal(mirrored.pool[:n], plain.pool)
    assert torch.equal(mirrored.pool[n:], plain.pool.flip(-1))
    assert torch.equal(mirrored.unmirrored().pool, plain.pool)  # FID's reals: no flips


# --- a zip as SRC (dataset_tool.py --source takes a folder or a zip) -------------------------

def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def zip_folder(folder, path, extra=(), folders=True, wrapped=False):
    """``folder`` zipped as ``zip -r`` does from inside it (folders as members too, unless
    ``folders`` is False, as some tools write it; deflated), or from its parent (``wrapped``:
    every name starts with the folder's), plus ``extra`` ``(name, bytes)`` members."""
    top = folder.parent if wrapped else folder
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for p in sorted([folder] if wrapped and folders else []) + sorted(folder.rglob("*")):
            if folders or not p.is_dir():
                archive.write(p, p.relative_to(top).as_posix())
        for name, data in extra:
            archive.writestr(name, data)
    return path


@pytest.fixture
def mixed(tmp_path):
    """Class folders as users have them: sizes below, at and above 16 (two enlarged: 10x14 and
    12x12), a JPEG, a subfolder inside a class, greyscale and 16-bit greyscale, hidden files
    and folders, a file that is no image."""
    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    save(src / "cat" / "a.png", rng.integers(0, 256, (14, 10, 3), dtype=np.uint8))
    save(src / "cat" / "b.jpg", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    save(src / "cat" / "inner" / "c.png", rng.integers(0, 256, (40, 16, 3), dtype=np.uint8))
    save(src / "dog" / "d.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    save(src / "dog" / "e.png", rng.integers(0, 65536, (12, 12), dtype=np.uint16))
    (src / "dog" / "._d.png").write_bytes(b"\x00\x05\x16\x07 a macOS fork")
    (src / "dog" / ".DS_Store").write_bytes(b"x")
    save(src / ".thumbs" / "t.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (src / "dog" / "notes.txt").write_text("x")
    return src


def pack(src, out, *options):
    """``data pack SRC OUT --resolution 16 --quiet``: (exit code, stdout, stderr)."""
    import contextlib
    import io
    out_text, err_text = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out_text), contextlib.redirect_stderr(err_text):
        code = main(["data", "pack", str(src), str(out), "--resolution", "16", "--quiet",
                     *options])
    return code, out_text.getvalue(), err_text.getvalue()


@pytest.mark.parametrize("channels, folders", [("3", True), ("1", True), ("3", False)])
@pytest.mark.parametrize("flat", [False, True])
def test_a_zip_packs_to_the_bytes_its_folder_packs_to(mixed, tmp_path, channels, folders, flat):
    """Was: `SRC x.zip is not a folder`. The zip holds what the folder holds, plus macOS
    Finder's __MACOSX/ forks; its folders are class folders (with or without folder members),
    hidden members are skipped as hidden files are, the same files are noted, and the packed
    zips are equal byte for byte."""
    folder = mixed / "dog" if flat else mixed
    source = zip_folder(folder, tmp_path / "src.zip",
                        [("__MACOSX/dog/._d.png", b"\x00\x05\x16\x07 a fork")], folders)
    code, out, err = pack(folder, tmp_path / "f.zip", "--channels", channels)
    assert code == 0, err
    code, zip_out, zip_err = pack(source, tmp_path / "z.zip", "--channels", channels)
    assert code == 0, zip_err
    assert (tmp_path / "z.zip").read_bytes() == (tmp_path / "f.zip").read_bytes()
    summary = json.loads(out)
    assert json.loads(zip_out) == {**summary, "zip": str(tmp_path / "z.zip")}
    assert zip_err == err.replace(str(folder), str(source))
    # what the folder gives: hidden files out, the class subfolder's image in, notes.txt noted
    assert summary["images"] == (2 if flat else 5)
    assert summary["enlarged"] == (1 if flat else 2)
    assert summary["labels"] == (None if flat else {"classes": 2, "names": ["cat", "dog"]})
    assert "notes.txt" in err and ".DS_Store" not in err and "._d.png" not in err
    assert ZipImageDataset(tmp_path / "z.zip").targets == ([0, 0] if flat else [0, 0, 0, 1, 1])


def truncate(path):
    path.write_bytes(path.read_bytes()[:60])


def transparent(path):
    Image.new("RGBA", (16, 16), (255, 0, 0, 0)).save(path)


@pytest.mark.parametrize("damage, expect", [
    (lambda src: truncate(src / "cat" / "a.png"), "unreadable image SRC/cat/a.png under SRC: "),
    (lambda src: transparent(src / "dog" / "d.png"), "256 of 256 pixels are transparent"),
    (lambda src: (src / "bird").mkdir(), "class folder SRC/bird holds no images"),
    (lambda src: save(src / "loose.png", np.zeros((16, 16, 3), np.uint8)),
     "SRC holds both images and subfolders"),
    (lambda src: (src / "dataset.json").write_text('{"labels": null}'),
     "holds SRC/dataset.json, stylegan2-ada's labels, which data pack does not read"),
])
def test_a_zip_is_refused_as_its_folder_is(mixed, tmp_path, damage, expect):
    """A member the folder reader would refuse as a file (undecodable, transparent), and a
    layout it refuses, are refused in the same words, naming SRC.zip/member."""
    damage(mixed)
    source = zip_folder(mixed, tmp_path / "src.zip")
    code, _, err = pack(mixed, tmp_path / "f.zip")
    assert code == 2 and err.count("\n") == 1, err
    assert expect.replace("SRC", str(mixed)) in err
    code, _, zip_err = pack(source, tmp_path / "z.zip")
    assert code == 2 and zip_err == err.replace(str(mixed), str(source))
    assert not (tmp_path / "f.zip").exists() and not (tmp_path / "z.zip").exists()


def test_zip_members_no_folder_could_hold_are_refused(folder, tmp_path):
    """Names that extracting would put elsewhere, a link member, an encrypted member: one line
    naming the zip and the member, before anything is written."""
    png = (folder / "cat" / "0.png").read_bytes()
    cases = {"../up.png": "is not a plain relative path inside the zip",
             "/abs.png": "is not a plain relative path inside the zip",
             "cat\\x.png": "is not a plain relative path inside the zip"}
    for name, expect in cases.items():
        source = zip_folder(folder, tmp_path / "s.zip", [(name, png)])
        code, _, err = pack(source, tmp_path / "o.zip")
        assert code == 2 and f"{source}: member {name!r} {expect}" in err, err
    link = zipfile.ZipInfo("cat/link.png")
    link.create_system, link.external_attr = 3, (0o120777 << 16)  # S_IFLNK
    source = zip_folder(folder, tmp_path / "s.zip", [(link, "0.png")])
    code, _, err = pack(source, tmp_path / "o.zip")
    assert code == 2 and "member 'cat/link.png' is a symbolic link" in err, err
    source = zip_folder(folder, tmp_path / "s.zip")
    patch_member(source, "dog/1.png", flag_bits=1)  # encrypted, as zipfile writes none
    code, _, err = pack(source, tmp_path / "o.zip")
    assert code == 2 and f"{source}: member dog/1.png is encrypted" in err, err
    assert not (tmp_path / "o.zip").exists()


def test_a_zip_packed_onto_itself_is_refused(folder, tmp_path):
    """Was refused as `OUT exists; remove it`, advice to delete the source."""
    source = zip_folder(folder, tmp_path / "s.zip")
    before = source.read_bytes()
    for out in (source, tmp_path / "." / "s.zip"):
        code, _, err = pack(source, out)
        assert code == 2 and err == (f"robustrep data pack: error: OUT {out} is SRC: packing would "
                                     f"replace the images it reads; choose another path for "
                                     f"OUT\n")
    assert source.read_bytes() == before


def test_images_smaller_than_the_resolution_are_enlarged_and_counted(tmp_path, capsys):
    """dataset_tool.py enlarges them without a word, and so did data pack: a note counts them
    (either side below R; 16x40 is not, its centre square is 16x16), --quiet keeps it (it
    turns off the progress bar only, as for the other notes), and the summary records it."""
    for name, shape in (("a", (20, 10)), ("b", (10, 20)), ("c", (40, 16)), ("d", (16, 16)),
                        ("e", (32, 32))):
        save(tmp_path / "src" / f"{name}.png", np.zeros((*shape, 3), np.uint8))
    assert main(["data", "pack", str(tmp_path / "src"), str(tmp_path / "o.zip"),
                 "--resolution", "16", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["enlarged"] == 2
    assert captured.err == (f"note: 2 of 5 images were smaller than 16x16 and were enlarged "
                            f"(the first: {tmp_path / 'src' / 'a.png'})\n")
    assert main(["data", "pack", str(tmp_path / "src"), str(tmp_path / "p.zip"),
                 "--resolution", "8", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["enlarged"] == 0 and captured.err == ""


@pytest.mark.parametrize("flat", [False, True])
def test_a_zip_of_one_folder_is_read_from_inside_it(mixed, tmp_path, flat):
    """`zip -r SRC.zip FOLDER` keeps FOLDER/ in every name; read as the top, the zip was one
    class of every image (class folders merged), where FOLDER itself gives its class folders
    (or, flat, no labels)."""
    folder = mixed / "dog" if flat else mixed
    source = zip_folder(folder, tmp_path / "src.zip", [("__MACOSX/x/._a.png", b"fork")],
                        wrapped=True)
    assert pack(folder, tmp_path / "f.zip")[0] == 0
    code, out, err = pack(source, tmp_path / "z.zip")
    assert code == 0, err
    assert (tmp_path / "z.zip").read_bytes() == (tmp_path / "f.zip").read_bytes()
    assert json.loads(out)["labels"] == (None if flat else {"classes": 2,
                                                              "names": ["cat", "dog"]})
    assert f"note: {source} holds one folder, {folder.name}/, and nothing else" in err


def test_a_folder_of_one_folder_of_class_folders_says_it_is_read_from_inside(mixed, tmp_path):
    """Was: such a folder was read from inside its lone folder without a word, where a zip of
    it gave the note; the packed classes are the inner folder's either way."""
    wrapped = tmp_path / "wrap me"
    wrapped.mkdir()
    (wrapped / "outer").mkdir()
    mixed.rename(wrapped / "outer" / "in")  # two lone levels above the class folders
    code, out, err = pack(wrapped, tmp_path / "w.zip")
    assert code == 0, err
    assert err.splitlines()[0] == (
        f"note: {wrapped} holds one folder, outer/, and nothing else: the images are read from "
        f"inside outer/in/, as `data pack '{wrapped}/outer/in'` reads them")
    assert pack(wrapped / "outer" / "in", tmp_path / "i.zip")[2] == err[err.index("\n") + 1:]
    assert (tmp_path / "w.zip").read_bytes() == (tmp_path / "i.zip").read_bytes()


def test_the_summary_names_a_non_ascii_path_as_written(folder, tmp_path):
    out = tmp_path / "pk ü" / "out.zip"
    out.parent.mkdir()
    code, text, err = pack(folder, out)
    assert code == 0, err
    assert f'"zip": "{out}"' in text  # was "pk \\u00fc/out.zip"


@pytest.mark.parametrize("as_zip", [False, True])
@pytest.mark.parametrize("where", ["dataset.json", "cat/dataset.json"])
def test_stylegan2_labels_are_refused_before_any_image_is_read(mixed, tmp_path, monkeypatch,
                                                               as_zip, where):
    """Was refused only after every image had been opened (minutes for 70k images), and an
    unreadable image among them was named instead of the labels file: the scan of the names
    is enough to refuse it, in the folder and in a zip of it."""
    truncate(mixed / "cat" / "a.png")  # opening the images would refuse this one first
    (mixed / where).write_text('{"labels": [["cat/a.png", 0]]}')
    source = zip_folder(mixed, tmp_path / "src.zip") if as_zip else mixed
    opened = []
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or 1 / 0)
    code, _, err = pack(source, tmp_path / "o.zip")
    assert code == 2 and err.count("\n") == 1, err
    assert f"SRC {source} holds {source / where}, stylegan2-ada's labels" in err
    assert opened == [] and not (tmp_path / "o.zip").exists()


@pytest.mark.parametrize("side, nearest", [("15", "8 or 16"), ("3", "2 or 4"), ("100", "64 or 128"),
                                           ("12288", "8192 or 16384")])
def test_a_side_no_gan_network_trains_at_is_refused(folder, tmp_path, capsys, side, nearest):
    """Was packed: stylegan2-ada's dataset_tool.py refuses a side that is no power of 2, and
    so do the GAN networks here (StyleGAN2, DCGAN, gan train --image-size)."""
    out = tmp_path / "o.zip"
    assert main(["data", "pack", str(folder), str(out), "--resolution", side]) == 2
    assert capsys.readouterr().err == (
        f"robustrep data pack: error: --resolution {side}: a stylegan2-ada zip's side is a power "
        f"of 2 (dataset_tool.py and the GAN networks take no other); give {nearest}\n")
    assert not out.exists()
    assert main(["data", "pack", str(folder), str(out), "--resolution", "4", "--quiet"]) == 0


@pytest.mark.parametrize("as_zip", [False, True])
@pytest.mark.parametrize("train, held_out", [("train", "val"), ("train", "test"),
                                             ("training", "validation")])  # timm's names
def test_timms_split_layout_is_refused_not_packed_as_two_classes(mixed, tmp_path, as_zip,
                                                                 train, held_out):
    """SRC/train/<class>/ beside SRC/val/<class>/ was packed as two classes, train and val: the
    real classes lost and the held-out images mixed in, where classify reads the same folder
    as its two splits."""
    split = tmp_path / "my data"
    (split / train).mkdir(parents=True)
    os.rename(mixed, split / train / "cats and dogs")
    save(split / held_out / "cat" / "v.png", np.zeros((16, 16, 3), dtype=np.uint8))
    source = zip_folder(split, tmp_path / "split.zip") if as_zip else split
    code, _, err = pack(source, tmp_path / "o.zip")
    each = (f"unzip it and pack each split on its own (data pack FOLDER/{train} {train}.zip)"
            if as_zip else
            f"pack each split on its own (data pack '{split / train}' {train}.zip)")
    assert (code, err) == (2, (
        f"robustrep data pack: error: SRC {source} holds {train}/ and {held_out}/, timm's split "
        f"layout (as classify reads such a folder), which data pack would read as two classes "
        f"named {train} and {held_out}: {each}, or rename the folders if they are classes\n"))
    assert not (tmp_path / "o.zip").exists()
    assert pack(split / train, tmp_path / "o.zip")[0] == 0  # a split alone: its classes


def test_the_note_on_a_zip_of_one_folder_quotes_the_folder_as_a_shell_reads_it(mixed,
                                                                              tmp_path):
    """`as data pack my src reads them`: a folder name with a space read as two words."""
    folder = mixed.rename(tmp_path / "my src")
    source = zip_folder(folder, tmp_path / "src.zip", wrapped=True)
    code, _, err = pack(source, tmp_path / "z.zip")
    assert code == 0, err
    assert "the images are read from inside my src/, as `data pack 'my src'` reads them" in err


def _held(path):
    """``path`` written 10 s ago (under the 60 s after which a file no flock guards goes) and
    flock-ed, as a data pack writing it holds it; returns the fd."""
    path.write_bytes(b"half a zip")
    os.utime(path, (time.time() - 10,) * 2)
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_killed_packs_temp_file_goes_once_out_is_written(folder, tmp_path, capsys,
                                                           monkeypatch):
    """Was: a pack rerun soon after a kill -9 found the killed one's zip-sized temp file too
    new to remove, wrote OUT, and left the file beside it for good: every later pack to OUT is
    refused ("OUT exists") before any clean-up. Here the killed writer lets go of its file
    while the rerun packs; a file another pack still writes is kept, and named."""
    from robustrep.tasks.data import pack as pack_module
    out = tmp_path / "d.zip"
    killed, live = tmp_path / ".d.zip.killed01.tmp", tmp_path / ".d.zip.live0001.tmp"
    dying, writing = _held(killed), _held(live)
    packing = pack_module.pack_images

    def pack_images(*args):
        os.close(dying)  # the killed process's flock goes as the kernel tears it down
        return packing(*args)
    monkeypatch.setattr(pack_module, "pack_images", pack_images)
    try:
        assert main(["data", "pack", str(folder), str(out), "--resolution", "16",
                     "--quiet"]) == 0
    finally:
        os.close(writing)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "d.zip", "src"]
    assert capsys.readouterr().err == (
        f"note: removed 1 temporary file(s) .d.zip.*.tmp that an earlier data pack to {out} "
        f"left when it was killed\n"
        f"note: left {live.name} beside {out}: the temporary file(s) of another data pack to "
        f"{out}, writing it now or killed too recently to tell; remove them once no other data "
        f"pack to {out} is running\n")
