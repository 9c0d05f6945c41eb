"""The dataset helpers every loader shares (robustrep/data/_common.py)."""

import torch
from torch.utils.data import Subset

from robustrep.data import ImageTensorDataset, MappedDataset, innermost
from robustrep.data.zipdata import XFlip


def _images() -> ImageTensorDataset:
    return ImageTensorDataset(torch.zeros(4, 1, 2, 2), torch.arange(4))


def test_innermost_goes_through_subsets_and_the_mirror_to_the_source():
    source = _images()
    assert innermost(Subset(XFlip(Subset(source, [0, 1])), [2])) is source
    assert innermost(source) is source


def test_innermost_stops_at_a_mapped_dataset_unless_asked_through_its_base():
    source = _images()
    mapped = MappedDataset(source, lambda image, index: 1 - image, label=-1)
    wrapped = Subset(mapped, [0])
    assert innermost(wrapped) is mapped  # its labels and pixels are its own
    assert innermost(wrapped, through=("dataset", "base")) is source  # the same files


def test_num_classes_of_integer_class_ids_is_the_highest_plus_one():
    """Class names count (torchvision's CIFAR, an image folder); integer ids are labels, so a
    dataset whose ``classes`` are the labels it holds ({0, 7}) needs 8 outputs, as stylegan2-ada's
    label_dim (was: 2, and an IndexError at the first step)."""
    from robustrep.data import num_classes

    class Labelled(torch.utils.data.Dataset):
        def __init__(self, classes, targets):
            self.classes, self.targets = classes, targets

        def __len__(self):
            return len(self.targets)

    assert num_classes(Labelled([0, 7], [0, 7, 7])) == 8
    assert num_classes(Labelled(["cat", "dog"], [0, 1])) == 2
    assert num_classes(Labelled([True, False], [0, 1])) == 2  # flags are no ids
