"""The GAN program's options (one dataclass per command); its named presets are
:mod:`robustrep.tasks.gan.presets`, the rules between ``gan train``'s options
:mod:`robustrep.tasks.gan.config_checks`.

Resolution order (``tasks.common.config.resolve_config``): field defaults, then ``--preset``, then
``--config FILE``, then flags. Regularizer hyperparameters default to ``None``, which means "the
core object's own default" (the reference code's value, stated once in ``robustrep``); the help
text repeats that value.

``--reg`` takes one method or a comma-separated combination (see :data:`REGS` and
``tasks/gan/regs.py`` for which combinations are accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustrep._names import LOSSES
from robustrep.registry import list_regularizers
from robustrep.tasks.common.config import (BETA, NONNEG, POSITIVE, PROB, REQUIRED, UNIT,
                                           ConfigError, check_fields, option)
from robustrep.tasks.common.options import (TrainRunOptions, check_lsun_classes,
                                            resumable_detail, run_option, shared)
from robustrep.tasks.common.regularizers import refuse_unused, reg_option
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
GP_WEIGHT = 10.0  # WGAN-GP's lambda (Gulrajani et al. 2017), with the wasserstein loss only


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
    # max: the largest side `data pack` writes (2**30 was a C++ traceback resizing the digits)
    image_size: int = _opt(32, "image side (a power of 2 >= 16; ignored for 2-D data)", min=16,
                           max=16384)
    channels: int | None = _opt(None, "image channels; None = the dataset's: digits 1, a zip "
                                      "its images' (greyscale: 1), else 3 (an image folder is "
                                      "read as RGB; --channels 1 reads it greyscale)",
                                choices=(1, 3))
    # drawn at once, about 32 bytes a point at the peak (modes, noise, points): 10**8 points,
    # 1000 times the default, take 3.2 GB; 1e308 ran the machine out of memory
    mixture_samples: int = _opt(100_000, "size of the fixed pool drawn from a 2-D mixture", min=1,
                                max=10**8)
    # --workers too: classify's and ood's name for it (and timm's, stylegan2-ada's)
    num_workers: int | None = _opt(None, "DataLoader workers for datasets read from disk "
                                         "(None = auto: min(4, CPUs - 1), 0 on <= 2 CPUs)",
                                   flags=("--num-workers", "--workers"), **NONNEG)
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
    # max (also --mapping-layers): each layer is a module built in turn, half a millisecond even
    # on the meta device, so 10**5 took a minute before the memory check could answer; 1000 is
    # a hundred times the references' (3 here, StyleGAN2's 8)
    mlp_depth: int = _opt(3, "hidden layers of the MLP G and D", min=1, max=1000)
    spectral_norm: bool = _opt(False, "spectral normalisation on every D layer (DCGAN D then "
                                      "drops BatchNorm)")
    # StyleGAN2 (arch stylegan2; None = the defaults of robustrep/nets/stylegan2.py and lazy_reg.py)
    w_dim: int | None = _opt(None, "StyleGAN2 w dimension (core: 512)", min=1)
    mapping_layers: int | None = _opt(None, "StyleGAN2 mapping-network layers (core: 8)",
                                  min=1, max=1000)
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
        # the rules between options: config_checks imports this module's constants
        from robustrep.tasks.gan.config_checks import (check_arch, check_combinations,
                                                       unused_options)
        from robustrep.tasks.gan.regs import parse_regs  # validates names and combinations
        check_fields(self)  # types, choices and ranges from the field metadata
        check_arch(self)
        # saved as the registry spells it (`--reg ' Mixup + DAT'` -> mixup,dat; an empty item
        # such as `mixup,` is refused there)
        self.reg = ",".join(parse_regs(self.reg, self.arch)) or "none"
        if self.loss == "wasserstein" and self.gp_weight is None:  # the other losses have none
            self.gp_weight = GP_WEIGHT
        if self.ema_decay == 0:  # no G-EMA: a preset's half-life has nothing to act on
            self.ema_kimg = self.ema_rampup = None
        refuse_unused(unused_options(vars(self)))
        # before the data: not when the databases open
        check_lsun_classes(self.lsun_classes, self.dataset)
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
            from robustrep.tasks.gan.feature_nets import check_fid_features
            check_fid_features(self.fid_features)
        check_combinations(self)  # StyleGAN2, ADA, the regularizers' settings

    @staticmethod
    def add_generated_flags(parser: Any) -> None:
        """gan train's generated flags: ``--NAME-OPTION`` for each regularizer option no field
        maps, and each option of a plugin network family (``--arch NAME``); a config file's
        key naming one is folded as the flag is (``tasks.common.config``)."""
        from robustrep.tasks.common.config import ARCH_OPTION_DEST
        from robustrep.tasks.common.regularizers import add_option_flags, add_regularizer_args
        from robustrep.tasks.gan.regs import CONTEXT_OPTIONS, OPTION_FIELDS
        add_regularizer_args(parser, "gan", OPTION_FIELDS, CONTEXT_OPTIONS)
        for family in archs()[len(ARCHS):]:  # the network families of loaded plugins
            add_option_flags(parser, family, plugin_options(family), set(), ARCH_OPTION_DEST,
                             f"--arch {family} options (a plugin's network family; --g-width, "
                             f"--d-width and --spectral-norm feed its width and spectral_norm)")

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


def saved_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's saved ``config.json`` as this version reads it: the options that did nothing in
    that run (:func:`~.config_checks.unused_options`; earlier versions accepted them) are
    dropped."""
    from robustrep.tasks.gan.config_checks import unused_options
    unused = {f for names in unused_options(config).values() for f in names}
    return {k: v for k, v in config.items() if k not in unused}


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
                                        "centre-cropped to (default: the images' shorter side, "
                                        "which all must share)", min=1)
    range: str | None = _opt(None, "value range of float samples in a .pt/.npy/.npz file; write "
                                   "--range=-1,1 with '=' (default: read from the file, see "
                                   "docs/metrics.md)", RANGES, metavar="0,1|-1,1|0,255")
    save_stats: str | None = _opt(None, "write A's statistics (mu, sigma), readable by "
                                        "pytorch-fid", metavar="FILE.npz")
    force: bool = _opt(False, "overwrite an existing --save-stats file")
    device: str = shared("device")
