"""Reading image files faithfully: the suffixes taken as images, decoding to 8-bit "L"/"RGB"
(16-bit greyscale scaled, not clipped), the transform every local loader shares, and finding the
files that cannot be read.

Unreadable images: :func:`find_bad_images` opens every file once (PIL's ``Image.verify`` checks a
PNG's chunk structure and checksums; JPEGs and other formats are decoded at reduced size), so a
truncated file or a non-image named ``.png`` is found before training rather than when a
DataLoader reaches it; :func:`drop_bad_images` raises on the first or, with ``skip_bad``, drops
them and lists them in the dataset's ``skipped`` attribute. Hidden files (``._0.png`` from macOS)
are not images; a broken symbolic link named like an image is one, so that it is named as
unreadable rather than silently left out.

16-bit greyscale images (PIL mode ``I;16``, or ``I`` read from a 16-bit PNG or a PGM) are scaled
to 8 bits (v / 257) before conversion; PIL's ``convert`` would clip them to 255. 16-bit colour
or grey+alpha PNGs and TIFFs are refused naming the file: PIL decodes them by keeping the high
byte of each value (0x00FF becomes 0, not round(255 / 257) = 1), and their 16-bit values are not
available to scale (16-bit colour PPMs are scaled exactly by PIL, and read). Images whose
value range cannot be known (32-bit float, mode ``F``, which may hold [0, 1] or anything; 32-bit
integer, mode ``I`` from a TIFF, which may hold 0..255 or 0..65535) are refused with a ValueError
naming the file (and found by :func:`find_bad_images`), never scaled by a guess.

Size: an image of more pixels than PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``,
89,478,485 unless changed) is refused in one line naming the file, its pixels and the limit
(:func:`check_depth`, :func:`image_problem`, :func:`decode_error`). PIL itself raises only over
twice the limit and merely warns between the two, in text naming no file; a reader here refuses
the whole band alike, and every reader opens files through :func:`open_image`, which keeps
PIL's warning off the output.

Transparency: an image whose alpha (an RGBA/LA/PA band, or a palette or colour key marked
transparent) is below 255 anywhere is refused the same way. Dropping the alpha, as
``convert("RGB")`` does, would show whatever colour the file keeps under its transparent pixels
(often black, often arbitrary), and compositing would guess a background. Images with an alpha
band that is opaque everywhere are read as their colours.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from torchvision import transforms

from robustrep._validate import check_choice, check_positive
from robustrep.errors import UnreadableImageError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def image_transform(size: int | None, channels: int) -> Callable:
    """PIL image -> float tensor [channels, size, size] in [0, 1] (native size when None)."""
    steps: list[Callable] = [transforms.Grayscale(1)] if channels == 1 else []
    if size is not None:
        steps += [transforms.Resize(size), transforms.CenterCrop(size)]
    return transforms.Compose(steps + [transforms.ToTensor()])


def check_source(root: Any, size: Any, channels: Any, size_required: bool = False) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    if size is not None or size_required:
        check_positive("size", size, integer=True)
    check_choice("channels", channels, (1, 3))
    return Path(root).expanduser()


def check_train(train: Any) -> None:
    if not isinstance(train, bool):
        raise TypeError(f"train must be True (train split) or False (test split), got {train!r}")


# PIL modes of more than 8 bits per value: ``convert("RGB")`` clips them to 0..255 (a 16-bit
# image turns white), so they are scaled to 8 bits first. PNG stores 16-bit grey as "I;16"
# (or "I" in older Pillow) with values 0..65535.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# Raw (file) modes of 16 bits per value that PIL decodes into an 8-bit mode by keeping the high
# byte (a 16-bit colour or grey+alpha PNG or TIFF: "RGB;16B" into "RGB"), a truncation that
# differs from v / 257 and that the 16-bit values, lost on loading, cannot undo. (A 16-bit
# colour PPM is scaled by its maxval when decoded: exactly round(v / 257), and read.)
TRUNCATED_RAWMODES = (";16B", ";16L", ";16N")
# every single-band mode wider than 8 bits; "I" and "F" are read only when their range is known
WIDE_MODES = (*SIXTEEN_BIT_MODES, "I", "F")
ACCEPTED_DEPTHS = "accepted: 8-bit images, and 16-bit greyscale PNG, TIFF or PGM"


def _sixteen_bit(image: Any) -> bool:
    """Whether ``image``'s values span 0..65535. Mode "I" says only "32-bit integer": it is
    16-bit when it comes from a PNG (which has no 32-bit grey; older Pillow opens 16-bit grey as
    "I") or a PGM (Pillow scales every maxval above 255 to 0..65535), or when the file's own
    layout (the decoder's raw mode, known until the image is loaded) is unsigned 16-bit. A
    32-bit TIFF says nothing of its range (0..255 and 0..65535 are both common)."""
    if image.mode in SIXTEEN_BIT_MODES:
        return True
    if image.mode != "I":
        return False
    if image.format in ("PNG", "PPM"):
        return True
    rawmodes = _rawmodes(image)
    return bool(rawmodes) and all(r in SIXTEEN_BIT_MODES for r in rawmodes)


def _rawmodes(image: Any) -> list[Any]:
    """The file layouts of ``image``'s tiles (known until the image is loaded). A tile is
    ``(codec, extents, offset, args)``: a plain tuple before Pillow 11's named ``_Tile``. An
    image made in memory (``Image.new``, ``Image.fromarray``, a ``convert`` result) has no file
    and no tiles (Pillow 13 gives it no ``tile`` at all): its mode alone tells its depth."""
    args = [tile[3] for tile in getattr(image, "tile", None) or ()]
    return [a if isinstance(a, str) else a[0] for a in args if a]


def _frames_problem(image: Any) -> str | None:
    """Why ``image`` is more than one picture (an animated GIF, PNG or WebP, a multi-page
    TIFF), of which PIL would decode only the first, or None. A camera's MPO JPEG is one photo
    with previews after it: its first frame is the photo."""
    frames = getattr(image, "n_frames", 1)
    if frames <= 1 or image.format == "MPO":
        return None
    return (f"{frames} frames (an animation or a multi-page file), of which only the first "
            f"would be read; save the frame you want as an image of its own")


def _bomb(pixels: int | None) -> str:
    """What to say of an image over PIL's decompression-bomb limit: its pixels (when known) and
    the limit, read now (a program may have changed it)."""
    from PIL import Image

    count = "" if pixels is None else f"{pixels:,} pixels, "
    return (f"{count}over PIL's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,} pixels "
            f"(PIL.Image.MAX_IMAGE_PIXELS)")


def _pixels_problem(image: Any) -> str | None:
    """Why ``image`` is too large to read (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``, of
    which PIL refuses only twice as many), or None; from its header, before any decoding."""
    from PIL import Image

    pixels = max(1, image.size[0]) * max(1, image.size[1])  # as PIL counts them
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None or pixels <= limit else _bomb(pixels)


def open_image(source: str | os.PathLike | BinaryIO) -> Any:
    """``PIL.Image.open(source)`` without PIL's DecompressionBombWarning (a warning naming no
    file, printed for an image between the limit and twice it): the readers refuse such an
    image in their own line (:func:`_pixels_problem`). Over twice the limit, PIL raises. Every
    open of a user's image goes through here, header-only reads too."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def _depth_problem(image: Any) -> str | None:
    """Why ``image``'s values cannot be read as 8 bits without guessing their range or
    truncating them, or None."""
    if image.mode not in WIDE_MODES:
        return _truncation_problem(image)
    if image.mode not in ("I", "F") or _sixteen_bit(image):
        return None
    what = "32-bit floating point" if image.mode == "F" else "32-bit integer"
    source = f" from a {image.format}" if image.format else ""
    return (f"{what} pixels (PIL mode {image.mode}{source}) have no known value range, so they "
            f"are not read by a guess; {ACCEPTED_DEPTHS}")


def _truncation_problem(image: Any) -> str | None:
    """Why ``image`` (of an 8-bit mode) holds 16-bit values PIL would truncate, or None."""
    raw = next((r for r in _rawmodes(image) if isinstance(r, str)
                and r.endswith(TRUNCATED_RAWMODES)), None)
    if raw is None:
        return None
    source = f" from a {image.format}" if image.format else ""
    return (f"16-bit {raw.split(';')[0]} pixels{source} would be read with their low byte "
            f"dropped (PIL keeps the high byte), not scaled as v / 257; {ACCEPTED_DEPTHS}")


def _to_8bit(image: Any) -> Any:
    """A 16-bit grey image as 8-bit "L", value v -> round(v / 257) (65535 -> 255)."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")


ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
ACCEPTED_ALPHA = ("accepted: opaque images; composite them onto the background you want first "
                  "(e.g. PIL's Image.alpha_composite)")


def _may_be_transparent(image: Any) -> bool:
    """Whether ``image``'s header declares an alpha band or a transparent colour."""
    return image.mode in ALPHA_MODES or (image.mode in ("1", "L", "P", "RGB")
                                         and "transparency" in image.info)


def _transparency_problem(image: Any) -> str | None:
    """Why ``image`` cannot be read without its alpha (some pixel is not opaque), or None.
    Decodes ``image`` when its header declares transparency."""
    if not _may_be_transparent(image):
        return None
    alpha = image.convert("RGBA").getchannel("A")
    clear = sum(alpha.histogram()[:255])
    if clear == 0:
        return None
    return (f"{clear} of {image.width * image.height} pixels are transparent (alpha below 255), "
            f"and their colour without a background is a guess; {ACCEPTED_ALPHA}")


def check_depth(image: Any, name: str | os.PathLike = "image") -> None:
    """Raise ValueError naming ``name`` (the file) when ``image`` is over PIL's decompression-
    bomb limit (:func:`_pixels_problem`) or holds 32-bit float or integer values whose range is
    unknown. Call it on ``image`` unloaded (as ``Image.open`` returns it): loading drops the
    layout that tells some 16-bit files from 32-bit ones."""
    pixels = _pixels_problem(image)
    if pixels is not None:  # in the words of PIL's own refusal, over twice the limit
        raise UnreadableImageError(f"cannot read {name}: {pixels}; remove or replace it")
    problem = _depth_problem(image)
    if problem is not None:
        raise UnreadableImageError(f"cannot read {name}: {problem}")


def check_frames(image: Any, name: str | os.PathLike = "image") -> None:
    """Raise UnreadableImageError naming ``name`` when ``image`` holds more than one picture
    (:func:`_frames_problem`), for a reader that opens images without :func:`image_problem`'s
    check (an LSUN record: an animated WebP was read as its first frame without a word)."""
    problem = _frames_problem(image)
    if problem is not None:
        raise UnreadableImageError(f"cannot read {name}: {problem}")


def convert_image(image: Any, channels: int, name: str | os.PathLike = "image") -> Any:
    """``image`` as 8-bit "L" (``channels`` 1) or "RGB" (3), 16-bit grey scaled, not clipped;
    a value range that cannot be known (:func:`check_depth`) or a transparent pixel is a
    ValueError naming ``name``."""
    check_depth(image, name)
    problem = _transparency_problem(image)
    if problem is not None:
        raise UnreadableImageError(f"cannot read {name}: {problem}")
    if image.mode in WIDE_MODES:
        image = _to_8bit(image)
    return image.convert("L" if channels == 1 else "RGB")


def load_image(path: str | Path, channels: int) -> Any:
    """``path`` decoded by :func:`convert_image`; a file that fails to decode is an
    :class:`UnreadableImageError` naming it. The up-front scan checks a PNG's chunks and their
    checksums, not its compressed pixels, so a damaged stream shows only here."""
    with open(path, "rb") as f:
        try:
            image = open_image(f)
            check_depth(image, path)
            return convert_image(image, channels, path)
        except UnreadableImageError:
            raise
        except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
            raise UnreadableImageError(f"cannot read {path}: {decode_error(err)}; remove or "
                                       f"replace it") from None


def image_problem(source: Path | BinaryIO) -> str | None:
    """Why ``source`` (a file, or a binary file object such as a zip member's bytes) cannot be
    read as an image, or None when it can."""
    if isinstance(source, Path) and source.is_symlink() and not source.exists():
        return f"a broken symbolic link (to {os.readlink(source)})"
    try:
        with open_image(source) as image:
            # before loading, which drops the file's layout
            depth = _pixels_problem(image) or _depth_problem(image)
            if depth is not None:
                return depth
            frames = _frames_problem(image)
            if frames is not None:
                return frames
            if image.format == "PNG":
                image.verify()  # walks every chunk and checks its CRC, up to IEND
            else:
                # verify() checks little outside PNG; decoding at reduced size (JPEG draft
                # mode) still reads the whole stream, so truncation shows.
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            transparent = _may_be_transparent(image)
        if transparent:  # verify() leaves a PNG unusable: opened again to read its alpha
            if hasattr(source, "seek"):
                source.seek(0)
            with open_image(source) as image:
                return _transparency_problem(image)
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return decode_error(err)
    return None


def decode_error(err: Exception) -> str:
    """Why PIL could not read an image, in one short line."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):  # its text names the file, or a BytesIO's repr
        return "UnidentifiedImageError: empty, or no image format PIL reads"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        # PIL's text: "Image size (N pixels) exceeds limit of 2 x MAX pixels, could be ..."
        found = re.search(r"\((\d+) pixels\)", str(err))
        return _bomb(int(found[1]) if found else None)
    return f"{type(err).__name__}: {str(err).strip() or 'unreadable'}"[:160]


Checked = Callable[[int, int], None]  # (files done, files in all), after each file


def find_bad_images(paths: list[Path], checked: Checked | None = None) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each file of ``paths`` that is not a readable image; ``checked``
    is called after each file with the counts (about 1.4 ms a 300x300 JPEG: 70k files take
    minutes, and a program draws its progress from it; nothing here prints)."""
    bad = []
    for done, path in enumerate(paths, 1):
        reason = image_problem(Path(path))
        if reason is not None:
            bad.append((Path(path), reason))
        if checked is not None:
            checked(done, len(paths))
    return bad


def drop_bad_images(dataset: Any, paths: list[Path], root: Path, skip_bad: bool,
                    checked: Checked | None = None) -> Any:
    """Scan ``paths`` (the dataset's files in sample order); raise on or drop unreadable ones.
    ``checked``: as :func:`find_bad_images`'s."""
    bad = find_bad_images(paths, checked)
    dataset.skipped = [str(p) for p, _ in bad]
    if not bad:
        return dataset
    if not skip_bad:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"unreadable image {path}{more} under {root}: {reason}; remove or "
                         f"replace it, or pass skip_bad=True to skip unreadable files")
    drop = {p for p, _ in bad}
    keep = [i for i, p in enumerate(paths) if Path(p) not in drop]
    if not keep:
        raise ValueError(f"no readable images under {root}: all {len(paths)} files failed "
                         f"(first {bad[0][0]}: {bad[0][1]})")
    dataset.samples = [dataset.samples[i] for i in keep]
    dataset.targets = [dataset.targets[i] for i in keep]
    if hasattr(dataset, "imgs"):  # torchvision's ImageFolder keeps an alias of samples
        dataset.imgs = dataset.samples
    return dataset


def is_image(path: Path) -> bool:
    # Hidden files are skipped: macOS "._name.png" companions are not images. A broken symbolic
    # link named like an image is kept, so that verify names it (an image gone missing) rather
    # than the dataset silently shrinking.
    return (path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith(".")
            and (path.is_file() or (path.is_symlink() and not path.exists())))
