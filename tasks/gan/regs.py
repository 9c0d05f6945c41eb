"""``--reg``: which core regularizers a run uses, built from the config.

Each seed method is a core object from ``robustrep`` plugged into the D and G steps
(``tasks/gan/steps.py``). Names, places and combinations come from the registry
(:mod:`robustrep.registry`); methods act in four places, and a combination takes at most one per
place:

=============  ===============================  ==============================================
place          methods                          what changes
=============  ===============================  ==============================================
D function     adaptivemix, rpgan               D's logit (AdaptiveMix: h(z_lin) + h(z_mix);
                                                RP-GAN: K projected discriminators)
D inputs       dat, asgan                       D trains on perturbed reals (and fakes, DAT)
extra D term   mixup, cutmix, srmix             a real-by-fake mixed batch with a mixed loss
D auxiliary    ssgan, infomax                   D gains a head and a loss on the clean reals,
task                                            G a loss on its fakes (rotation; InfoNCE)
=============  ===============================  ==============================================

So ``adaptivemix,asgan`` or ``rpgan,dat,srmix`` are accepted; ``dat,asgan`` (both perturb the
reals), ``mixup,cutmix`` (one mixing policy per run) and ``adaptivemix,rpgan`` (an ensemble has no
single trunk to shrink) are not; nor is a D auxiliary task with ``rpgan`` (no single trunk for its
head) or on the MLP and StyleGAN2 D's (:data:`AUX_ARCHS`).

:func:`build_regs` builds the regularizers through the registry (``tasks/common/regularizers``)
and holds them by place; the steps call each through its place's protocol
(:mod:`robustrep.api`). A registered discriminator (``rpgan``) is not built here: it replaces D
(``models.build_discriminator``). :data:`OPTION_FIELDS` says which config fields feed which
constructor options; a method it does not list (a plugin) gets its class defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustrep.registry import list_regularizers, parse_combination, regularizer_info
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.regularizer_record import kept_on_resume, regularizer_record
from robustrep.tasks.common.regularizers import (Kept, OptionFields, PerMethod, Unread,
                                                 build_places, discriminator_of)

METHODS = tuple(list_regularizers("gan"))
INPUT_RANGE = (-1.0, 1.0)
AUX_ARCHS = ("dcgan", "sngan")  # D's a D auxiliary task can wrap (a trunk with a local map)

# PerMethod: --mix-alpha, or the listed method's own --mixup-alpha, --cutmix-alpha, --srmix-alpha
# (as classify train takes them)
_MIX = {"alpha": PerMethod("mix_alpha"), "prob": "mix_prob", "per_sample": "mix_per_sample",
        "mode": "mix_mode", "weight": "mix_weight"}
# the edge ramp of SRMix's box: --mix-smoothing with mixup or cutmix alone would change nothing
_NO_RAMP = {"smoothing": Unread("srmix (the edge ramp of its box)")}
# registered name -> {constructor option: GanConfig field}
OPTION_FIELDS: OptionFields = {
    "adaptivemix": {"alpha": "am_alpha", "noise_std": "am_noise_std", "distance": "am_distance",
                    "mode": "am_mode", "weight": "am_weight", "per_sample": "am_per_sample",
                    "g_shrink": "am_g_shrink"},
    "mixup": {**_MIX, **_NO_RAMP}, "cutmix": {**_MIX, **_NO_RAMP},
    "srmix": {**_MIX, "smoothing": "mix_smoothing"},
    "dat": {"t": "dat_t", "eps": "dat_eps"},
    "asgan": {"eps": "asgan_eps", "steps": "asgan_steps", "norm": "asgan_norm", "loss": "loss",
              "mode": "asgan_mode", "free": "asgan_free"},
}
# rpgan replaces D: models.ensemble_spec builds it from these fields (listed here so that they
# are refused without --reg rpgan, as any regularizer's options are)
ENSEMBLE_FIELDS: OptionFields = {
    "rpgan": {"num_views": "rp_num_views", "base_channels": "rp_base_channels",
              "kernel_size": "rp_kernel_size"},
}


def place(name: str) -> str:
    """Where method ``name`` acts in the GAN program (the registry's ``acts["gan"]``)."""
    return regularizer_info(name).acts["gan"]


def input_range(cfg) -> tuple[float, float] | None:
    """Where perturbed inputs are checked and clamped: images live in [-1, 1]; 2-D points are
    unbounded, and so are StyleGAN2's fakes (its G ends in a linear toRGB with no tanh, as in
    stylegan2-ada, so a fake may leave [-1, 1] and must not be clamped into it)."""
    if cfg.dataset in ("ring", "grid") or cfg.arch == "stylegan2":
        return None
    return INPUT_RANGE


def parse_regs(text: str, arch: str = "dcgan") -> tuple[str, ...]:
    """``"adaptivemix,asgan"`` -> ``("adaptivemix", "asgan")``; ``"none"`` -> ``()``.

    The registry's grammar (:func:`robustrep.registry.parse_combination`), plus the one rule of
    this program: CutMix and SRMix paste image regions, which 2-D points do not have.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or a combination that
            takes two methods from the same place (see the module docstring).
    """
    try:
        names = parse_combination(text, "gan")
    except ValueError as err:
        raise ConfigError(f"--reg: {err}") from None
    if {"cutmix", "srmix"} & set(names) and arch == "mlp":
        raise ConfigError("cutmix and srmix paste image regions; on 2-D points use mixup")
    aux = [n for n in names if place(n) == "D auxiliary task"]
    if aux and arch not in AUX_ARCHS:
        raise ConfigError(f"--reg {aux[0]} (a D auxiliary task) needs --arch "
                          f"{' or '.join(AUX_ARCHS)}: its head reads a convolutional trunk "
                          f"(the reference's DCGAN/SNGAN D), which --arch {arch} does not have")
    return names


@dataclass
class Regs:
    """The regularizer objects of one run, by place; ``None`` where a place is empty.

    ``d_function``, ``d_inputs``, ``extra_d_term``, ``aux_task`` implement
    :class:`robustrep.api.DFunction`, ``DInputs``, ``ExtraDTerm`` and ``DAuxTask`` (it wraps D
    when D is built); ``discriminator`` names a registered D that replaces the program's (its
    ``[B, K]`` logits are an ensemble: ``ensemble``)."""

    names: tuple[str, ...]
    d_function: Any = None
    d_inputs: Any = None
    extra_d_term: Any = None
    aux_task: Any = None
    discriminator: str | None = None
    ensemble: bool = False
    by_name: dict[str, Any] = field(default_factory=dict)
    kept: Kept = field(default_factory=dict)  # a resume's recorded options (kept_regs)

    def state_dict(self) -> dict[str, Any]:
        """Carried state (e.g. AS-GAN's free perturbation), by registered name."""
        return {n: obj.state_dict() for n, obj in self.by_name.items()
                if callable(getattr(obj, "state_dict", None))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for n, obj in self.by_name.items():
            if state.get(n) is not None and callable(getattr(obj, "load_state_dict", None)):
                obj.load_state_dict(state[n])


_SLOTS = {"D function": "d_function", "D inputs": "d_inputs", "extra D term": "extra_d_term",
          "D auxiliary task": "aux_task"}


def build_regs(cfg, kept: Kept | None = None) -> Regs:
    """Build the regularizers named by ``cfg.reg`` with the config's hyperparameters (and a
    resume's ``kept`` options, :func:`kept_regs`)."""
    names = parse_regs(cfg.reg, cfg.arch)
    disc = discriminator_of(names)
    if disc == "rpgan" and (cfg.reg_options or {}).get("rpgan"):  # the program builds it
        raise ConfigError(f"reg_options: rpgan's options are its flags (--rp-num-views, "
                          f"--rp-base-channels, --rp-kernel-size; the rest follow the data and "
                          f"D), not {', '.join(sorted(cfg.reg_options['rpgan']))}")
    regs = Regs(names, discriminator=disc, ensemble=disc is not None, kept=kept or {})
    places = build_places(cfg, "gan", names, OPTION_FIELDS, _context(cfg), kept=kept)
    for where, members in places.items():
        (name, obj), = members  # parse_regs allows one method per place
        setattr(regs, _SLOTS[where], obj)
        regs.by_name[name] = obj
    return regs


def kept_regs(cfg, run) -> tuple[Kept, str | None]:
    """What a resume of ``run`` (its folder) from its latest checkpoint keeps of its recorded
    options, and the note naming them
    (:func:`~robustrep.tasks.common.regularizer_record.kept_options`); rpgan's ensemble, which
    this program builds and records itself, by :func:`_kept_ensemble`."""
    return kept_on_resume(run, cfg, parse_regs(cfg.reg, cfg.arch), OPTION_FIELDS, _context(cfg),
                          own={"rpgan": lambda was: _kept_ensemble(cfg, was)})


def regs_record(cfg, shape: tuple[int, ...], kept: Kept | None = None) -> dict:
    """What :func:`build_regs` builds, as the run records it (``regularizers.json``); rpgan's
    entry is the ensemble this program builds for data of ``shape`` (its class and options),
    not the registered class's defaults."""
    record = regularizer_record(cfg, parse_regs(cfg.reg, cfg.arch), OPTION_FIELDS,
                                _context(cfg), kept)
    if "rpgan" in record:
        record["rpgan"].update(_ensemble_record(cfg, shape, kept))
    return record


def _ensemble_record(cfg, shape: tuple[int, ...], kept: Kept | None = None) -> dict:
    """rpgan's ``class`` and ``options`` (its class defaults filled in) as recorded."""
    import inspect
    import json

    from robustrep.tasks.gan.models import ensemble_spec
    cls, options = ensemble_spec(cfg, shape, kept)
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty and k != "generator"}
    return json.loads(json.dumps({"class": f"{cls.__module__}.{cls.__qualname__}",
                                  "options": {**defaults, **options}}, default=str))


# the ensemble's options the data give (a resume's data are the run's)
_ENSEMBLE_DATA = ("image_size", "in_channels", "in_dim")


def _kept_ensemble(cfg, was: dict) -> dict[str, tuple[Any, Any]]:
    """What a resume keeps of rpgan's recorded ensemble: {option: (recorded, this version's)}
    for each scalar option the data do not give where this version would build another value
    for the recorded data (a K, kernel or width default since changed: the checkpoint's D
    would not fit; what the ``--rp-*`` flags set cannot change on a resume). Was: never kept
    (the registered class's defaults were compared, and noted as changed). A record that names
    no data (one written before the ensemble was recorded: those defaults) keeps nothing."""
    options = was.get("options") if isinstance(was.get("options"), dict) else {}
    size, channels, dim = (options.get(k) for k in _ENSEMBLE_DATA)
    if isinstance(dim, int):
        shape: tuple[int, ...] = (dim,)
    elif isinstance(size, int) and isinstance(channels, int):
        shape = (channels, size, size)
    else:
        return {}
    now = _ensemble_record(cfg, shape)
    if now["class"] != was.get("class"):
        return {}
    return {opt: (options[opt], value) for opt, value in now["options"].items()
            if opt in options and options[opt] != value and opt not in _ENSEMBLE_DATA
            and isinstance(options[opt], (bool, int, float, str))}


# constructor options this program derives from its data and networks (:func:`_context`)
CONTEXT_OPTIONS = ("fuse_passes", "input_range")


def _context(cfg) -> dict:
    # input_range None is a value (unbounded data), which create_regularizer passes on
    return dict(zip(CONTEXT_OPTIONS, (_fuse_passes(cfg), input_range(cfg))))


def _fuse_passes(cfg) -> bool | None:
    """One trunk call on ``cat([x, x_mix])`` where that is exact: the StyleGAN2 D has no batch
    statistics in its trunk (minibatch-std is in the head)."""
    return True if cfg.arch == "stylegan2" else None
