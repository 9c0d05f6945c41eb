"""Whether ``robustrep gan sample`` has the room for what it is asked to draw, checked before any
sampling: memory for a grid or ``.pt`` file, which keeps every sample (:func:`check_memory`), and
disk for ``--outdir``'s PNGs, their bytes and their files (:func:`check_disk`). A count that
cannot fit is refused in one line, rather than found out hours later with the machine out of
memory or the disk full.

The machine's figures are Linux's ``MemAvailable`` (:func:`available_memory`) and the file
system's free bytes and files (:func:`disk_room`); where one is unknown, its check passes. Apart
from ``sample.py``: the room a request needs and has is one idea, drawing the samples another.
The messages name gan sample's options and files, and no other program checks its room, so the
module is gan's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.runfiles import existing_parent


def available_memory() -> int | None:
    """Bytes this machine can still give a process (Linux ``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(total: int, numel: int, why: str, images: bool = True) -> None:
    """A grid or ``.pt`` holds every sample (float32), and ``torch.cat`` copies them once more:
    refuse, before any sampling, a count that cannot fit, rather than end with the machine out
    of memory after hours of sampling (``--outdir`` alone streams the images instead)."""
    need = 2 * total * numel * 4
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"{why} keeps all {total:,} samples in memory: at least "
                        f"{_size(need)}, and this machine has {_size(have)} available; "
                        + ("write them one PNG at a time with --outdir DIR alone (batch by "
                           "batch), or draw fewer" if images else "draw fewer"))


def _size(nbytes: int) -> str:
    """``20.5MB``, ``3.15MB``, ``16.4kB``: tqdm's size formatter, in the unit that fits (a
    fixed GB showed a 3 MB disk and the 20 MB asked of it both as "0.0 GB")."""
    return tqdm.format_sizeof(nbytes, "B")


# a PNG's bytes besides its pixels: signature, IHDR, IDAT and IEND chunks, zlib's header
PNG_OVERHEAD = 70


def disk_room(folder: Path) -> tuple[int, int | None, int] | None:
    """Free bytes, free files (inodes; None where the file system does not count them) and the
    block size of the file system holding ``folder`` (or its nearest existing parent)."""
    folder = existing_parent(folder)
    try:
        stats = os.statvfs(folder)
        free = shutil.disk_usage(folder).free
    except (OSError, AttributeError):  # no statvfs (Windows), a folder gone meanwhile
        return None
    return free, (stats.f_favail if stats.f_files else None), stats.f_frsize or stats.f_bsize


def check_disk(total: int, numel: int, outdir: str | Path, option: str) -> None:
    """``--outdir`` gets one PNG per sample: refuse, before any file is listed or made, a count
    its file system cannot hold (``--num 100000000`` built 10^8 file names, then wrote images
    until the disk was full). A PNG of a sample takes at least ``numel / 2`` bytes (deflate
    rarely halves a generated image's 8-bit pixels) and at least one block of the disk."""
    room = disk_room(Path(outdir).expanduser().absolute())
    if room is None:
        return
    free, files, block = room
    each = -(-(numel // 2 + PNG_OVERHEAD) // max(block, 1)) * max(block, 1)
    need = total * each
    if need > free:
        raise UserError(f"{option} {total:,} with --outdir {outdir}: {total:,} PNGs need at "
                        f"least {_size(need)} ({each:,} bytes each at least, in whole blocks of "
                        f"{block:,} bytes), and its disk has {_size(free)} free; draw fewer, or "
                        f"choose a folder on a larger disk")
    if files is not None and total > files:
        raise UserError(f"{option} {total:,} with --outdir {outdir}: one PNG per sample, and "
                        f"its file system can hold only {files:,} more files (inodes); draw "
                        f"fewer, or choose a folder on another disk")
