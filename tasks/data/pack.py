"""Pack an image folder, or a zip of one, into a stylegan2-ada dataset zip (see
``tasks/data/cli.py``)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from robustrep.data.folder_splits import EVAL_SPLITS, TRAIN_SPLITS
from robustrep.data.folders import ZipImageFolder
from robustrep.data.local import image_folder
from robustrep.data.zipdata import LABELS_FILE
from robustrep.data.zippack import pack_images
from robustrep.tasks.common.errors import DataError, program_advice, report_skipped
from robustrep.tasks.common.output_paths import check_output_file
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.runfiles import (TMP_SUFFIX, remove_abandoned_tmp, tmp_files,
                                             write_atomic)
from robustrep.tasks.data.channels import source_channels


def is_zip_source(src: Path) -> bool:
    """Whether ``src`` is read as a zip of an image folder (a file named ``.zip``, as
    ``dataset_tool.py --source`` tells one) rather than as a folder."""
    return src.suffix.lower() == ".zip" and not src.is_dir()


def pack_folder(src: Path, out: Path, resolution: int, channels: int | None = None,
                show_progress: bool = False) -> dict[str, Any]:
    """Write ``out`` from the images under ``src``, a folder or a zip of one (every image opened
    first, so a bad image is named before anything is written), counting them as they are
    packed (a 70k-image folder takes minutes, as dataset_tool.py's bar shows); returns a
    summary. Images smaller than ``resolution`` are enlarged, as dataset_tool.py enlarges
    them, and counted in a note (they come out blurred). ``channels`` None: the source's own
    (``tasks/data/channels.py``), 1 or 3 converts every image; the summary says which."""
    check_output_file(out, "OUT")
    dataset, channels, mixed = _open_source(src, resolution, channels, show_progress)
    if getattr(dataset, "top", None):
        print(_inside_note(src, dataset.top), file=sys.stderr)
    if mixed:
        print(mixed, file=sys.stderr)
    report_skipped(dataset)
    dataset.transform = None  # the loader gives the PIL image; pack_images crops and resizes
    flat = dataset.layout == "flat"
    labels = None if flat else list(dataset.targets)
    enlarged: list[int] = []
    _remove_abandoned(out)
    # closed here, not when collected: a stop's line must come after the bar's last one
    with closing(_counted(_images(dataset, resolution, enlarged), len(dataset),
                          show_progress)) as images:
        # a new file only: a second pack to OUT finishing first keeps its zip (the rename
        # replaced it, both exiting 0)
        write_atomic(out, lambda handle: pack_images(images, handle, resolution, channels,
                                                     labels), replace=False)
    # again: a rerun soon after a kill found the killed pack's file too new to remove, and once
    # OUT is there no later pack to it comes this far (OUT exists)
    _remove_abandoned(out, left=True)
    if enlarged:
        print(_enlarged_note(dataset, enlarged, resolution), file=sys.stderr)
    return {"zip": str(out), "images": len(dataset), "resolution": resolution,
            "channels": channels, "enlarged": len(enlarged),
            "labels": None if flat else {"classes": len(dataset.classes),
                                         "names": list(dataset.classes)}}


def _remove_abandoned(out: Path, left: bool = False) -> None:
    """Remove the temporary zips (``.OUT.XXXXXXXX.tmp``, beside ``out``) of earlier packs to
    ``out`` that were killed mid-write (``kill -9``, a power loss: no clean-up ran), each as big
    as the zip; a pack to ``out`` still going on keeps its own (see remove_abandoned_tmp).
    ``left`` (``out`` written): the ones kept are named, as nothing removes them later."""
    def own(name: str) -> bool:
        return name == out.name
    removed = remove_abandoned_tmp(out.parent, own)
    if removed:
        print(f"note: removed {removed} temporary file(s) .{out.name}.*{TMP_SUFFIX} that an "
              f"earlier data pack to {out} left when it was killed", file=sys.stderr)
    kept = tmp_files(out.parent, own) if left else []
    if kept:
        more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
        print(f"note: left {kept[0].name}{more} beside {out}: the temporary file(s) of another "
              f"data pack to {out}, writing it now or killed too recently to tell; remove them "
              f"once no other data pack to {out} is running", file=sys.stderr)


def _open_source(src: Path, resolution: int, channels: int | None,
                 show: bool = False) -> tuple[Any, int, str | None]:
    """The images of ``src`` as a dataset, the channels they are packed in, and a note on a
    source mixing greyscale and colour images (else None; printed by the caller once the bar
    is gone): an image folder, or a zip read by the same scan (``ZipImageFolder``); a source
    holding stylegan2-ada labels is refused from the scan of its names, before any image is
    read (70k images take minutes to open), then every image is, counted on a bar of its own
    (``show``): 70k 300x300 JPEGs took about 100 s, in silence. ``channels`` None: the
    source's own, from every image's header (``source_channels``), read as that stage starts."""
    names = _scan(src, resolution, channels or 3, verify=False)
    _refuse_labels_file(src, names)
    _refuse_splits(src, names)
    # leave=False: cleared once done, as a stage before the packing bar (off a terminal, lines
    # only for a check long enough to reach one); closed before a bad image's line is printed
    note = None
    with progress(len(names), desc="checking", enabled=show, unit="image",
                  leave=False) as bar:
        def checked(done: int, total: int) -> None:
            bar.update(done - bar.n)
        if channels is None:
            channels, note = source_channels(names.samples)
        # scanned again (the names are cheap), every image opened this time
        dataset = _scan(src, resolution, channels, verify=True, checked=checked)
    return dataset, channels, note


def _scan(src: Path, resolution: int, channels: int, verify: bool,
          checked: Callable[[int, int], None] | None = None) -> Any:
    """``src`` read as a folder or a zip of one; with ``verify`` every image is opened, and
    ``checked(done, total)`` called after each."""
    try:
        if is_zip_source(src):
            return ZipImageFolder(src, channels, verify=verify, checked=checked)
        return image_folder(src, resolution, channels, verify=verify, checked=checked)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(program_advice(err, skip_option=False)) from None  # no such option


def _refuse_labels_file(src: Path, dataset: Any) -> None:
    """Refuse a ``dataset.json`` among the files the scan did not take as images."""
    found = next((p for p in dataset.unread if Path(p).name == LABELS_FILE), None)
    if found is not None:
        # dataset_tool.py labels images by it; here the class folders do, and it would be lost
        raise DataError(f"SRC {src} holds {found}, stylegan2-ada's labels, which data pack "
                        f"does not read (it labels images by their class folder, "
                        f"SRC/<class>/<image>): remove it to pack the images without those "
                        f"labels, or sort them into class folders")


def _refuse_splits(src: Path, dataset: Any) -> None:
    """Refuse timm's split layout, ``SRC/train/<class>/`` beside ``SRC/val/`` (or another
    evaluation name, ``folder_splits.EVAL_SPLITS``):
    read as class folders it was packed as two classes, train and val, its real classes lost
    and its held-out images mixed in, where ``classify train --dataset imagefolder`` reads
    the same folder as its splits (``folder_split``)."""
    classes = set(getattr(dataset, "classes", ()))
    train_split = next((name for name in TRAIN_SPLITS if name in classes), None)
    found = [name for name in EVAL_SPLITS if name in classes]
    if dataset.layout != "classes" or train_split is None or not found:
        return
    if is_zip_source(src):  # a folder inside a zip cannot be given as SRC
        each, train = "unzip it and pack each split", f"FOLDER/{train_split}"
    else:
        each, train = "pack each split", shlex.quote(str(src / train_split))
    raise DataError(f"SRC {src} holds {train_split}/ and {found[0]}/, timm's split layout (as "
                    f"classify reads such a folder), which data pack would read as two "
                    f"classes named {train_split} and {found[0]}: {each} on its own (data "
                    f"pack {train} {train_split}.zip), or rename the folders if they are "
                    f"classes")


def _inside_note(src: Path, top: str) -> str:
    """The note for a SRC read from inside the folder ``top`` it holds alone (its class folders
    are the classes, not one merged class), and the SRC that names that folder (quoted: a name
    with a space would be read as two words)."""
    inner = top if is_zip_source(src) else str(src / top)  # a zip's once unzipped
    held = top if is_zip_source(src) else top.split("/")[0]
    return (f"note: {src} holds one folder, {held}/, and nothing else: the images are read "
            f"from inside {top}/, as `data pack {shlex.quote(inner)}` reads them")


def _images(dataset: Any, resolution: int, enlarged: list[int]) -> Iterator[Any]:
    """The dataset's images in order; the index of each whose shorter side is below
    ``resolution`` (the square cropped from it is enlarged) is appended to ``enlarged``."""
    for i in range(len(dataset)):
        image = dataset[i][0]
        if min(image.size) < resolution:
            enlarged.append(i)
        yield image


def _enlarged_note(dataset: Any, enlarged: list[int], resolution: int) -> str:
    """One line: how many images were enlarged (dataset_tool.py does it without a word), and
    the first of them."""
    first = dataset.samples[enlarged[0]]  # a flat folder's samples are paths, not pairs
    first = first[0] if isinstance(first, tuple) else first
    return (f"note: {len(enlarged)} of {len(dataset)} images were smaller than "
            f"{resolution}x{resolution} and were enlarged (the first: {first})")


def _counted(images: Iterator[Any], total: int, show: bool) -> Iterator[Any]:
    """``images``, each counted on the progress bar once the zip has taken it."""
    with progress(total, desc="packing", enabled=show, unit="image") as bar:
        for image in images:
            yield image
            bar.update(1)
