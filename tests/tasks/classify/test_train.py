import math

import pytest
import torch

from robustrep.tasks.classify.config import ClassifyConfig, parse_regularizers
from robustrep.tasks.classify.train import train
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.rundir import RunDir

from .conftest import tiny_config

REGS = ["none", "mixup", "cutmix", "srmix", "adaptivemix", "pgd", "fgsm", "free",
        "mixup,cutmix", "mixup,pgd", "adaptivemix,fgsm", "srmix,free"]


@pytest.mark.parametrize("reg", REGS)
def test_each_regularizer_trains_with_finite_loss(tmp_path, reg):
    cfg = tiny_config(reg=reg, label_smoothing=0.1)
    train(cfg, tmp_path / "run", quiet=True)
    records = [r for r in RunDir(tmp_path / "run").read_metrics() if "loss" in r]
    assert [r["step"] for r in records] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in records)
    if reg == "adaptivemix":
        assert all(math.isfinite(r["adaptivemix/shrink"]) for r in records)


def _final_weights(path):
    state = torch.load(path / "checkpoints" / "latest.pt", weights_only=False)
    return state


@pytest.mark.parametrize("reg,extra", [("mixup,fgsm", {"ema_decay": 0.9, "augment": True}),
                                       ("free", {"free_replays": 2})])
def test_resume_equals_uninterrupted(tmp_path, reg, extra):
    cfg = dict(reg=reg, steps=4, ckpt_every=2, **extra)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    assert _final_weights(tmp_path / "b")["step"] == 2
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a["step"] == b["step"] == 4
    for part in ("model", "ema"):
        if a[part] is None:
            continue
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    losses = [[r["loss"] for r in RunDir(p).read_metrics() if "loss" in r]
              for p in (tmp_path / "a", tmp_path / "b")]
    assert losses[0] == losses[1]


def test_existing_run_needs_resume(tmp_path, trained_run):
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(), trained_run, quiet=True)


def test_regularizer_names_and_combinations_are_checked():
    assert parse_regularizers("mixup, PGD") == ["mixup", "pgd"]
    with pytest.raises(ConfigError, match="valid: none, mixup, cutmix, srmix"):
        ClassifyConfig(reg="mixpu")
    with pytest.raises(ConfigError, match="at most one adversarial"):
        ClassifyConfig(reg="pgd,fgsm")
    with pytest.raises(ConfigError, match="adaptivemix already mixes"):
        ClassifyConfig(reg="adaptivemix,cutmix")
