"""Options of ``robustrep data pack``, declared as the other commands' are (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from robustrep.tasks.common.config import REQUIRED, option
from robustrep.tasks.common.options import shared


@dataclass(kw_only=True)
class PackOptions:
    """The options of ``robustrep data pack``."""

    src: str = option(REQUIRED, "image folder (SRC/<class>/<image> or flat) or a .zip of one",
                      positional=True, metavar="SRC")
    zip: str = option(REQUIRED, "the zip to write (must not exist)", positional=True,
                      metavar="OUT.zip")
    # max: a typo (100000) would allocate 30 GB per image; stylegan2-ada's largest is 1024
    resolution: int = option(REQUIRED, "side of the square images: a power of 2, as "
                                       "stylegan2-ada's dataset_tool.py takes", min=1,
                             max=16384)
    # None, as dataset_tool.py keeps the source's channels: a greyscale folder packed as RGB
    # trained a 3-channel G on grey data
    channels: int | None = option(None, "3 (RGB) or 1 (greyscale); default: the source's own, "
                                        "1 when every image is greyscale (PIL mode 1, L, LA, "
                                        "16-bit I), else 3", (1, 3))
    quiet: bool = shared("quiet")
