"""Tiny configs and run folders for the classify program's tests (CPU, seconds)."""

import pytest

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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 4-step digits run (classes 0-2, EMA on): the run folder every load/eval test reads."""
    from robustrep.tasks.classify.train import train
    path = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(steps=4, ema_decay=0.5, ckpt_every=2), path, quiet=True)
    return path
