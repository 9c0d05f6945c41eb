"""Dataset specs: the ``--id`` a run's config implies."""

import pytest

from robustrep.tasks.ood.data_specs import default_id


def test_default_id_from_the_run_config():
    assert default_id({"dataset": "digits"}) == "digits"
    assert default_id({"dataset": "cifar100"}) == "cifar100"
    with pytest.raises(ValueError, match="--id imagefolder:PATH"):
        default_id({"dataset": "image_folder", "data_root": "/x"})
