"""CelebA's aligned-and-cropped images with the official train/valid/test partition.

Source: Liu, Luo, Wang & Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015;
https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html. As distributed: ``img_align_celeba/`` (202,599
JPEGs ``000001.jpg`` ... of 178x218) and ``list_eval_partition.txt`` (one ``<file> <0|1|2>`` per
line: 0 train, 162,770 images; 1 valid, 19,867; 2 test, 19,962), both directly under ``root``.

torchvision's :class:`~torchvision.datasets.CelebA` wants the identity, attribute, bounding-box
and landmark files too (under ``root/celeba/``); a GAN needs only the images, so this reads the two
pieces above. Every image is labelled 0 (attributes are not read).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision import transforms

from robustrep._validate import check_choice, check_positive
from robustrep.data.images import check_source, image_transform, load_image
from robustrep.data.local import register_dataset, require_size

IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
SPLITS = {"train": (0,), "valid": (1,), "test": (2,), "all": (0, 1, 2)}


def read_partition(path: Path) -> list[tuple[str, int]]:
    """``(file name, partition)`` per line of ``list_eval_partition.txt``, in file order."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(f"{path} line {number}: expected '<image file> <0|1|2>', got "
                                 f"{line.strip()!r}")
            rows.append((fields[0], int(fields[1])))
    return rows


class CelebAAligned(Dataset):
    """The images of one official split (or all), label 0, sorted as the partition file lists them.

    Args:
        root: the folder holding ``img_align_celeba/`` and ``list_eval_partition.txt``.
        split: ``train`` (0), ``valid`` (1), ``test`` (2) or ``all``.
        transform: applied to the PIL image.
        channels: 3 (RGB) or 1 (greyscale) for decoding.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", transform: Any = None,
                 channels: int = 3) -> None:
        check_choice("split", split, tuple(SPLITS))
        root = Path(root).expanduser()
        folder, partition = root / IMAGES, root / PARTITION
        for path in (folder, partition):
            if not path.exists():
                raise FileNotFoundError(f"CelebA not found: expected {path} (root/{IMAGES}/ and "
                                        f"root/{PARTITION} as distributed; download is off)")
        wanted = SPLITS[split]
        self.samples = [folder / name for name, part in read_partition(partition)
                        if part in wanted]
        missing = [p for p in self.samples if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image(s) listed in {partition} are missing, "
                                    f"first {missing[0]}")
        self.transform, self.channels = transform, channels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = load_image(self.samples[index], self.channels)
        return (self.transform(image) if self.transform else image), 0


def celeba(root: str | os.PathLike, split: str = "train", size: int = 64, channels: int = 3,
           crop: int | None = None) -> CelebAAligned:
    """CelebA aligned images of ``split``, centre-cropped to ``crop`` (if given), then resized on
    the shorter side to ``size`` and centre-cropped square.

    ``crop`` is the face crop many GAN papers take first (e.g. 108 or 140 pixels); None keeps the
    whole 178x218 image, so the square is its central 178x178.
    """
    root = check_source(root, size, channels, size_required=True)
    transform = image_transform(size, channels)
    if crop is not None:
        check_positive("crop", crop, integer=True)
        transform = transforms.Compose([transforms.CenterCrop(crop), transform])
    dataset = CelebAAligned(root, split, transform, channels)
    if len(dataset) == 0:
        raise ValueError(f"CelebA split {split!r} under {root} lists no images "
                         f"({root / PARTITION})")
    return dataset


@register_dataset("celeba")
def _celeba(root, train, size, channels, **kwargs):
    split = kwargs.pop("split", {True: "train", False: "test", None: "all"}[train])
    return celeba(root, split, require_size("celeba", size), 3 if channels is None else channels,
                  **kwargs)
