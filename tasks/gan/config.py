"""The GAN program's options (one dataclass per command); its named presets are
:mod:`robustrep.tasks.gan.presets`.

Resolution order (``tasks.common.config.resolve_config``): field defaults, then ``--preset``, then
``--config FILE``, then flags. Regularizer hyperparameters default to ``None``, which means "the
core object's own default" (the reference code's value, stated once in ``robustrep``); the help
text repeats that value.

``--reg`` takes one method or a comma-separated combination (see :data:`REGS` and
``tasks/gan/regs.py`` for which combinations are accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustrep._names import LOSSES
from robustrep.registry import list_regularizers
from robustrep.tasks.common.config import (BETA, NONNEG, POSITIVE, PROB, REQUIRED, UNIT,
                                           ConfigError, check_fields, option)
from robustrep.tasks.common.options import (TrainRunOptions, check_lsun_classes,
                                            resumable_detail, run_option, shared)
from robustrep.tasks.common.regularizers import check_additive_weight, refuse_unused, reg_option
from robustrep.tasks.common.regularizers import unused_options as unused_fields
from robustrep.tasks.gan.presets import AUX_PRESETS, AUX_TASK_CHOICES, DEFAULT_PRESET, PRESETS

DATASETS = ("digits", "ring", "grid", "cifar10", "cifar100", "imagefolder", "lsun", "celeba",
            "zip")
ARCHS = ("dcgan", "sngan", "mlp", "stylegan2")  # the built-in families (models.py maps onto)
# A network family a plugin registers (robustrep.nets.register_network) takes these config
# fields where its factories take the option; its other options are --FAMILY-OPTION flags.
PLUGIN_FIELDS = {"generator": {"width": "g_width"},
                 "discriminator": {"width": "d_width", "spectral_norm": "spectral_norm"}}
REGS = ("none", *list_regularizers("gan"))
AUGMENT_CHOICES = ("none", "ada", "fixed")
SCHEDULES = ("constant", "linear")
# The help of the FID options that gan train, eval and fid share.
FID_FEATURES_HELP = ("FID/KID/PR features: inception (TF-FID convention), inception-pytorch-fid, "
                     "digits or run:CLASSIFY_RUN (default: digits for the digits data, else "
                     "inception; gan eval and gan fid: what the run or statistics file names)")
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID Inception weights
INCEPTION_ENV = "ROBUSTREP_INCEPTION"
INCEPTION_WEIGHTS_HELP = (f"FID Inception weights ({INCEPTION_FILE}); else ${INCEPTION_ENV}; "
                          f"only with the Inception features (not for digits or 2-D data)")


_opt = option


EMA_DECAY = 0.999  # G-EMA decay per step (the by-step EMA; --ema-kimg sets it by images)


@dataclass
class GanConfig:
    """Every option of ``robustrep gan train``; field defaults are the real defaults."""

    preset: str = _opt(DEFAULT_PRESET, "name of the preset these options started from")
    # data
    dataset: str = _opt("digits", "training data", DATASETS)
    data_root: str | None = shared("data_root")
    lsun_classes: str | None = _opt(None, "LSUN databases under --data-root (dataset lsun), e.g. "
                                          "church_outdoor_train; comma-separated for several")
    skip_bad_images: bool = _opt(False, "imagefolder: leave out unreadable image files (listed "
                                        "on stderr) instead of stopping at the first")
    mirror: bool = _opt(False, "x-flips: add the left-right mirror image of every training "
                               "image, doubling the data (stylegan2-ada --mirror=1; FID's reals "
                               "stay the stored images, as its fid50k_full)")
    image_size: int = _opt(32, "image side (a power of 2 >= 16; ignored for 2-D data)", min=16)
    channels: int | None = _opt(None, "image channels; None = the dataset's: digits 1, a zip "
                                      "its images' (greyscale: 1), else 3 (an image folder is "
                                      "read as RGB; --channels 1 reads it greyscale)",
                                choices=(1, 3))
    mixture_samples: int = _opt(100_000, "size of the fixed pool drawn from a 2-D mixture", min=1)
    num_workers: int | None = _opt(None, "DataLoader workers for datasets read from disk "
                                         "(None = auto: min(4, CPUs - 1), 0 on <= 2 CPUs)",
                                   **NONNEG)
    # model
    arch: str = _opt("dcgan", f"network family: {', '.join(ARCHS)}, or one a --plugin registers "
                              "(robustrep.nets.register_network)", metavar="ARCH")
    arch_options: dict | None = _opt(None, "options of a plugin's network family, {family: "
                                           "{option: value}} (its --FAMILY-OPTION flags)")
    z_dim: int = _opt(64, "latent dimension", min=1)
    g_width: int = _opt(32, "G width (DCGAN: channels of the last up-block; SNGAN: block width; "
                            "MLP: hidden units)", min=1)
    d_width: int = _opt(32, "D width (DCGAN: channels of the first conv; SNGAN: block width; "
                            "MLP: hidden units)", min=1)
    mlp_depth: int = _opt(3, "hidden layers of the MLP G and D", min=1)
    spectral_norm: bool = _opt(False, "spectral normalisation on every D layer (DCGAN D then "
                                      "drops BatchNorm)")
    # StyleGAN2 (arch stylegan2; None = the defaults of robustrep/nets/stylegan2.py and steps.py)
    w_dim: int | None = _opt(None, "StyleGAN2 w dimension (core: 512)", min=1)
    mapping_layers: int | None = _opt(None, "StyleGAN2 mapping-network layers (core: 8)",
                                  min=1)
    channel_base: int | None = _opt(None, "StyleGAN2 feature maps at resolution r: "
                                          "min(channel_base // r, channel_max) (core: 32768; "
                                          "paper256: 16384)", min=1)
    channel_max: int | None = _opt(None, "StyleGAN2 most feature maps per layer (core: 512)",
                               min=1)
    mbstd_group: int | None = _opt(None, "StyleGAN2 minibatch-std group size (core: 4; "
                                         "paper256: 8)", min=1)
    d_arch: str | None = _opt(None, "StyleGAN2 D architecture, as stylegan2-ada's (core: "
                                    "resnet; cifar10-stylegan2: orig)", ("orig", "resnet", "skip"))
    fp16_res: int | None = _opt(None, "StyleGAN2: run the N highest resolutions of G and D in "
                                      "fp16, stylegan2-ada's num_fp16_res (core: 0; paper256 "
                                      "and cifar presets: 4)", **NONNEG)
    conv_clamp: float | None = _opt(None, "StyleGAN2: clamp conv outputs to +-X against fp16 "
                                          "overflow (core: off; paper256 and cifar presets: 256)",
                                    **POSITIVE)
    init: str | None = _opt(None, "StyleGAN2: start G, D and G-EMA from a stylegan2-ada network "
                                  "pickle (.pkl, read without running its code)")
    style_mixing: float | None = _opt(None, "StyleGAN2 style-mixing probability (core: 0.9)",
                                   **UNIT)
    pl_weight: float | None = _opt(None, "StyleGAN2 path-length regularisation weight (core: 2; "
                                         "0 = off)", **NONNEG)
    pl_every: int | None = _opt(None, "lazy path-length regularisation every N G steps (core: 4)",
                              min=1)
    pl_decay: float | None = _opt(None, "path-length running-mean decay (core: 0.01)",
                                **UNIT)
    pl_batch_shrink: int | None = _opt(None, "path-length batch = batch / N (core: 2)",
                                     min=1)
    lazy_reg: bool | None = _opt(None, "R1 and path length as their own optimizer steps with lr "
                                       "and betas adjusted by interval/(interval+1), as "
                                       "stylegan2-ada (None: on for stylegan2, off otherwise; "
                                       "stylegan2 keeps the intervals with a penalty off, as "
                                       "the reference's cifar config)")
    ema_kimg: float | None = _opt(None, "G-EMA half-life in thousands of images, beta = "
                                        "0.5 ** (batch / (ema_kimg * 1000)) (StyleGAN2; None = "
                                        "use ema_decay)", **POSITIVE)
    ema_rampup: float | None = _opt(None, "G-EMA ramp-up: half-life at most ema_rampup * images "
                                          "seen (None = off, as paper256)", **POSITIVE)
    diffaugment: str | None = _opt(None, "DiffAugment policy before D on reals and fakes, e.g. "
                                         "color,translation,cutout (any D; None = off)")
    augment: str = _opt("none", "ADA (Karras et al. 2020) bgc pipeline before D on everything it "
                                "sees: ada = adaptive p, fixed = --augment-p", AUGMENT_CHOICES)
    augment_p: float | None = _opt(None, "ADA probability: fixed p, or the initial p of ada "
                                         "(core: 0)", **UNIT)
    ada_target: float | None = _opt(None, "ADA target of E[sign(D(real))] (core: 0.6)", **UNIT)
    ada_interval: int | None = _opt(None, "ADA: adjust p every N iterations (core: 4)", min=1)
    ada_kimg: float | None = _opt(None, "ADA: thousands of reals for p to move by 1 (core: 500)",
                                  **POSITIVE)
    # loss and penalties
    loss: str = _opt("ns", "adversarial loss", LOSSES)
    gp_weight: float | None = _opt(None, "--loss wasserstein only: WGAN-GP weight (default 10; "
                                         "0 = off)", **NONNEG)
    r1_gamma: float = _opt(0.0, "R1 penalty gamma on reals (0 = off); gamma/2 * ||grad D||^2",
                           **NONNEG)
    r1_every: int = _opt(1, "lazy R1: apply every N D steps, scaled by N (StyleGAN2)", min=1)
    # regularizers
    reg: str = shared("reg")
    reg_options: dict | None = shared("reg_options")
    am_alpha: float | None = reg_option("adaptivemix", "alpha", **POSITIVE)
    am_noise_std: float | None = reg_option("adaptivemix", "noise_std", **NONNEG)
    am_distance: str | None = reg_option("adaptivemix", "distance", ("cosine", "mse"))
    am_mode: str | None = reg_option("adaptivemix", "mode", ("reference", "additive"))
    am_weight: float | None = reg_option("adaptivemix", "weight", **NONNEG)
    am_per_sample: bool | None = reg_option("adaptivemix", "per_sample")
    am_g_shrink: bool | None = reg_option("adaptivemix", "g_shrink")
    mix_alpha: float | None = reg_option("mixup", "alpha", **POSITIVE)
    mix_prob: float | None = reg_option("mixup", "prob", **PROB)
    mix_per_sample: bool | None = reg_option("mixup", "per_sample")
    mix_smoothing: float | None = reg_option("srmix", "smoothing", **UNIT)
    mix_mode: str | None = reg_option("mixup", "mode", ("add", "replace"))
    mix_weight: float | None = reg_option("mixup", "weight", **POSITIVE)
    # 0 would leave the batch as it is while the run records the method as taken
    dat_t: float | None = reg_option("dat", "t", **POSITIVE)
    dat_eps: float | None = reg_option("dat", "eps", **POSITIVE)
    asgan_eps: float | None = reg_option("asgan", "eps", **POSITIVE)
    asgan_steps: int | None = reg_option("asgan", "steps", min=1)
    asgan_norm: str | None = reg_option("asgan", "norm", ("linf", "l2"))
    asgan_free: bool | None = reg_option("asgan", "free")
    asgan_mode: str | None = reg_option("asgan", "mode", ("replace", "add"))
    rp_num_views: int | None = _opt(None, "RP-GAN projections K (None: 12 with presets "
                                          "digits-dcgan, ring-mlp and grid-mlp, else 48, the "
                                          "reference main model)", min=1)
    rp_base_channels: int | None = _opt(None, "RP-GAN first-layer channels per member "
                                              "(None = d_width)", min=1)
    rp_kernel_size: int | None = _opt(None, "RP-GAN projection kernel (core: 8)", min=1)
    # optimisation
    steps: int = _opt(2000, "generator steps (iterations)", min=1)
    batch_size: int = _opt(64, "global batch size (split across processes; >= 2: mixing draws "
                               "partners in the batch)", min=2)
    n_dis: int = _opt(1, "D steps per G step", min=1)
    lr_g: float = _opt(2e-4, "G Adam learning rate", **POSITIVE)
    lr_d: float = _opt(2e-4, "D Adam learning rate", **POSITIVE)
    schedule: str = _opt("constant", "learning rate of G and D: constant, or linear (from "
                                     "--lr-g/--lr-d at the first iteration to 0 at --steps, set "
                                     "before each iteration, as mimicry's SNGAN training; a "
                                     "resume with other --steps goes on along the new line)",
                         SCHEDULES)
    beta1: float = _opt(0.5, "Adam beta1", **BETA)
    beta2: float = _opt(0.999, "Adam beta2", **BETA)
    ema_decay: float = _opt(EMA_DECAY, "EMA decay of G's weights (0 = no EMA; samples come from "
                                       "G; with --ema-kimg only 0 or not matters)", **BETA)
    ema_warmup: bool = _opt(True, "EMA warm-up (timm: decay = 1 - (1 + step)^-2/3, capped; "
                                  "--ema-kimg has its own ramp-up, --ema-rampup)")
    # evaluation and run
    eval_every: int = shared("eval_every", 500)
    # precision/recall take each sample's 3 nearest neighbours: 4 samples at least
    eval_samples: int = _opt(1000, "generated samples per evaluation during training", min=4)
    final_eval: bool = _opt(True, "evaluate the final step (off: only the eval_every schedule)")
    ckpt_every: int = shared("ckpt_every", 500)
    keep_ckpts: int = shared("keep_ckpts")
    log_every: int = shared("log_every", 50)
    inception_weights: str | None = _opt(None, INCEPTION_WEIGHTS_HELP)
    fid_features: str | None = _opt(None, FID_FEATURES_HELP)
    out: str | None = _opt(None, "run folder (default runs/gan/<preset>-<reg>-<time>, with "
                                 "<dataset>-<arch> for <preset> where options replace them)")
    log: str = shared("log")
    seed: int = shared("seed")
    device: str = shared("device")
    amp: str = shared("amp")
    channels_last: bool = shared("channels_last")
    compile: bool = shared("compile")

    def __post_init__(self) -> None:
        from robustrep.tasks.gan.regs import parse_regs  # validates names and combinations
        check_fields(self)  # types, choices and ranges from the field metadata
        _check_arch(self)
        # saved as the registry spells it (`--reg ' Mixup + DAT'` -> mixup,dat; an empty item
        # such as `mixup,` is refused there)
        self.reg = ",".join(parse_regs(self.reg, self.arch)) or "none"
        if self.loss == "wasserstein" and self.gp_weight is None:  # the other losses have none
            self.gp_weight = GP_WEIGHT
        if self.ema_decay == 0:  # no G-EMA: a preset's half-life has nothing to act on
            self.ema_kimg = self.ema_rampup = None
        refuse_unused(unused_options(vars(self)))
        check_lsun_classes(self.lsun_classes)  # before the data: not when the databases open
        if self.arch == "mlp" and self.dataset not in ("ring", "grid"):
            raise ConfigError(f"arch mlp is for the 2-D mixtures (ring, grid); dataset "
                             f"{self.dataset!r} needs arch dcgan or sngan")
        if self.arch in ARCHS and self.arch != "mlp" and self.dataset in ("ring", "grid"):
            raise ConfigError(f"dataset {self.dataset!r} is 2-D points; use arch mlp")
        if self.mirror and self.dataset in ("ring", "grid"):
            raise ConfigError(f"mirror x-flips images; dataset {self.dataset!r} is 2-D points")
        if not self.is_points and (self.image_size < 16 or self.image_size & (self.image_size - 1)):
            raise ConfigError(f"image_size must be a power of 2 >= 16, got {self.image_size}")
        if self.arch == "sngan" and self.image_size != 32:
            raise ConfigError(f"arch sngan is the 32x32 SNGAN-ResNet; got image_size "
                             f"{self.image_size} (use dcgan for other sizes)")
        if self.fid_features is not None:
            from robustrep.tasks.gan.evaluate import check_fid_features
            check_fid_features(self.fid_features)
        _check_stylegan2(self)
        _check_augment(self)
        _check_reg_settings(self)

    @property
    def is_points(self) -> bool:
        return self.dataset in ("ring", "grid")

    @property
    def label(self) -> str:
        """What the progress bar and the default run folder call this run: its preset, or its
        data and network where options replaced the preset's (``--dataset lsun`` on the
        default preset is no digits run)."""
        preset = PRESETS.get(self.preset, {})
        if (preset.get("dataset"), preset.get("arch")) == (self.dataset, self.arch):
            return self.preset
        return f"{self.dataset}-{self.arch}"


def archs() -> tuple[str, ...]:
    """What ``--arch`` accepts: the built-in families, then those a loaded plugin registers
    with both a generator and a discriminator (read without importing torch)."""
    from robustrep.nets import list_networks
    both = set(list_networks("generator")) & set(list_networks("discriminator"))
    return ARCHS + tuple(sorted(both - set(ARCHS)))


def plugin_options(arch: str) -> dict[str, Any]:
    """The options of plugin family ``arch`` that its --FAMILY-OPTION flags set: those of its
    generator and discriminator (``OptionInfo`` by name) that no config field feeds."""
    from robustrep.nets import network_option_info
    out: dict[str, Any] = {}
    for role, fields in PLUGIN_FIELDS.items():
        for opt, info in network_option_info(arch, role).items():
            if opt not in fields:
                out.setdefault(opt, info)
    return out


def _check_arch(cfg: GanConfig) -> None:
    """A known family; a plugin family's options are its own (before any work)."""
    accepted = archs()
    if cfg.arch not in accepted:
        from robustrep.nets import list_networks
        for role, other in (("generator", "discriminator"), ("discriminator", "generator")):
            if cfg.arch in list_networks(role):  # half a family: say which half is missing
                raise ConfigError(f"--arch {cfg.arch}: a plugin registers its {role} but no "
                                  f"{other}; a family needs both (robustrep.nets."
                                  f"register_network({cfg.arch!r}, {other!r}))")
        raise ConfigError(f"--arch must be one of {', '.join(accepted)} (or a family that a "
                          f"--plugin MODULE registers); got {cfg.arch!r}")
    given = cfg.arch_options or {}
    stray = sorted(set(given) - {cfg.arch})
    if stray:
        raise ConfigError(f"arch_options (--{stray[0]}-...) set options of {', '.join(stray)}, "
                          f"which --arch does not name (it names {cfg.arch})")
    if cfg.arch in ARCHS:
        if given.get(cfg.arch):
            raise ConfigError(f"arch_options: --arch {cfg.arch} is built in; its options are "
                              f"this program's own (--g-width, --d-width, ...; see --help)")
        return
    taken = plugin_options(cfg.arch)
    unknown = sorted(set(given.get(cfg.arch, {})) - set(taken))
    if unknown:
        raise ConfigError(f"arch_options: --arch {cfg.arch} takes no option(s) "
                          f"{', '.join(unknown)}; its options: {', '.join(taken) or 'none'} "
                          f"(width from --g-width/--d-width)")
    from robustrep.nets import network_option_info
    if cfg.spectral_norm and "spectral_norm" not in network_option_info(cfg.arch,
                                                                         "discriminator"):
        raise ConfigError(f"--spectral-norm: the discriminator of --arch {cfg.arch} takes no "
                          f"spectral_norm option; drop --spectral-norm")


STYLEGAN2_ONLY = ("w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group",
                  "d_arch", "fp16_res", "conv_clamp", "init", "style_mixing", "pl_weight",
                  "pl_every", "pl_decay", "pl_batch_shrink")


# Options that act only with another option's value: field -> (that option, its values).
GP_WEIGHT = 10.0  # WGAN-GP's lambda (Gulrajani et al. 2017), with the wasserstein loss only

BUILT_IN = ("digits", "ring", "grid")  # made in memory: --data-root would be ignored
ONLY_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "lsun_classes": ("dataset", ("lsun",)), "skip_bad_images": ("dataset", ("imagefolder",)),
    "gp_weight": ("loss", ("wasserstein",)),
    "data_root": ("dataset", tuple(d for d in DATASETS if d not in BUILT_IN)),
}


def unused_options(values: dict[str, Any]) -> dict[str, list[str]]:
    """{what they need: [fields]} for the options set that the other options make do nothing:
    :data:`ONLY_WITH`, and a regularizer's options without it in --reg (``loss`` feeds asgan
    and the program alike, so it is never unused)."""
    from robustrep.tasks.gan.regs import ENSEMBLE_FIELDS, OPTION_FIELDS, parse_regs
    try:
        names = parse_regs(values.get("reg") or "none", values.get("arch") or "dcgan")
    except ConfigError:  # a bad --reg is reported by itself
        names = None
    out = unused_fields(values, ONLY_WITH, names, {**OPTION_FIELDS, **ENSEMBLE_FIELDS},
                        own=("loss",))
    out.update(_unused_ema(values))
    out.update(_unused_lazy_r1(values))
    if values.get("inception_weights") is not None:
        need = inception_unused(values.get("dataset"), values.get("fid_features"))
        out.update({need: ["inception_weights"]} if need else {})
    return out


INCEPTION_FEATURES = ("inception", "inception-pytorch-fid")


def inception_unused(dataset: str | None, fid_features: str | None) -> str | None:
    """What ``--inception-weights`` needs that a run of ``dataset`` scored on ``fid_features``
    (None: the dataset's default) lacks, or None where the FID Inception network computes the
    features. It loads that network only: on the digits network, a classify run's or 2-D
    points it was accepted and acted on nothing."""
    if dataset in ("ring", "grid"):
        return f"image data (dataset {dataset} is 2-D points, scored by mode statistics)"
    choice = fid_features or ("digits" if dataset == "digits" else "inception")
    if choice in INCEPTION_FEATURES:
        return None
    these = choice if fid_features else f"{choice}, the default for dataset {dataset}"
    return f"the Inception FID features (--fid-features inception; these are {these})"


def check_inception_file(path: str | None) -> None:
    """``--inception-weights FILE`` that is not a file, refused before any work (gan train,
    eval and fid): it was read only when the first evaluation built its network, or never."""
    if path is None:
        return
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise ConfigError(f"--inception-weights {path} {what}; give the file {INCEPTION_FILE} "
                          f"(or leave the option out: ${INCEPTION_ENV}, else robustrep's cached "
                          f"copy)")


def check_ema_off(cfg: "GanConfig", given: dict[str, Any]) -> None:
    """``--ema-kimg``/``--ema-rampup`` given for a run whose ``ema_decay`` 0 has no G-EMA (the
    config clears a preset's; the user's would be dropped without a word)."""
    kimg = [n for n in ("ema_kimg", "ema_rampup") if given.get(n) is not None]
    if kimg and cfg.ema_decay == 0:
        flags = ", ".join("--" + n.replace("_", "-") for n in kimg)
        raise ConfigError(f"{flags}: ema_decay 0 turns the G-EMA off, leaving no half-life to "
                          f"set; give --ema-decay > 0 to keep it (with --ema-kimg only whether "
                          f"it is 0 matters), or drop {flags}")


def check_eval_off(cfg: "GanConfig", given: dict[str, Any]) -> None:
    """``--eval-samples`` given for a run that evaluates nothing while training (``eval_every`` 0
    and ``final_eval`` off: no Evaluator is built). Its default is not None and presets set it,
    so only the user's flag (``given``) is refused, as :func:`check_ema_off` does."""
    if given.get("eval_samples") is not None and cfg.eval_every == 0 and not cfg.final_eval:
        raise ConfigError("--eval-samples sizes the evaluations during training, and eval_every "
                          "0 with final_eval false runs none; give --eval-every N or "
                          "--final-eval true, or drop --eval-samples")


def _unused_lazy_r1(values: dict[str, Any]) -> dict[str, list[str]]:
    """Outside StyleGAN2 lazy regularisation is R1's alone: without R1 it would only scale D's lr
    and betas. (StyleGAN2 keeps its intervals with the penalties off, as stylegan2-ada's cifar
    config does with pl_weight 0.)"""
    if values.get("arch") == "stylegan2" or values.get("r1_gamma"):
        return {}
    lazy = [n for n, off in (("r1_every", 1), ("lazy_reg", None)) if values.get(n) not in
            (off, False)]
    return {"--r1-gamma > 0 (r1_gamma is 0: no R1 to make lazy)": lazy} if lazy else {}


def _unused_ema(values: dict[str, Any]) -> dict[str, list[str]]:
    """With StyleGAN2's EMA by kimg, the by-step decay and warm-up do nothing; its ramp-up acts
    only on a half-life given in kimg. (ema_decay 0, no G-EMA, clears the kimg options:
    :meth:`GanConfig.__post_init__`; given on the command line they are refused,
    :func:`check_ema_off`.)"""
    # by kimg the half-life sets each step's decay and --ema-rampup the warm-up: a decay other
    # than the default (or 0, off) and --ema-warmup false would be recorded and do nothing
    by_step = [n for n, inert in (("ema_decay", values.get("ema_decay") not in (0, EMA_DECAY)),
                                  ("ema_warmup", values.get("ema_warmup") is False)) if inert]
    if by_step and values.get("ema_kimg") is not None:
        return {"--ema-kimg unset (ema_kimg is set: its half-life makes each step's decay)":
                by_step}
    if values.get("ema_rampup") is not None and values.get("ema_kimg") is None:
        return {"--ema-kimg (ema_kimg is None: the EMA decays by step)": ["ema_rampup"]}
    return {}


def saved_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's saved ``config.json`` as this version reads it: the options that did nothing in
    that run (:func:`unused_options`; earlier versions accepted them) are dropped."""
    unused = {f for names in unused_options(config).values() for f in names}
    return {k: v for k, v in config.items() if k not in unused}


def _check_reg_settings(cfg: GanConfig) -> None:
    """A regularizer option that another of its options makes do nothing: free AS-GAN takes
    one replayed step per batch (no --asgan-steps), replace-mode mixing has no weight."""
    if cfg.asgan_free and cfg.asgan_steps is not None:
        raise ConfigError("--asgan-steps does nothing with --asgan-free (free training replays "
                          "one step per batch); drop one of them")
    if cfg.mix_mode == "replace" and cfg.mix_weight is not None:
        raise ConfigError("--mix-weight weighs the mixed loss added to the clean one, and "
                          "--mix-mode replace has no clean one; drop --mix-weight or use add")
    if cfg.dat_eps is not None and cfg.dat_t is not None:
        raise ConfigError("--dat-t clips DAT's gradient step, and --dat-eps replaces that step by "
                          "eps * sign(grad) (t unused); drop one of them")
    check_additive_weight(cfg)


def _check_stylegan2(cfg: GanConfig) -> None:
    """StyleGAN2 options only with arch stylegan2; RP-GAN keeps its own D; DiffAugment policy."""
    if cfg.arch != "stylegan2":
        given = [n for n in STYLEGAN2_ONLY if getattr(cfg, n) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ConfigError(f"{', '.join(given)} {verb} only to arch stylegan2 (arch is "
                              f"{cfg.arch!r}); drop them or pass --arch stylegan2")
    else:
        base = 32768 if cfg.channel_base is None else cfg.channel_base  # the core's defaults
        most = 512 if cfg.channel_max is None else cfg.channel_max
        if min(base // cfg.image_size, most) < 1:  # a traceback in the first layer, else
            raise ConfigError(f"--channel-base {base} gives the {cfg.image_size}x"
                              f"{cfg.image_size} layers no feature maps (min(channel_base // "
                              f"{cfg.image_size}, channel_max)); give at least {cfg.image_size}")
        group = 4 if cfg.mbstd_group is None else cfg.mbstd_group  # the core's default
        if cfg.batch_size % min(group, cfg.batch_size):  # in one process; train checks shares
            raise ConfigError(f"--mbstd-group {group} does not divide --batch-size "
                              f"{cfg.batch_size} (the reference asserts it too); give a batch "
                              f"that is a multiple of {group}, or an --mbstd-group that divides "
                              f"{cfg.batch_size}")
        if cfg.spectral_norm:
            raise ConfigError("--spectral-norm is not part of the StyleGAN2 D (equalized learning "
                              "rate and R1 keep it in check); drop it or use arch dcgan/sngan")
        if "rpgan" in str(cfg.reg):
            raise ConfigError("--reg rpgan replaces D by its projection ensemble, so it does not "
                              "use the StyleGAN2 D; take rpgan with arch dcgan")
    if cfg.diffaugment is not None:
        from robustrep.diffaugment import parse_policy
        try:
            parse_policy(cfg.diffaugment)
        except ValueError as err:
            raise ConfigError(f"--diffaugment {cfg.diffaugment!r}: {err}") from None
        if cfg.is_points:
            raise ConfigError("--diffaugment transforms images; dataset "
                              f"{cfg.dataset!r} is 2-D points")


def _check_augment(cfg: GanConfig) -> None:
    """ADA: images only; fixed needs --augment-p; the adaptive options only with ada."""
    if cfg.augment != "none" and cfg.is_points:
        raise ConfigError(f"--augment {cfg.augment} transforms images; dataset {cfg.dataset!r} "
                          "is 2-D points")
    if cfg.augment == "fixed" and cfg.augment_p is None:
        raise ConfigError("--augment fixed needs --augment-p P (0..1)")
    if cfg.augment == "fixed" and cfg.augment_p == 0:
        raise ConfigError("--augment fixed with --augment-p 0 never augments; give p > 0 or "
                          "--augment none")
    if cfg.augment == "none" and cfg.augment_p is not None:
        raise ConfigError("--augment-p applies only with --augment ada or fixed")
    given = [n for n in ("ada_target", "ada_interval", "ada_kimg") if getattr(cfg, n) is not None]
    if given and cfg.augment != "ada":
        raise ConfigError(f"{', '.join(given)} apply only with --augment ada (augment is "
                          f"{cfg.augment!r})")


# Options that may change when a run is resumed; the rest define the run and are fixed. The Adam
# hyperparameters are here so that a diverged run can be resumed with lower learning rates; they
# are applied to the restored optimizers (tasks.common.optim.load_optimizer_state).
RESUMABLE = ("log", "steps", "eval_every", "eval_samples", "final_eval", "ckpt_every", "keep_ckpts",
             "log_every", "device", "num_workers", "inception_weights", "data_root", "lr_g",
             "lr_d", "beta1", "beta2")


@dataclass(kw_only=True)
class TrainOptions(TrainRunOptions):
    """``gan train``'s run flags: the trainers' own, with this program's words, and
    ``--aux-task`` (only GAN presets carry a D auxiliary task)."""

    preset: str | None = run_option(
        "preset", f"one of {', '.join(PRESETS)}; {' and '.join(AUX_PRESETS)} include their D "
                  f"auxiliary task ({', '.join(AUX_PRESETS.values())}): --reg adds to it, "
                  f"--reg none keeps it, --aux-task none drops it", DEFAULT_PRESET)
    out: str | None = run_option("out", default_help="runs/gan/<preset>-<reg>-<time>")
    resume: str | None = run_option("resume", resumable_detail(RESUMABLE))
    aux_task: str | None = _opt(None, f"the preset's D auxiliary task: preset (default) keeps "
                                      f"it, none trains without it (on {', '.join(AUX_PRESETS)}; "
                                      f"other presets have none)", AUX_TASK_CHOICES)


# ------------------------------------------------------------------------------------------------
# gan eval, sample and fid: options declared once for the commands that have them

RANGES = ("0,1", "-1,1", "0,255")


@dataclass(kw_only=True)
class _RunOptions:
    """What every command reading a GAN run shares."""

    checkpoint: str | None = _opt(None, "checkpoint file (default: latest)")
    device: str = shared("device")
    no_ema: bool = shared("no_ema")


@dataclass(kw_only=True)
class _FidOptions:
    """The feature network of FID/KID/precision-recall (gan eval and gan fid)."""

    fid_features: str | None = _opt(None, FID_FEATURES_HELP, metavar="NET")
    inception_weights: str | None = _opt(None, INCEPTION_WEIGHTS_HELP, metavar="FILE")
    quiet: bool = shared("quiet")


@dataclass(kw_only=True)
class EvalOptions(_RunOptions, _FidOptions):
    """The options of ``robustrep gan eval``."""

    run: str = _opt(REQUIRED, "run folder", positional=True, metavar="RUN")
    num_samples: int | None = _opt(None, "generated samples (default: 2500 for 2-D data, else up "
                                         "to 10000; 50000 with --real all is stylegan2-ada's "
                                         "fid50k_full)", min=2, flags=("--num-samples", "--num"))
    # min 2, as --num: one image has no covariance (--real 1 failed inside the statistics)
    real: int | None = _opt(50_000, "real images the generated ones are compared with: at most N, "
                                    "or all (default: 50000)", min=2, nothing="all",
                            metavar="N|all")
    out: str | None = shared("out", default_help="RUN/eval.json; RUN/eval-noema.json with "
                                                  "--no-ema")


@dataclass(kw_only=True)
class SampleOptions(_RunOptions):
    """The options of ``robustrep gan sample``."""

    run: str = _opt(REQUIRED, "run folder, or a stylegan2-ada network pickle (.pkl; read without "
                              "running its code)", positional=True, metavar="RUN")
    num: int = _opt(64, "number of samples", min=1)
    seeds: list[int] | None = shared("seeds", None, default_help="none: --num images from "
                                                               "--seed", metavar="LIST")
    outdir: str | None = _opt(None, "write each image as its own PNG into DIR (seed0000.png per "
                                    "seed with --seeds, else 000000.png, ...), as generate.py; "
                                    "no grid unless --grid is given", metavar="DIR")
    grid: str | None = _opt(None, "grid path (default RUN/samples/sample-step<N>-seed<S>-"
                                  "n<NUM>.png, -noema added with --no-ema)", metavar="PNG")
    pt: str | None = _opt(None, "also save the samples (images clamped to [-1, 1] as in the "
                                "PNGs; a 2-D run's points as drawn)", metavar="FILE")
    seed: int = shared("seed")
    nrow: int | None = _opt(None, "images per grid row", min=1)
    truncation: float = _opt(1.0, "StyleGAN2 truncation psi: w = w_avg + psi (w - w_avg) in "
                                  "every layer (stylegan2-ada's --trunc); 1 = none, 0 = the "
                                  "average image", finite=True, metavar="PSI",
                             flags=("--truncation", "--trunc"))
    noise_mode: str | None = _opt(None, "StyleGAN2's noise inputs: const (the network's stored "
                                        "noise), random (drawn from the seed) or none (default: "
                                        "const with --seeds, as generate.py; random otherwise, as "
                                        "training and FID draw them)", ("const", "random", "none"))
    class_idx: int | None = _opt(None, "the class drawn by a conditional network (a stylegan2-ada "
                                       "pickle trained with --cond), as generate.py's --class",
                                 min=0, flags=("--class",), metavar="N")
    force: bool = _opt(False, "overwrite an existing --grid or --pt file, or --outdir's images")
    quiet: bool = shared("quiet")


@dataclass(kw_only=True)
class FidOptions(_FidOptions):
    """The options of ``robustrep gan fid``."""

    a: str = _opt(REQUIRED, "the set judged", positional=True, metavar="A")
    b: str | None = _opt(None, "the reference (may be left out with --save-stats)",
                         positional=True, metavar="B")
    num: int = _opt(10_000, "samples drawn from a GAN run", min=2)
    data_root: str | None = shared("data_root", default_help="none: only a named reference such "
                                                             "as cifar10-train reads it")
    resolution: int | None = _opt(None, "side images of a folder or zip are resized and "
                                        "centre-cropped to (default: the first image's shorter "
                                        "side)", min=1)
    range: str | None = _opt(None, "value range of float samples in a .pt/.npy/.npz file; write "
                                   "--range=-1,1 with '=' (default: read from the file, see "
                                   "docs/metrics.md)", RANGES, metavar="0,1|-1,1|0,255")
    save_stats: str | None = _opt(None, "write A's statistics (mu, sigma), readable by "
                                        "pytorch-fid", metavar="FILE.npz")
    force: bool = _opt(False, "overwrite an existing --save-stats file")
    device: str = shared("device")
