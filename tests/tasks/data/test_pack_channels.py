"""``data pack`` keeps the source's channels, as stylegan2-ada's ``dataset_tool.py`` does: a
greyscale folder packs to greyscale PNGs (it was packed as RGB, and a 3-channel G trained on
grey data), a colour or mixed one to RGB; ``--channels`` converts every image."""

import io
import json
import zipfile

import numpy as np
from PIL import Image

from .test_pack import pack, save, zip_folder


def packed_modes(path):
    """The PIL mode of every image member of the zip ``path``."""
    with zipfile.ZipFile(path) as archive:
        return [Image.open(io.BytesIO(archive.read(name))).mode
                for name in archive.namelist() if name.endswith(".png")]


def grey_folder(root):
    """Greyscale images as users have them: 8-bit PNG and JPEG, 16-bit PNG, opaque grey+alpha,
    two-level (mode 1), in class folders."""
    rng = np.random.default_rng(0)
    save(root / "a" / "0.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    save(root / "a" / "1.jpg", rng.integers(0, 256, (20, 16), dtype=np.uint8))
    save(root / "a" / "2.png", rng.integers(0, 65536, (16, 16), dtype=np.uint16))  # I;16
    save(root / "b" / "3.png", np.dstack([rng.integers(0, 256, (16, 16), dtype=np.uint8),
                                          np.full((16, 16), 255, np.uint8)]))  # opaque LA
    save(root / "b" / "4.png", rng.integers(0, 2, (16, 16), dtype=np.uint8).astype(bool))
    return root


def test_a_greyscale_folder_packs_to_greyscale_pngs(tmp_path):
    src = grey_folder(tmp_path / "src")
    code, out, err = pack(src, tmp_path / "g.zip")
    assert code == 0 and err == "", err
    assert json.loads(out)["channels"] == 1
    assert packed_modes(tmp_path / "g.zip") == ["L"] * 5
    # the 16-bit image scaled to 8 bits as --channels 1 scales it: the same bytes
    assert pack(src, tmp_path / "one.zip", "--channels", "1")[0] == 0
    assert (tmp_path / "g.zip").read_bytes() == (tmp_path / "one.zip").read_bytes()
    # a zip of the folder gives the same
    assert pack(zip_folder(src, tmp_path / "src.zip"), tmp_path / "z.zip")[0] == 0
    assert (tmp_path / "z.zip").read_bytes() == (tmp_path / "g.zip").read_bytes()


def test_gan_reads_a_packed_greyscale_folder_in_one_channel(tmp_path):
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.data import build_data
    from robustrep.tasks.gan.presets import PRESETS
    assert pack(grey_folder(tmp_path / "src"), tmp_path / "g.zip")[0] == 0
    cfg = {**PRESETS["imagefolder-dcgan64"], "dataset": "zip",
           "data_root": str(tmp_path / "g.zip"), "image_size": 16}
    assert build_data(GanConfig(**cfg)).shape == (1, 16, 16)


def test_a_colour_or_mixed_folder_packs_to_rgb(tmp_path):
    rng = np.random.default_rng(1)
    colour = tmp_path / "colour"
    for i in range(2):
        save(colour / f"{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    code, out, err = pack(colour, tmp_path / "c.zip")
    assert (code, err, json.loads(out)["channels"]) == (0, "", 3)
    assert packed_modes(tmp_path / "c.zip") == ["RGB"] * 2
    mixed = grey_folder(tmp_path / "mixed")
    save(mixed / "b" / "5.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    code, out, err = pack(mixed, tmp_path / "m.zip")
    assert code == 0 and json.loads(out)["channels"] == 3
    assert packed_modes(tmp_path / "m.zip") == ["RGB"] * 6
    assert err == (f"note: 5 of 6 images are greyscale and the others colour (the first "
                   f"colour one: {mixed / 'b' / '5.png'}, PIL mode RGB): all are packed as RGB, "
                   f"each greyscale one repeated in the three channels (dataset_tool.py refuses "
                   f"such a mix); --channels 1 packs them all as greyscale\n")
    # a palette image counts as colour, whatever its palette holds
    palette = tmp_path / "palette"
    save(palette / "0.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    Image.new("P", (16, 16)).save(palette / "1.png")
    code, out, err = pack(palette, tmp_path / "p.zip")
    assert code == 0 and json.loads(out)["channels"] == 3 and "PIL mode P)" in err


def test_explicit_channels_convert_every_image(tmp_path):
    src = grey_folder(tmp_path / "src")
    code, out, _ = pack(src, tmp_path / "g3.zip", "--channels", "3")
    assert code == 0 and json.loads(out)["channels"] == 3
    assert packed_modes(tmp_path / "g3.zip") == ["RGB"] * 5
    save(src / "b" / "5.png", np.zeros((16, 16, 3), np.uint8))  # now mixed
    code, out, err = pack(src, tmp_path / "m1.zip", "--channels", "1")
    assert (code, err, json.loads(out)["channels"]) == (0, "", 1)
    assert packed_modes(tmp_path / "m1.zip") == ["L"] * 6
