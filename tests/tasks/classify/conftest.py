"""Tiny configs and run folders for the classify program's tests (CPU, seconds)."""

import pytest
import torch
from torch import nn

from robustrep.tasks.classify.config import ClassifyConfig

TINY = dict(model="test_resnet", image_size=16, batch_size=8, steps=2, eval_every=0,
            ckpt_every=1, log_every=1, classes=[0, 1, 2], seed=0)


def tiny_config(**overrides) -> ClassifyConfig:
    values = {**TINY, **overrides}
    if "pgd" in str(values.get("reg")):  # 2 attack steps; the option is refused without pgd
        values.setdefault("adv_steps", 2)
    return ClassifyConfig(**values)


@pytest.fixture
def tiny_cfg():
    return tiny_config


@pytest.fixture
def undrawn_diagrams(monkeypatch):
    """classify eval writes reliability.png and corruptions.png empty, by the same atomic
    writer, not drawn (0.1 s each), for tests that read no picture;
    test_evaluate.py's test_eval_run_writes_report_and_diagram draws and checks them."""
    from robustrep.tasks.classify import report_files
    from robustrep.tasks.common.runfiles import write_atomic

    monkeypatch.setattr(report_files, "reliability_diagram",
                        lambda confidence, accuracy, counts, path, *args, **kwargs:
                        write_atomic(path, lambda handle: None))
    monkeypatch.setattr(report_files, "bar_table",
                        lambda rows, path, **kwargs: write_atomic(path, lambda handle: None))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 4-step digits run (classes 0-2, EMA on): the run folder every load/eval test reads."""
    from robustrep.tasks.classify.train import train
    path = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(steps=4, ema_decay=0.5, ckpt_every=2), path, quiet=True)
    return path


class Threshold(nn.Module):
    """Two classes from brightness: class 1 iff the image's mean pixel is above 0.5 (logits
    ``[0.5 - v, v - 0.5]``); one weight, so that it has a parameter to keep."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        v = x.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - v, v - 0.5], 1) * self.w
