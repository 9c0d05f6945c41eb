"""Pack an image folder into a stylegan2-ada dataset zip (see ``tasks/data/cli.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from robustrep.data.local import FlatImageFolder, image_folder
from robustrep.data.zipdata import pack_images
from robustrep.tasks.common.checkpoint import write_atomic
from robustrep.tasks.common.errors import DataError, program_advice, report_skipped
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.rundir import check_output_file


def pack_folder(src: Path, out: Path, resolution: int, channels: int = 3,
                show_progress: bool = False) -> dict[str, Any]:
    """Write ``out`` from the images under ``src`` (every file opened first, so a bad image is
    named before anything is written), counting them as they are packed (a 70k-image folder
    takes minutes, as dataset_tool.py's bar shows); returns a summary."""
    check_output_file(out, "OUT")
    try:
        dataset = image_folder(src, resolution, channels, verify=True)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(program_advice(err, skip_option=False)) from None  # no such option
    report_skipped(dataset)
    dataset.transform = None  # the loader gives the PIL image; pack_images crops and resizes
    flat = isinstance(dataset, FlatImageFolder)
    labels = None if flat else list(dataset.targets)
    images = _counted((dataset[i][0] for i in range(len(dataset))), len(dataset), show_progress)
    write_atomic(out, lambda handle: pack_images(images, handle, resolution, channels, labels))
    return {"zip": str(out), "images": len(dataset), "resolution": resolution,
            "channels": channels,
            "labels": None if flat else {"classes": len(dataset.classes),
                                         "names": list(dataset.classes)}}


def _counted(images: Iterable[Any], total: int, show: bool) -> Iterator[Any]:
    """``images``, each counted on the progress bar once the zip has taken it."""
    with progress(total, desc="packing", enabled=show, unit="image") as bar:
        for image in images:
            yield image
            bar.update(1)
