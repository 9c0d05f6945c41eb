"""The channel count ``robustrep data pack`` stores when ``--channels`` is not given: the
source's own, as stylegan2-ada-pytorch's ``dataset_tool.py`` keeps it (a greyscale folder gives
a greyscale zip, which ``gan train`` then trains in one channel). There only without
``--transform``: its ``center-crop`` stops on a greyscale image (``PIL.Image.fromarray(img,
'RGB')`` of a one-channel array).

An image counts as greyscale by its PIL mode, read from its header (no pixels decoded):
``GREY_MODES``, one grey band of any bit depth (``1``, ``L``; 16-bit ``I;16``/``I`` from a PNG,
TIFF or PGM, scaled to 8 bits as every loader here scales it; ``F`` and 32-bit ``I`` are refused
by the image check anyway), or grey with an alpha band (``LA``: only opaque ones are read, so
they hold greys alone). Every other mode counts as colour: ``RGB``, ``RGBA``, ``CMYK``,
``YCbCr``, and palette images (``P``, ``PA``), whose palette may hold any colour.

Source channels 1 when every image is greyscale, else 3. ``dataset_tool.py`` refuses a source
mixing them (its channel counts must agree); here a mix is packed as RGB, with a note naming the
first colour image, since ``--channels 1`` would make every image grey.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from robustrep.data.images import WIDE_MODES, open_image
from robustrep.data.zipdata import ZipEntry

GREY_MODES = ("1", "L", "LA", "La", *WIDE_MODES)


def source_channels(samples: list[Any]) -> tuple[int, str | None]:
    """1 when every image of ``samples`` (a scan's: paths, ``(path, label)`` or ``(ZipEntry,
    label)``) is greyscale, else 3; and, for a source mixing both, a note saying so. An image
    whose header cannot be read is passed over: the image check that follows names it."""
    grey, colour, first = 0, 0, None
    for name, mode in _modes(samples):
        if mode is None:
            continue
        if mode in GREY_MODES:
            grey += 1
            continue
        colour += 1
        first = first or f"{name}, PIL mode {mode}"
    if not colour:
        return (1 if grey else 3), None
    if not grey:
        return 3, None
    return 3, (f"note: {grey} of {grey + colour} images are greyscale and the others colour "
               f"(the first colour one: {first}): all are packed as RGB, each greyscale one "
               f"repeated in the three channels (dataset_tool.py refuses such a mix); "
               f"--channels 1 packs them all as greyscale")


def _modes(samples: list[Any]) -> Iterator[tuple[str, str | None]]:
    """``(name, PIL mode)`` of each sample's image, from its header; a zip's members are read
    from one open archive."""
    with ExitStack() as stack:
        archives: dict[Any, zipfile.ZipFile] = {}

        def archive(path: Any) -> zipfile.ZipFile:
            if path not in archives:
                archives[path] = stack.enter_context(zipfile.ZipFile(path))
            return archives[path]
        for sample in samples:
            entry = sample[0] if isinstance(sample, tuple) else sample
            yield str(entry), _mode(entry, archive)


def _mode(entry: Any, archive: Callable[[Any], zipfile.ZipFile]) -> str | None:
    """The PIL mode of the image file or zip member ``entry``, None where PIL cannot open it."""
    try:
        if isinstance(entry, ZipEntry):
            with archive(entry.archive).open(entry.member) as member, \
                    open_image(member) as image:
                return image.mode
        with open_image(entry) as image:
            return image.mode
    except Exception:  # PIL raises many types (OSError, SyntaxError, ...): the check names it
        return None
