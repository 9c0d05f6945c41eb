"""The GAN program's named presets (``--preset``): the option values a run starts from, before
``--config FILE`` and flags (``tasks.common.config.resolve_config``), and the D auxiliary task
that some of them carry.

- DCGAN and MLP presets for the digits, the 2-D mixtures (ring, grid), CIFAR and an image
  folder; ``digits-dcgan`` (the default), ``ring-mlp`` and ``grid-mlp`` fit a CPU budget.
- SNGAN-ResNet (Miyato et al. 2018) as mimicry's CIFAR-10 training table, the base of DAT.
- DAT's SSGAN and InfoMax-GAN rows (Li et al. 2023, iceli1007/DAT-GAN on mimicry): the SNGAN
  with its D auxiliary task (:data:`AUX_PRESETS`, :func:`with_preset_aux_task`).
- StyleGAN2 (Karras et al. 2020) as stylegan2-ada's configurations (train.py ``cfg_specs``:
  paper256 and cifar); AFHQ-Cat is AdaptiveMix's limited-data benchmark.
- RP-GAN's projection count K per preset (:data:`PRESET_RP_NUM_VIEWS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustrep.registry import split_combination
from robustrep.tasks.common.config import ConfigError

if TYPE_CHECKING:  # config.py imports this module: GanConfig is only named in annotations
    from robustrep.tasks.gan.config import GanConfig

DEFAULT_PRESET = "digits-dcgan"  # the preset of a run that names none

# RP-GAN's K where --rp-num-views is not given: the reference's main model has 48; the CPU
# presets cut it to 12 (its face12 ablation) to keep their time budget. Kept out of the presets
# themselves, which would else hand a K to every run that does not take rpgan.
RP_NUM_VIEWS = 48
PRESET_RP_NUM_VIEWS = {"digits-dcgan": 12, "ring-mlp": 12, "grid-mlp": 12}


_CIFAR_DCGAN = dict(arch="dcgan", image_size=32, z_dim=128, g_width=128, d_width=64, loss="ns",
                    steps=100_000, batch_size=64, lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999,
                    ema_decay=0.9999, eval_every=5000, eval_samples=10_000, ckpt_every=5000,
                    log_every=100)
# SNGAN-ResNet (Miyato et al. 2018) as mimicry's CIFAR-10 training table (the DAT base): hinge,
# n_dis 5, Adam 2e-4 (0, 0.9) decayed linearly to 0, 100k steps, batch 64, 256-channel G blocks,
# 128-channel D blocks, every D layer spectral-normed; no G-EMA (mimicry scores netG itself).
_CIFAR_SNGAN = dict(arch="sngan", image_size=32, z_dim=128, g_width=256, d_width=128,
                    spectral_norm=True, loss="hinge", n_dis=5, steps=100_000, batch_size=64,
                    lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9, schedule="linear", ema_decay=0.0,
                    eval_every=5000, eval_samples=10_000, ckpt_every=5000, log_every=100)
# 2-D mixtures: at lr 2e-4 the MLP GAN needs far more than a CPU budget of steps to sharpen the
# modes; lr 1e-3 with a G-EMA reaches ~20 of 25 grid modes in 6000 steps (about 30 s on a core).
_MIXTURE = dict(arch="mlp", z_dim=16, g_width=128, d_width=128, mlp_depth=3, loss="ns",
                steps=6000, batch_size=256, lr_g=1e-3, lr_d=1e-3, beta1=0.5, beta2=0.999,
                ema_decay=0.999, eval_every=1000, eval_samples=2500, ckpt_every=2000,
                log_every=100)

# The default must finish in <= 5 minutes on 2 CPU cores with recognisable digits (measured in
# the README).
PRESETS: dict[str, dict[str, Any]] = {
    "digits-dcgan": dict(dataset="digits", arch="dcgan", image_size=32, z_dim=64, g_width=32,
                         d_width=32, loss="ns", steps=2000, batch_size=32, lr_g=2e-4, lr_d=2e-4,
                         beta1=0.5, beta2=0.999, ema_decay=0.999, eval_every=500,
                         eval_samples=1000, ckpt_every=500, log_every=50),
    "ring-mlp": dict(dataset="ring", **_MIXTURE),
    "grid-mlp": dict(dataset="grid", **_MIXTURE),
    "cifar10-dcgan": dict(dataset="cifar10", **_CIFAR_DCGAN),
    "cifar10-sngan": dict(dataset="cifar10", **_CIFAR_SNGAN),
    "cifar100-dcgan": dict(dataset="cifar100", **_CIFAR_DCGAN),
    "cifar100-sngan": dict(dataset="cifar100", **_CIFAR_SNGAN),
    "imagefolder-dcgan64": dict(dataset="imagefolder", arch="dcgan", image_size=64, z_dim=100,
                                g_width=64, d_width=64, loss="ns", steps=50_000, batch_size=64,
                                lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, ema_decay=0.9999,
                                eval_every=5000, eval_samples=10_000, ckpt_every=5000,
                                log_every=100),
}

# StyleGAN2 (Karras et al. 2020) as stylegan2-ada's configurations (train.py cfg_specs):
# paper256 = map 8, fmaps 0.5 (channel_base 16384, channel_max 512), mbstd group 8, Adam lr 0.0025
# betas (0, 0.99), R1 gamma 1 every 16 D steps, path length 2 every 4 G steps, style mixing 0.9,
# EMA 20 kimg without ramp-up, batch 64, 25000 kimg; the 4 highest resolutions of G and D in fp16
# with conv_clamp 256 (train.py sets num_fp16_res 4 and conv_clamp 256 for every cfg).
_PAPER256 = dict(arch="stylegan2", image_size=256, z_dim=512, w_dim=512, mapping_layers=8,
                 channel_base=16384, channel_max=512, mbstd_group=8, loss="ns", lr_g=0.0025,
                 lr_d=0.0025, beta1=0.0, beta2=0.99, r1_gamma=1.0, r1_every=16, pl_weight=2.0,
                 pl_every=4, style_mixing=0.9, ema_kimg=20.0, ema_rampup=None, batch_size=64,
                 fp16_res=4, conv_clamp=256.0,
                 steps=25_000_000 // 64, eval_every=10_000, eval_samples=10_000,
                 ckpt_every=5000, log_every=100)
# stylegan2-ada's cifar configuration: map 2, fmaps 1, mbstd 32, gamma 0.01, EMA 500 kimg with
# ramp-up 0.05, no style mixing and no path length, the "orig" D; fp16 and clamp as paper256.
_CIFAR_STYLEGAN2 = dict(arch="stylegan2", image_size=32, z_dim=512, w_dim=512, mapping_layers=2,
                        channel_base=32768, channel_max=512, mbstd_group=32, loss="ns",
                        d_arch="orig", fp16_res=4, conv_clamp=256.0,
                        lr_g=0.0025, lr_d=0.0025, beta1=0.0, beta2=0.99, r1_gamma=0.01,
                        r1_every=16, pl_weight=0.0, pl_every=4, style_mixing=0.0,
                        ema_kimg=500.0, ema_rampup=0.05, batch_size=64, steps=100_000_000 // 64,
                        eval_every=10_000, eval_samples=10_000, ckpt_every=5000, log_every=100)
PRESETS.update({
    # CPU: the paper256 recipe scaled to 32x32 digits (2 mapping layers, 16-64 feature maps,
    # w 128, mbstd 4, R1 gamma 0.01 as the cifar setting; EMA 10 kimg ramped at 0.05).
    "digits-stylegan2": dict(dataset="digits", arch="stylegan2", image_size=32, z_dim=64,
                             w_dim=128, mapping_layers=2, channel_base=512, channel_max=64,
                             mbstd_group=4, loss="ns", lr_g=0.0025, lr_d=0.0025, beta1=0.0,
                             beta2=0.99, r1_gamma=0.01, r1_every=16, pl_weight=2.0, pl_every=4,
                             style_mixing=0.9, ema_kimg=10.0, ema_rampup=0.05, batch_size=32,
                             steps=400, eval_every=200, eval_samples=1000, ckpt_every=200,
                             log_every=50),
    "cifar10-stylegan2": dict(dataset="cifar10", **_CIFAR_STYLEGAN2),
    # AFHQ-Cat, AdaptiveMix's limited-data benchmark: its ADA baseline is this preset with
    # --augment ada (stylegan2-ada's default aug), AdaptiveMix the same with --reg adaptivemix.
    # x-flips: stylegan2-ada's README trains FFHQ and AFHQ with --mirror=1, and so do
    # AdaptiveMix's run_cat_styleganv2.sh and run_ffhq_full_styleganv2.sh.
    "afhqcat256-stylegan2": dict(dataset="imagefolder", mirror=True, **_PAPER256),
    "ffhq256-stylegan2": dict(dataset="imagefolder", mirror=True, **_PAPER256),
})

# DAT's SSGAN and InfoMax-GAN rows (Li et al. 2023, iceli1007/DAT-GAN on mimicry): mimicry's
# CIFAR-10 table settings for both, the SNGAN-ResNet above; the losses' weights
# are the core classes' defaults, the reference's (SSGAN 1.0 on D, 0.2 on G; InfoMax-GAN 0.2 and
# 0.2, nrkhs 1024). The D auxiliary task is part of the preset's network, DAT's baseline row:
# ``--reg`` adds to it (:func:`with_preset_aux_task`), so ``--preset cifar10-ssgan --reg dat`` is
# SSGAN with DAT and ``--reg none`` is SSGAN; ``--aux-task none`` drops it (the SNGAN at 100k).
AUX_PRESETS = {"cifar10-ssgan": "ssgan", "cifar10-infomax": "infomax"}
PRESETS.update({name: dict(dataset="cifar10", reg=reg, **_CIFAR_SNGAN)
                for name, reg in AUX_PRESETS.items()})
AUX_TASK_CHOICES = ("preset", "none")


def presets_for(aux_task: str | None) -> dict[str, dict[str, Any]]:
    """The presets, without their D auxiliary task under ``--aux-task none``."""
    if aux_task != "none":
        return PRESETS
    return {name: {k: v for k, v in values.items() if not (name in AUX_PRESETS and k == "reg")}
            for name, values in PRESETS.items()}


def with_preset_aux_task(cfg: GanConfig, preset: str | None,
                         aux_task: str | None = None) -> GanConfig:
    """``cfg`` with the preset's D auxiliary task added to its ``reg`` when ``--reg`` replaced it
    (``cifar10-ssgan`` + ``--reg dat`` -> ``ssgan,dat``); with ``aux_task="none"`` (``cfg``
    resolved from :func:`presets_for`) it is not added, and naming it in ``--reg`` is an error."""
    import dataclasses
    base = AUX_PRESETS.get(preset or "")
    names = list(split_combination(cfg.reg))  # checked by parse_regs when cfg was made
    if aux_task == "none":
        if base is None:  # was accepted with nothing to drop
            raise ConfigError(f"--aux-task none drops the D auxiliary task of presets "
                              f"{' and '.join(AUX_PRESETS)}; preset {preset} has none, drop "
                              f"--aux-task")
        if base in names:
            raise ConfigError(f"--aux-task none drops the D auxiliary task {base} that --reg "
                              f"names ({cfg.reg}); drop one of them")
        return cfg
    if base is None or base in names:
        return cfg
    joined = ",".join([base, *names])
    try:
        return dataclasses.replace(cfg, reg=joined)
    except ConfigError as err:  # named the preset's task the user never typed, without the way
        reason = str(err).removeprefix("--reg: ")
        raise ConfigError(f"--preset {preset} includes its D auxiliary task {base}, so --reg "
                          f"{cfg.reg} would run as --reg {joined}: {reason}; add --aux-task "
                          f"none to train --reg {cfg.reg} without {base}") from None
