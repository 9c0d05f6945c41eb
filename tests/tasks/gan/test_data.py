"""The GAN program's data (tasks/gan/data.py): what it says about a dataset zip it resizes,
and about what of a folder in timm's split layout it leaves out."""

import io
import shutil
import zipfile

from PIL import Image

from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.data import build_data


def _zip(path, side):
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(4):
            buffer = io.BytesIO()
            Image.new("RGB", (side, side), (40 * i, 0, 0)).save(buffer, "PNG")
            archive.writestr(f"{i:05d}.png", buffer.getvalue())
    return path


def test_a_zip_of_another_resolution_is_resized_and_says_so(tmp_path, capsys):
    # Was: a 16px zip trained at --image-size 32 without a word (stylegan2-ada refuses it)
    path = _zip(tmp_path / "d16.zip", 16)
    data = build_data(GanConfig(dataset="zip", data_root=str(path), image_size=32))
    assert data.shape == (3, 32, 32)
    assert f"note: {path} stores 16x16 images; they are resized to 32x32" in \
        capsys.readouterr().err
    build_data(GanConfig(dataset="zip", data_root=str(path), image_size=16))
    assert "note" not in capsys.readouterr().err  # its own resolution: nothing to say


def test_a_folder_of_another_resolution_is_resized_and_says_so(tmp_path, capsys):
    # Was: resized without a word, as zips were
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (24, 20), (40 * i, 0, 0)).save(folder / f"{i}.png")
    data = build_data(GanConfig(dataset="imagefolder", data_root=str(folder), image_size=16))
    assert data.shape == (3, 16, 16)
    assert (f"note: {folder} holds (the first) 24x20 images; they are resized to 16x16"
            in capsys.readouterr().err)


def test_a_folder_in_timms_split_layout_says_what_training_leaves_out(tmp_path, capsys):
    # Was: train/ read alone, val/, extra/ and an image beside them left out without a word
    for part in ("train/a/0.png", "train/b/0.png", "val/a/0.png", "extra/a/0.png",
                 ".cache/a/0.png", "loose.png"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40, 0, 0)).save(tmp_path / part)
    data = build_data(GanConfig(dataset="imagefolder", data_root=str(tmp_path), image_size=16))
    assert len(data) == 2  # train/ alone, as before
    assert capsys.readouterr().err == (
        f"note: --data-root {tmp_path} holds extra/, loose.png, val/ beside train/, read as "
        f"timm's training split: they are left out\n")
    shutil.rmtree(tmp_path / "val")
    shutil.rmtree(tmp_path / "extra")
    (tmp_path / "loose.png").unlink()
    build_data(GanConfig(dataset="imagefolder", data_root=str(tmp_path), image_size=16))
    assert "note" not in capsys.readouterr().err  # train/ alone is all the data


def test_a_zip_of_conditioning_vectors_trains_as_stylegan2_ada_reads_it(tmp_path):
    """Float or one-hot labels and an image without one are a valid stylegan2-ada zip, which its
    unconditional reader (use_labels=False) trains on without reading dataset.json; gan train
    uses no labels (was: refused, "robustrep reads integer class labels >= 0 only")."""
    import json
    path = _zip(tmp_path / "v.zip", 16)
    with zipfile.ZipFile(path, "a") as archive:  # 00003.png has no label
        archive.writestr("dataset.json", json.dumps({"labels": [
            [f"{i:05d}.png", [0.5, float(i)]] for i in range(3)]}))
    for dataset in ("zip", "imagefolder"):  # an imagefolder root ending in .zip is a zip
        data = build_data(GanConfig(dataset=dataset, data_root=str(path), image_size=16))
        assert len(data.dataset) == 4 and data.shape == (3, 16, 16)


def test_digits_that_do_not_fit_once_resized_are_one_line(monkeypatch, capsys, tmp_path):
    # Was: `gan train --image-size 4096` on the digits, the allocator's traceback
    import pytest

    from robustrep.tasks.cli import main
    from robustrep.tasks.gan import data

    def refuse(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 120594628608 bytes")
    monkeypatch.setattr(data, "create_dataset", refuse)
    assert main(["gan", "train", "--image-size", "4096", "--steps", "1", "--out",
                 str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        "robustrep gan train: error: --image-size 4096: the digits images resized to 4096x4096 "
        "do not fit in this machine's memory (the resized images are held in memory); give a "
        "smaller --image-size\n")
    assert not (tmp_path / "r").exists()

    def fail(*args, **kwargs):
        raise RuntimeError("another failure")
    monkeypatch.setattr(data, "create_dataset", fail)
    with pytest.raises(RuntimeError, match="^another failure$"):  # not hidden behind that line
        build_data(GanConfig(image_size=32))
