"""Networks and batches that cannot fit the device's memory are one line, before the run folder.

``gan train --g-width 1000000000`` failed in torch's allocator after the run folder was made;
``tasks/common/memory_fit.py`` counts what training keeps (networks built on the meta device)
and one batch's inputs against the device's whole memory. The programs' refusals are tested
through ``main`` with the machine's memory made small (monkeypatch), so no test needs big
numbers.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from robustrep.tasks.cli import main
from robustrep.tasks.common import classifier, memory_fit
from robustrep.tasks.common.config import ConfigError

from ..test_user_errors import run_main

CPU = torch.device("cpu")


@pytest.fixture
def memory(monkeypatch):
    """Set the device's whole memory to ``n`` bytes: ``memory(n)``."""
    def set_to(n: int) -> None:
        monkeypatch.setattr(memory_fit, "total_memory", lambda device: n)
    return set_to


def test_training_bytes_counts_weights_gradients_moments_buffers_and_ema():
    linear = 55 * 4  # nn.Linear(10, 5): 50 weights and 5 biases, float32
    assert memory_fit.training_bytes(lambda: nn.Linear(10, 5), 0) == 2 * linear
    assert memory_fit.training_bytes(lambda: nn.Linear(10, 5), 2) == 4 * linear
    assert memory_fit.training_bytes(lambda: nn.Linear(10, 5), 2, ema=True) == 5 * linear
    # BatchNorm1d(3): 6 trained values; running mean and var (float32), the count (int64) once
    assert memory_fit.training_bytes(lambda: nn.BatchNorm1d(3), 0) == 2 * 24 + 24 + 8
    frozen = nn.Linear(10, 5).requires_grad_(False)
    assert memory_fit.training_bytes(lambda: frozen, 2) == linear


def test_training_bytes_builds_on_the_meta_device():
    # 4 TB of weights: counted, never allocated
    built = []
    assert memory_fit.training_bytes(lambda: built.append(nn.Linear(10**6, 10**6)) or built[0],
                                      0) == 2 * (10**12 + 10**6) * 4
    assert built[0].weight.is_meta


def test_training_bytes_of_an_overflow_is_infinite_and_of_a_failure_unknown():
    assert memory_fit.training_bytes(lambda: nn.Linear(2**40, 2**40), 2) == math.inf

    def reads_values():
        raise RuntimeError("Tensor.item() cannot be called on meta tensors")
    assert memory_fit.training_bytes(reads_values, 2) is None

    def refuses():
        raise ConfigError("--arch x: its generator refused: width")  # the real build says it
    assert memory_fit.training_bytes(refuses, 2) is None


def test_total_memory_is_the_machines_ram_for_the_cpu():
    assert memory_fit.total_memory(CPU) == os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES")
    assert memory_fit.total_memory(torch.device("meta")) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_total_memory_of_a_gpu_is_its_own():
    device = torch.device("cuda", 0)
    assert memory_fit.total_memory(device) == torch.cuda.get_device_properties(0).total_memory


def test_check_fits_refuses_in_one_line_naming_the_options(memory):
    memory(2 * 10**9)
    memory_fit.check_fits(2 * 10**9, CPU, "--x 1: it takes")  # all of it: a run may manage
    memory_fit.check_fits(None, CPU, "--x 1: it takes")  # unknown: left to the run
    with pytest.raises(ConfigError) as err:
        memory_fit.check_fits(3 * 10**9, CPU, "--x 2: it takes")
    assert str(err.value) == ("--x 2: it takes at least 3.0 GB, more than this machine's "
                              "2.0 GB of RAM; lower them")
    with pytest.raises(ConfigError, match=r"^--x 3: it takes more bytes than torch can count "):
        memory_fit.check_fits(math.inf, CPU, "--x 3: it takes")
    with pytest.raises(ConfigError, match=r"more than cuda:1's 2.0 GB of memory; lower them$"):
        memory_fit.check_fits(3 * 10**9, torch.device("cuda", 1), "--x 2: it takes")
    memory(None)
    memory_fit.check_fits(10**30, CPU, "--x 4: it takes")  # the memory unknown: passes


def test_sizes_read_in_gigabytes():
    assert memory_fit.gb(17_592_186_044_416) == "17,592.2 GB"
    assert memory_fit.gb(4_200_000) == "0.0042 GB"
    assert memory_fit.batch_bytes(64, (3, 32, 32)) == 64 * 3 * 32 * 32 * 4
    assert memory_fit.state_words(True, "G's EMA copy") == ("weights, gradients, Adam moments "
                                                            "and G's EMA copy")
    assert memory_fit.state_words(False) == "weights and gradients"


def _no_folder(tmp_path) -> None:
    assert not (tmp_path / "r").exists()


def test_gan_networks_that_cannot_fit_are_refused_before_the_run_folder(tmp_path, capsys,
                                                                         memory):
    memory(10**6)  # the default DCGAN's training state takes about 8.6 MB
    code, err = run_main(["gan", "train", "--out", str(tmp_path / "r"), "--steps", "1"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("robustrep gan train: error: --z-dim 64, --g-width 32, --d-width 32, "
                          "--image-size 32: the networks' weights, gradients, Adam moments and "
                          "G's EMA copy take at least 0.0086 GB, more than this machine's "
                          "0.001 GB of RAM; lower them")
    _no_folder(tmp_path)


def test_a_gan_run_without_ema_is_counted_without_it(tmp_path, capsys, memory):
    memory(10**6)
    code, err = run_main(["gan", "train", "--out", str(tmp_path / "r"), "--steps", "1",
                          "--ema-decay", "0", "--preset", "ring-mlp"], capsys)
    assert code == 2 and "--z-dim" in err and "--mlp-depth 3" in err, err
    assert "weights, gradients and Adam moments take" in err and "--image-size" not in err
    _no_folder(tmp_path)


def test_a_gan_batch_that_cannot_fit_names_batch_size_and_image_size(tmp_path, capsys, memory):
    memory(8 * 10**6)  # the networks (width 1) fit; 1024 images of 64 x 64 take 16.8 MB
    code, err = run_main(["gan", "train", "--out", str(tmp_path / "r"), "--steps", "1",
                          "--g-width", "1", "--d-width", "1", "--z-dim", "1", "--image-size",
                          "64", "--batch-size", "1024"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert ("error: --batch-size 1024 with --image-size 64: one batch of 1024 x 1 x 64 x 64 "
            "float32 inputs takes at least 0.017 GB, more than") in err
    _no_folder(tmp_path)


def test_classify_model_that_cannot_fit_is_refused_before_the_run_folder(tmp_path, capsys,
                                                                          memory, monkeypatch):
    memory(10**6)  # resnet10t's 4.9 M parameters with their gradients: 39 MB
    monkeypatch.setattr(classifier, "_SIZES_TAKEN", set())  # no other test's model passed
    code, err = run_main(["classify", "train", "--out", str(tmp_path / "r"), "--steps", "1",
                          "--optimizer", "adamw", "--ema-decay", "0.9"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("robustrep classify train: error: --model resnet10t with "
                          "--num-classes 10 and --image-size 32: its weights, gradients, Adam "
                          "moments and EMA copy take at least "), err
    _no_folder(tmp_path)
    # the meta build leaves the input-size check to the real model (it runs on its weights)
    assert classifier._SIZES_TAKEN == set()


def test_classify_batch_that_cannot_fit_is_refused_before_the_data(tmp_path, capsys, memory,
                                                                    monkeypatch):
    from robustrep.tasks.classify import train as train_module

    def no_data(cfg):
        raise AssertionError("the data was built")
    monkeypatch.setattr(train_module, "build_datasets", no_data)
    memory(10**5)  # 64 images of 32 x 32, one channel at least: 262 kB
    code, err = run_main(["classify", "train", "--out", str(tmp_path / "r"), "--steps", "1"],
                         capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert ("error: --batch-size 64 with --image-size 32: one batch of 64 x 1 x 32 x 32 float32 "
            "inputs takes at least 0.00026 GB, more than this machine's 0.0001 GB of RAM") in err
    _no_folder(tmp_path)


@pytest.mark.parametrize("argv", [["gan", "train", "--final-eval", "false"],
                                  ["classify", "train"]])
def test_a_run_that_fits_is_not_refused(argv, tmp_path, memory):
    memory(10**12)
    assert main([*argv, "--out", str(tmp_path / "r"), "--steps", "1", "--eval-every", "0",
                 "--quiet"]) == 0
