"""Training data for the GAN program: the preset's dataset, scaled to [-1, 1], as a batch stream.

The stream's order is a function of ``(seed, number of batches consumed)`` only: epoch ``e`` is
the permutation drawn by a generator seeded with ``seed + e``, and each global batch is cut into
one slice per process. A checkpoint therefore stores one integer, and a resumed run reads exactly
the batches the uninterrupted run would have read. Small datasets (digits, the 2-D mixtures) live
in one tensor on the training device; datasets read from disk go through a DataLoader whose batch
sampler starts at the consumed position.

Data problems are :class:`DataError` (one line naming the file or folder) and are found before
training: image folders are scanned once (every file opened, see
``robustrep.data.folders.image_folder(verify=True)``), CIFAR batches are parsed when loaded.
"""

from __future__ import annotations

import sys

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from robustrep.data import create_dataset, mixture
from robustrep.data.folder_splits import left_out_line, split_folders
from robustrep.data.zipdata import XFlip
from robustrep.tasks.common.batches import StepBatches
from robustrep.tasks.common.errors import (DataError, images_out_of_memory, program_advice,
                                           report_skipped)
from robustrep.tasks.common.workers import resolve_workers

DATA_SEED = 0  # the fixed pool drawn from a 2-D mixture is part of the data, not of a run

LAYOUTS = {
    # GAN training reads the train split only: its batches and the meta file (test_batch/test
    # may be absent, robustrep.data.cifar looks for the requested split's files alone)
    "cifar10": "ROOT/cifar-10-batches-py/{data_batch_1..5,batches.meta} (from the extracted "
               "'python version' archive cifar-10-python.tar.gz; test_batch is not read)",
    "cifar100": "ROOT/cifar-100-python/{train,meta} (from the extracted 'python version' archive "
                "cifar-100-python.tar.gz; test is not read)",
    "imagefolder": "ROOT/<class>/<image> or images directly in ROOT (png, jpg, ...), or a "
                   "stylegan2-ada dataset .zip",
    "zip": "a stylegan2-ada dataset .zip (images at any path inside, optional dataset.json; "
           "robustrep data pack writes one)",
    "lsun": "ROOT/<category>_<split>_lmdb/data.mdb (as github.com/fyu/lsun ships them)",
    "celeba": "ROOT/img_align_celeba/*.jpg and ROOT/list_eval_partition.txt (as distributed)",
}


@dataclass
class GanData:
    """What training and evaluation need to know about the data.

    Attributes:
        dataset: the map-style dataset (images in [0, 1]) or None for a tensor pool.
        pool: all samples in one tensor in the model's range, or None for a disk dataset.
        shape: one sample's shape, ``(C, H, W)`` or ``(2,)``.
        centers: mode centres ``[M, 2]`` for 2-D mixtures, else None.
        std: mode std for 2-D mixtures.
    """

    dataset: Dataset | None
    pool: Tensor | None
    shape: tuple[int, ...]
    centers: Tensor | None = None
    std: float = 0.0
    mirrored: bool = False  # the second half is the x-flipped copy of the first (--mirror)

    @property
    def is_points(self) -> bool:
        return self.centers is not None

    def __len__(self) -> int:
        return len(self.pool) if self.pool is not None else len(self.dataset)

    def unmirrored(self) -> "GanData":
        """The data as stored, without the x-flipped copies: the reals of FID, as
        stylegan2-ada's ``fid50k_full`` reads the dataset with ``xflip=False``."""
        if not self.mirrored:
            return self
        pool = None if self.pool is None else self.pool[:len(self.pool) // 2]
        dataset = None if self.dataset is None else self.dataset.dataset
        return GanData(dataset, pool, self.shape, self.centers, self.std)


def to_model_range(images: Tensor) -> Tensor:
    """[0, 1] images -> [-1, 1] (the generator's tanh range)."""
    return images * 2.0 - 1.0


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] images -> [0, 1], clamped."""
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


def _check_root(cfg) -> Path:
    if cfg.data_root is None:
        raise DataError(f"dataset {cfg.dataset!r} reads local files: pass --data-root "
                                f"ROOT with the layout {LAYOUTS[cfg.dataset]}; nothing is "
                                f"downloaded")
    root = Path(cfg.data_root).expanduser()
    if cfg.dataset == "zip" or root.suffix.lower() == ".zip":
        if not root.is_file():
            what = ("is a folder, not a .zip (use --dataset imagefolder for a folder of images)"
                    if root.is_dir() else "does not exist")
            raise DataError(f"--data-root {root} {what}; expected {LAYOUTS['zip']}")
        return root
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"--data-root {root} {what}; expected a folder with the "
                                f"layout {LAYOUTS[cfg.dataset]}")
    return root


def build_data(cfg) -> GanData:
    """Load the dataset named by ``cfg.dataset`` (errors name the expected path and layout),
    doubled by its x-flipped copy when ``cfg.mirror`` (stylegan2-ada's ``--mirror=1``)."""
    data = _build_data(cfg)
    if not getattr(cfg, "mirror", False):
        return data
    if data.pool is not None:  # image i + N is image i flipped left-right, as XFlip
        return GanData(None, torch.cat([data.pool, data.pool.flip(-1)]), data.shape,
                       mirrored=True)
    return GanData(XFlip(data.dataset), None, data.shape, mirrored=True)


def _build_data(cfg) -> GanData:
    if cfg.dataset in ("ring", "grid"):
        spec = mixture(cfg.dataset)
        pool = spec.sample(cfg.mixture_samples, torch.Generator().manual_seed(DATA_SEED))
        return GanData(None, pool, (2,), spec.centers, spec.std)
    if cfg.dataset == "digits":
        try:  # resized in memory: --image-size 4096 was the allocator's traceback
            ds = create_dataset("digits", train=None, size=cfg.image_size,
                                channels=cfg.channels or 1)
            return GanData(ds, to_model_range(ds.images), tuple(ds.images.shape[1:]))
        except (RuntimeError, MemoryError) as err:
            raise images_out_of_memory(err, "digits", cfg.image_size) from None
    root = _check_root(cfg)
    extra = {"verify": True} if cfg.dataset in ("imagefolder", "zip") else {}
    if cfg.dataset == "imagefolder":
        extra["skip_bad"] = cfg.skip_bad_images
    if cfg.dataset == "zip" or (cfg.dataset == "imagefolder" and root.suffix.lower() == ".zip"):
        # GAN training uses no labels: dataset.json unread, as stylegan2-ada's unconditional
        # reader (float or one-hot vectors, an image without a label: a valid zip there)
        extra["labels"] = False
    if cfg.dataset == "lsun":
        extra = {"classes": cfg.lsun_classes}
    try:
        # a zip keeps its stored mode as stylegan2-ada does (a greyscale zip trains a 1-channel
        # G); the other formats are read as RGB unless --channels 1
        channels = cfg.channels if cfg.dataset == "zip" else cfg.channels or 3
        ds = create_dataset(cfg.dataset, root=root, train=True, size=cfg.image_size,
                            channels=channels, **extra)
        image = ds[0][0]
    except (FileNotFoundError, ValueError, ImportError) as err:  # names the file or the extra
        raise DataError(program_advice(err)) from None
    report_skipped(ds)
    if cfg.dataset == "imagefolder":
        _note_left_out(root)
    _note_resized(ds, root, cfg.image_size)
    return GanData(ds, None, tuple(image.shape))


def _note_left_out(root: Path) -> None:
    """Say what of ``root`` training leaves out when it has timm's split layout: it reads the
    training split alone (``root/train``), so ``val/`` and the folders and images beside the
    splits are no training data, which was not said."""
    splits = split_folders(root)  # refused by the read already when it refuses the layout
    line = splits and left_out_line(f"--data-root {root}", splits, (splits.train,))
    if line:
        print(f"note: {line}", file=sys.stderr)


def _note_resized(ds, root: Path, size: int) -> None:
    """A dataset zip has one resolution (stylegan2-ada's train.py refuses another), and a folder
    of exports usually one too: say so when ``--image-size`` resizes them, rather than train on
    rescaled images unannounced."""
    stored, what = getattr(ds, "stored_size", None), "stores"
    samples = getattr(ds, "samples", None)
    if stored is None and samples:  # an image folder: its first image, read to the header
        from robustrep.data.images import open_image
        path = samples[0][0] if isinstance(samples[0], tuple) else samples[0]  # (path, label)
        with open_image(path) as first:
            stored, what = first.size, "holds (the first)"
    if stored is not None and tuple(stored) != (size, size):
        print(f"note: {root} {what} {stored[0]}x{stored[1]} images; they are resized to "
              f"{size}x{size} (--image-size)", file=sys.stderr)


class BatchStream:
    """Infinite stream of this process's training batches, in the model's range, on ``device``.

    Args:
        data: from :func:`build_data`.
        batch_size: the global batch size (divisible by ``world``).
        seed: seeds the epoch permutations.
        device: where batches are returned.
        rank, world: this process and the number of processes.
        consumed: global batches already read (from a checkpoint).
        num_workers: DataLoader workers for disk datasets (None: what the machine has, see
            ``tasks/common/workers.py``).
    """

    def __init__(self, data: GanData, batch_size: int, seed: int, device: torch.device,
                 rank: int = 0, world: int = 1, consumed: int = 0,
                 num_workers: int | None = 0):
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} must be divisible by the number of "
                             f"processes {world}")
        self.data, self.device, self.consumed = data, device, consumed
        self.sampler = StepBatches(len(data), batch_size // world, seed, start=consumed,
                                   rank=rank, world_size=world)
        if data.pool is not None:
            self.pool = data.pool.to(device)
            self._iter = iter(self.sampler)
        else:
            num_workers = resolve_workers(num_workers)
            loader = DataLoader(data.dataset, batch_sampler=self.sampler, num_workers=num_workers,
                                pin_memory=device.type == "cuda",
                                persistent_workers=num_workers > 0)
            self._iter = iter(loader)

    def next(self) -> Tensor:
        item = next(self._iter)
        self.consumed += 1
        if self.data.pool is not None:
            # the indices copied without blocking: as_tensor(list, device=cuda) would wait
            return self.pool[torch.as_tensor(item).to(self.device, non_blocking=True)]
        images = item[0] if isinstance(item, (list, tuple)) else item
        return to_model_range(images.to(self.device, non_blocking=True))
