"""The OpenOOD v1.5 benchmark's lists found under OpenOOD's data folder."""

import pytest

from robustrep.tasks.ood.openood import openood_benchmark


@pytest.mark.parametrize("inside", ["images_classic", "benchmark_imglist/cifar10"])
def test_a_folder_inside_openoods_data_folder_is_answered_with_it(tmp_path, inside):
    # Was: "expected DATA/benchmark_imglist/cifar10/benchmark_imglist" and no word of the
    # folder to give
    (tmp_path / "data" / inside).mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        openood_benchmark(tmp_path / "data" / inside, "cifar10")
    assert str(err.value).endswith(f"; give --openood {tmp_path / 'data'}, the folder holding it")
    with pytest.raises(FileNotFoundError) as err:  # a folder elsewhere: no folder to name
        openood_benchmark(tmp_path, "cifar10")
    assert "give --openood" not in str(err.value)
