"""``robustrep data pack``: the zip holds the folder's images and labels, and the gan and
classify programs read it (``--dataset zip``, or a ``.zip`` as ``--data-root`` of imagefolder)."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import image_folder
from robustrep.data.zipdata import ZipImageDataset
from robustrep.tasks.cli import main


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


def test_flat_folder_has_null_labels_and_resizes(folder, tmp_path, capsys):
    out = tmp_path / "flat.zip"
    assert main(["data", "pack", str(folder / "dog"), str(out), "--resolution", "8",
                 "--channels", "1"]) == 0
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("dataset.json")) == {"labels": None}
    image, label = ZipImageDataset(out)[0]
    assert image.shape == (1, 8, 8) and label == 0


@pytest.mark.parametrize("args, expect", [
    (["missing", "o.zip"], "is not a folder"),
    (["SRC", "o.txt"], "ending in .zip"),
    (["SRC", "EXISTS"], "exists; remove it"),
])
def test_pack_errors_are_one_line(folder, tmp_path, capsys, args, expect):
    (tmp_path / "e.zip").write_bytes(b"")
    args = [str(folder) if a == "SRC" else str(tmp_path / "e.zip") if a == "EXISTS"
            else str(tmp_path / a) for a in args]
    assert main(["data", "pack", *args, "--resolution", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robustrep data: error:") and expect in err


def test_a_dangling_link_as_out_is_refused_not_replaced(folder, tmp_path, capsys):
    """Was: exists() is False for a link to nothing, so the link was replaced by the zip."""
    out = tmp_path / "link.zip"
    os.symlink(tmp_path / "nowhere" / "target.zip", out)
    assert main(["data", "pack", str(folder), str(out), "--resolution", "16"]) == 2
    assert capsys.readouterr().err == (f"robustrep data: error: OUT {out} is a symbolic link; "
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
