"""Writing stylegan2-ada dataset zips, in the layout ``dataset_tool.py`` of
``NVlabs/stylegan2-ada-pytorch`` writes (Karras et al., "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020): every image centre-cropped to a square and resized with
Lanczos (``--transform=center-crop``, :func:`center_crop_resize`), stored as an uncompressed PNG
under ``{idx // 1000:05d}/img{idx:08d}.png``, and a top-level ``dataset.json`` with the labels or
``null``.

:func:`pack_images` writes such a zip from any images, in order (``robustrep data pack`` is its
program). One departure: every member carries one fixed date, where ``dataset_tool.py``'s carry
the time of packing, so the same images give the same bytes and a zip's checksum names its data.

Reading a dataset zip is :mod:`robustrep.data.zipdata`; writing one is another idea, which only
shares the name of the labels file with it (imported from there: no import cycle).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO

from robustrep._validate import check_choice, check_positive
from robustrep.data.zipdata import LABELS_FILE

__all__ = ["center_crop_resize", "pack_images"]


def center_crop_resize(image, size: int, resample: str = "lanczos"):
    """The central square of a PIL ``image`` resized to ``size`` x ``size``: ``dataset_tool.py
    --transform=center-crop`` (crop to the shorter side first, then resize; Lanczos there)."""
    from PIL import Image

    w, h = image.size
    crop = min(w, h)
    left, top = (w - crop) // 2, (h - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    if crop == size:
        return image
    filters = {"lanczos": Image.LANCZOS, "box": Image.BOX}  # dataset_tool's --resize-filter
    return image.resize((size, size), filters[resample])


def pack_images(images: Iterable[Any], out: BinaryIO, size: int, channels: int = 3,
                labels: Sequence[int] | None = None) -> list[str]:
    """Write a stylegan2-ada dataset zip to the binary file ``out``.

    Args:
        images: PIL images (any size and mode), in the order they are stored.
        size: every image is centre-cropped and resized (Lanczos) to ``size`` x ``size``.
        channels: 3 (RGB) or 1 (greyscale).
        labels: one integer per image, or None (``dataset.json`` then says ``null``).

    Returns the member names, in ``dataset_tool.py``'s layout ``00000/img00000000.png``. The
    members carry one fixed time (``dataset_tool.py``'s carry the time of packing), so the same
    images give the same bytes: a zip's checksum names its data.
    """
    check_positive("size", size, integer=True)
    check_choice("channels", channels, (1, 3))
    names = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, image in enumerate(images):
            image = center_crop_resize(image.convert("L" if channels == 1 else "RGB"), size)
            buffer = io.BytesIO()
            image.save(buffer, format="png", compress_level=0, optimize=False)
            name = f"{i // 1000:05d}/img{i:08d}.png"
            archive.writestr(_member(name), buffer.getvalue())
            names.append(name)
        if labels is not None and len(labels) != len(names):
            raise ValueError(f"labels has {len(labels)} entries for {len(names)} images")
        meta = {"labels": None if labels is None else [[m, int(y)] for m, y in
                                                        zip(names, labels)]}
        archive.writestr(_member(LABELS_FILE), json.dumps(meta))
    return names


def _member(name: str) -> zipfile.ZipInfo:
    """A stored member ``name`` dated 1980-01-01, the earliest time a zip holds, made on Unix
    with the mode rw------- that ``ZipFile.writestr`` gives a name."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, whose mode bits external_attr holds (0 on Windows else)
    info.external_attr = 0o600 << 16
    return info
