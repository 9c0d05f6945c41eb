"""StyleGAN2 training in the GAN program (the networks: tests/nets/test_stylegan2.py): lazy
regularisation, G-EMA by images, every regularizer on its D, presets, resume, FID."""


import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.gan import ema, lazy_reg
from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.presets import PRESETS
from robustrep.tasks.gan.train import train

TINY_SG2 = dict(arch="stylegan2", image_size=16, z_dim=16, w_dim=16, mapping_layers=2,
                channel_base=128, channel_max=16, mbstd_group=4, batch_size=8)


def test_lazy_adam_adjustment_is_exact():
    kw = lazy_reg.lazy_adam_kwargs(0.0025, (0.0, 0.99), 16)
    assert kw["lr"] == 0.0025 * 16 / 17
    assert kw["betas"] == (0.0, 0.99 ** (16 / 17))
    assert lazy_reg.lazy_adam_kwargs(0.0025, (0.0, 0.99), 1) == {"lr": 0.0025, "betas": (0.0, 0.99)}


def test_ema_beta_by_images():
    assert ema.ema_beta(64, 10**6, 20, None) == 0.5 ** (64 / 20_000)
    assert ema.ema_beta(32, 1000, 10, 0.05) == 0.5 ** (32 / 50)  # ramp-up caps the half-life
    assert ema.ema_beta(32, 0, 10, 0.05) == 0.0  # the first step copies G


def tiny_sg2(tiny_cfg, **overrides):
    return tiny_cfg(**{**TINY_SG2, **overrides})


def test_lazy_schedules_and_optimizers(tiny_cfg, tmp_path, records):
    """R1 only every 16 D steps and PL every 4 G steps, as their own optimizer steps."""
    run = tmp_path / "run"
    cfg = tiny_sg2(tiny_cfg, steps=17, r1_gamma=1.0, r1_every=16, pl_every=4, ckpt_every=100,
                   out=str(run), lr_g=0.002, lr_d=0.003, beta1=0.0, beta2=0.99)
    train(cfg, show_progress=False)
    recs = [r for r in records(run) if "loss/d/total" in r]
    assert [r["step"] for r in recs if "loss/d/r1" in r] == [1, 17]
    assert [r["step"] for r in recs if "loss/g/pl" in r] == [1, 5, 9, 13, 17]
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    g_group, d_group = state["opt_g"]["param_groups"][0], state["opt_d"]["param_groups"][0]
    assert g_group["lr"] == 0.002 * 4 / 5 and g_group["betas"] == (0.0, 0.99 ** 0.8)
    assert d_group["lr"] == 0.003 * 16 / 17 and d_group["betas"] == (0.0, 0.99 ** (16 / 17))
    # 17 main D steps + 2 R1 steps; 17 main G steps + 5 PL steps (Adam's step counter; a
    # parameter the penalty does not reach, such as D's output bias, skips the lazy steps)
    d_steps = {int(v["step"]) for v in state["opt_d"]["state"].values()}
    g_steps = {int(v["step"]) for v in state["opt_g"]["state"].values()}
    assert max(d_steps) == 19 and max(g_steps) == 22


@pytest.mark.parametrize("reg", ["none", "adaptivemix", "adaptivemix-additive", "dat", "asgan",
                                 "srmix"])
def test_regs_run_on_stylegan2(reg, tiny_cfg, tmp_path, records, finite_losses):
    extra = dict(am_mode="additive") if reg.endswith("additive") else {}
    run = tmp_path / "run"
    train(tiny_sg2(tiny_cfg, reg=reg.split("-")[0], r1_gamma=1.0, r1_every=2,
                   diffaugment="color,translation,cutout", out=str(run), **extra),
          show_progress=False)
    recs = records(run)
    finite_losses(recs)
    logged = {k for r in recs for k in r}
    own = {"adaptivemix": {"loss/d/am_shrink", "loss/g/am_shrink"}, "srmix": {"loss/d/mix"}}
    assert own.get(reg.split("-")[0], set()) | {"loss/d/r1"} <= logged  # each term really ran


def test_dat_leaves_stylegan2_fakes_unclamped(tiny_cfg):
    """StyleGAN2's G ends in a linear toRGB (no tanh): DAT must not clamp its fakes into [-1, 1].
    The DAT row of docs/evidence/gan/stylegan2.md ran with that clamp: the fakes D saw moved by
    0.2-0.5 per pixel on average, DAT's own step (a batch-mean gradient) by about 5e-5."""
    from robustrep.tasks.gan.regs import build_regs
    dat = build_regs(tiny_sg2(tiny_cfg, reg="dat")).d_inputs
    d = torch.nn.Conv2d(1, 1, 16)
    gen = torch.Generator().manual_seed(0)
    x_real = torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1
    x_fake = 3 * torch.randn(8, 1, 16, 16, generator=gen)  # a young G's fakes leave [-1, 1]
    real_adv, fake_adv = dat.d_inputs(lambda x: d(x).flatten(), x_real, x_fake, gen, model=d)
    step = d.weight.detach().abs().expand(8, 1, 16, 16) / 8  # |grad of the batch mean|
    torch.testing.assert_close((fake_adv - x_fake).abs(), step)
    torch.testing.assert_close((real_adv - x_real).abs(), step)


def test_rpgan_and_spectral_norm_are_refused(tiny_cfg):
    with pytest.raises(ConfigError, match="rpgan"):
        tiny_sg2(tiny_cfg, reg="rpgan")
    with pytest.raises(ConfigError, match="spectral-norm"):
        tiny_sg2(tiny_cfg, spectral_norm=True)
    with pytest.raises(ConfigError, match="^--pl-weight applies only with --arch stylegan2 "
                                          r"\(arch is 'dcgan'\); drop it or set "):
        tiny_cfg(pl_weight=2.0)
    with pytest.raises(ConfigError, match="diffaugment"):
        tiny_cfg(diffaugment="color,zoom")


def test_resume_equals_uninterrupted(tiny_cfg, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    opts = dict(reg="adaptivemix", r1_gamma=1.0, r1_every=2, pl_every=2, ema_kimg=0.1,
                ema_rampup=0.05, diffaugment="color,translation,cutout", ckpt_every=3)
    train(tiny_sg2(tiny_cfg, steps=6, out=str(full), **opts), show_progress=False)
    train(tiny_sg2(tiny_cfg, steps=3, out=str(part), **opts), show_progress=False)
    assert main(["gan", "train", "--resume", str(part), "--steps", "6", "--quiet"]) == 0
    a = torch.load(full / "checkpoints" / "latest.pt", weights_only=False)
    b = torch.load(part / "checkpoints" / "latest.pt", weights_only=False)
    for part_name in ("G", "D", "ema"):
        for key, value in a[part_name].items():
            assert torch.equal(value, b[part_name][key]), f"{part_name}.{key} differs"
    assert a["G"]["pl_mean"] > 0


@pytest.mark.parametrize("preset", ["afhqcat256-stylegan2", "ffhq256-stylegan2"])
def test_paper256_presets(preset):
    cfg = GanConfig(**PRESETS[preset])
    assert (cfg.image_size, cfg.mapping_layers, cfg.channel_base, cfg.channel_max) == \
        (256, 8, 16384, 512)
    assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == (0.0025, 0.0025, 0.0, 0.99)
    assert (cfg.r1_gamma, cfg.r1_every, cfg.pl_weight, cfg.pl_every) == (1.0, 16, 2.0, 4)
    assert (cfg.mbstd_group, cfg.style_mixing, cfg.ema_kimg, cfg.ema_rampup) == \
        (8, 0.9, 20.0, None)
    assert cfg.batch_size * cfg.steps == 25_000_000
    assert cfg.mirror  # stylegan2-ada's README and AdaptiveMix's scripts: --mirror=1


def test_dry_run_resolves_paper256(capsys):
    assert main(["gan", "train", "--preset", "ffhq256-stylegan2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"channel_base": 16384' in out and '"mbstd_group": 8' in out


@pytest.mark.slow
def test_short_cpu_run_lowers_fid(tmp_path, records):
    """400 steps (about 2 min on 2 cores). FID is not monotone early, and where it swings moves
    with the torch version: under torch 2.14.1 (seed 0, 2-core CPU, 500 samples) untrained 25.5,
    then every 50 steps 17.0, 29.1, 9.1, 217.9 (a speckled-noise phase: the noise inputs'
    strength grows), 58.8, 8.0, 6.7, 5.7; an earlier torch gave 21.8 at 100 steps, which
    torch 2.14.1 puts at 29.1. From 300 steps it falls steadily."""
    run = tmp_path / "run"
    cfg = GanConfig(**{**PRESETS["digits-stylegan2"], "steps": 400, "eval_every": 0,
                       "ckpt_every": 1000, "eval_samples": 500, "out": str(run),
                       "device": "cpu", "preset": "digits-stylegan2"})
    from robustrep.tasks.gan.data import build_data
    from robustrep.tasks.gan.evaluate import Evaluator
    from robustrep.tasks.gan.models import build_generator
    torch.manual_seed(cfg.seed)
    data = build_data(cfg)
    untrained = Evaluator(cfg, data, torch.device("cpu"), 500)(build_generator(cfg, data.shape))
    summary = train(cfg, show_progress=False)
    assert summary["metrics"]["fid"] < 0.9 * untrained["fid"]


def test_cifar_preset_is_the_reference_cifar_config():
    cfg = GanConfig(**PRESETS["cifar10-stylegan2"])
    assert (cfg.d_arch, cfg.fp16_res, cfg.conv_clamp) == ("orig", 4, 256.0)
    assert (cfg.mapping_layers, cfg.mbstd_group, cfg.r1_gamma, cfg.pl_weight) == (2, 32, 0.01, 0.0)
    paper = GanConfig(**PRESETS["ffhq256-stylegan2"])
    assert (paper.d_arch, paper.fp16_res, paper.conv_clamp) == (None, 4, 256.0)  # resnet D


@pytest.mark.parametrize("d_arch", ["orig", "skip"])
def test_d_arch_and_conv_clamp_train(d_arch, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_sg2(tiny_cfg, steps=2, d_arch=d_arch, conv_clamp=256.0, r1_gamma=1.0,
                   r1_every=2, out=str(run)), show_progress=False)
    finite_losses(records(run))
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert any(k.startswith("trunk.fromrgb") for k in state["D"]) == (d_arch == "skip")


def test_a_seed_gives_the_same_samples_and_leaves_the_global_rng(tiny_cfg):
    # were: the noise inputs drew from the global RNG, so `gan sample --seed 0` differed on every
    # call, and an evaluation during training moved the run's own draws
    from robustrep.tasks.gan.models import build_generator, generate
    G = build_generator(tiny_cfg(**TINY_SG2), (1, 16, 16))
    with torch.no_grad():
        for block in G.synthesis.modules():
            if hasattr(block, "noise_strength"):
                block.noise_strength.fill_(1.0)  # trained noise; 0 at init would hide it
    state = torch.get_rng_state()
    first = generate(G, 6, torch.device("cpu"), seed=0, batch=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(generate(G, 6, torch.device("cpu"), seed=0, batch=4), first)
    assert not torch.equal(generate(G, 6, torch.device("cpu"), seed=1, batch=4), first)


def test_an_evaluation_during_training_leaves_its_losses(tiny_cfg, tmp_path, records,
                                                         undrawn_curves):
    # --eval-every may change on resume: it must not move the run's draws (StyleGAN2's noise)
    runs = {every: tmp_path / f"every{every}" for every in (0, 1)}
    for every, out in runs.items():  # step 2's losses come after step 1's evaluation
        train(tiny_cfg(**TINY_SG2, steps=2, eval_every=every, eval_samples=16, out=str(out)),
              show_progress=False)
    losses = [[{k: v for k, v in r.items() if k.startswith("loss/")} for r in records(out)
               if "loss/d/total" in r] for out in runs.values()]
    assert losses[0] and losses[0] == losses[1]


def test_fp16_blocks_on_a_cpu_are_announced(tiny_cfg, tmp_path, capsys):
    # were silent: a 256x256 preset tried on a CPU crawled in float16 (about 20x slower)
    train(tiny_cfg(**TINY_SG2, steps=1, fp16_res=1, conv_clamp=256.0, out=str(tmp_path / "a")),
          show_progress=False)
    assert "note: --fp16-res 1 runs the 1 highest resolutions in float16" in \
        capsys.readouterr().err
    train(tiny_cfg(**TINY_SG2, steps=1, out=str(tmp_path / "b")), show_progress=False)
    assert "float16" not in capsys.readouterr().err
