"""Every --reg (and combinations) trains a few steps end to end on tiny data."""

import pytest
import torch

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.gan.regs import METHODS, parse_regs
from robustrep.tasks.gan.train import train

IMAGE_REGS = ["none", *METHODS, "adaptivemix,asgan", "rpgan,dat,srmix"]
POINT_REGS = ["none", "adaptivemix", "mixup", "dat", "asgan", "rpgan", "adaptivemix,asgan"]


def _check_run(run, records, finite_losses, steps=2):
    recs = records(run)
    finite_losses(recs)
    assert max(r["step"] for r in recs) == steps
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == steps
    for key in ("G", "D", "opt_g", "opt_d", "scaler", "regs", "rng", "consumed"):
        assert key in state
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    return recs, state


@pytest.mark.parametrize("reg", IMAGE_REGS)
def test_reg_runs_on_digits(reg, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(reg=reg, out=str(run)), show_progress=False)
    recs, state = _check_run(run, records, finite_losses)
    keys = {k for r in recs for k in r}
    if "adaptivemix" in reg:
        assert "loss/d/am_shrink" in keys and "loss/g/am_shrink" in keys
    if any(m in reg for m in ("mixup", "cutmix", "srmix")):
        assert "loss/d/mix" in keys
    if "rpgan" in reg:  # D is the projection ensemble: K members' grouped weights
        assert any("proj" in k for k in state["D"])


@pytest.mark.parametrize("reg", POINT_REGS)
def test_reg_runs_on_grid(reg, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg("grid-mlp", reg=reg, out=str(run)), show_progress=False)
    _check_run(run, records, finite_losses)


@pytest.mark.parametrize("options", [
    dict(loss="hinge"), dict(loss="ls"), dict(loss="wasserstein"),
    dict(r1_gamma=1.0, r1_every=2, reg="adaptivemix"), dict(spectral_norm=True),
    dict(reg="asgan", asgan_free=True), dict(reg="cutmix", mix_mode="replace"),
    dict(reg="asgan", asgan_mode="add", asgan_steps=2),
    dict(reg="adaptivemix", am_mode="additive", am_g_shrink=False, am_distance="mse"),
    dict(amp="bf16", reg="adaptivemix"), dict(channels_last=True, reg="dat"), dict(n_dis=2),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_options_run(options, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), **options), show_progress=False)
    _check_run(run, records, finite_losses)


def test_free_perturbation_state_is_checkpointed(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(reg="asgan", asgan_free=True, out=str(run)), show_progress=False)
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    delta = state["regs"]["asgan"]["delta"]
    assert delta is not None and delta.abs().max() > 0
    assert delta.abs().max() <= 0.05 + 1e-6  # within the core's default eps


def test_sngan_builds_and_steps(tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    cfg = tiny_cfg(arch="sngan", image_size=32, g_width=8, d_width=8, spectral_norm=True,
                   loss="hinge", steps=1, out=str(run))
    train(cfg, show_progress=False)
    _check_run(run, records, finite_losses, steps=1)


@pytest.mark.parametrize("text, message", [
    ("foo", "--reg: unknown regularizer .foo. for gan; valid: none, adaptivemix"),
    ("dat,asgan", "same place"),
    ("mixup,cutmix", "same place"),
    ("adaptivemix,rpgan", "same place"),
    ("mixup,mixup", "twice"),
])
def test_bad_reg_lists_choices(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_regs(text)


def test_parse_regs():
    assert parse_regs("none") == ()
    assert parse_regs(" adaptivemix , asgan ") == ("adaptivemix", "asgan")
    with pytest.raises(ConfigError, match="2-D points"):
        parse_regs("cutmix", arch="mlp")
