"""Unreadable image files found, named or skipped (robustrep.data.images)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import image_folder, image_list
from robustrep.data.images import find_bad_images

from .conftest import write_png

def _bad_image_folder(tmp_path):
    """class a: two good PNGs, a truncated PNG and a text file named .png; class b: a JPEG
    cut short."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    write_png(tmp_path / "a" / "1.png", (12, 12), (200, 0, 0))
    write_png(tmp_path / "a" / "2.png", (12, 12), (0, 200, 0))
    noise = Image.frombytes("RGB", (64, 64), bytes(np.random.default_rng(0).integers(
        0, 256, 64 * 64 * 3, dtype=np.uint8)))
    noise.save(tmp_path / "a" / "3.png")
    raw = (tmp_path / "a" / "3.png").read_bytes()
    (tmp_path / "a" / "3.png").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "a" / "4.png").write_text("not an image")
    noise.save(tmp_path / "b" / "1.jpg", quality=95)
    raw = (tmp_path / "b" / "1.jpg").read_bytes()
    (tmp_path / "b" / "1.jpg").write_bytes(raw[: len(raw) // 2])
    write_png(tmp_path / "b" / "2.png", (12, 12), (0, 0, 200))
    return tmp_path


def test_verify_names_the_first_unreadable_image(tmp_path):
    root = _bad_image_folder(tmp_path)
    assert len(image_folder(root, 8)) == 6  # without verify the folder is read lazily
    with pytest.raises(ValueError, match=rf"unreadable image {root / 'a' / '3.png'} \(and 2 "
                                         rf"more\) under {root}: .*skip_bad=True"):
        image_folder(root, 8, verify=True)


def test_find_bad_images_catches_truncation_and_impostors(tmp_path):
    root = _bad_image_folder(tmp_path)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    bad = [p.relative_to(root).as_posix() for p, _ in find_bad_images(files)]
    assert bad == ["a/3.png", "a/4.png", "b/1.jpg"]


def test_skip_bad_drops_and_counts(tmp_path):
    root = _bad_image_folder(tmp_path)
    ds = image_folder(root, 8, verify=True, skip_bad=True)
    assert len(ds) == 3 and len(ds.skipped) == 3
    assert [Path(p).name for p, _ in ds.samples] == ["1.png", "2.png", "2.png"]
    assert ds.targets == [0, 0, 1] and ds.imgs == ds.samples
    assert [ds[i][1] for i in range(3)] == [0, 0, 1]
    flat = root / "a"
    ds = image_folder(flat, 8, verify=True, skip_bad=True)
    assert len(ds) == 2 and ds.skipped == [str(flat / "3.png"), str(flat / "4.png")]
    listing = root / "list.txt"
    listing.write_text("a/1.png 0\na/4.png 1\nb/2.png 2\n")
    with pytest.raises(ValueError, match=f"unreadable image {root / 'a' / '4.png'} under"):
        image_list(root, listing, 8, verify=True)
    ds = image_list(root, listing, 8, verify=True, skip_bad=True)
    assert ds.targets == [0, 2] and ds.skipped == [str(root / "a" / "4.png")]


def test_float_and_32_bit_images_are_refused_not_guessed(tmp_path, capsys):
    """Was: a float TIFF in [0, 1] read as black and a 32-bit TIFF holding 0..255 divided by
    257 (mode "I" taken for 16-bit); neither file says its range, so both are refused."""
    from robustrep.tasks.cli import main
    flat = tmp_path / "flat"
    flat.mkdir()
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(ramp).save(flat / "0.tif")
    Image.fromarray((ramp * 255).round().astype(np.int32)).save(flat / "1.tif")
    assert [Image.open(flat / f"{i}.tif").mode for i in (0, 1)] == ["F", "I"]
    accepted = "accepted: 8-bit images, and 16-bit greyscale PNG, TIFF or PGM"
    ds = image_folder(flat, 8)
    with pytest.raises(ValueError) as err:
        ds[0]
    assert str(err.value) == (f"cannot read {flat / '0.tif'}: 32-bit floating point pixels (PIL "
                              f"mode F from a TIFF) have no known value range, so they are not "
                              f"read by a guess; {accepted}")
    with pytest.raises(ValueError, match=rf"cannot read {flat / '1.tif'}: 32-bit integer pixels "
                                         rf"\(PIL mode I from a TIFF\)"):
        ds[1]
    # the scan names them before any work, as unreadable files
    assert [(p.name, accepted in why) for p, why in find_bad_images(sorted(flat.iterdir()))] == [
        ("0.tif", True), ("1.tif", True)]
    assert main(["gan", "fid", str(flat), "digits"]) == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and f"unreadable image {flat / '0.tif'} (and 1 more)" in line
    assert "PIL mode F" in line and accepted in line


def test_16_bit_grey_png_tiff_and_pgm_are_scaled(tmp_path):
    """16-bit grey keeps working whichever mode Pillow gives it: "I;16" (PNG, TIFF) or "I"
    (PGM, and PNG in older Pillow), values 0..65535 scaled by 1 / 257. A 12-bit PGM opens as
    "I" too, its file layout no longer 16-bit: Pillow has scaled it to 0..65535 already."""
    ramp = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.uint16)
    for name in ("0.png", "1.tif"):
        Image.fromarray(ramp).save(tmp_path / name)
    # the PGMs written by hand: Pillow before 10 writes no 16-bit PGM
    (tmp_path / "2.pgm").write_bytes(b"P5 8 8 65535\n" + ramp.astype(">u2").tobytes())
    twelve = np.linspace(0, 4095, 64).reshape(8, 8).astype(np.uint16)
    (tmp_path / "3.pgm").write_bytes(b"P5 8 8 4095\n" + twelve.astype(">u2").tobytes())
    names = ("0.png", "1.tif", "2.pgm", "3.pgm")
    assert {Image.open(tmp_path / n).mode for n in names} <= {"I;16", "I"}
    ds = image_folder(tmp_path, 8, channels=1, verify=True)
    expected = torch.from_numpy(np.rint(ramp / 257.0) / 255).float()[None]
    for i in range(3):
        assert torch.allclose(ds[i][0], expected, atol=1e-6), ds.samples[i]
    assert torch.allclose(ds[3][0], torch.from_numpy(twelve / 4095).float()[None], atol=1 / 255)


def _rgba(alpha_corner: int) -> Image.Image:
    """An 8x8 red RGBA image whose alpha is 255 but at (0, 0), where it is ``alpha_corner``; the
    colour kept under that pixel is black, what dropping the alpha would show."""
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[..., 0], pixels[..., 3] = 200, 255
    pixels[0, 0] = (0, 0, 0, alpha_corner)
    return Image.fromarray(pixels, "RGBA")


def test_transparent_images_are_refused_and_opaque_alpha_is_read(tmp_path):
    """Was: convert("RGB") dropped the alpha, so a transparent pixel read as the black the file
    keeps under it. Refused in every form PIL gives transparency (RGBA, LA, a colour key), by
    the scan before any work and when a sample is read; an alpha band opaque everywhere reads
    as its colours."""
    flat = tmp_path / "flat"
    flat.mkdir()
    _rgba(0).save(flat / "0.png")
    _rgba(254).save(flat / "1.webp", lossless=True)
    _rgba(0).convert("LA").save(flat / "2.png")
    Image.new("L", (8, 8), 30).save(flat / "3.png", transparency=30)  # a grey colour key
    accepted = "accepted: opaque images; composite them onto the background you want first"
    reasons = dict((p.name, why) for p, why in find_bad_images(sorted(flat.iterdir())))
    assert reasons["0.png"].startswith("1 of 64 pixels are transparent (alpha below 255)")
    assert reasons["3.png"].startswith("64 of 64 pixels are transparent")
    assert sorted(reasons) == ["0.png", "1.webp", "2.png", "3.png"]
    assert all(accepted in why for why in reasons.values())
    ds = image_folder(flat, 8)
    for i in range(4):
        with pytest.raises(ValueError, match=f"cannot read {ds.samples[i]}: .*transparent"):
            ds[i]
    opaque = tmp_path / "opaque"
    opaque.mkdir()
    _rgba(255).save(opaque / "0.png")
    ds = image_folder(opaque, 8, verify=True)
    assert torch.equal(ds[0][0], torch.from_numpy(np.array(_rgba(255).convert("RGB"))
                                                  ).permute(2, 0, 1).float() / 255)


def _png_with_a_broken_stream(path: Path) -> None:
    """A 16x16 RGB PNG whose chunks and checksums are sound but whose compressed pixels are not:
    what the up-front scan (PIL's verify) passes."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixels = zlib.compress(b"".join(b"\0" + bytes(range(48)) for _ in range(16)))
    noise = np.random.default_rng(0).integers(0, 256, len(pixels) - 10, dtype=np.uint8)
    broken = pixels[:10] + noise.tobytes()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2,
                                                                       0, 0, 0))
                     + chunk(b"IDAT", broken) + chunk(b"IEND", b""))


def test_a_damaged_png_stream_met_mid_run_is_one_line_naming_it(tmp_path, capsys):
    # Was: a traceback ending "OSError: broken data stream when reading image file", exit 1,
    # the file unnamed (and data pack blamed the disk)
    from robustrep.tasks.cli import main
    flat = tmp_path / "flat"
    flat.mkdir()
    write_png(flat / "0.png", (16, 16), (200, 0, 0))
    _png_with_a_broken_stream(flat / "1.png")
    assert find_bad_images([flat / "1.png"]) == []  # the scan reads no compressed pixels
    ds = image_folder(flat, 16, verify=True)
    with pytest.raises(ValueError, match=rf"^cannot read {flat / '1.png'}: OSError: .*; remove "
                                         rf"or replace it$"):
        ds[1]
    assert main(["data", "pack", str(flat), str(tmp_path / "x.zip"), "--resolution", "16",
                 "--quiet"]) == 2  # no count of the images packed before it
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and f"cannot read {flat / '1.png'}: OSError" in line
    assert not (tmp_path / "x.zip").exists()


def test_animations_and_multi_page_files_are_refused_one_frame_images_read(tmp_path):
    """Was: only the first frame of an animated GIF or a multi-page TIFF was read, silently."""
    frames = [Image.new("RGB", (8, 8), (v, 0, 0)) for v in (10, 200)]
    folder = tmp_path / "f"
    folder.mkdir()
    frames[0].save(folder / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "b.tiff", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "c.png", save_all=True, append_images=frames[1:])  # APNG
    frames[0].save(folder / "d.gif")
    frames[0].save(folder / "e.jpg", format="MPO", save_all=True, append_images=frames[1:])
    with Image.open(folder / "e.jpg") as photo:  # a camera's photo with its preview after it
        assert (photo.format, photo.n_frames) == ("MPO", 2)
    reasons = dict((p.name, why) for p, why in find_bad_images(sorted(folder.iterdir())))
    assert sorted(reasons) == ["a.gif", "b.tiff", "c.png"]
    assert all(why.startswith("2 frames (an animation or a multi-page file)")
               for why in reasons.values())


def _png16(path, values, colour_type):
    """A 16-bit PNG of ``values`` (uint16 [H, W, bands]; PNG colour type 2 RGB, 4 grey+alpha,
    6 RGBA, 0 grey), unfiltered: PIL writes no 16-bit colour PNG."""
    import struct
    import zlib

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    height, width = values.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("colour_type, bands, layout", [(2, 3, "RGB"), (6, 4, "RGBA"),
                                                        (4, 2, "LA")])
def test_16_bit_colour_pngs_are_refused_not_truncated(tmp_path, colour_type, bands, layout):
    # Was: PIL kept the high byte (0x00FF read as 0), while 16-bit grey is round(v / 257) = 1
    import zipfile

    from robustrep.data.images import load_image
    from robustrep.data.zipdata import ZipImageDataset
    from robustrep.errors import UnreadableImageError

    values = np.full((4, 4, bands), 0x00FF, np.uint16)
    if bands in (2, 4):
        values[..., -1] = 0xFFFF  # opaque: the depth, not the alpha, is refused
    (tmp_path / "flat").mkdir()
    path = _png16(tmp_path / "flat" / "0.png", values, colour_type)
    line = (f"16-bit {layout} pixels from a PNG would be read with their low byte dropped (PIL "
            f"keeps the high byte), not scaled as v / 257; accepted: 8-bit images, and 16-bit "
            f"greyscale PNG, TIFF or PGM")
    with pytest.raises(UnreadableImageError) as err:
        load_image(path, 3)
    assert str(err.value) == f"cannot read {path}: {line}"
    with pytest.raises(ValueError) as err:  # found by the up-front scan
        image_folder(tmp_path / "flat", 4, verify=True)
    assert str(err.value).startswith(f"unreadable image {path} under {path.parent}: {line}; ")
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as archive:
        archive.write(path, "0.png")
    with pytest.raises(UnreadableImageError) as err:
        ZipImageDataset(tmp_path / "d.zip", channels=3)[0]
    assert str(err.value) == f"cannot read {tmp_path / 'd.zip'}: member 0.png: {line}"


def test_0x00ff_reads_as_1_in_16_bit_grey_png_and_colour_ppm(tmp_path):
    # round(255 / 257) = 1 wherever a 16-bit value is read: grey PNG and colour PPM agree
    _png16(tmp_path / "0.png", np.full((4, 4, 1), 0x00FF, np.uint16), 0)
    (tmp_path / "1.ppm").write_bytes(b"P6 4 4 65535\n"
                                     + np.full((4, 4, 3), 0x00FF, ">u2").tobytes())
    ds = image_folder(tmp_path, 4, verify=True)
    for i in range(2):
        assert torch.equal(ds[i][0], torch.full((3, 4, 4), 1 / 255)), ds.samples[i]


# --- what the first mutation run of images.py left open (docs/mutation.md) -------------------

def _tiff16(values):
    """An uncompressed little-endian TIFF of ``values`` (uint16 [H, W, 3], RGB): PIL writes no
    16-bit colour TIFF."""
    import struct

    height, width, bands = values.shape
    data = values.astype("<u2").tobytes()
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, bands, 0), (259, 3, 1, 1),
            (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, bands), (278, 4, 1, height),
            (279, 4, 1, len(data))]
    depths = 8 + 2 + 12 * len(tags) + 4  # after the header and the one IFD
    offsets = {258: depths, 273: depths + 2 * bands}
    ifd = b"".join(struct.pack("<HHII", tag, kind, count, offsets.get(tag, value))
                   for tag, kind, count, value in tags)
    return (b"II*\0" + struct.pack("<IH", 8, len(tags)) + ifd + b"\0\0\0\0"
            + struct.pack(f"<{bands}H", *[16] * bands) + data)


def test_a_16_bit_colour_tiff_is_refused_not_truncated(tmp_path):
    # its tile's layout is a tuple ("RGB;16L", stride, orientation), a PNG's a bare string
    from robustrep.data.images import load_image
    from robustrep.errors import UnreadableImageError

    path = tmp_path / "0.tif"
    path.write_bytes(_tiff16(np.full((4, 4, 3), 0x00FF, np.uint16)))
    with Image.open(path) as image:
        assert (image.mode, image.tile[0][3]) == ("RGB", ("RGB;16L", 0, 1))
    line = ("16-bit RGB pixels from a TIFF would be read with their low byte dropped (PIL keeps "
            "the high byte), not scaled as v / 257; accepted: 8-bit images, and 16-bit "
            "greyscale PNG, TIFF or PGM")
    assert find_bad_images([path]) == [(path, line)]
    with pytest.raises(UnreadableImageError) as err:
        load_image(path, 3)
    assert str(err.value) == f"cannot read {path}: {line}"


class _Header:
    """An image as ``Image.open`` leaves it, reduced to what the depth check reads (mode,
    format, tiles; and size, for the pixel limit): older Pillow opens 16-bit grey PNG as mode
    "I", Pillow 13 never gives mode "I" a 16-bit layout, so the rule for them is checked on
    this stand-in."""

    def __init__(self, mode, format, rawmode=None):
        self.mode, self.format, self.size = mode, format, (4, 4)
        self.tile = [] if rawmode is None else [("raw", (0, 0, 4, 4), 0, rawmode)]


@pytest.mark.parametrize("mode, format, rawmode, sixteen", [
    ("I", "PNG", None, True),  # a 16-bit grey PNG in older Pillow, loaded (its tiles gone)
    ("I", "TIFF", ("I;16", 0, 1), True),  # the file's layout says unsigned 16-bit
    ("I", "TIFF", "I;16B", True),
    ("I", "TIFF", ("I;16S", 0, 1), False),  # signed: no known range
    ("I", "TIFF", None, False),
    ("I;16", "TIFF", None, True),
])
def test_mode_i_is_16_bit_by_its_format_or_its_files_layout(mode, format, rawmode, sixteen):
    from robustrep.data.images import check_depth

    image = _Header(mode, format, rawmode)
    if sixteen:
        check_depth(image, "x.png")
        return
    with pytest.raises(ValueError) as err:
        check_depth(image, "x.tif")
    assert str(err.value).startswith("cannot read x.tif: 32-bit integer pixels (PIL mode I from "
                                     "a TIFF) have no known value range")


def test_images_made_in_memory_are_named_image_and_have_no_source():
    """``convert_image`` and ``check_depth`` take a PIL image a caller made: without a file name
    the message says "image", without a format it names none."""
    from robustrep.data.images import check_depth, convert_image

    accepted = "accepted: 8-bit images, and 16-bit greyscale PNG, TIFF or PGM"
    floats = Image.fromarray(np.zeros((4, 4), np.float32))
    assert floats.format is None
    line = (f"32-bit floating point pixels (PIL mode F) have no known value range, so they are "
            f"not read by a guess; {accepted}")
    for check in (lambda: check_depth(floats), lambda: convert_image(floats, 3)):
        with pytest.raises(ValueError) as err:
            check()
        assert str(err.value) == f"cannot read image: {line}"
    with pytest.raises(ValueError) as err:
        convert_image(floats, 1, "mine.tif")
    assert str(err.value) == f"cannot read mine.tif: {line}"


def _in_memory_images():
    """``(image, its pixels as 8-bit RGB)``, images made in memory, which have no file (and in
    Pillow 13 no ``tile``): of every 8-bit mode, from uint8 arrays, as ``convert`` gives them,
    and 16-bit grey from a uint16 array (scaled by 257: 257 -> 1, 65535 -> 255)."""
    grey = np.array([[0, 1, 128, 255]] * 4, np.uint8)
    colour = np.stack([grey, grey[::-1], np.full((4, 4), 7, np.uint8)], -1)
    wide = grey.astype(np.uint16) * 257
    rgb = np.repeat(grey[..., None], 3, -1)
    return [
        (Image.new("RGB", (4, 4), (1, 2, 3)), np.full((4, 4, 3), (1, 2, 3), np.uint8)),
        (Image.new("L", (4, 4), 9), np.full((4, 4, 3), 9, np.uint8)),
        (Image.new("1", (4, 4), 1), np.full((4, 4, 3), 255, np.uint8)),
        (Image.new("RGBA", (4, 4), (5, 6, 7, 255)), np.full((4, 4, 3), (5, 6, 7), np.uint8)),
        (Image.new("P", (4, 4), 0), np.zeros((4, 4, 3), np.uint8)),
        (Image.fromarray(grey), rgb),
        (Image.fromarray(colour), colour),
        (Image.fromarray(grey).convert("RGB"), rgb),
        (Image.fromarray(wide), rgb),
    ]


def test_images_made_in_memory_read_their_depth_from_their_mode():
    """Was: AttributeError 'Image' object has no attribute 'tile' (Pillow 13 gives one only to
    images read from a file) for every image made in memory; a 32-bit integer one is still
    refused: nothing tells its range."""
    from robustrep.data.images import check_depth, convert_image

    for image, pixels in _in_memory_images():
        assert not hasattr(image, "tile") or not image.tile  # no file layout to read
        check_depth(image)
        assert np.array_equal(np.asarray(convert_image(image, 3)), pixels), image.mode
        grey = np.asarray(Image.fromarray(pixels).convert("L"))  # 16-bit: its scaled values
        assert np.array_equal(np.asarray(convert_image(image, 1)), grey), image.mode
    assert Image.fromarray(np.zeros((4, 4), np.uint16)).mode.startswith("I;16")
    with pytest.raises(ValueError) as err:
        convert_image(Image.fromarray(np.zeros((4, 4), np.int32)), 3)
    assert str(err.value).startswith("cannot read image: 32-bit integer pixels (PIL mode I) "
                                     "have no known value range")


def test_one_channel_is_read_as_l_and_the_transform_makes_any_image_one_channel(tmp_path):
    from robustrep.data.images import convert_image, image_transform, load_image

    write_png(tmp_path / "0.png", (6, 4), (200, 100, 50))
    assert load_image(tmp_path / "0.png", 1).mode == "L"
    assert load_image(tmp_path / "0.png", 3).mode == "RGB"
    for channels, mode in ((1, "L"), (3, "RGB")):
        with Image.open(tmp_path / "0.png") as opened:
            assert convert_image(opened, channels).mode == mode
    colour = Image.new("RGB", (6, 4), (200, 100, 50))
    grey = colour.convert("L").getpixel((0, 0)) / 255
    for size, shape in ((None, (1, 4, 6)), (2, (1, 2, 2))):
        x = image_transform(size, 1)(colour)  # an RGB image given: Grayscale makes it one
        assert x.shape == shape and torch.allclose(x, torch.full(shape, grey))
    assert image_transform(2, 3)(colour).shape == (3, 2, 2)


@pytest.mark.parametrize("mode, transparency", [("RGB", (10, 20, 30)), ("P", 0), ("1", 0)])
def test_a_colour_key_or_palette_transparency_is_refused_in_every_mode(tmp_path, mode,
                                                                        transparency):
    """The header's transparency of an RGB colour key, a palette entry and a 1-bit grey key,
    besides the "L" key above: their pixels of that colour would be read as it."""
    from robustrep.data.images import load_image

    image = Image.new("RGB", (4, 4), (10, 20, 30))
    image.putpixel((0, 0), (250, 250, 250))
    image = image.convert(mode) if mode != "P" else image.quantize(2)
    if mode == "P":
        transparency = image.getpixel((1, 1))
    path = tmp_path / "0.png"
    image.save(path, transparency=transparency)
    with Image.open(path) as opened:
        assert opened.mode == mode and "transparency" in opened.info
    with pytest.raises(ValueError, match=rf"^cannot read {path}: 15 of 16 pixels are "
                                         rf"transparent \(alpha below 255\)"):
        load_image(path, 3)


def test_the_alpha_of_a_zip_members_bytes_is_read_from_their_start():
    """A transparent or opaque RGBA PNG as bytes (a zip member): verify() reads the stream to
    its end, so the alpha is read after rewinding it."""
    import io

    from robustrep.data.images import image_problem

    def member(alpha):
        data = io.BytesIO()
        _rgba(alpha).save(data, format="png")
        data.seek(0)
        return data

    assert image_problem(member(255)) is None
    assert image_problem(member(0)).startswith("1 of 64 pixels are transparent")


def test_a_broken_link_named_like_an_image_is_named_not_left_out(tmp_path):
    from robustrep.data.images import is_image

    flat = tmp_path / "flat"
    write_png(flat / "0.png", (4, 4), (0, 0, 0))
    (flat / "1.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    (flat / "2.png").symlink_to(tmp_path / "dir.png")  # a link to a folder: no image
    (flat / "3.PNG").symlink_to(flat / "0.png")
    assert [is_image(flat / n) for n in ("0.png", "1.png", "2.png", "3.PNG")] == [
        True, True, False, True]
    assert find_bad_images([flat / "1.png", flat / "3.PNG"]) == [
        (flat / "1.png", f"a broken symbolic link (to {tmp_path / 'gone.png'})")]


def test_a_folder_of_nothing_but_unreadable_files_is_refused_naming_the_first(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "0.png").write_bytes(b"")
    (flat / "1.png").symlink_to(tmp_path / "gone.png")  # another reason: the first's is named
    with pytest.raises(ValueError) as err:
        image_folder(flat, 4, verify=True, skip_bad=True)
    assert str(err.value) == (f"no readable images under {flat}: all 2 files failed (first "
                              f"{flat / '0.png'}: UnidentifiedImageError: empty, or no image "
                              f"format PIL reads)")


def test_decode_error_is_one_stripped_line_of_at_most_160_characters():
    from robustrep.data.images import decode_error

    assert decode_error(OSError()) == "OSError: unreadable"
    assert decode_error(OSError("  \n")) == "OSError: unreadable"
    assert decode_error(SyntaxError(" broken PNG file \n")) == "SyntaxError: broken PNG file"
    assert decode_error(ValueError("x" * 200)) == "ValueError: " + "x" * 148  # 160 in all


def test_sources_and_splits_are_checked_with_what_is_accepted():
    from robustrep.data.images import check_source, check_train

    assert check_source("data", None, 1) == Path("data")  # size only when given or required
    assert check_source("~/data", 8, 3) == Path.home() / "data"
    cases = [(dict(root=3), TypeError, "root must be a path, got int"),
             (dict(size=0), ValueError, "size must be > 0, got 0"),
             (dict(size=2.0), TypeError, "size must be a positive int, got float"),
             (dict(size=None, size_required=True), TypeError,
              "size must be a positive int, got NoneType"),
             (dict(channels=2), ValueError, "channels must be one of 1, 3; got 2")]
    for given, kind, message in cases:
        args = {"root": "data", "size": 8, "channels": 3, **given}
        with pytest.raises(kind) as err:
            check_source(**args)
        assert str(err.value) == message
    check_train(True)
    check_train(False)
    with pytest.raises(TypeError) as err:
        check_train(1)
    assert str(err.value) == "train must be True (train split) or False (test split), got 1"


@pytest.mark.parametrize("limit", [700, 1000])  # 1,600 pixels: over twice 700, under 2 x 1000
def test_an_image_over_pils_pixel_limit_is_one_line_naming_its_pixels_and_the_limit(
        tmp_path, monkeypatch, limit):
    """Over PIL's decompression-bomb limit: PIL raises over twice it (its own text was passed
    on, naming no file) and only warns below (the image read, the warning naming no file).
    Both are refused alike in one line naming the file, its pixels and the limit."""
    import re
    import warnings

    path = tmp_path / "big.png"
    write_png(path, (40, 40), (200, 0, 0))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    said = (f"1,600 pixels, over PIL's decompression-bomb limit of {limit:,} pixels "
            f"(PIL.Image.MAX_IMAGE_PIXELS)")
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert find_bad_images([path]) == [(path, said)]
        ds = image_folder(tmp_path, 8)  # unverified: met when a batch reads it
        with pytest.raises(ValueError, match=f"^cannot read {re.escape(str(path))}: "
                                             f"{re.escape(said)}; remove or replace it$"):
            ds[0]
    assert [w.message for w in warned] == []
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1600)  # at the limit: read
    assert find_bad_images([path]) == [] and ds[0][0].shape == (3, 8, 8)


def test_no_reader_lets_pils_pixel_warning_through(tmp_path, monkeypatch):
    """Between PIL's limit and twice it PIL only warns, in a line naming no file: the readers
    of zips and headers (zip members, sizes, modes) opened with Image.open and let it out."""
    import warnings
    import zipfile

    from robustrep.data.zipdata import member_sizes
    from robustrep.tasks.data.channels import _mode
    from robustrep.tasks.gan.fid_sources import _header_size

    path = tmp_path / "big.png"
    write_png(path, (40, 40), (200, 0, 0))
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as archive:
        archive.write(path, "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 pixels: PIL warns only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _header_size(path) == (40, 40)
        assert list(member_sizes(tmp_path / "d.zip", ["big.png"])) == [("big.png", (40, 40))]
        assert _mode(path, archive=None) == "RGB"  # None: the warning taken for damage

