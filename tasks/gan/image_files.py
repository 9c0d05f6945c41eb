"""The PNG files ``robustrep gan sample --outdir`` writes, one per sample: their names
(``seed0000.png`` per seed, as stylegan2-ada's ``generate.py`` names them, else ``000000.png``
on), made as they are asked for (:class:`ImageFiles`); their check before any sampling (none over
an existing file without ``--force``, none in a run's ``checkpoints/``; a killed call's temporary
files removed, other images in the folder named: :func:`image_files`); and each image written
whole, in generate.py's 8-bit conversion (:func:`write_images`).

Apart from ``sample.py``: which files, and how an image becomes one, is one idea; drawing the
samples and writing their grid or ``.pt`` file (:mod:`robustrep.tasks.gan.sample`) is another.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.folder_guard import guard_folder
from robustrep.tasks.common.output_paths import check_writable
from robustrep.tasks.common.runfiles import TMP_SUFFIX, remove_abandoned_tmp, write_atomic


class ImageFiles(Sequence):
    """The PNG paths of ``--outdir``, each made when it is asked for (``files[i:j]``): a list
    of ``--num`` paths took minutes and gigabytes of memory for 10^8 of them."""

    def __init__(self, folder: Path, seeds: list[int] | None, num: int):
        self.folder, self.seeds, self.num = folder, seeds, num
        self._names: set[str] | None = None  # the seeds' names, made when first asked for

    def __len__(self) -> int:
        return self.num if self.seeds is None else len(self.seeds)

    def name(self, i: int) -> str:
        return f"{i:06d}.png" if self.seeds is None else f"seed{self.seeds[i]:04d}.png"

    def is_own(self, name: str) -> bool:
        """Whether ``name`` is one of the files it would write."""
        if self.seeds is None:
            number = name[:-4]
            return (name.endswith(".png") and number.isdigit() and int(number) < self.num
                    and self.name(int(number)) == name)
        if self._names is None:
            self._names = {self.name(i) for i in range(len(self))}
        return name in self._names

    def make(self) -> None:
        """The folder, made before the first image and guarded from then on: removed or moved
        while the images are written, the next one stops the command (a folder made again
        would hold only the later images)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        guard_folder(self.folder, f"--outdir {self.folder} was removed or moved while gan "
                                  f"sample was writing there; nothing more is written there; "
                                  f"the same command again writes all the images")

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.folder / self.name(index % len(self))

    def taken(self) -> list[Path]:
        """The files it would write that are there already, in writing order (the folder
        listed once: a file test per name took as long as the names did)."""
        try:
            there = set(os.listdir(self.folder))  # broken links too, as the writes meet them
        except (FileNotFoundError, NotADirectoryError):
            return []
        if self.seeds is not None:
            return [self.folder / n for n in map(self.name, range(len(self))) if n in there]
        numbers = sorted(int(n[:-4]) for n in there if n.endswith(".png") and n[:-4].isdigit()
                         and len(n) >= 10 and int(n[:-4]) < self.num)
        return [self[i] for i in numbers if self.name(i) in there]


def image_files(outdir: str | Path, seeds: list[int] | None, num: int,
                force: bool) -> ImageFiles:
    """The PNG paths of ``--outdir`` (``seed0000.png`` per seed, as generate.py names them, else
    ``000000.png`` on), checked before any sampling: none over a file unless ``force``."""
    folder = check_writable(outdir, "--outdir")
    if "checkpoints" in folder.resolve().parts:
        raise UserError(f"--outdir {outdir} is inside a checkpoints/ folder, whose files a run "
                        f"needs to resume and sample; write the images elsewhere")
    files = ImageFiles(folder, seeds, num)
    taken = files.taken()
    if taken and not force:
        raise UserError(f"--outdir {outdir} already holds {taken[0].name}"
                        + (f" and {len(taken) - 1} more of the files it would write"
                           if len(taken) > 1 else "")
                        + "; pass --force to overwrite them or choose another folder")
    removed = remove_abandoned_tmp(folder, files.is_own)
    if removed:  # a killed gan sample's half-written PNGs
        print(f"note: removed {removed} temporary file(s) .*.png.*{TMP_SUFFIX} that an earlier "
              f"gan sample into {folder} left when it was killed", file=sys.stderr)
    _note_other_images(outdir, files)
    return files


def _note_other_images(outdir: str | Path, files: ImageFiles) -> None:
    """Say when ``--outdir`` holds images this command does not write: a rerun with ``--force``
    and a smaller ``--num`` left the earlier run's 000050.png... beside the new ones, and
    ``gan fid DIR`` then scored both sets as one, without a word."""
    from robustrep.data import IMG_EXTENSIONS
    try:
        names = os.listdir(files.folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    others = sorted(n for n in names if not n.startswith(".") and not files.is_own(n)
                    and os.path.splitext(n)[1].lower() in IMG_EXTENSIONS)
    if others:
        print(f"note: --outdir {outdir} also holds {len(others)} image(s) this command does not "
              f"write (the first: {others[0]}); gan fid {outdir} would read them with the new "
              f"ones: choose an empty folder to keep the sets apart", file=sys.stderr)


def write_images(samples: torch.Tensor, files: Sequence[Path],
                 written: Callable[[int], None] = lambda n: None, replace: bool = True) -> None:
    """Each image as its own PNG, in generate.py's conversion ``x * 127.5 + 128`` clamped to
    0..255 and truncated to uint8 (torchvision's grid rounds the same way); ``written(n)``
    after the n-th file is whole. ``replace=False``: new files only, none written meanwhile
    by another process replaced."""
    from PIL import Image
    pixels = (samples * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for n, (image, path) in enumerate(zip(pixels, files), 1):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        write_atomic(path, lambda handle, p=picture: p.save(handle, format="PNG"), replace)
        written(n)
