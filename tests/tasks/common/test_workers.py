"""DataLoader workers when the user does not say (tasks/common/workers.py): a worker per spare
core for data read from disk, none for data held in memory. classify and ood took 0 always (one
process decoding every image on a GPU machine), where gan and timm's train.py start workers."""

import pytest
import torch
from torch.utils.data import Dataset, Subset

from robustrep.data import ImageTensorDataset
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.common.workers import loader_workers
from robustrep.tasks.ood.config import ScoreOptions


class _FromDisk(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.zeros(1, 4, 4), 0


@pytest.fixture
def cpus(monkeypatch):
    def set_cpus(n):
        monkeypatch.setattr("robustrep.tasks.common.workers.available_cpus", lambda: n)
    return set_cpus


def _in_memory():
    return ImageTensorDataset(torch.zeros(8, 1, 4, 4), torch.zeros(8, dtype=torch.long))


def test_data_read_from_disk_gets_a_worker_per_spare_core(cpus):
    cpus(16)
    assert loader_workers(None, _FromDisk()) == 4
    assert loader_workers(None, Subset(_FromDisk(), [0, 1])) == 4
    cpus(2)  # workers would compete with the training process itself
    assert loader_workers(None, _FromDisk()) == 0


def test_data_in_memory_gets_none_unless_asked(cpus):
    cpus(16)
    assert loader_workers(None, _in_memory()) == 0
    assert loader_workers(None, Subset(Subset(_in_memory(), [0, 1, 2]), [0])) == 0
    assert loader_workers(3, _in_memory()) == 3 and loader_workers(0, _FromDisk()) == 0


def test_the_programs_leave_the_choice_to_the_machine():
    assert ClassifyConfig().workers is None and ScoreOptions.__dataclass_fields__[
        "workers"].default is None


def test_classify_reads_data_in_memory_without_a_loader(cpus, monkeypatch):
    from robustrep.tasks.classify import data

    def no_loader(*args, **kwargs):
        raise AssertionError("a DataLoader for data in memory")

    cpus(16)
    monkeypatch.setattr(data, "DataLoader", no_loader)
    batches = list(data.train_batches(_in_memory(), [[0, 1], [2, 3]], workers=None))
    assert [len(x) for x, _ in batches] == [2, 2]
    assert isinstance(data.eval_loader(_in_memory(), 4, workers=None), list)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # no worker starts here
def test_classify_and_ood_start_workers_for_data_from_disk(cpus):
    from robustrep.tasks.classify.data import eval_loader
    from robustrep.tasks.ood.extract import make_loader
    cpus(16)
    assert eval_loader(_FromDisk(), 4, workers=None).num_workers == 4
    assert make_loader(_FromDisk(), 4, workers=None).num_workers == 4
    assert make_loader(_in_memory(), 4, workers=None).num_workers == 0
