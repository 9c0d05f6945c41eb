"""Training and evaluation data for the classify program, and a resumable batch order.

Datasets come from :mod:`robustrep.data` (the built-in digits, or local CIFAR-10/100, SVHN and
image folders; nothing is downloaded). This module adds what a training run needs on top:

- a class subset (``classes=[0, 1, 2, 3, 4]``; labels are kept, so the head has ``max + 1``
  outputs and a 0-4 classifier scores 5-9 as "other" in the OOD program);
- checks that images have the shape and channel count the config expects, and that the number of
  classes fits the head, with errors that name what was expected;
- :class:`StepBatches`: the batch order is a function of ``(seed, step)`` alone, so a resumed run
  reads exactly the batches the uninterrupted run would have, without saving sampler state.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from robustrep import data as data_lib
from robustrep.data import ImageTensorDataset, create_dataset, image_shape, innermost
from robustrep.data import labels as dataset_labels
from robustrep.data.folder_splits import left_out_line, split_folders
from robustrep.data import num_classes as dataset_num_classes

from robustrep.tasks.common.errors import (DataError, images_out_of_memory, program_advice,
                                           report_skipped)
from robustrep.tasks.common.batches import StepBatches
from robustrep.tasks.common.download import DATASET_FILES
from robustrep.tasks.common.workers import resolve_workers
from robustrep.tasks.common.zip_labels import dataset_zip, zip_labels_advice

from .config import ClassifyConfig


@dataclass
class DataInfo:
    num_classes: int
    channels: int
    image_size: int
    train_size: int
    eval_size: int
    eval_split: str
    class_names: list[str] | None = None  # an image folder's, in label order
    data_classes: int | None = None  # the outputs the data's labels need (max label + 1)


def select_classes(dataset: Dataset, classes: list[int] | None, what: str) -> Dataset:
    """:func:`robustrep.data.select_classes`, a missing class being a DataError."""
    try:
        return data_lib.select_classes(dataset, classes, what)
    except ValueError as err:
        raise DataError(str(err)) from None


def _load(cfg: ClassifyConfig, train: bool, root: str | None = None) -> Dataset:
    kwargs: dict[str, Any] = {}
    if cfg.dataset == "digits":
        kwargs["classes"] = cfg.classes
    if cfg.dataset == "lsun":
        kwargs["classes"] = cfg.lsun_classes
    if cfg.dataset == "imagefolder" and cfg.class_names is not None:
        kwargs["classes"] = list(cfg.class_names)  # the run's labels, whatever folders are here
    if cfg.dataset in ("imagefolder", "imagelist", "zip"):
        kwargs["verify"] = True  # every file opened once now, not when a batch reaches it
    if cfg.dataset == "imagefolder":
        kwargs["skip_bad"] = cfg.skip_bad_images
    if cfg.channels is not None and cfg.channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3 for dataset {cfg.dataset!r}; got {cfg.channels}")
    root = cfg.data_root if root is None else root
    if cfg.dataset != "digits":
        check_root(cfg.dataset, root, train)
    try:
        dataset = create_dataset(cfg.dataset, root=root, train=train, size=cfg.image_size,
                                 channels=cfg.channels, **kwargs)
    except (FileNotFoundError, ValueError, ImportError) as err:  # names the file or the extra
        raise DataError(program_advice(err)) from None
    except (RuntimeError, MemoryError) as err:
        raise images_out_of_memory(err, cfg.dataset, cfg.image_size) from None
    report_skipped(dataset)
    if cfg.dataset != "digits":
        dataset = select_classes(dataset, cfg.classes, f"{cfg.dataset} at {root}")
    return dataset


# What a dataset's root must hold (robustrep.data's readers), by split (train, eval): looked
# for before the reader runs, so that a wrong --data-root is answered with what it holds.
ROOT_ENTRIES = {"cifar10": ("cifar-10-batches-py/",) * 2, "cifar100": ("cifar-100-python/",) * 2,
                "svhn": ("train_32x32.mat", "test_32x32.mat")}
ROOT_LAYOUTS = {"imagefolder": "a folder of images (ROOT/<class>/<image>, or the images in ROOT)",
                "lsun": "a folder of LSUN databases (<category>_<split>_lmdb/)",
                "zip": "a dataset .zip (robustrep data pack writes one)"}


def check_root(dataset: str, root: str | None, train: bool) -> None:
    """The data root of ``dataset`` (read from disk), refused in one line before it is read:
    none given, one that does not exist, a file where a folder is read, or a folder without
    the dataset's entry (:data:`ROOT_ENTRIES`), each saying what is there instead. (Was: "give
    --data-root" also when it was given.)"""
    fetch = "; add --download to fetch it" if dataset in DATASET_FILES else ""
    if root is None:
        raise DataError(f"dataset {dataset!r} reads local files: give --data-root (the folder "
                        f"that holds it{fetch})")
    path = Path(root).expanduser()
    entry = ROOT_ENTRIES[dataset][0 if train else 1] if dataset in ROOT_ENTRIES else None
    wanted = f"the folder holding {entry}" if entry else ROOT_LAYOUTS.get(dataset, "its folder")
    if not path.exists():
        above = next(p for p in path.absolute().parents if p.exists())
        raise DataError(f"--data-root {root} does not exist (expected {wanted}; {above} holds "
                        f"{_listing(above)}){fetch}")
    is_zip = dataset == "zip" or (dataset == "imagefolder" and path.suffix.lower() == ".zip")
    if not is_zip and not path.is_dir():  # an imagefolder root ending in .zip is read as a zip
        raise DataError(f"--data-root {root} is a file, not a folder (expected {wanted})")
    if dataset == "zip" and path.is_dir():  # was: "dataset zip not found: expected a file at"
        raise DataError(f"--data-root {root} is a folder, not a file (expected {wanted}); it "
                        f"holds {_listing(path)}")
    if entry and not (path / entry).exists():
        raise DataError(f"--data-root {root} has no {entry}, which dataset {dataset} reads; it "
                        f"holds {_listing(path)}{fetch}")


def _listing(folder: Path, most: int = 8) -> str:
    """What ``folder`` holds, in one line: a few names (folders with a trailing /)."""
    try:
        names = sorted(p.name + "/" * p.is_dir() for p in folder.iterdir())
    except OSError as err:
        return f"nothing readable ({err.strerror or err})"
    if not names:
        return "nothing (it is empty)"
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _folder_splits(cfg: ClassifyConfig) -> tuple[str | None, str | None]:
    """The training and evaluation splits of timm's layout when an image folder has them
    (``root/train`` and ``root/val``, ``root/validation``, ...: ``folder_splits.split_folders``);
    what is left out beside them (the evaluation split too, under ``--val-fraction``, which
    holds out a share of the training split instead) is said in a note."""
    root = Path(cfg.data_root).expanduser() if cfg.data_root else None
    try:  # train/ beside folders of no evaluation name (classes, dev/) is refused there
        splits = split_folders(root) if root is not None else None
    except ValueError as err:
        raise DataError(f"--data-root {err}") from None
    if splits is None:
        return None, None
    read = (splits.train, splits.evaluation) if cfg.val_fraction == 0 else (splits.train,)
    line = left_out_line(f"--data-root {root}", splits, read)
    if line:
        print(f"note: {line}", file=sys.stderr)
    return str(splits.train), splits.evaluation and str(splits.evaluation)


def _holdout(dataset: Dataset, fraction: float, seed: int,
             rule: str = "stratified") -> tuple[Dataset, Dataset]:
    """(training share, held-out share) of ``dataset``, a function of ``seed`` alone: a resumed
    run and ``classify eval`` of it draw the split it trained on. ``stratified`` (``--holdout``):
    each class's first :func:`held_counts` images in one seeded permutation. ``random``: the
    permutation's first ``fraction`` of all images, the rule of runs saved before (their config
    says so, ``config.saved_config``), which could hold out a small class's every image."""
    if not 0 < fraction < 1:
        raise DataError(f"val_fraction must lie in (0, 1) to hold out data; got {fraction}")
    n = len(dataset)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    if rule == "random":
        n_val = max(1, round(fraction * n))
        return Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val])
    labels = dataset_labels(dataset)[perm].tolist() if n else []
    counts = Counter(labels)
    left = held_counts(counts, fraction)
    held = []  # in permutation order: each class's first left[y] images
    for y in labels:
        held.append(left[y] > 0)
        left[y] -= held[-1]
    if len(counts) > 1 and not any(held):  # one label: refused as such (_check_two_labels)
        raise DataError("no class of the training data has two images, so none can be held out "
                        "for evaluation (a class's one image is kept for training): add images, "
                        "or give the evaluation images as ROOT/val beside ROOT/train")
    _note_unmeasured(dataset, counts)
    return (Subset(dataset, [i for i, h in zip(perm, held) if not h]),
            Subset(dataset, [i for i, h in zip(perm, held) if h]))


def held_counts(counts: dict[int, int], fraction: float) -> dict[int, int]:
    """The images held out of each class of ``counts`` (label: images): ``fraction`` of them
    rounded half up, at least 1 (every class of two images or more is scored) and never the
    last (a class of one image keeps it for training). Per class, unlike sklearn's
    ``train_test_split(stratify=...)``, which refuses a class of one image and shares out
    ``ceil(fraction x all)`` by largest remainders, so that a class of two can get none."""
    return {y: min(n - 1, max(1, int(fraction * n + 0.5))) for y, n in counts.items()}


def _note_unmeasured(dataset: Dataset, counts: dict[int, int]) -> None:
    """Name the classes of one image, which no held-out image scores (was: that image held out,
    the class untrained and, as the last label, an IndexError traceback in the evaluation)."""
    ones = sorted(y for y, n in counts.items() if n == 1)
    if not ones:
        return
    names = getattr(innermost(dataset), "classes", None)
    named = [str(names[y]) if isinstance(names, (list, tuple)) and y < len(names) else str(y)
             for y in ones]
    shown = ", ".join(named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
    which = f"class {shown} has" if len(ones) == 1 else f"classes {shown} have"
    print(f"note: {which} one image, kept for training: none is held out for evaluation, so "
          f"the accuracy does not measure {'it' if len(ones) == 1 else 'them'}", file=sys.stderr)


def build_datasets(cfg: ClassifyConfig, head: str | None = None, evaluating: bool = False,
                   whole_folder: bool = False) -> tuple[Dataset, Dataset, DataInfo]:
    """Train and evaluation datasets for ``cfg``, checked against its shape and class fields.

    The evaluation set is the test split, or a held-out share of the training split when
    ``cfg.val_fraction > 0`` (image folders without ``val/``/``test/`` always hold out 20%,
    per class: :func:`_holdout`).
    ``head``: where ``cfg.num_classes`` came from when no option set it (a model's weights),
    for the line refusing a head too small for the data's labels. ``evaluating``: for
    ``classify eval``, which reads the evaluation set alone (:func:`check_datasets`).
    ``whole_folder``: a folder without ``val/``/``test/`` is all evaluation data (split
    ``"all"``), for a model trained elsewhere, which no share of it was held out from.
    """
    split, source = "test", None  # source: the data a share is held out of
    if cfg.dataset in ("imagefolder", "zip"):  # a zip is one split, like a plain folder
        train_root, eval_root = _folder_splits(cfg)
        train_set = _load(cfg, True, train_root)
        if eval_root is not None and cfg.val_fraction == 0:
            eval_set = _load(cfg, False, eval_root)
        elif whole_folder and eval_root is None:
            eval_set, split = train_set, "all"
        else:
            source = train_set
            train_set, eval_set = _holdout(source, cfg.val_fraction or 0.2, 1234, cfg.holdout)
            split = "holdout"
    elif evaluating and cfg.val_fraction == 0:  # the test split alone: SVHN's training file
        eval_set = _load(cfg, False)            # is a download of its own, and unread here
        train_set = Subset(eval_set, [])
    else:
        train_set = _load(cfg, True)
        if cfg.val_fraction > 0:  # the test split unread: LSUN's *_val_lmdb may be absent
            source = train_set
            train_set, eval_set = _holdout(source, cfg.val_fraction, 1234, cfg.holdout)
            split = "holdout"
        else:
            eval_set = _load(cfg, False)
    info = check_datasets(cfg, train_set, eval_set, head, evaluating, source)
    info.eval_split = split
    return train_set, eval_set, info


def check_datasets(cfg: ClassifyConfig, train_set: Dataset, eval_set: Dataset,
                   head: str | None = None, evaluating: bool = False,
                   source: Dataset | None = None) -> DataInfo:
    """Check image shapes and class counts against ``cfg``; return the resolved data fields.
    ``head``: as :func:`build_datasets`. ``source``: the data both sets were held out of, whose
    classes size the head (was: the training share's, so that a class held out whole was an
    IndexError traceback in the evaluation).

    ``evaluating``: the evaluation set must hold labelled images; the training split may be
    empty and hold one label. Accuracy, NLL, ECE, the attacks and the corruptions are computed
    per image against its label, so one class folder (one image, even) is evaluated; a run's
    class_names give the folder its trained label. (Was: the training checks, "the imagefolder
    training split is empty" and "training data ... holds one label", said to classify eval.)
    """
    if evaluating:
        _check_eval_labels(cfg, eval_set)
    elif len(train_set) == 0:
        raise DataError(f"the {cfg.dataset} training split is empty")
    shapes = {}
    for name, ds in (("training", train_set), ("evaluation", eval_set)):
        if evaluating and len(ds) == 0:  # an image folder's one image is its holdout
            continue
        c, h, w = image_shape(ds)
        shapes[name] = (c, h, w)
        if (h, w) != (cfg.image_size, cfg.image_size):
            raise DataError(f"{name} images of {cfg.dataset} are {h}x{w}; expected "
                            f"{cfg.image_size}x{cfg.image_size} (image_size)")
        if cfg.channels is not None and c != cfg.channels:
            raise DataError(f"{name} images of {cfg.dataset} have {c} channel(s); expected "
                            f"{cfg.channels} (channels)")
    if len(shapes) == 2 and shapes["training"] != shapes["evaluation"]:
        raise DataError(f"training images are {shapes['training']} but evaluation images are "
                        f"{shapes['evaluation']}; both must match")
    if cfg.classes is not None:
        data_classes = max(cfg.classes) + 1  # labels are kept, so the head needs max + 1
    else:
        if not evaluating:
            _check_two_labels(cfg, train_set)
        # the head must cover the labels scored: an evaluation's holdout may be all there is
        scored = ((source,) if source is not None else
                  (train_set, eval_set) if evaluating else (train_set,))
        data_classes = max(dataset_num_classes(ds) for ds in scored if len(ds))
    if cfg.num_classes is not None and cfg.num_classes < data_classes:
        raise DataError(_head_too_small(cfg, data_classes, head))
    if cfg.classes is None and not evaluating:
        _note_unused_ids(cfg, scored, data_classes)
    channels = next(iter(shapes.values()))[0]  # the same in both
    return DataInfo(num_classes=cfg.num_classes or data_classes, channels=channels,
                    image_size=cfg.image_size, train_size=len(train_set),
                    eval_size=len(eval_set), eval_split="test",
                    class_names=_class_names(cfg, train_set), data_classes=data_classes)


def _note_unused_ids(cfg: ClassifyConfig, scored: tuple[Dataset, ...], data_classes: int
                     ) -> None:
    """Say which label ids below the highest no image has (a dataset zip labelled {0, 7}, a
    class subset packed with its labels kept): the head has max label + 1 outputs, as
    stylegan2-ada's label_dim, and those are never trained. Read from stored labels alone
    (LSUN's would be decoded image by image; its classes are every database given)."""
    if any(getattr(innermost(ds), "targets", None) is None for ds in scored):
        return
    present = set().union(*(dataset_labels(ds).tolist() for ds in scored))
    unused = [c for c in range(data_classes) if c not in present]
    if unused:
        shown = ", ".join(map(str, unused[:8])) + (f" and {len(unused) - 8} more"
                                                    if len(unused) > 8 else "")
        print(f"note: the {cfg.dataset} data's labels run to {data_classes - 1}, and "
              f"{len(unused)} of the {data_classes} ids have no image ({shown}): the head has "
              f"an output for each (max label + 1, as stylegan2-ada's label_dim), never trained",
              file=sys.stderr)


def _head_too_small(cfg: ClassifyConfig, data_classes: int, head: str | None) -> str:
    """The refusal of a head with fewer outputs than the labels need. A model's weights fix its
    head (``classify eval --model``): the fix is to name the labels it was trained on, where
    the line named ``num_classes``, an option the user never gave there."""
    need = f"its labels need {data_classes} outputs (labels 0..{data_classes - 1})"
    if head is None:
        return f"num_classes={cfg.num_classes} is too small for {cfg.dataset}: {need}"
    labels = " ".join(map(str, range(cfg.num_classes)))
    return (f"the model has {cfg.num_classes} outputs ({head}) and {cfg.dataset} holds more "
            f"classes: {need}; name the labels it was trained on with --classes (--classes "
            f"{labels} for labels 0..{cfg.num_classes - 1})")


def _check_two_labels(cfg: ClassifyConfig, train_set: Dataset) -> None:
    """One label in the training data (a flat folder, a zip without dataset.json) would train
    a head whose loss is 0 from step 1 and report an accuracy of 1 (as ``--classes 5`` would,
    which is refused too)."""
    present = dataset_labels(train_set).unique().tolist()
    if len(present) < 2:
        one = (f"the {cfg.dataset} training data at {cfg.data_root} holds one label "
               f"({present[0]}): nothing to classify.")
        zipped = dataset_zip(train_set)
        if zipped is not None:
            advice = zip_labels_advice(zipped, present[0], cfg.image_size, "--data-root OUT.zip")
            raise DataError(f"{one} {advice[0].upper()}{advice[1:]}")
        raise DataError(f"{one} Give images in class folders (ROOT/<class>/<image>), or a "
                        f"dataset zip with a top-level dataset.json of labels")


def _check_eval_labels(cfg: ClassifyConfig, eval_set: Dataset) -> None:
    """What ``classify eval`` needs of its data: images, and labels to score them against (a
    flat folder's or an unlabelled zip's label 0 is none)."""
    where = f"{cfg.dataset} evaluation data" + (f" at {cfg.data_root}" if cfg.data_root else "")
    if len(eval_set) == 0:
        raise DataError(f"the {where} is empty; give a --data-root that holds images")
    base = innermost(eval_set)
    from robustrep.data.folders import FlatImageFolder
    flat = isinstance(base, FlatImageFolder)
    if flat or getattr(base, "has_labels", True) is False:
        why = "its images are not in class folders" if flat else "no dataset.json labels"
        raise DataError(f"the {where} has no labels to score the model against ({why}); give "
                        f"images in class folders (ROOT/<class>/<image>; one class is "
                        f"enough), or a dataset zip with a top-level dataset.json of labels")


def _class_names(cfg: ClassifyConfig, dataset: Dataset) -> list[str] | None:
    """An image folder's class names in label order (through Subset wrappers), else None."""
    if cfg.dataset != "imagefolder":
        return None
    dataset = innermost(dataset)
    from robustrep.data.folders import FlatImageFolder
    names = getattr(dataset, "classes", None)  # a flat folder's one name is no class folder
    return list(names) if names and not isinstance(dataset, FlatImageFolder) else None


def _tensor_images(dataset: Dataset) -> tuple[Tensor, Tensor] | None:
    """(images, labels) when the whole dataset is in memory (fast path: index, no collate)."""
    if isinstance(dataset, ImageTensorDataset):
        return dataset.images, dataset.targets
    if isinstance(dataset, Subset):
        inner = _tensor_images(dataset.dataset)
        if inner is not None:
            idx = torch.as_tensor(dataset.indices, dtype=torch.long)
            return inner[0][idx], inner[1][idx]
    return None


def train_batches(dataset: Dataset, sampler: StepBatches, workers: int | None = 0):
    """Yield ``(images, labels)`` for the sampler's steps (``workers=None``: the machine's)."""
    tensors = _tensor_images(dataset)
    if tensors is not None and not workers:  # in memory: no worker unless asked for
        images, labels = tensors
        for idx in sampler:
            idx = torch.tensor(idx)
            yield images[idx], labels[idx]
        return
    workers = resolve_workers(workers)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0)
    yield from loader


def eval_loader(dataset: Dataset, batch_size: int, workers: int | None = 0,
                max_samples: int | None = None) -> DataLoader | list:
    """Batches of the evaluation set in a fixed order (the first ``max_samples`` samples)."""
    if max_samples is not None and max_samples < len(dataset):
        dataset = Subset(dataset, list(range(max_samples)))
    tensors = _tensor_images(dataset)
    if tensors is not None:
        images, labels = tensors
        return list(zip(images.split(batch_size), labels.split(batch_size)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                      num_workers=resolve_workers(workers))


def augment(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop with ``pad`` pixels of zero padding and a random horizontal flip, per sample.

    Batched on the device with an explicit generator (so the run stays resumable and exact).
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    bidx = torch.arange(b, device=x.device)[:, None, None, None]
    cidx = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[bidx, cidx, rows, cols]
    flip = torch.rand(b, generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
