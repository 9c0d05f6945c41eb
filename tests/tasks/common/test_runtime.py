"""tasks/common/runtime.py and the backend tuning every trainer gets through init_distributed."""

import pytest
import torch

from robustrep.tasks.common import distributed, runtime


@pytest.fixture
def cudnn_benchmark():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    yield
    torch.backends.cudnn.benchmark = before


def test_cuda_turns_on_cudnn_autotuning(cudnn_benchmark):
    runtime.tune_backends(torch.device("cuda", 0))
    assert torch.backends.cudnn.benchmark is True


def test_cpu_leaves_the_backends_alone(cudnn_benchmark):
    runtime.tune_backends(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False


def test_a_trainer_on_cuda_is_tuned(cudnn_benchmark, monkeypatch):
    # both trainers take their device from init_distributed (one process here)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(distributed, "resolve_device", lambda name: torch.device("cuda", 0))
    info = distributed.init_distributed("cuda")
    assert info.device.type == "cuda" and torch.backends.cudnn.benchmark is True


def test_resolve_device_refuses_what_the_words_show_and_fp16_where_auto_means_cpu(monkeypatch):
    from robustrep.tasks.common.errors import UserError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device(" CPU ", "bf16") == torch.device("cpu")
    assert runtime.resolve_device("auto") == torch.device("cpu")
    for name, amp, words in [("gpu", "off", "--device must be auto, cpu, cuda or cuda:N"),
                             ("cpu", "fp32", "--amp must be one of off, bf16, fp16"),
                             ("cpu", "fp16", "--amp fp16 needs a CUDA device"),
                             ("auto", "fp16", "--amp fp16 needs a CUDA device"),
                             ("cuda:1", "off", "CUDA is not available")]:
        with pytest.raises(UserError, match=words):
            runtime.resolve_device(name, amp)
