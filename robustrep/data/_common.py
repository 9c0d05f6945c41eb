"""Small dataset types and shape/label inference shared by the built-in and the local loaders.

Every image dataset in :mod:`robustrep.data` yields ``(image, label)`` with ``image`` a float
tensor ``[C, H, W]`` in [0, 1] and ``label`` a Python ``int``; OOD sets use ``-1`` as the label of
an unknown sample, the convention of pytorch-ood (``pytorch_ood.utils.is_known``: ``label >= 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from robustrep._validate import check_tensor

OOD_LABEL = -1


class ImageTensorDataset(TensorDataset):
    """A :class:`~torch.utils.data.TensorDataset` of images ``[N, C, H, W]`` and labels ``[N]``.

    Unlike the plain ``TensorDataset`` an integer index returns the label as a Python ``int``, the
    library's dataset convention.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        check_tensor("images", images, ndim=4, floating=True)
        check_tensor("labels", labels, ndim=1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"images and labels must have the same length, got "
                             f"{images.shape[0]} images and {labels.shape[0]} labels")
        super().__init__(images, labels.long())

    @property
    def images(self) -> Tensor:
        return self.tensors[0]

    @property
    def targets(self) -> Tensor:
        return self.tensors[1]

    def __getitem__(self, index: Any) -> tuple[Tensor, Any]:
        image, label = super().__getitem__(index)
        return image, (int(label) if label.dim() == 0 else label)


class MappedDataset(Dataset):
    """``base`` with ``fn`` applied to each image, lazily; the label is kept or replaced.

    Args:
        base: a dataset yielding ``(image, label)``.
        fn: ``fn(image, index) -> image``.
        label: the label every sample gets, or None to keep the base label.
    """

    def __init__(self, base: Dataset, fn: Callable[[Tensor, int], Tensor],
                 label: int | None = None) -> None:
        self.base = base
        self.fn = fn
        self.label = label

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.base[index]
        return self.fn(image, index), (int(label) if self.label is None else self.label)


def image_shape(dataset: Dataset) -> tuple[int, int, int]:
    """The ``(C, H, W)`` shape of the images of ``dataset`` (read from its first sample)."""
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise TypeError(f"dataset must be a map-style Dataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty; cannot infer the image shape")
    image = dataset[0][0]
    if not isinstance(image, Tensor) or image.dim() != 3:
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise TypeError(f"dataset must yield images as tensors [C, H, W] (add ToTensor to its "
                        f"transform), got {got}")
    return tuple(image.shape)


def _max_label(labels: Sequence[int] | Tensor) -> int:
    labels = torch.as_tensor(labels)
    known = labels[labels >= 0]
    return int(known.max()) + 1 if known.numel() else 0


def innermost(dataset: Dataset, through: tuple[str, ...] = ("dataset",)) -> Dataset:
    """The dataset at the heart of ``dataset``'s wrappers: ``Subset``, ``XFlip`` and any other
    that keeps its source as ``.dataset``; with ``through=("dataset", "base")`` also through a
    :class:`MappedDataset`, whose images are its base's transformed (the same files, other
    pixels or labels)."""
    while True:
        inner = next((getattr(dataset, a) for a in through
                      if getattr(dataset, a, None) is not None), None)
        if inner is None:
            return dataset
        dataset = inner


def labels(dataset: Dataset) -> Tensor:
    """Every label of ``dataset`` as a ``LongTensor [N]``.

    Read from the label tensor (``TensorDataset``) or ``targets``/``labels`` when present, through
    any nesting of ``Subset``, so no image is decoded; otherwise every sample is read once.
    """
    if isinstance(dataset, Subset):
        return labels(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, TensorDataset):
        if len(dataset.tensors) < 2:
            raise ValueError("a TensorDataset needs a second tensor of labels")
        return dataset.tensors[1].long()
    for attr in ("targets", "labels"):
        found = getattr(dataset, attr, None)
        if found is not None and len(found) == len(dataset):
            return torch.as_tensor(found, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def select_classes(dataset: Dataset, classes: Sequence[int] | None,
                   what: str = "dataset", strict: bool = True) -> Dataset:
    """The samples of ``dataset`` whose label is in ``classes`` (labels unchanged); all when None.

    Raises:
        ValueError: a requested class has no sample in ``dataset`` (with ``strict=False``: none
            of them has); the message lists the labels it has.
    """
    if classes is None:
        return dataset
    found = labels(dataset)
    present = set(found.unique().tolist())
    absent = [c for c in classes if c not in present]
    if absent and (strict or len(absent) == len(classes)):
        raise ValueError(f"classes {absent} do not occur in the {what}; its labels are "
                         f"{sorted(present)}")
    keep = torch.isin(found, torch.tensor(list(classes))).nonzero().flatten()
    return Subset(dataset, keep.tolist())


def num_classes(dataset: Dataset) -> int:
    """The number of classes a classifier head needs for ``dataset``: ``max(label) + 1``.

    A torchvision dataset's ``classes`` list gives it directly: its length for class names, the
    highest + 1 for integer labels (stylegan2-ada's ``label_dim``: labels {0, 7} need 8 outputs,
    not 2); otherwise the labels are read as :func:`labels` does. OOD labels (``< 0``) are
    ignored, and a class subset keeps its original labels (``digits(classes=[5, 6])`` needs 7
    outputs; a CIFAR ``Subset`` of classes 0-2, 3).
    """
    classes = getattr(dataset, "classes", None)
    if not isinstance(dataset, Subset) and isinstance(classes, (list, tuple)) and classes:
        ids = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        return _max_label(classes) if ids else len(classes)
    return _max_label(labels(dataset))


class PresenceCheckMixin:
    """Replace torchvision's md5 verification by a presence check unless ``check_md5`` is set.

    User-made or subsampled files in the real format cannot match the official md5 sums; the
    loaders below verify presence (and the pickle/mat structure, by parsing) instead.
    """

    check_md5: bool = False

    def _check_integrity(self) -> bool:
        if self.check_md5:
            return super()._check_integrity()
        return self._files_present()
