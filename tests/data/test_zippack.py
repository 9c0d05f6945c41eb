"""stylegan2-ada dataset zips written in dataset_tool.py's layout (robustrep/data/zippack.py),
and read back."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from robustrep.data.zipdata import ZipImageDataset
from robustrep.data.zippack import center_crop_resize, pack_images


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]



def test_pack_writes_dataset_tool_layout_and_reads_back(arrays, tmp_path):
    out = tmp_path / "p.zip"
    with open(out, "wb") as handle:
        names = pack_images([Image.fromarray(a) for a in arrays], handle, 8, labels=[1, 0, 1])
    assert names == [f"00000/img0000000{i}.png" for i in range(3)]
    with zipfile.ZipFile(out) as archive:
        meta = json.loads(archive.read("dataset.json"))
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    assert meta == {"labels": [[n, y] for n, y in zip(names, [1, 0, 1])]}
    ds = ZipImageDataset(out)
    assert ds.targets == [1, 0, 1]
    assert all(np.array_equal((ds[i][0] * 255).round().byte().permute(1, 2, 0).numpy(), a)
               for i, a in enumerate(arrays))


def test_center_crop_takes_the_central_square():
    array = np.arange(20 * 30 * 3, dtype=np.uint32).reshape(20, 30, 3).astype(np.uint8)
    crop = center_crop_resize(Image.fromarray(array), 20)
    assert np.array_equal(np.asarray(crop), array[:, 5:25])  # (30 - 20) // 2 = 5 on each side
    tall = center_crop_resize(Image.fromarray(array.transpose(1, 0, 2).copy()), 20)
    assert np.array_equal(np.asarray(tall), array.transpose(1, 0, 2)[5:25])


def test_packing_the_same_images_later_gives_the_same_bytes(arrays, tmp_path, monkeypatch):
    """Was: each member dated at packing time (as dataset_tool.py's), so two packs of the same
    images differed; a fixed date makes a zip's checksum name its data."""
    import time

    def packed(path):
        with open(path, "wb") as handle:
            pack_images([Image.fromarray(a) for a in arrays], handle, 8, labels=[1, 0, 1])
        return path.read_bytes()

    first = packed(tmp_path / "a.zip")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3600)
    assert packed(tmp_path / "b.zip") == first
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


# --- what the first mutation run of zipdata.py left open (docs/mutation.md) ------------------

def test_center_crop_of_an_odd_margin_and_the_resize_filters():
    array = np.random.default_rng(0).integers(0, 256, (20, 23, 3), dtype=np.uint8)
    crop = center_crop_resize(Image.fromarray(array), 20)
    assert np.array_equal(np.asarray(crop), array[:, 1:21])  # (23 - 20) // 2 = 1 on the left
    tall = center_crop_resize(Image.fromarray(array.transpose(1, 0, 2).copy()), 20)
    assert np.array_equal(np.asarray(tall), array.transpose(1, 0, 2)[1:21])
    square = Image.fromarray(array[:, :20])
    lanczos, box = (np.asarray(center_crop_resize(square, 8, f)) for f in ("lanczos", "box"))
    assert np.array_equal(lanczos, np.asarray(square.resize((8, 8), Image.LANCZOS)))
    assert np.array_equal(box, np.asarray(square.resize((8, 8), Image.BOX)))
    assert np.array_equal(np.asarray(center_crop_resize(square, 8)), lanczos)
    assert not np.array_equal(lanczos, box)


def test_pack_stores_uncompressed_pngs_in_the_channels_asked_as_dataset_tool(arrays):
    """dataset_tool.py saves each image with compress_level=0, in folders of 1000; the members
    are made on Unix with mode rw-------."""
    out = io.BytesIO()
    flat = np.full((8, 8, 3), 90, np.uint8)  # compressible: any compress_level > 0 shows
    names = pack_images([Image.fromarray(a) for a in (arrays[0], flat)], out, 8, channels=1)
    grey = [Image.fromarray(a).convert("L") for a in (arrays[0], flat)]
    with zipfile.ZipFile(out) as archive:
        for name, image in zip(names, grey):
            buffer = io.BytesIO()
            image.save(buffer, format="png", compress_level=0, optimize=False)
            assert archive.read(name) == buffer.getvalue()
        infos = archive.infolist()
    assert [(i.create_system, i.external_attr >> 16) for i in infos] == [(3, 0o600)] * 3
    colour = io.BytesIO()
    pack_images([grey[0]], colour, 8, channels=3)
    with zipfile.ZipFile(colour) as archive, Image.open(io.BytesIO(archive.read(
            "00000/img00000000.png"))) as image:
        assert image.mode == "RGB"
    many = pack_images([Image.new("L", (1, 1))] * 1001, io.BytesIO(), 1, channels=1)
    assert many[999:] == ["00000/img00000999.png", "00001/img00001000.png"]


@pytest.mark.parametrize("kwargs, kind, message", [
    (dict(size=0), ValueError, "size must be > 0, got 0"),
    (dict(size=2.0), TypeError, "size must be a positive int, got float"),
    (dict(channels=2), ValueError, "channels must be one of 1, 3; got 2"),
    (dict(labels=[1]), ValueError, "labels has 1 entries for 3 images"),
])
def test_pack_refuses_its_arguments_saying_what_is_accepted(arrays, kwargs, kind, message):
    with pytest.raises(kind) as err:
        pack_images([Image.fromarray(a) for a in arrays], io.BytesIO(), **{"size": 8, **kwargs})
    assert str(err.value) == message
