"""The checks of ``classify eval --cifar-c ROOT``: the released CIFAR-10-C / CIFAR-100-C files
(Hendrycks & Dietterich, ICLR 2019; :mod:`robustrep.data.cifar_c`) are scored only against the
clean accuracy of the same images.

The run must be a CIFAR run on every class, evaluated on the test split that the files corrupt
(:func:`check_cifar_c`, with each file's layout read from its header, before the clean pass),
and the files' labels must be those of the evaluated images, in order
(:func:`check_cifar_c_labels`, after the clean pass, before the attacks): otherwise the mCE
compared other images, or other resolutions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from robustrep.corruptions import SEVERITIES
from robustrep.data.cifar_c import cifar_c_files
from robustrep.tasks.common.errors import DataError, UserError

CIFAR_C_DATASETS = ("cifar10", "cifar100")


def check_cifar_c(config: dict[str, Any], root: str | Path) -> None:
    """``--cifar-c`` needs a CIFAR run on every class, evaluated on the test split (the files
    corrupt it), and every released file (checked before any work)."""
    dataset = config.get("dataset")
    if dataset not in CIFAR_C_DATASETS:
        raise UserError(f"--cifar-c needs a run trained on cifar10 or cifar100; this run's "
                        f"dataset is {dataset!r}")
    if config.get("classes") is not None:
        raise UserError(f"--cifar-c: the files hold every {dataset} class, and this run was "
                        f"trained on classes {config['classes']} (its labels are renumbered); "
                        f"evaluate a run trained on every class")
    if (config.get("val_fraction") or 0) > 0:
        raise UserError(f"--cifar-c: this run's clean accuracy is on a held-out part of the "
                        f"training split (val_fraction {config['val_fraction']}), and the files "
                        f"corrupt the test split, so their mCE would compare other images")
    try:
        files = cifar_c_files(root)
    except FileNotFoundError as err:
        raise DataError(f"--cifar-c {root}: {err}") from None
    size = _cifar_c_image_size(root, files)
    if config.get("channels") != 3:  # was a traceback after the clean pass and the attacks
        raise UserError(f"--cifar-c: the files hold RGB images and the model takes "
                        f"{config.get('channels')} channel(s)")
    if config.get("image_size") not in (None, size):  # was a negative relative mCE
        raise UserError(f"--cifar-c: the files hold {size}x{size} images and the clean "
                        f"accuracy is on {config['image_size']}x{config['image_size']} "
                        f"(image_size), so their mCE would compare other resolutions; "
                        f"evaluate a model at {size}x{size} (--image-size {size} with --model)")


def _cifar_c_image_size(root: str | Path, files: dict[str, Path]) -> int:
    """The side of the files' images, each file checked against the released layout (uint8
    ``[5 N, H, W, 3]``, ``5 N`` labels) from its header alone, before any work."""
    import numpy as np
    shapes = {name: _header(root, path) for name, path in files.items()}  # each file named
    labels = shapes.pop("labels")
    # labels as released (uint8 [5 N]); a float or [5 N, 1] array was truncated or misread
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"--cifar-c {root}: labels.npy holds {labels.dtype} "
                        f"{list(labels.shape)}; expected the released layout, integer [5 x N] "
                        f"(uint8, the test labels once per severity)")
    n_labels = len(labels)
    sides = set()
    for name, images in shapes.items():
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or \
                len(images) != n_labels or len(images) % len(SEVERITIES) or \
                images.shape[1] != images.shape[2]:
            raise DataError(f"--cifar-c {root}: {name}.npy holds {images.dtype} "
                            f"{list(images.shape)}; expected the released layout, uint8 "
                            f"[5 x N, H, H, 3] with as many labels in labels.npy "
                            f"({n_labels})")
        sides.add(int(images.shape[1]))
    if len(sides) > 1:
        raise DataError(f"--cifar-c {root}: the files hold images of several sizes "
                        f"({', '.join(map(str, sorted(sides)))})")
    return sides.pop()


def _header(root: str | Path, path: Path) -> Any:
    """The array of the .npy file ``path``, memory-mapped (its header read, no values), or a
    DataError naming the file (the line said "a file", not which)."""
    import numpy as np
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DataError(f"--cifar-c {root}: {path.name} is not a readable .npy array "
                        f"({' '.join(str(err).split())})") from None


def check_cifar_c_labels(root: str | Path, labels: Tensor) -> None:
    """The files' first ``len(labels)`` rows of each severity must be the evaluated images,
    which the released ``labels.npy`` (the test labels, repeated per severity) shows: files
    shorter than the clean set were scored on fewer images than the clean accuracy (and said
    to be "the first n images"), and CIFAR-10-C under a cifar100 run, or files in another
    order, gave an mCE of other images."""
    import numpy as np
    file = np.load(cifar_c_files(root, ())["labels"], mmap_mode="r")  # a missing one named
    per, n = len(file) // len(SEVERITIES), len(labels)
    if per < n:
        raise DataError(f"--cifar-c {root}: the files hold {per} images per severity and the "
                        f"clean accuracy is on {n}, so their mCE would compare other images; "
                        f"give --max-samples {per}, or the complete files")
    want = labels.cpu().numpy()
    for s in range(len(SEVERITIES)):
        got = np.asarray(file[s * per:s * per + n], dtype=np.int64)
        wrong = np.flatnonzero(got != want)
        if wrong.size:
            i = int(wrong[0])
            raise DataError(f"--cifar-c {root}: labels.npy does not list the evaluated images' "
                            f"labels in order (severity {s + 1}, image {i}: {got[i]} in the "
                            f"file, {want[i]} in the data); give the corrupted test split of "
                            f"this dataset (CIFAR-10-C for cifar10, CIFAR-100-C for cifar100)")
