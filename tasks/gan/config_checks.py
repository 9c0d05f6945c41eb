"""The rules between the options of ``gan train`` (:class:`~.config.GanConfig`), and the
checks the GAN command lines make of the flags given.

- :func:`check_arch`: a known network family, and a plugin family's options its own;
- :func:`check_combinations`: the StyleGAN2 networks' limits (feature maps per layer, the
  minibatch-std group, as in the stylegan2-ada reference), the ADA options (Karras et al.
  2020) and a regularizer's options that another of its options turns off;
- :func:`unused_options`: the options set that the others make do nothing (refused by
  ``GanConfig``, dropped from an old run's saved config by :func:`~.config.saved_config`, and
  left out of a preset by an option given above it, with a note: ``resolve_config``);
- :func:`check_inception_file`, :func:`inception_unused`, :func:`check_ema_off`,
  :func:`check_eval_off`: the command lines' checks of ``--inception-weights``, the EMA and
  the evaluation flags.

``GanConfig.__post_init__`` calls the config's checks; this module imports the config's
constants, and the config imports it inside the functions that call it (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.regularizers import check_additive_weight
from robustrep.tasks.common.regularizers import unused_options as unused_fields
from robustrep.tasks.gan.config import (ARCHS, DATASETS, EMA_DECAY, INCEPTION_ENV, INCEPTION_FILE,
                                        archs, plugin_options)

if TYPE_CHECKING:
    from robustrep.tasks.gan.config import GanConfig


def check_arch(cfg: GanConfig) -> None:
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
# The built-in data are made in memory and batches indexed there: --data-root and --num-workers
# (a DataLoader's) would be ignored.
BUILT_IN = ("digits", "ring", "grid")
ON_DISK = tuple(d for d in DATASETS if d not in BUILT_IN)
ONLY_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "lsun_classes": ("dataset", ("lsun",)), "skip_bad_images": ("dataset", ("imagefolder",)),
    "gp_weight": ("loss", ("wasserstein",)), "data_root": ("dataset", ON_DISK),
    "num_workers": ("dataset", ON_DISK),
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
    out.update(_unused_networks(values))
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


def _set(values: dict[str, Any], name: str) -> bool:
    """Whether field ``name`` holds a value other than its default (a field whose default is
    not None, such as --mlp-depth 3, is never unset: only another value says it was given)."""
    from robustrep.tasks.gan.config import GanConfig
    return values.get(name) not in (None, GanConfig.__dataclass_fields__[name].default)


def _unused_networks(values: dict[str, Any]) -> dict[str, list[str]]:
    """The network and data options the run's ``arch`` and ``dataset`` do not read: StyleGAN2's
    own outside it, the widths in it (its feature maps are --channel-base/--channel-max), the
    MLP's depth in the built-in image families (a plugin family's rpgan on 2-D data reads it),
    the size of a 2-D mixture's pool on other data."""
    arch, dataset, out = values.get("arch"), values.get("dataset"), {}
    if arch != "stylegan2":
        given = [n for n in STYLEGAN2_ONLY if values.get(n) is not None]
        out.update({f"--arch stylegan2 (arch is {arch!r})": given} if given else {})
    widths = [n for n in ("g_width", "d_width") if arch == "stylegan2" and _set(values, n)]
    if widths:
        out["--arch dcgan, sngan, mlp or a plugin's family (arch is 'stylegan2': "
            "--channel-base and --channel-max size its layers)"] = widths
    if arch in ("dcgan", "sngan", "stylegan2") and _set(values, "mlp_depth"):
        out[f"--arch mlp (arch is {arch!r})"] = ["mlp_depth"]
    if dataset not in ("ring", "grid") and _set(values, "mixture_samples"):
        out[f"--dataset ring or grid (dataset is {dataset!r})"] = ["mixture_samples"]
    return out


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
    :meth:`~.config.GanConfig.__post_init__`; given on the command line they are refused,
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


def check_combinations(cfg: GanConfig) -> None:
    """The options that exclude or need each other, in this order: StyleGAN2, ADA, the
    regularizers' settings."""
    _check_stylegan2(cfg)
    _check_augment(cfg)
    _check_reg_settings(cfg)


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


def stylegan2_channels(cfg: Any) -> tuple[int, int]:
    """The run's --channel-base and --channel-max; None (unset) is the core's default (that of
    ``robustrep.nets.stylegan2``, written here to keep config checks free of torch)."""
    base = 32768 if cfg.channel_base is None else cfg.channel_base
    most = 512 if cfg.channel_max is None else cfg.channel_max
    return base, most


def _check_stylegan2(cfg: GanConfig) -> None:
    """The StyleGAN2 networks' limits; RP-GAN keeps its own D; DiffAugment policy. (Its options
    outside arch stylegan2: :func:`unused_options`.)"""
    if cfg.arch == "stylegan2":
        base, most = stylegan2_channels(cfg)
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
        raise ConfigError(f"{_flags(given)} only with --augment ada (augment is {cfg.augment!r}); "
                          f"drop {_them(given)} or pass --augment ada")


def _flags(names: list[str]) -> str:
    """Config fields as the options that set them, with the verb: ``--w-dim applies``."""
    verb = "applies" if len(names) == 1 else "apply"
    return ", ".join(f"--{n.replace('_', '-')}" for n in names) + f" {verb}"


def _them(names: list[str]) -> str:
    return "it" if len(names) == 1 else "them"
