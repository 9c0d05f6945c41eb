"""Data for robustrep: built-in sets that need no download and loaders for local real datasets.

Every image dataset yields ``(image, label)``: a float tensor ``[C, H, W]`` in [0, 1] and an
``int``; OOD samples are labelled -1. Tasks map images to [-1, 1] themselves. See
:mod:`robustrep.data.builtin` (digits, 2-D mixtures, built-in OOD sets) and
:mod:`robustrep.data.local` (every dataset on disk by name: :mod:`~robustrep.data.cifar`,
:mod:`~robustrep.data.svhn`, :mod:`~robustrep.data.folders`, :mod:`~robustrep.data.imagelist`;
download always off),
:mod:`robustrep.data.celeba` (CelebA aligned, official split) and :mod:`robustrep.data.lsun`
(LSUN lmdb databases; the optional ``lmdb`` package).
"""

from robustrep.data._common import (ImageTensorDataset, MappedDataset, image_shape, innermost,
                                    labels, num_classes, select_classes)
from robustrep.errors import UnreadableImageError
from robustrep.data.builtin import (BUILTIN_OOD, ID_CLASSES, OOD_CLASSES, MixtureSample,
                                    MixtureSpec, builtin_ood, digits, digits_ood_split,
                                    grid_centers, grid_mixture, inverted_digits, mixture, noise,
                                    photo_patches, ring_centers, ring_mixture, rotated_digits)
from robustrep.data.local import (DATASETS, IMG_EXTENSIONS, FlatImageFolder, ImageList, cifar,
                                  create_dataset, image_folder, image_list, list_datasets,
                                  register_dataset, svhn)
# importing these registers "celeba" and "lsun" (lmdb is imported on use); their loader
# functions keep their module's name, so they are reached as robustrep.data.lsun.lsun(...)
from robustrep.data.celeba import CelebAAligned
from robustrep.data.lsun import LSUNDatabases

__all__ = [
    "ImageTensorDataset", "MappedDataset", "image_shape", "innermost", "labels", "num_classes",
    "select_classes",
    "digits", "digits_ood_split", "ID_CLASSES", "OOD_CLASSES",
    "MixtureSpec", "MixtureSample", "mixture", "ring_mixture", "grid_mixture", "ring_centers",
    "grid_centers",
    "noise", "photo_patches", "rotated_digits", "inverted_digits", "BUILTIN_OOD", "builtin_ood",
    "cifar", "svhn", "image_folder", "image_list", "FlatImageFolder", "ImageList",
    "CelebAAligned", "LSUNDatabases",
    "IMG_EXTENSIONS", "DATASETS", "register_dataset", "list_datasets", "create_dataset",
    "UnreadableImageError",
]
