"""CIFAR-10-C and CIFAR-100-C from the released files on disk; nothing here downloads.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019; files from ``hendrycks/robustness`` (Zenodo records 2535967 for
CIFAR-10-C and 3555552 for CIFAR-100-C). Layout, one folder per dataset::

    root/labels.npy              uint8 [50000]: the 10,000 test labels, repeated per severity
    root/<corruption>.npy        uint8 [50000, 32, 32, 3]: severity 1 (rows 0-9999), then 2 .. 5

with the 15 benchmark corruptions of :data:`robustrep.corruptions.BENCHMARK` (the extras
``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate`` also load when present). The
severity blocks are read by slicing a memory map, so one block costs 30 MB, not 150 MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robustrep.corruptions import BENCHMARK, SEVERITIES

__all__ = ["CIFAR_C_CORRUPTIONS", "cifar_c", "cifar_c_files"]

CIFAR_C_CORRUPTIONS = BENCHMARK
_EXTRAS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


def cifar_c_files(root: str | Path, corruptions=CIFAR_C_CORRUPTIONS) -> dict[str, Path]:
    """The ``.npy`` path of each corruption and of ``labels``; raises naming the first missing."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-C root {root} is not a folder; expected the extracted "
                                f"CIFAR-10-C or CIFAR-100-C folder with labels.npy and "
                                f"<corruption>.npy files")
    files = {}
    for name in ("labels", *corruptions):
        if name != "labels" and name not in BENCHMARK + _EXTRAS:
            raise ValueError(f"corruption must be one of {', '.join(BENCHMARK + _EXTRAS)}; "
                             f"got {name!r}")
        path = root / f"{name}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-C file {path} is missing; expected the released "
                                    f"{name}.npy in {root}")
        files[name] = path
    return files


def cifar_c(root: str | Path, corruption: str, severity: int) -> tuple[Tensor, Tensor]:
    """Images ``[N, 3, 32, 32]`` float in [0, 1] and labels ``[N]`` int64 of one severity."""
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer 1..5; got {severity!r}")
    files = cifar_c_files(root, (corruption,))
    images = np.load(files[corruption], mmap_mode="r")
    labels = np.load(files["labels"], mmap_mode="r")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or \
            len(images) % len(SEVERITIES) or len(labels) != len(images):
        raise ValueError(f"{files[corruption]} must hold uint8 [5 * N, H, W, 3] images with as "
                         f"many labels in labels.npy; got {images.dtype} {images.shape} and "
                         f"{len(labels)} labels")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):  # 3.4 read as 3
        raise ValueError(f"{files['labels']} must hold integer labels [5 * N] (uint8 as "
                         f"released); got {labels.dtype} {labels.shape}")
    n = len(images) // len(SEVERITIES)
    rows = slice((severity - 1) * n, severity * n)
    x = torch.from_numpy(np.array(images[rows])).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.asarray(labels[rows], dtype=np.int64))
    return x, y
