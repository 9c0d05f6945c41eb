"""``robustrep gan fid`` on image folders and dataset zips as users leave them: a zip of several
image sizes, and a folder whose first image cannot be read (tasks/gan/fid_sources.py)."""

import io
import os
import zipfile

import pytest
import torch
from PIL import Image

from robustrep.data import digits
from robustrep.tasks.cli import build_parser, main
from robustrep.tasks.gan.fid import compare


def run_fid(*argv):
    """The record ``robustrep gan fid ARGV --fid-features digits`` prints, as a dict."""
    args = build_parser("gan").parse_args(["gan", "fid", *map(str, argv), "--fid-features",
                                           "digits"])
    args.torch_device = torch.device("cpu")
    return compare(args)


def digit_pngs(sizes):
    """PNG bytes of digits, one per entry of ``sizes`` (width, height)."""
    x = (digits(16, 1, train=None).images[: len(sizes), 0] * 255).round().to(torch.uint8)
    out = []
    for image, size in zip(x.numpy(), sizes):
        buffer = io.BytesIO()
        Image.fromarray(image).resize(size).save(buffer, format="png")
        out.append(buffer.getvalue())
    return out


def _mixed(tmp_path, sizes):
    """The same PNGs of ``sizes`` as a folder and as a zip."""
    (tmp_path / "folder").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as archive:
        for i, data in enumerate(digit_pngs(sizes)):
            archive.writestr(f"{i}.png", data)
            (tmp_path / "folder" / f"{i}.png").write_bytes(data)
    return tmp_path / "folder", tmp_path / "mixed.zip"


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_images_of_several_sizes_are_refused_before_any_feature(kind, tmp_path, capsys,
                                                                 monkeypatch):
    """Was: every image resized to the first image's side without a word, so one 8x8 thumbnail
    sorted first among larger images gave the FID of thumbnails; now one line naming the first
    image and the first of another side, read from the headers before the network is built."""
    from robustrep.tasks.gan import fid

    def network(*args, **kwargs):
        raise AssertionError("the feature network was built for images of several sizes")
    monkeypatch.setattr(fid, "_network", network)
    folder, archive = _mixed(tmp_path, [(8, 8), (24, 24), (24, 30), (24, 24)])
    given = folder if kind == "folder" else archive
    assert main(["gan", "fid", str(given), "digits", "--quiet"]) == 2
    err = capsys.readouterr().err
    first, other = ((folder / "0.png", folder / "1.png") if kind == "folder"
                    else ("member 0.png", "member 1.png"))
    what = "image folder" if kind == "folder" else "dataset zip"
    assert err == (f"robustrep gan fid: error: {what} {given} holds images of several sizes "
                   f"({first} is 8x8, {other} 24x24; 3 of the 4 images have the side 24); FID "
                   f"compares one size, so pass --resolution N (each image's shorter side "
                   f"resized to N, then centre-cropped) or give images of one size\n")


def test_resolution_resizes_several_sizes_and_a_crop_is_no_other_size(tmp_path):
    """--resolution resizes on purpose, a zip as its folder (was: a stack error for the zip);
    a non-square image of the others' shorter side is only centre-cropped, and taken."""
    folder, archive = _mixed(tmp_path, [(16, 20), (20, 20), (32, 40), (24, 16)])
    record = run_fid(archive, folder, "--resolution", "16")
    assert record["a"] == f"dataset zip {archive} (4 images at 16x16)"
    assert record["b"] == f"image folder {folder} (4 images at 16x16)"
    assert abs(record["fid"]) < 1e-4  # the same images, resized the same way
    folder, archive = _mixed(tmp_path / "crop", [(16, 20), (16, 16), (24, 16), (16, 16)])
    record = run_fid(archive, folder)
    assert record["a"] == f"dataset zip {archive} (4 images at 16x16)"
    assert record["b"] == f"image folder {folder} (4 images at 16x16)"


def test_a_folder_in_timms_split_layout_is_read_whole(tmp_path, capsys):
    """gan fid reads no splits (docs/metrics.md): train/, val/ and a folder beside them are
    all its images, so it leaves none out and has no left-out note; a hidden folder is no
    data, as in every program."""
    tree = tmp_path / "tree"
    parts = ("train/a", "train/b", "val/a", "extra/a", ".cache/a")
    for part, data in zip(parts, digit_pngs([(16, 16)] * len(parts))):
        (tree / part).mkdir(parents=True)
        (tree / part / "0.png").write_bytes(data)
    record = run_fid(tree, tree)
    assert record["a"] == f"image folder {tree} (4 images at 16x16)"
    assert "left out" not in capsys.readouterr().err


@pytest.mark.parametrize("first, reason", [
    ("empty", "UnidentifiedImageError: empty, or no image format PIL reads"),
    ("dangling", "a broken symbolic link (to "),
])
def test_an_unreadable_first_image_is_one_line_naming_it(tmp_path, capsys, first, reason):
    """Was: the first image opened for its size before the scan, so an empty 0.png gave PIL's
    traceback and a dangling link only '[Errno 2] ...'; now named as a later bad file is."""
    folder = tmp_path / "samples"
    folder.mkdir()
    for i, data in enumerate(digit_pngs([(16, 16)] * 3), start=1):
        (folder / f"{i}.png").write_bytes(data)
    if first == "empty":
        (folder / "0.png").write_bytes(b"")
    else:
        os.symlink(tmp_path / "gone.png", folder / "0.png")
    assert main(["gan", "fid", str(folder), "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"robustrep gan fid: error: unreadable image {folder / '0.png'} under "
                          f"{folder}: {reason}")
    assert err.rstrip().endswith("remove or replace it")  # no --skip-bad-images in gan fid


@pytest.mark.parametrize("shape, problem", [
    ((1, 8, 1, 16, 16), "samples must be [N, C, H, W], [N, H, W, C] or [N, H, W] (C = 1 or 3), "
                        "got shape (1, 8, 1, 16, 16)"),
    ((50, 2), "holds 2-D points (shape (50, 2)), a ring/grid run's samples; gan fid compares "
              "images"),
    ((6, 32), "holds feature vectors (shape (6, 32), [N, D]), not images; gan fid reads "
              "features as statistics: give their statistics as an .npz of mu and sigma "
              "(np.savez(FILE, mu=f.mean(0), sigma=np.cov(f, rowvar=False)))"),
], ids=["5-d", "points", "features"])
def test_a_samples_array_of_no_image_layout_is_named_by_its_shape(shape, problem, tmp_path,
                                                                  capsys):
    """Was: a [1, N, C, H, W] array refused as 'FID needs at least 2 samples, got 1' (its first
    axis counted as the samples), and a mixture run's `gan sample --pt` points as no layout."""
    np = pytest.importorskip("numpy")
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(shape, dtype=np.float32))
    other = tmp_path / "b.npy"
    np.save(other, np.zeros((4, 1, 16, 16), dtype=np.float32))
    assert main(["gan", "fid", str(path), str(other), "--fid-features", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"robustrep gan fid: error: {path}: {problem}")


def test_torch_fidelitys_features_file_points_to_its_statistics_file(tmp_path, capsys):
    """torch-fidelity caches an input's features beside its statistics; the features were
    "samples must be [N, C, H, W] ..., got shape (40, 2048)"."""
    features = tmp_path / "srcA-inception-v3-compat-features-2048.pt"
    torch.save(torch.zeros(6, 32), features)
    assert main(["gan", "fid", str(features), "digits"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan fid: error: {features}: holds feature vectors (shape (6, 32), [N, D]), "
        f"not images; gan fid reads features as statistics: give torch-fidelity's statistics "
        f"file of the same input, {tmp_path / 'srcA-inception-v3-compat-stat-fid-2048.pt'}\n")


REMEDY = ("export its images to a folder (LSUN's python data.py export DB_lmdb --out_dir DIR) or "
          "to a dataset zip (stylegan2-ada's python dataset_tool.py --source DB_lmdb --dest "
          "OUT.zip) and give that; gan eval RUN scores a run trained on it against it")


def test_an_lmdb_database_or_lsun_folder_is_said_to_be_unread(tmp_path, capsys):
    """Was: "no images found in .../tower_train_lmdb: expected root/<class>/<image> ..." (and
    "class folder ... holds no images" for the folder of databases), as if it were an image
    folder with the wrong files."""
    db = tmp_path / "lsun" / "tower_train_lmdb"
    db.mkdir(parents=True)
    (db / "data.mdb").write_bytes(b"\0" * 8192)  # its name is what tells it: never opened
    for spec, line in (
            (db, f"{db} is an LMDB database (it holds data.mdb, as LSUN ships a category), "
                 f"which gan fid does not read: {REMEDY}"),
            (db.parent, f"{db.parent} holds LMDB databases (tower_train_lmdb/data.mdb, as LSUN "
                        f"ships its categories), which gan fid does not read: {REMEDY}")):
        assert main(["gan", "fid", str(spec), "digits"]) == 2
        assert capsys.readouterr().err == f"robustrep gan fid: error: {line}\n"


def test_a_zip_of_conditioning_vectors_is_compared_as_any_zip(tmp_path):
    """A zip whose dataset.json holds stylegan2-ada's float or one-hot vectors, or misses an
    image, is valid there; gan fid reads no labels (was: refused, "robustrep reads integer
    class labels >= 0 only")."""
    import json
    pngs = digit_pngs([(16, 16)] * 4)
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as archive:
        for i, data in enumerate(pngs):
            archive.writestr(f"{i}.png", data)
        archive.writestr("dataset.json", json.dumps({"labels": [["0.png", [0.0, 1.0]]]}))
    record = run_fid(tmp_path / "v.zip", tmp_path / "v.zip")
    assert record["num_a"] == 4 and abs(record["fid"]) < 1e-3
