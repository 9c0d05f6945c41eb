"""Image lists: the OpenOOD benchmark ``imglist`` format, one ``relative/path label`` per line.

Yang et al., "OpenOOD: Benchmarking Generalized Out-of-Distribution Detection", NeurIPS 2022
Datasets and Benchmarks (``benchmark_imglist/``); every listed file is checked at construction,
and ``verify=True`` opens each once (:mod:`robustrep.data.images`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from robustrep._validate import check_choice
from robustrep.data.images import check_source, drop_bad_images, image_transform, load_image


class ImageList(Dataset):
    """Images listed in an OpenOOD-style ``imglist``: one ``relative/path label`` per line.

    Blank lines and lines starting with ``#`` are skipped; the label is the last whitespace-
    separated token, so paths may contain spaces. Every listed file is checked at construction.

    Args:
        root: the folder the listed paths are relative to.
        list_file: the list (absolute, or relative to the working directory).
        transform: PIL image -> tensor.
        channels: 3 (RGB) or 1 (greyscale) decoding.
    """

    def __init__(self, root: str | os.PathLike, list_file: str | os.PathLike,
                 transform: Callable | None = None, channels: int = 3) -> None:
        check_choice("channels", channels, (1, 3))
        self.root, self.list_file = Path(root), Path(list_file)
        self.transform, self.channels = transform, channels
        if not self.list_file.is_file():
            raise FileNotFoundError(f"image list not found: expected a file at {self.list_file}")
        self.samples = self._parse()
        if not self.samples:
            raise ValueError(f"image list {self.list_file} lists no images")
        self.targets = [label for _, label in self.samples]

    def _parse(self) -> list[tuple[Path, int]]:
        samples = []
        lines: dict[Path, int] = {}  # resolved image -> the line that listed it first
        for number, line in enumerate(self._read_lines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            try:
                rel, label = parts[0], int(parts[1])
            except (IndexError, ValueError):
                raise ValueError(f"{self.list_file} line {number}: expected 'relative/path label' "
                                 f"with an integer label, got {line!r}") from None
            if Path(rel).is_absolute():  # OpenOOD's reader refuses it; the join read it anywhere
                raise ValueError(f"{self.list_file} line {number}: {rel} is an absolute path; "
                                 f"accepted: paths relative to root {self.root}, as OpenOOD's "
                                 f"image lists name them")
            path = self.root / rel
            if not path.is_file():
                raise FileNotFoundError(f"{self.list_file} line {number}: image {path} not found "
                                        f"(paths are relative to root {self.root})")
            first = lines.setdefault(path.resolve(), number)
            if first != number:  # it would be read, and counted, twice
                raise ValueError(f"{self.list_file} lines {first} and {number} list the same "
                                 f"image {path}; keep one line per image")
            samples.append((path, label))
        return samples

    def _read_lines(self) -> list[str]:
        # utf-8-sig: Notepad starts a UTF-8 file with a byte order mark, which would otherwise
        # become part of the first path
        try:
            return self.list_file.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"image list {self.list_file} is not UTF-8 text (byte "
                             f"{err.start}: {err.reason}); save it as UTF-8") from None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        image = load_image(path, self.channels)
        return (self.transform(image) if self.transform else image), label


def image_list(root: str | os.PathLike, list_file: str | os.PathLike, size: int,
               channels: int = 3, verify: bool = False, skip_bad: bool = False) -> ImageList:
    """Images of an OpenOOD ``imglist`` (``relative/path label`` lines), resized and
    centre-cropped to ``size``; paths are relative to ``root``. ``verify`` and ``skip_bad`` as
    in :func:`image_folder`."""
    root = check_source(root, size, channels, size_required=True)
    if not root.is_dir():
        raise FileNotFoundError(f"image root not found: expected a directory at {root}")
    dataset = ImageList(root, list_file, image_transform(size, channels), channels)
    if verify:
        dataset = drop_bad_images(dataset, [p for p, _ in dataset.samples], root, skip_bad)
    return dataset
