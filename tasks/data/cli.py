"""``robustrep data pack SRC OUT.zip --resolution R``: an image folder as a stylegan2-ada zip.

    robustrep data pack SRC OUT.zip --resolution R [--channels 3]

The zip is what stylegan2-ada-pytorch's ``dataset_tool.py --transform=center-crop`` writes and
its ``training/dataset.py`` reads (``robustrep.data.zipdata``): every image centre-cropped to a
square, resized to R x R (Lanczos), stored as an uncompressed PNG under
``00000/img00000000.png``, and ``dataset.json`` with the class labels of ``SRC/<class>/`` folders
(sorted class names, as torchvision's ``ImageFolder``) or ``null`` for a flat folder. ``gan
train``, ``classify train`` and ``gan fid`` read it back (``--dataset zip --data-root OUT.zip``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from robustrep.tasks.common.cli import add_command, add_program
from robustrep.tasks.common.errors import DataError, UserError
from robustrep.tasks.data.config import PackOptions


def _add_pack(sub) -> None:
    """write a stylegan2-ada dataset zip from an image folder"""
    add_command(sub, "pack", "write a stylegan2-ada dataset zip from an image folder",
                PackOptions, cmd_pack, description=__doc__.split("\n\n")[0])


def add_parser(subparsers, name: str = "data", summary: str = "") -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_pack)


def cmd_pack(args: argparse.Namespace) -> int:
    from robustrep.tasks.data.pack import pack_folder
    out = Path(args.zip).expanduser()
    if out.suffix.lower() != ".zip":
        raise UserError(f"OUT {out}: give a path ending in .zip")
    if os.path.lexists(out):  # exists() is False for a dangling link, which writing would follow
        what = "is a symbolic link" if out.is_symlink() else "exists"
        raise UserError(f"OUT {out} {what}; remove it or choose another path")
    src = Path(args.src).expanduser()
    if not src.is_dir():
        raise DataError(f"SRC {src} is not a folder; give an image folder (SRC/<class>/<image> "
                        f"or images directly in SRC)")
    summary = pack_folder(src, out, args.resolution, args.channels, show_progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return 0
