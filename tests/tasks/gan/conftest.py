"""Tiny GAN configs for the gan program's tests: 16x16 digits or 2-D points, batch 8, CPU."""

import fcntl
import json
import math
import os

import pytest

from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.presets import PRESETS

TINY_DIGITS = dict(image_size=16, g_width=8, d_width=8, z_dim=16, batch_size=8, steps=2,
                   eval_every=0, final_eval=False, ckpt_every=1, log_every=1, eval_samples=64,
                   seed=0, device="cpu")
TINY_GRID = dict(g_width=16, d_width=16, z_dim=4, mlp_depth=2, batch_size=8, steps=2,
                 eval_every=0, final_eval=False, ckpt_every=1, log_every=1, eval_samples=200,
                 mixture_samples=1000, seed=0, device="cpu")
# a tiny projection ensemble, for the configs that take rpgan (its options are refused else)
TINY_RP = {"grid": dict(rp_num_views=3), "digits": dict(rp_num_views=2, rp_base_channels=4)}


def tiny_config(preset="digits-dcgan", **overrides) -> GanConfig:
    points = preset in ("grid-mlp", "ring-mlp")
    base = TINY_GRID if points else TINY_DIGITS
    if overrides.get("arch", PRESETS[preset]["arch"]) == "stylegan2":  # no widths: refused
        base = {k: v for k, v in base.items() if k not in ("g_width", "d_width")}
    rp = TINY_RP["grid" if points else "digits"] if "rpgan" in str(overrides.get("reg")) else {}
    return GanConfig(**{**PRESETS[preset], **base, **rp, "preset": preset, **overrides})


@pytest.fixture
def tiny_cfg():
    return tiny_config


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """The digits feature net and real statistics go to a session folder, not ~/.cache: one
    for all the session's pytest-xdist workers, where the first worker to need the digits net
    trains it under a lock and the others read it (each trained its own: 4 s a worker)."""
    from robustrep.tasks.gan import feature_nets
    root = tmp_path_factory.getbasetemp()
    cache = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "robustrep-cache"
    cache.mkdir(exist_ok=True)
    trained_once = feature_nets.digits_feature_net

    def locked(*args, **kwargs):
        with open(cache / ".digits-net.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return trained_once(*args, **kwargs)

    old = os.environ.get("ROBUSTREP_CACHE")
    os.environ["ROBUSTREP_CACHE"] = str(cache)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_nets, "digits_feature_net", locked)
        yield os.environ["ROBUSTREP_CACHE"]
    if old is None:
        os.environ.pop("ROBUSTREP_CACHE", None)
    else:
        os.environ["ROBUSTREP_CACHE"] = old


@pytest.fixture
def undrawn_curves(monkeypatch):
    """plots/losses.png and plots/metrics.png are written empty (by the same atomic writer),
    not drawn: matplotlib takes 0.1-0.25 s a picture, most of a tiny run's evaluation. For
    tests that read no curves; test_eval.py's test_training_evaluates_and_draws and
    test_resume_pictures.py draw them and check them."""
    from robustrep.tasks.common.runfiles import write_atomic
    from robustrep.tasks.gan import train

    def undrawn(records, keys, path, **kwargs):
        if not any(k in r for k in keys for r in records):
            return None  # as curves: no panel, no file
        return write_atomic(path, lambda handle: None)
    monkeypatch.setattr(train, "curves", undrawn)


def read_records(run):
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture
def records():
    return read_records


def assert_finite_losses(records):
    losses = [(r["step"], k, v) for r in records for k, v in r.items() if k.startswith("loss/")]
    assert losses, "no loss records"
    bad = [x for x in losses if not (isinstance(x[2], float) and math.isfinite(x[2]))]
    assert not bad, bad


@pytest.fixture
def finite_losses():
    return assert_finite_losses
