"""LSUN lmdb databases: the layout as shipped, no cache file, a missing lmdb, two GAN steps."""

import io
import os
import pickle
import string
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import create_dataset
from robustrep.data.lsun import lsun, parse_classes
from robustrep.tasks.cli import main


def _encoded(seed, fmt):
    """A 16x16 RGB image as the bytes LSUN stores (webp as shipped; jpeg after re-encoding).

    The webp is lossless noise; the jpeg one flat colour, which JPEG keeps within a few levels.
    """
    rng = np.random.default_rng(seed)
    shape = (16, 16, 3) if fmt == "WEBP" else (1, 1, 3)
    pixels = np.broadcast_to(rng.integers(0, 256, shape, dtype=np.uint8), (16, 16, 3)).copy()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return pixels, buf.getvalue()


def make_lsun(root, name, count, offset=0):
    """``root/<name>_lmdb``: key = a 40-hex image id (as LSUN's), value = encoded image bytes."""
    import lmdb
    env = lmdb.open(str(root / f"{name}_lmdb"), map_size=1 << 24)
    pixels = {}
    with env.begin(write=True) as txn:
        for i in range(count):
            key = f"{(count - i) * 7919 + offset:040x}".encode()  # written out of key order
            pixels[key], value = _encoded(i + offset, "WEBP" if i % 2 else "JPEG")
            txn.put(key, value)
    env.close()
    return pixels


def _gan_train_refused(root, classes, capsys) -> str:
    """``gan train`` on the LSUN ``classes`` under ``root``: exit 2 and its one line."""
    assert main(["gan", "train", "--dataset", "lsun", "--data-root", str(root),
                 "--lsun-classes", classes, "--image-size", "16", "--out", str(root / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_parse_classes():
    assert parse_classes("church_outdoor_train") == ["church_outdoor_train"]
    assert parse_classes("a_train, b_val") == ["a_train", "b_val"]
    assert parse_classes("church_outdoor_train,bedroom_train", train=False) == [
        "church_outdoor_val", "bedroom_val"]
    assert parse_classes("train") == "train" and parse_classes("train", train=False) == "val"
    # was one database read under two labels
    with pytest.raises(ValueError, match=r"^lsun classes name a_train twice; its images would "
                                         r"be read twice, under two labels$"):
        parse_classes("a_train,b_train, a_train")


@pytest.mark.parametrize("classes", ["a_train,,b_train", "a_train,", ["a_train", ""]])
def test_an_empty_class_is_named_as_an_empty_item(classes, tmp_path, capsys):
    # Was: "lsun classes must be non-empty names ..., got 'a_train,'", naming no empty item
    want = (f"lsun classes must be database names separated by commas, like "
            f"church_outdoor_train,bedroom_train; got {classes!r} (an empty item)")
    with pytest.raises(ValueError) as err:
        parse_classes(classes)
    assert str(err.value) == want
    assert parse_classes(" a_train , b_train ") == ["a_train", "b_train"]
    if isinstance(classes, str):  # as the program says it
        (tmp_path / "a_train_lmdb").mkdir()
        (tmp_path / "a_train_lmdb" / "data.mdb").touch()
        assert main(["gan", "train", "--dataset", "lsun", "--data-root", str(tmp_path),
                     "--lsun-classes", classes, "--out", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == f"robustrep gan train: error: {want}\n"


def test_missing_lmdb_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb raises ImportError
    (tmp_path / "church_outdoor_train_lmdb").mkdir()
    with pytest.raises(ModuleNotFoundError, match=r"robustrep\[lsun\]"):
        lsun(tmp_path, "church_outdoor_train", 16)
    assert main(["gan", "train", "--dataset", "lsun", "--data-root", str(tmp_path),
                 "--lsun-classes", "church_outdoor_train", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "robustrep[lsun]" in err and len(err.splitlines()) == 1


def test_reads_records_in_key_order_and_writes_nothing(tmp_path, monkeypatch):
    pytest.importorskip("lmdb")
    data, cwd = tmp_path / "lsun", tmp_path / "cwd"
    data.mkdir(), cwd.mkdir()
    pixels = make_lsun(data, "church_outdoor_train", 6)
    make_lsun(data, "bedroom_train", 2, offset=100)
    monkeypatch.chdir(cwd)
    db_root = str(data / "church_outdoor_train_lmdb")
    # torchvision's LSUNClass would unpickle this file from the cwd instead of listing keys
    planted = cwd / ("_cache_" + "".join(c for c in db_root if c in string.ascii_letters))
    planted.write_bytes(pickle.dumps([b"not-a-key"]))
    before = sorted(os.listdir(data / "church_outdoor_train_lmdb"))

    ds = lsun(data, "church_outdoor_train,bedroom_train", size=16)
    assert len(ds) == 8
    for i, key in enumerate(sorted(pixels)):  # lmdb iterates keys in byte order
        image, label = ds[i]
        assert label == 0 and image.shape == (3, 16, 16)
        expected = torch.from_numpy(pixels[key]).permute(2, 0, 1).float() / 255
        assert (image - expected).abs().max() <= 4 / 255
    assert ds[7][1] == 1  # the second class
    assert sorted(os.listdir(cwd)) == [planted.name]
    assert sorted(os.listdir(data / "church_outdoor_train_lmdb")) == before
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers with spawn; env reopens
    assert torch.equal(clone[3][0], ds[3][0])


def test_val_twin_and_bad_class(tmp_path):
    pytest.importorskip("lmdb")
    make_lsun(tmp_path, "church_outdoor_val", 2)
    assert len(create_dataset("lsun", tmp_path, train=False, size=8,
                              classes="church_outdoor_train")) == 2
    with pytest.raises(FileNotFoundError, match="church_outdoor_train_lmdb"):
        create_dataset("lsun", tmp_path, train=True, size=8, classes="church_outdoor_train")
    with pytest.raises(ValueError, match="LSUN class"):
        create_dataset("lsun", tmp_path, size=8, classes="castle_train")


def test_gan_trains_two_steps_on_lsun(tmp_path, monkeypatch):
    pytest.importorskip("lmdb")
    make_lsun(tmp_path, "church_outdoor_train", 8)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["gan", "train", "--dataset", "lsun", "--data-root", str(tmp_path),
                 "--lsun-classes", "church_outdoor_train", "--image-size", "16", "--g-width",
                 "4", "--d-width", "4", "--z-dim", "8", "--batch-size", "4", "--steps", "2",
                 "--eval-every", "0", "--final-eval", "false", "--num-workers", "0",
                 "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["church_outdoor_train_lmdb", "run"]


def test_classify_trains_on_two_lsun_classes_and_tests_on_their_val_twins(tmp_path):
    pytest.importorskip("lmdb")
    for name, offset in (("church_outdoor", 0), ("bedroom", 50)):
        make_lsun(tmp_path, f"{name}_train", 6, offset)
        make_lsun(tmp_path, f"{name}_val", 2, offset + 20)
    run = tmp_path / "clf"
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "lsun", "--data-root",
                 str(tmp_path), "--lsun-classes", "church_outdoor_train,bedroom_train",
                 "--image-size", "16", "--batch-size", "4", "--out", str(run), "--device", "cpu",
                 "--quiet"]) == 0
    assert (run / "metrics.jsonl").is_file()
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.presets import PRESETS
    from robustrep.tasks.classify.data import build_datasets
    cfg = ClassifyConfig(**{**PRESETS["smoke"], "dataset": "lsun", "data_root": str(tmp_path),
                            "lsun_classes": "church_outdoor_train,bedroom_train",
                            "image_size": 16})
    train_set, eval_set, _ = build_datasets(cfg)
    assert len(train_set) == 12 and len(eval_set) == 4  # the _val databases


def test_a_record_that_is_no_image_is_one_line_naming_database_and_key(tmp_path, capsys):
    """Was: PIL's UnidentifiedImageError traceback, naming neither the database nor the key."""
    lmdb = pytest.importorskip("lmdb")
    make_lsun(tmp_path, "church_outdoor_train", 4)
    db = tmp_path / "church_outdoor_train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"0" * 40, b"<html>not an image</html>")  # sorts first: read by build_data
        txn.put(b"f" * 40, b"")  # sorts last: read only when a batch reaches it
    env.close()
    ds = lsun(tmp_path, "church_outdoor_train", 16)
    assert ds[1][0].shape == (3, 16, 16)
    for index, key in ((0, "0" * 40), (5, "f" * 40)):
        with pytest.raises(ValueError) as err:
            ds[index]
        assert str(err.value) == (f"LSUN database {db}: record {key} is not a readable image "
                                  f"(UnidentifiedImageError: empty, or no image format PIL "
                                  f"reads); re-create the database from LSUN's files")
    err = _gan_train_refused(tmp_path, "church_outdoor_train", capsys)
    assert f"LSUN database {db}: record {'0' * 40} is not" in err


@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_record_met_by_a_batch_mid_training_is_one_line(tmp_path, capsys, workers):
    """Databases are not scanned before training, so a bad record is met by a batch: the
    program names it in one line (from a DataLoader worker too, whose re-raised error starts
    "Caught ... in DataLoader worker process 0" and holds the worker's traceback)."""
    lmdb = pytest.importorskip("lmdb")
    make_lsun(tmp_path, "church_outdoor_train", 4)
    db = tmp_path / "church_outdoor_train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"f" * 40, b"")  # sorts last
    env.close()
    assert main(["gan", "train", "--dataset", "lsun", "--data-root", str(tmp_path),
                 "--lsun-classes", "church_outdoor_train", "--image-size", "16",
                 "--batch-size", "5", "--steps", "2", "--eval-every", "0", "--final-eval",
                 "false", "--num-workers", str(workers), "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"robustrep gan train: error: LSUN database {db}: record {'f' * 40} is "
                          f"not a readable image (UnidentifiedImageError")


def test_a_transparent_record_is_named_once_and_in_full(tmp_path):
    # Was: the refusal wrapped a second time and cut at 160 characters ("record b is not a
    # readable image (UnreadableImageError: cannot read LSUN database ...: record b: 1 of 256
    # pixels are transparent (alpha below 255), and their colour without );")
    pixels = np.full((16, 16, 4), 255, np.uint8)
    pixels[0, 0, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buf, format="PNG")
    db, err = _refused_last_record(tmp_path, buf.getvalue())
    assert err == (
        f"cannot read LSUN database {db}: record {'f' * 40}: 1 of 256 pixels are transparent "
        f"(alpha below 255), and their colour without a background is a guess; accepted: "
        f"opaque images; composite them onto the background you want first (e.g. PIL's "
        f"Image.alpha_composite)")


def _refused_last_record(root, value):
    """A 2-image database with ``value`` as a third record (sorting last), and the error its
    reading raises: ``(database, message)``."""
    lmdb = pytest.importorskip("lmdb")
    make_lsun(root, "church_outdoor_train", 2)
    db = root / "church_outdoor_train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"f" * 40, value)
    env.close()
    with pytest.raises(ValueError) as err:
        lsun(root, "church_outdoor_train", 16)[2]
    return db, str(err.value)


def test_an_animated_record_is_refused_not_read_as_its_first_frame(tmp_path):
    # Was: read as its first frame without a word, where a folder's or a zip's is refused
    frames = [Image.new("RGB", (16, 16), (60 * i, 0, 0)) for i in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    db, err = _refused_last_record(tmp_path, buf.getvalue())
    assert err == (
        f"cannot read LSUN database {db}: record {'f' * 40}: 2 frames (an animation or a "
        f"multi-page file), of which only the first would be read; save the frame you want as "
        f"an image of its own")


def test_a_held_out_share_needs_no_val_databases(tmp_path):
    # was: --val-fraction 0.2 still opened (and required) *_val_lmdb, then left it unread
    pytest.importorskip("lmdb")
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.data import build_datasets
    from robustrep.tasks.classify.presets import PRESETS
    for name, offset in (("church_outdoor", 0), ("bedroom", 50)):
        make_lsun(tmp_path, f"{name}_train", 5, offset)
    cfg = ClassifyConfig(**{**PRESETS["smoke"], "dataset": "lsun", "data_root": str(tmp_path),
                            "lsun_classes": "church_outdoor_train,bedroom_train",
                            "image_size": 16, "val_fraction": 0.2})
    train_set, eval_set, info = build_datasets(cfg)
    assert (len(train_set), len(eval_set), info.eval_split) == (8, 2, "holdout")


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_lsun_without_its_classes_names_the_option(program, tmp_path, capsys):
    # was: "dataset 'lsun' needs classes, the databases to read", naming no option
    assert main([program, "train", "--dataset", "lsun", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep {program} train: error: --dataset lsun reads the databases --lsun-classes "
        f"names: give --lsun-classes NAME[,NAME...], each ROOT/NAME_lmdb (e.g. "
        f"church_outdoor_train)\n")
    assert not (tmp_path / "run").exists()


def test_a_truncated_database_is_one_line_naming_the_file_and_both_sizes(tmp_path, capsys):
    """Was: "Bus error" (SIGBUS, exit 135, nothing said): lmdb maps data.mdb and read a page past
    the end of a file cut short by an interrupted copy or unzip. Under two pages (the meta
    pages) lmdb itself refuses the file, which was its traceback."""
    pytest.importorskip("lmdb")
    make_lsun(tmp_path, "tower_train", 6)
    data = tmp_path / "tower_train_lmdb" / "data.mdb"
    whole = data.stat().st_size  # its pages' end: lmdb grows the file page by page
    os.truncate(data, whole - 1)
    with pytest.raises(ValueError) as err:
        lsun(tmp_path, "tower_train", 8)
    assert str(err.value) == (f"LSUN database {data} is cut short: {whole - 1:,} bytes, where "
                              f"its pages need {whole:,} (an interrupted copy or unzip); copy "
                              f"or unzip it again")
    assert f"LSUN database {data} is cut short" in _gan_train_refused(tmp_path, "tower_train",
                                                                      capsys)
    assert not (tmp_path / "run").exists()
    os.truncate(data, 100)
    with pytest.raises(ValueError, match=rf"^LSUN database {data} cannot be opened by lmdb "
                                         rf"\(.*MDB_INVALID.*\); copy or unzip it again$"):
        lsun(tmp_path, "tower_train", 8)


def test_an_object_category_is_told_how_it_is_read(tmp_path):
    """LSUN's objects (cat_lmdb, stylegan2-ada's LSUN Cat) are no scene database: torchvision's
    refusal listed the scenes alone."""
    pytest.importorskip("lmdb")
    with pytest.raises(ValueError) as err:
        lsun(tmp_path, "cat_train", 8)
    assert str(err.value).startswith("Unknown value 'cat' for LSUN class. Valid values are {")
    assert str(err.value).endswith("}. LSUN's object categories (cat, car, ...: one "
                                   "<object>_lmdb each, no split) are read as images exported "
                                   "to a folder (python data.py export cat_lmdb --out_dir DIR, "
                                   "github.com/fyu/lsun), an imagefolder")
