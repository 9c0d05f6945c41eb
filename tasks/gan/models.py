"""The GAN program's networks from its config: ``--arch`` names a family of
:mod:`robustrep.nets` (dcgan, sngan, mlp, stylegan2, or one a ``--plugin`` registers), whose
generator and discriminator are built through the network registry with the options this program
maps from its config (a plugin family: ``--g-width``/``--d-width``/``--spectral-norm`` where its
factories take them, the rest from its ``--FAMILY-OPTION`` flags); ``--reg rpgan`` replaces D by
RP-GAN's projection ensemble. Also the program's seeded sample generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from robustrep.nets import create_discriminator, create_generator, network_options
from robustrep.nets.mlp import MLPProjectionEnsemble
from robustrep.projection import ProjectionEnsemble
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.memory_fit import (batch_bytes, check_fits, state_words,
                                               training_bytes)
from robustrep.tasks.common.regularizers import Kept
from robustrep.tasks.common.runtime import eval_mode
from robustrep.tasks.gan.config import ARCHS, PLUGIN_FIELDS
from robustrep.tasks.gan.presets import PRESET_RP_NUM_VIEWS, RP_NUM_VIEWS


def _d_batchnorm(cfg) -> bool:
    # A Wasserstein critic's gradient penalty is per sample (Gulrajani et al. 2017 advise
    # against batch normalisation in the critic); spectral norm replaces it (StudioGAN).
    return not cfg.spectral_norm and cfg.loss != "wasserstein"


# network option -> the GanConfig field (or function of the config) that feeds it; a family gets
# the options its factory takes (robustrep.nets.network_options), None keeps its default
Fields = dict[str, str | Callable[[Any], Any]]
G_FIELDS: Fields = {
    "width": "g_width", "depth": "mlp_depth", "w_dim": "w_dim",
    "mapping_layers": "mapping_layers", "channel_base": "channel_base",
    "channel_max": "channel_max", "conv_clamp": "conv_clamp", "num_fp16_res": "fp16_res"}
D_FIELDS: Fields = {
    "width": "d_width", "depth": "mlp_depth", "spectral_norm": "spectral_norm",
    "batchnorm": _d_batchnorm, "channel_base": "channel_base", "channel_max": "channel_max",
    "mbstd_group": "mbstd_group", "conv_clamp": "conv_clamp", "architecture": "d_arch",
    "num_fp16_res": "fp16_res"}


def _options(cfg, role: str, fields: Fields) -> dict[str, Any]:
    taken = network_options(cfg.arch, role)
    plugin = cfg.arch not in ARCHS
    if plugin:
        fields = PLUGIN_FIELDS[role]
    opts = {opt: field(cfg) if callable(field) else getattr(cfg, field)
            for opt, field in fields.items() if opt in taken}
    if plugin:  # its --FAMILY-OPTION values, to each factory that takes the option
        given = (cfg.arch_options or {}).get(cfg.arch, {})
        opts.update((k, v) for k, v in given.items() if k in taken and k not in opts)
    return opts


@contextmanager
def _plugin_errors(cfg, role: str) -> Iterator[None]:
    """A plugin family's failures as one line naming it: its own checks (TypeError/ValueError)
    as a refusal, anything else it raises as its error; a built-in's pass."""
    try:
        yield
    except Exception as err:
        if cfg.arch in ARCHS or isinstance(err, ConfigError):
            raise
        what = ("refused" if isinstance(err, (TypeError, ValueError))
                else f"raised {type(err).__name__}")
        raise ConfigError(f"--arch {cfg.arch}: its {role} {what}: "
                          f"{' '.join(str(err).split())}") from None


def build_generator(cfg, shape: tuple[int, ...]) -> nn.Module:
    """G for ``cfg.arch``; ``shape`` is one sample's shape (``(C, H, W)`` or ``(2,)``)."""
    with _plugin_errors(cfg, "generator"):
        return create_generator(cfg.arch, cfg.z_dim, shape,
                                **_options(cfg, "generator", G_FIELDS))


def build_discriminator(cfg, shape: tuple[int, ...], discriminator: str | None = None,
                        generator: torch.Generator | None = None,
                        aux_task: Any = None, kept: Kept | None = None) -> nn.Module:
    """D for ``cfg.arch``: a FeatureSplit, or the registered discriminator ``discriminator``
    (``--reg rpgan``: the projection ensemble, with this program's options and 2-D variant; any
    other registered one with its ``--NAME-OPTION`` values, for the data's size and channels). A D
    auxiliary task (``aux_task``, :class:`robustrep.api.DAuxTask`) wraps the D it returns, with
    its local features where the D says they end (``local_end``, :mod:`robustrep.nets`).
    ``kept``: a resume's recorded options (``regs.kept_regs``), rpgan's ensemble's among them."""
    d = _base_discriminator(cfg, shape, discriminator, generator, kept)
    if aux_task is None:
        return d
    return aux_task.wrap(d, tuple(shape), getattr(d, "local_end", None))


def _base_discriminator(cfg, shape: tuple[int, ...], discriminator: str | None,
                        generator: torch.Generator | None, kept: Kept | None = None) -> nn.Module:
    if discriminator == "rpgan":
        return _build_ensemble(cfg, shape, generator, kept)
    if discriminator is not None:
        from robustrep.registry import create_regularizer
        from robustrep.tasks.common.regularizers import discriminator_options
        from robustrep.tasks.gan.regs import OPTION_FIELDS
        try:
            return create_regularizer(discriminator, **discriminator_options(
                cfg, discriminator, shape, OPTION_FIELDS))
        except (TypeError, ValueError) as err:  # the class's own checks of its options
            raise ConfigError(f"--reg {discriminator}: {err}") from None
    with _plugin_errors(cfg, "discriminator"):
        return create_discriminator(cfg.arch, shape, **_options(cfg, "discriminator", D_FIELDS))


# the config fields that set the networks' sizes, named by a refusal where the family takes them
SIZE_FIELDS = ("g_width", "d_width", "mlp_depth", "w_dim", "mapping_layers", "channel_base",
               "channel_max")
ADAM_MOMENTS = 2  # G and D train with Adam (train._optimizers): two moments per parameter


def check_memory(cfg, shape: tuple[int, ...], regs: Any, device: torch.device,
                 world_size: int = 1) -> None:
    """Refuse in one line, before the run folder is made, networks or a batch that the whole
    memory of ``device`` cannot hold (:mod:`robustrep.tasks.common.memory_fit`): G and D built
    on the meta device, with their gradients, Adam's moments and G's EMA copy where the run keeps
    one; and one process's share of ``--batch-size`` of samples of ``shape``. ``--g-width
    1000000000`` failed in torch's allocator after the run folder was made. ``regs`` is a
    throwaway set (``check_networks``'): D is wrapped by its auxiliary task, as in the run."""
    g = training_bytes(lambda: build_generator(cfg, shape), ADAM_MOMENTS, ema=cfg.ema_decay > 0)
    d = training_bytes(lambda: build_discriminator(cfg, shape, regs.discriminator,
                                                   aux_task=regs.aux_task, kept=regs.kept),
                       ADAM_MOMENTS)
    known = [b for b in (g, d) if b is not None]
    kept = state_words(True, "G's EMA copy" if cfg.ema_decay > 0 else None)
    check_fits(sum(known) if known else None, device,
               f"{_size_flags(cfg, regs)}: the networks' {kept} take")
    if not cfg.is_points:
        share = cfg.batch_size // world_size
        check_fits(batch_bytes(share, shape), device,
                   f"--batch-size {cfg.batch_size} with --image-size {cfg.image_size}: one "
                   f"batch of {share} x {' x '.join(map(str, shape))} float32 inputs takes")


def _size_flags(cfg, regs: Any) -> str:
    """The options that set this run's network sizes, with their values (``--z-dim 64,
    --g-width 32, --d-width 32, --image-size 32``)."""
    fields = ["z_dim"]
    for role, table in (("generator", G_FIELDS), ("discriminator", D_FIELDS)):
        taken = network_options(cfg.arch, role)
        table = table if cfg.arch in ARCHS else PLUGIN_FIELDS[role]
        fields += [f for opt, f in table.items() if opt in taken and f in SIZE_FIELDS]
    if regs.discriminator == "rpgan":
        fields += ["rp_num_views", "rp_base_channels"]
    if not cfg.is_points:
        fields.append("image_size")
    return ", ".join(f"--{f.replace('_', '-')}" + ("" if getattr(cfg, f) is None
                                                    else f" {getattr(cfg, f)}")
                     for f in dict.fromkeys(fields))


def check_networks(cfg, shape: tuple[int, ...], regs: Any) -> None:
    """Build once, before the run folder is made, the networks that come from outside the
    package (a plugin family, a registered D), so that their options and the plugin family's
    contract (``robustrep.nets``: G has ``z_dim`` and maps ``[B, z_dim]`` to ``[B, *shape]``, D
    maps that to ``[B]`` logits; a D function such as AdaptiveMix reads D as
    ``head(features(x))``) are refused in one line. ``regs`` (``regs.Regs``) is a throwaway
    set, as these networks: the trainer reseeds and builds its own, so this changes no run."""
    if regs.discriminator is not None:
        build_discriminator(cfg, shape, regs.discriminator, kept=regs.kept)
    if cfg.arch in ARCHS:
        return
    G = build_generator(cfg, shape)
    where = f"--arch {cfg.arch}"
    if getattr(G, "z_dim", None) != cfg.z_dim:
        raise ConfigError(f"{where}: its generator has no z_dim attribute equal to --z-dim "
                          f"{cfg.z_dim} (robustrep.nets: a registered G has z_dim)")
    with torch.no_grad(), _plugin_errors(cfg, "generator"):
        x = G.eval()(torch.zeros(2, cfg.z_dim))
    if tuple(x.shape) != (2, *shape):
        raise ConfigError(f"{where}: its generator maps z [2, {cfg.z_dim}] to "
                          f"{list(x.shape)}, not to samples {[2, *shape]}")
    if x.dtype != torch.get_default_dtype():  # D and the losses would meet it in another dtype
        raise ConfigError(f"{where}: its generator returns {x.dtype} samples for float32 z; "
                          f"return the dtype of its input (did the plugin change torch's "
                          f"default dtype?)")
    if regs.discriminator is not None:
        return
    D = build_discriminator(cfg, shape)
    with torch.no_grad(), _plugin_errors(cfg, "discriminator"):
        logits = D.eval()(x)
    if tuple(logits.shape) != (2,):
        raise ConfigError(f"{where}: its discriminator maps samples {[2, *shape]} to "
                          f"{list(logits.shape)}, not to one logit per sample [2]")
    if regs.d_function is not None:  # e.g. AdaptiveMix calls D's features and head
        try:
            regs.d_function.d_logits(D, x, torch.Generator().manual_seed(0))
        except (TypeError, ValueError) as err:
            name = next(n for n, o in regs.by_name.items() if o is regs.d_function)
            raise ConfigError(f"--reg {name} cannot use the discriminator of {where}: "
                              f"{' '.join(str(err).split())}") from None


def ensemble_spec(cfg, shape: tuple[int, ...],
                  kept: Kept | None = None) -> tuple[type, dict[str, Any]]:
    """The class and options of ``--reg rpgan``'s ensemble for data of ``shape`` (what is built
    and what ``regularizers.json`` records): the ``--rp-*`` flags, else the preset's K (48 in the
    reference's main model) and D's width; the image size and channels are the data's. A
    resume's ``kept`` options (``regs.kept_regs``: what the run recorded where this version's
    defaults differ) replace the defaults."""
    k = cfg.rp_num_views if cfg.rp_num_views is not None else \
        PRESET_RP_NUM_VIEWS.get(cfg.preset, RP_NUM_VIEWS)
    width = cfg.rp_base_channels if cfg.rp_base_channels is not None else cfg.d_width
    if cfg.is_points:
        if cfg.spectral_norm:
            raise ConfigError("spectral_norm is not implemented for the 2-D projection ensemble "
                              "(the reference RP-GAN uses none); drop --spectral-norm")
        if cfg.rp_kernel_size is not None:
            raise ConfigError("--rp-kernel-size: the 2-D ensemble projects points on directions, "
                              "with no kernel; drop it")
        points = dict(num_views=k, width=width, depth=max(1, cfg.mlp_depth - 1), in_dim=shape[0])
        return MLPProjectionEnsemble, {**points, **(kept or {}).get("rpgan", {})}
    kwargs = dict(num_views=k, image_size=shape[-1], in_channels=shape[0], base_channels=width,
                  spectral_norm=cfg.spectral_norm)
    if cfg.rp_kernel_size is not None:
        kwargs["kernel_size"] = cfg.rp_kernel_size
    return ProjectionEnsemble, {**kwargs, **(kept or {}).get("rpgan", {})}


def _build_ensemble(cfg, shape: tuple[int, ...], generator: torch.Generator | None,
                    kept: Kept | None = None) -> nn.Module:
    cls, kwargs = ensemble_spec(cfg, shape, kept)
    try:
        return cls(**kwargs, generator=generator)
    except ValueError as err:  # the ensemble's own checks (an odd kernel): the flags named
        raise ConfigError(f"--reg rpgan (--rp-num-views, --rp-base-channels, --rp-kernel-size): "
                          f"{err}") from None


@torch.no_grad()
def generate(G: nn.Module, num: int, device: torch.device, seed: int,
             batch: int = 500, class_idx: int | None = None, **g_kwargs: Any) -> Tensor:
    """``num`` samples from ``G`` in eval mode with a fixed seed, in G's range (on ``device``);
    ``g_kwargs`` go to G's forward (``truncation_psi``, ``noise_mode``).

    G's own random draws (StyleGAN2's noise inputs) come from ``seed`` as well, so a seed gives
    the same samples on every call; G's train/eval mode and the global RNG are restored. A
    conditional G (``c_dim`` > 0) gets the class ``class_idx``, or classes drawn uniformly.
    """
    return torch.cat(list(generate_batches(G, num, device, seed, batch, class_idx, **g_kwargs)))


def generate_batches(G: nn.Module, num: int, device: torch.device, seed: int,
                     batch: int = 500, class_idx: int | None = None,
                     **g_kwargs: Any) -> Iterator[Tensor]:
    """:func:`generate`'s samples, batch by batch (the same values), so 50k samples at 256x256
    never sit in memory at once."""
    gen = torch.Generator(device=device).manual_seed(seed)
    with eval_mode(G):
        for i in range(0, num, batch):
            z = torch.randn(min(batch, num - i), G.z_dim, generator=gen, device=device)
            c = class_labels(G, len(z), class_idx, gen)
            with torch.no_grad(), _seeded_global_rng(seed + NOISE_SEED_OFFSET + i, device):
                out = G(z, **g_kwargs) if c is None else G(z, c, **g_kwargs)
            yield out.float()  # outside the fork: the caller's draws are its own


def generate_seeds(G: nn.Module, seeds: list[int], device: torch.device,
                   class_idx: int | None = None, **g_kwargs: Any) -> Iterator[Tensor]:
    """One sample per seed ``[1, ...]``, its z drawn as stylegan2-ada's ``generate.py`` draws it
    (``np.random.RandomState(seed).randn(1, z_dim)``, float64 made float32), so a seed names the
    same image as there; G's own random draws (``noise_mode="random"``) come from the seed too.
    A seed's image does not depend on the other seeds asked for."""
    import numpy as np
    c = class_labels(G, 1, class_idx, None)  # one label for every seed
    c = None if c is None else c.to(device)
    with eval_mode(G):
        for seed in seeds:
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            z = z.to(device)
            with torch.no_grad(), _seeded_global_rng(seed + NOISE_SEED_OFFSET, device):
                out = G(z, **g_kwargs) if c is None else G(z, c, **g_kwargs)
            yield out.float()


def class_labels(G: nn.Module, n: int, class_idx: int | None,
                 gen: torch.Generator | None) -> Tensor | None:
    """One-hot labels ``[n, c_dim]`` for a conditional G (None for an unconditional one): the
    class ``class_idx``, else classes drawn uniformly from ``gen`` (stylegan2-ada's metrics draw
    them from the dataset's labels: the same distribution on a class-balanced set)."""
    c_dim = getattr(G, "c_dim", 0)
    if not c_dim:
        return None
    device = gen.device if gen is not None else torch.device("cpu")
    if class_idx is None:
        idx = torch.randint(c_dim, (n,), generator=gen, device=device)
    else:
        idx = torch.full((n,), class_idx, device=device)
    return torch.nn.functional.one_hot(idx, c_dim).float()


# G's own draws (StyleGAN2's noise inputs, "random" as stylegan2-ada's metrics draw them) come
# from the seed too, on another stream than z's.
NOISE_SEED_OFFSET = 0x5DEECE66D


@contextmanager
def _seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG of the CPU and of ``device`` seeded inside the block and restored after it:
    samples of one seed are the same on every call, and an evaluation during training does not
    move the training run's own draws (they come from the global RNG)."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
