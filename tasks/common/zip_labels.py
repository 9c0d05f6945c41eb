"""Why a dataset zip's images carry one label, said where a program needs classes.

A ``.zip`` is read as a stylegan2-ada dataset zip (``dataset_tool.py``): its labels are its
top-level ``dataset.json``'s alone, and its folders (``00000/``, ``00001/``, ...) are numbered
shards of 1,000 images, no classes. A zip of class folders (``<class>/<image>``) therefore reads
as one label, and "give images in class folders" would name what it already holds; ``robustrep
data pack`` writes the zip with a ``dataset.json`` from its class folders. ``classify train``
and ``ood score``'s per-class fit data say it the same way (:func:`zip_labels_advice`).
"""

from __future__ import annotations

import shlex
from typing import Any

from robustrep.data import innermost


def dataset_zip(dataset: Any) -> Any:
    """The stylegan2-ada dataset zip ``dataset`` reads (through subsets and wrappers), or
    None."""
    from robustrep.data.zipdata import ZipImageDataset
    dataset = innermost(dataset)
    return dataset if isinstance(dataset, ZipImageDataset) else None


def zip_labels_advice(zip_set: Any, label: int, image_size: int | None, give: str) -> str:
    """Where the one ``label`` of ``zip_set`` comes from, and the ``data pack`` command that
    labels a zip of class folders (``--resolution`` rounded up to a power of 2, the sides data
    pack writes; ``R`` where the program has no image size), whose zip is then given as
    ``give`` (``--data-root OUT.zip``)."""
    held = "it has none" if not zip_set.has_labels else f"which gives every image label {label}"
    side = "R" if image_size is None else str(1 << (image_size - 1).bit_length())
    return (f"a zip is read as a stylegan2-ada dataset zip, labelled by its top-level "
            f"dataset.json ({held}); for a zip of class folders (<class>/<image>), `robustrep "
            f"data pack {shlex.quote(str(zip_set.path))} OUT.zip --resolution {side}` writes "
            f"one labelled by its class folders: give {give}")
