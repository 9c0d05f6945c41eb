"""``robustrep data pack SRC OUT.zip --resolution R``: an image folder, or a zip of one, as a
stylegan2-ada zip.

    robustrep data pack SRC OUT.zip --resolution R [--channels 1|3]

SRC is an image folder or a ``.zip`` of one (as ``dataset_tool.py --source`` takes either). A zip
is read as the folder it holds, by the folder's own scan (``ZipImageFolder`` in
``robustrep/data/folders.py``): its folders are the class folders, hidden members are skipped as
hidden files are (and ``__MACOSX/``, macOS's resource forks, with them), and a member that cannot
be read is refused as an unreadable file is; packing a zip gives the bytes packing its folder
gives.

The zip is what stylegan2-ada-pytorch's ``dataset_tool.py --transform=center-crop`` writes and
its ``training/dataset.py`` reads (``robustrep.data.zipdata``): every image centre-cropped to a
square, resized to R x R (Lanczos), stored as an uncompressed PNG under
``00000/img00000000.png``, and ``dataset.json`` with the class labels of ``SRC/<class>/`` folders
(sorted class names, as torchvision's ``ImageFolder``) or ``null`` for a flat folder. ``gan
train``, ``classify train`` and ``gan fid`` read it back (``--dataset zip --data-root OUT.zip``).
Images smaller than R are enlarged, as ``dataset_tool.py`` enlarges them, and a note counts them
(``enlarged`` in the summary). R is a power of 2, as ``dataset_tool.py`` requires (the GAN
networks train at no other side). A ``dataset.json`` in SRC (stylegan2-ada's labels, which
``dataset_tool.py`` reads) is refused, from the names alone, before any image is opened: here
the class folders label the images.

The images keep their channels, as ``dataset_tool.py`` keeps them: 1 (greyscale PNGs) when every
image is greyscale, else 3 (``tasks/data/channels.py`` says which modes are greyscale; a source
mixing both is packed as RGB, with a note). ``--channels 1`` or ``3`` converts every image; the
summary's ``channels`` says what was packed.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from pathlib import Path

from robustrep.tasks.common.cli import add_command, add_program
from robustrep.tasks.common.errors import DataError, UserError
from robustrep.tasks.data.config import PackOptions


def _add_pack(sub) -> None:
    """write a stylegan2-ada dataset zip from an image folder or a zip of one"""
    add_command(sub, "pack", "write a stylegan2-ada dataset zip from an image folder or a zip "
                             "of one",
                PackOptions, cmd_pack, description=__doc__.split("\n\n")[0])


def add_parser(subparsers, name: str = "data", summary: str = "") -> argparse.ArgumentParser:
    return add_program(subparsers, name, summary, _add_pack)


def cmd_pack(args: argparse.Namespace) -> int:
    from robustrep.tasks.data.pack import is_zip_source, pack_folder
    out, src = Path(args.zip).expanduser(), Path(args.src).expanduser()
    check_zip_name(out)
    if src.exists() and out.exists() and os.path.samefile(src, out):
        raise UserError(f"OUT {out} is SRC: packing would replace the images it reads; choose "
                        f"another path for OUT")
    if os.path.lexists(out):  # exists() is False for a dangling link, which writing would follow
        what = "is a symbolic link" if out.is_symlink() else "exists"
        raise UserError(f"OUT {out} {what}; remove it or choose another path")
    check_power_of_two(args.resolution)
    if not (src.is_dir() or (src.is_file() and is_zip_source(src))):
        what = "is not a folder or a .zip" if os.path.lexists(src) else "does not exist"
        raise DataError(f"SRC {src} {what}; {SRC_ACCEPTED}")
    if is_zip_source(src) and not zipfile.is_zipfile(src):  # was "x.zip is not a zip archive"
        raise DataError(f"SRC {src} is not a readable zip archive (cut short by a download or "
                        f"copy, damaged, or another format named .zip); {SRC_ACCEPTED}")
    summary = pack_folder(src, out, args.resolution, args.channels, show_progress=not args.quiet)
    print(json.dumps(summary, indent=2, ensure_ascii=False))  # a path as the user wrote it
    return 0


SRC_ACCEPTED = ("give an image folder (SRC/<class>/<image> or images directly in SRC) or a "
                ".zip of one")


def check_zip_name(out: Path) -> None:
    """OUT must end in ``.zip``, the name ``gan train --dataset zip`` and dataset_tool.py read
    it by. A bare ``.zip`` is a hidden file's whole name to Python (no suffix): "give a path
    ending in .zip" named the very thing given."""
    if out.suffix.lower() == ".zip":
        return
    if out.name.lower() == ".zip":
        raise UserError(f"OUT {out}: give a file name before .zip (e.g. dataset.zip)")
    raise UserError(f"OUT {out}: give a path ending in .zip (e.g. dataset.zip)")


def check_power_of_two(side: int) -> None:
    """The zip's side must be a power of 2: stylegan2-ada's ``dataset_tool.py`` refuses any
    other, and so does every GAN network here (StyleGAN2 and DCGAN: >= 8; ``gan train
    --image-size``: >= 16); ``classify train`` resizes to its own size whatever is stored."""
    if side & (side - 1):
        below = 1 << (side.bit_length() - 1)
        raise UserError(f"--resolution {side}: a stylegan2-ada zip's side is a power of 2 "
                        f"(dataset_tool.py and the GAN networks take no other); give {below} "
                        f"or {2 * below}")
