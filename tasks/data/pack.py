"""Pack an image folder into a stylegan2-ada dataset zip (see ``tasks/data/cli.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustrep.data.local import FlatImageFolder, image_folder
from robustrep.data.zipdata import pack_images
from robustrep.tasks.common.checkpoint import write_atomic
from robustrep.tasks.common.errors import DataError, program_advice, report_skipped
from robustrep.tasks.common.rundir import check_output_file


def pack_folder(src: Path, out: Path, resolution: int, channels: int = 3) -> dict[str, Any]:
    """Write ``out`` from the images under ``src`` (every file opened first, so a bad image is
    named before anything is written); returns a summary."""
    check_output_file(out, "OUT")
    try:
        dataset = image_folder(src, resolution, channels, verify=True)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(program_advice(err, skip_option=False)) from None  # no such option
    report_skipped(dataset)
    dataset.transform = None  # the loader gives the PIL image; pack_images crops and resizes
    flat = isinstance(dataset, FlatImageFolder)
    labels = None if flat else list(dataset.targets)
    images = (dataset[i][0] for i in range(len(dataset)))
    write_atomic(out, lambda handle: pack_images(images, handle, resolution, channels, labels))
    return {"zip": str(out), "images": len(dataset), "resolution": resolution,
            "channels": channels,
            "labels": None if flat else {"classes": len(dataset.classes),
                                         "names": list(dataset.classes)}}
