"""OOD sets that would measure nothing for a run: classes it was trained on, digits it never
learned."""

import pytest

from robustrep.tasks.ood.set_checks import check_not_trained_on, trained_overlap, untrained_digits


def test_which_sets_overlap_the_training_classes():
    digits04 = {"dataset": "digits", "classes": [0, 1, 2, 3, 4]}
    assert trained_overlap("digits59", digits04) is None
    assert trained_overlap("digits59", {"dataset": "digits", "classes": [3, 5]}) == "digits 5"
    assert trained_overlap("rotated", {"dataset": "digits", "classes": None}) is None
    assert trained_overlap("cifar10:data", {"dataset": "cifar10", "classes": None}) == \
        "every cifar10 class"
    assert trained_overlap("cifar100", {"dataset": "cifar10", "classes": None}) is None
    assert trained_overlap("imagefolder:x", {"dataset": "image_folder"}) is None


def test_covariate_shift_sets_need_the_digits_they_transform():
    """rotated/inverted transform digits 0-4 ("known classes, new look"): for a run that never
    learned some of them they mixed in new classes, with no word."""
    three = {"dataset": "digits", "classes": [0, 1, 2]}
    assert untrained_digits("rotated", three) == "digits 3, 4"
    assert untrained_digits("inverted", {"dataset": "digits", "classes": [0, 1, 2, 3, 4]}) is None
    assert untrained_digits("rotated", {"dataset": "digits", "classes": None}) is None
    assert untrained_digits("rotated", {"dataset": "cifar10", "classes": [0]}) is None
    with pytest.raises(ValueError) as err:
        check_not_trained_on(["gaussian", "inverted"], three)
    assert str(err.value) == (
        "--ood inverted transforms digits 0-4 as a covariate shift of classes the classifier "
        "knows, but the run was not trained on digits 3, 4 (classes [0, 1, 2]); use a run "
        "trained on digits 0-4 (robustrep classify train --preset digits-ood), or another OOD "
        "set: digits59, gaussian, uniform, photos")
