"""``--augment ada|fixed`` in the GAN program: ADA on everything D sees, with every --reg, its p
adapting and resuming (the pipeline itself: tests/test_ada.py)."""

from types import SimpleNamespace

import pytest
import torch

from robustrep.ada import ADA_INTERVAL, ADA_KIMG, ADA_TARGET, AdaptiveP, ada_augment
from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.gan import steps
from robustrep.tasks.gan.train import train

from .test_steps_logic import make_ctx
from .test_stylegan2 import tiny_sg2


def test_augment_applies_ada_with_the_reg_stream():
    ctx = make_ctx("ns")
    x = torch.rand(4, 3, 8, 8)
    ctx.ada = AdaptiveP(p=0.0)
    assert steps.augment(ctx, x) is x  # p = 0: untouched
    ctx.ada.p = 1.0
    gen = torch.Generator().set_state(ctx.gens["reg"].get_state())
    torch.testing.assert_close(steps.augment(ctx, x), ada_augment(x, 1.0, generator=gen))
    assert torch.equal(ctx.gens["reg"].get_state(), gen.get_state())


def test_ada_sees_reals_fakes_g_fakes_and_r1_reals(tiny_cfg, tmp_path, monkeypatch):
    calls = []

    def recording(x, p, *args, **kwargs):
        calls.append((x.shape[0], x.requires_grad))
        return ada_augment(x, p, *args, **kwargs)

    monkeypatch.setattr(steps, "ada_augment", recording)
    cfg = tiny_sg2(tiny_cfg, steps=2, r1_gamma=1.0, r1_every=2, augment="fixed", augment_p=0.5,
                   ckpt_every=0, out=str(tmp_path / "run"))
    train(cfg, show_progress=False)
    # stylegan2-ada's order. Step 1: G fakes, D reals, D fakes, lazy R1's reals (due at D step
    # 0); step 2: no R1
    assert len(calls) == 4 + 3
    assert calls[3][1]  # R1's reals require grad: the penalty differentiates through ADA
    assert calls[0][1] and not calls[1][1] and not calls[2][1]  # G's fakes carry G's gradient


@pytest.mark.parametrize("reg", ["none", "adaptivemix", "dat", "asgan", "srmix", "rpgan"])
def test_ada_combines_with_every_reg(reg, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(reg=reg, augment="ada", augment_p=0.2, ada_interval=1, ada_kimg=0.05,
                   steps=3, out=str(run)), show_progress=False)
    recs = records(run)
    finite_losses(recs)
    p = [r["loss/ada/p"] for r in recs if "loss/ada/p" in r]
    assert len(p) == 3 and len(set(p)) > 1  # adjusted every iteration by 8 / 50


def test_resume_keeps_p(tiny_cfg, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    opts = dict(augment="ada", augment_p=0.3, ada_interval=3, ada_kimg=0.1, ckpt_every=2)
    train(tiny_sg2(tiny_cfg, steps=4, out=str(full), **opts), show_progress=False)
    train(tiny_sg2(tiny_cfg, steps=2, out=str(part), **opts), show_progress=False)
    mid = torch.load(part / "checkpoints" / "latest.pt", weights_only=True)
    assert mid["ada"]["count"] == 16 and mid["ada"]["iterations"] == 2  # mid-interval state
    assert main(["gan", "train", "--resume", str(part), "--steps", "4", "--quiet"]) == 0
    a = torch.load(full / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(part / "checkpoints" / "latest.pt", weights_only=True)
    assert a["ada"] == b["ada"] and a["ada"]["p"] != 0.3
    for key, value in a["D"].items():
        assert torch.equal(value, b["D"][key]), key


def test_config_errors(tiny_cfg):
    with pytest.raises(ConfigError, match="--augment-p"):
        tiny_cfg(augment="fixed")
    with pytest.raises(ConfigError, match="^--ada-kimg applies only with --augment ada "
                                          r"\(augment is 'fixed'\); drop it or pass"):
        tiny_cfg(augment="fixed", augment_p=0.5, ada_kimg=1.0)
    with pytest.raises(ConfigError, match="^--ada-target, --ada-kimg apply only with --augment "
                                          r"ada \(augment is 'fixed'\); drop them or pass"):
        tiny_cfg(augment="fixed", augment_p=0.5, ada_kimg=1.0, ada_target=0.5)
    with pytest.raises(ConfigError, match="--augment-p applies only"):
        tiny_cfg(augment_p=0.5)
    with pytest.raises(ConfigError, match="2-D points"):
        tiny_cfg("grid-mlp", augment="ada")
    with pytest.raises(SystemExit) as exit_info:
        main(["gan", "train", "--augment", "ada", "--augment-p", "1.5", "--dry-run"])
    assert exit_info.value.code == 2


def ada_cfg(**kw):
    base = dict(augment="ada", augment_p=None, ada_target=None, ada_interval=None, ada_kimg=None)
    return SimpleNamespace(**{**base, **kw})


def test_build_ada_passes_the_options_and_fixed_keeps_p():
    assert steps.build_ada(ada_cfg(augment="none")) is None
    state = steps.build_ada(ada_cfg())
    assert (state.p, state.target, state.interval, state.kimg) == (0.0, 0.6, 4, 500.0)
    assert (ADA_TARGET, ADA_INTERVAL, ADA_KIMG) == (0.6, 4, 500.0)  # stylegan2-ada's defaults
    state = steps.build_ada(ada_cfg(augment_p=0.2, ada_target=0.7, ada_interval=8, ada_kimg=100))
    assert (state.p, state.target, state.interval, state.kimg) == (0.2, 0.7, 8, 100)
    fixed = steps.build_ada(ada_cfg(augment="fixed", augment_p=0.3))
    assert fixed.p == 0.3 and fixed.target is None and not fixed.adaptive


def test_ada_step_sums_the_heuristic_over_processes_when_p_is_due(monkeypatch):
    """stylegan2-ada's training_loop.py: every ``ada_interval`` iterations
    ``p += sign(r_t - target) * images / (kimg * 1000)``, ``r_t`` over every process's reals
    (one all-reduce, only then)."""
    reduced = []

    def with_another_process(t):  # it saw 24 reals, every logit negative
        reduced.append(t.tolist())
        return t + torch.tensor([-24.0, 24.0])
    monkeypatch.setattr(steps, "all_reduce_sum", with_another_process)
    ada = AdaptiveP(p=0.5, target=0.6, interval=3, kimg=1.0)
    ctx = SimpleNamespace(ada=ada, cfg=SimpleNamespace(n_dis=2, batch_size=4),
                          device=torch.device("cpu"))
    ps = []
    for _ in range(6):
        ada.accumulate(torch.ones(8))  # alone, r_t = 1 > 0.6 would raise p
        ps.append(float(steps.ada_step(ctx)["ada/p"]))
        assert len(reduced) == len(ps) // 3
    # r_t = (24 - 24) / 48 = 0 < 0.6: down by 3 iterations x 2 D steps x 4 reals / 1000
    assert ps == pytest.approx([0.5, 0.5, 0.476, 0.476, 0.476, 0.452])
    assert reduced == [[24.0, 24.0], [24.0, 24.0]]
    # the sums and the logged p live on the run's device (a meta tensor stands in for one)
    seen = []
    monkeypatch.setattr(steps, "all_reduce_sum", lambda t: seen.append(t.device) or torch.zeros(2))
    ctx.device, ada.interval = torch.device("meta"), 1
    assert steps.ada_step(ctx)["ada/p"].device.type == "meta"
    assert [d.type for d in seen] == ["meta"]
