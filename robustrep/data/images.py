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

16-bit greyscale images (PIL mode ``I;16``/``I``) are scaled to 8 bits (v / 257) before
conversion; PIL's ``convert`` would clip them to 255.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchvision import transforms

from robustrep._validate import check_choice, check_positive

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
# (or "I" in older Pillow) with values 0..65535; 16-bit colour PNGs are already 8-bit "RGB(A)".
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_8bit(image: Any) -> Any:
    """A 16-bit grey image as 8-bit "L", value v -> round(v / 257) (65535 -> 255)."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")


def convert_image(image: Any, channels: int) -> Any:
    """``image`` as 8-bit "L" (``channels`` 1) or "RGB" (3), 16-bit grey scaled, not clipped."""
    if image.mode in WIDE_MODES:
        image = _to_8bit(image)
    return image.convert("L" if channels == 1 else "RGB")


def load_image(path: str | Path, channels: int) -> Any:
    from PIL import Image

    with open(path, "rb") as f:
        return convert_image(Image.open(f), channels)


def _image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image, or None when it can."""
    from PIL import Image

    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)})"
    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()  # walks every chunk and checks its CRC, up to IEND
            else:
                # verify() checks little outside PNG; decoding at reduced size (JPEG draft
                # mode) still reads the whole stream, so truncation shows.
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"{type(err).__name__}: {str(err).strip() or 'unreadable'}"[:160]
    return None


def find_bad_images(paths: list[Path]) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each file of ``paths`` that is not a readable image."""
    bad = []
    for path in paths:
        reason = _image_problem(Path(path))
        if reason is not None:
            bad.append((Path(path), reason))
    return bad


def drop_bad_images(dataset: Any, paths: list[Path], root: Path, skip_bad: bool) -> Any:
    """Scan ``paths`` (the dataset's files in sample order); raise on or drop unreadable ones."""
    bad = find_bad_images(paths)
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
