"""``--param DETECTOR.NAME=VALUE``: detector arguments parsed and checked before any feature
is extracted.

The detectors are pytorch-ood's (Kirchheim et al., "PyTorch-OOD: A Library for
Out-of-Distribution Detection based on PyTorch", CVPR-W 2022, github.com/kkirchheim/pytorch-ood),
whose constructors check their arguments only when they are built, and whose fits check them
only when they run: both after every feature of every dataset was extracted. Here each value is
checked against its parameter first: of the kind its default has, finite, positive where the
detector divides or counts with it, a fraction where pytorch-ood wants one, within the bounds
its code sets (PNML's ``eps`` in (0, 0.5), NCI's ``alpha`` >= 0, ...), one of a class's choices;
then against the sizes the classifier and the data fix (GEN's ``M`` and OpenMax's ``alpha``
within the class count, ViM's ``d`` below the feature size and the fit set's, KNN's and
NNGuide's ``k`` within the fit set), as soon as each size is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from robustrep.tasks.common.config import ConfigError, parse_literal
from robustrep.tasks.ood.detectors import (_PROVIDED, DetectorSpec, _robustrep_defaults,
                                           get_spec, registry)


def parse_params(items: Iterable[str] | None,
                 specs: Sequence[DetectorSpec] | None = None) -> dict[str, dict[str, Any]]:
    """``["KNN.k=10", "ASH.variant=ash-b"]`` -> ``{"KNN": {"k": 10}, "ASH": {"variant": "ash-b"}}``.

    Values are Python literals (``10``, ``0.5``, ``True``, ``'x'``) or else plain strings. With
    ``specs`` (the detectors scored), a parameter of another detector is refused: it would act
    on nothing. Every refusal here is a :class:`ConfigError` (one line, exit 2; also a
    ValueError).
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        head, eq, raw = str(item).partition("=")
        det, dot, key = head.partition(".")
        if not (eq and dot and det and key):
            raise ConfigError(f"--param must look like DETECTOR.NAME=VALUE (e.g. KNN.k=10), "
                              f"got {item!r}")
        spec = get_spec(det)
        if specs is not None and spec.name not in {s.name for s in specs}:
            raise ConfigError(f"--param {item}: {spec.name} is not among the detectors scored "
                              f"({', '.join(s.name for s in specs)}); add it to --detectors")
        valid = [p for p in spec.params if _settable(spec, p) and not _takes_function(spec, p)]
        if key not in spec.params or not _settable(spec, key):
            raise ConfigError(f"{spec.name} has no settable parameter {key!r}; valid: "
                              f"{', '.join(valid) or '(none)'}")
        value = parse_literal(raw)
        _check_unusual_kinds(spec, key, value, item)
        _check_param_type(spec, key, value, item)
        out.setdefault(spec.name, {})[key] = value
    _check_vra_order(out.get("VRA", {}))
    _check_mcd_samples(out.get("MCD", {}))
    return out


def _settable(spec: DetectorSpec, key: str) -> bool:
    """A constructor argument ``--param`` can give: not one the classifier provides, nor the
    catch-all of keyword arguments (KNN's ``knn_kwargs``: ``KNN.knn_kwargs=3`` reached
    sklearn as an argument named knn_kwargs, and failed once every feature was extracted)."""
    param = spec.params[key]
    return key not in _PROVIDED and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)


def _takes_function(spec: DetectorSpec, key: str) -> bool:
    """Whether pytorch-ood types the argument as a function (``typing.Callable``): ASH's,
    DICE's, ReAct's ... ``detector``, ODIN's ``criterion``, GradNorm's ``param_filter``."""
    return "Callable" in str(spec.params[key].annotation)


# ODIN's and MahalanobisODIN's norm_std: one normalisation std per input channel, which divides
# the sign gradient of that channel (pytorch-ood's odin_preprocessing)
_PER_CHANNEL = {("ODIN", "norm_std"), ("MahalanobisODIN", "norm_std")}


def _check_unusual_kinds(spec: DetectorSpec, key: str, value: Any, item: str) -> None:
    """The arguments whose default (None) says nothing of their kind: a function, which a
    command line cannot give, and the per-channel stds, a list of numbers > 0. Either was
    passed on as given and failed only once every feature was extracted (``'str' object is
    not callable``; ``norm_std=abc`` a TypeError in the gradient step)."""
    if value is None:
        return
    if _takes_function(spec, key):
        raise ConfigError(f"--param {item}: {spec.name}.{key} takes a Python function, which "
                          f"--param cannot give (it takes numbers, strings, booleans and "
                          f"lists); leave {spec.name}.{key} out to use its default")
    if (spec.name, key) in _PER_CHANNEL and not (
            isinstance(value, (list, tuple)) and value and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                math.isfinite(v) and v > 0 for v in value)):
        raise ConfigError(f"--param {item}: {spec.name}.{key} takes a list of numbers > 0, "
                          f"one normalisation std per input channel (e.g. [0.5] or [0.247, "
                          f"0.243, 0.261]), got {value!r}; default None: the gradient step "
                          f"eps is in pixel units")


def check_channel_params(params: dict[str, dict[str, Any]] | None, channels: int) -> None:
    """The per-channel ``norm_std`` against the classifier's input ``channels``, once they are
    known and before anything is extracted: a list of another length was broadcast against
    the images (two stds made 1-channel images 2-channel) and the detector failed after every
    feature was extracted. One std serves every channel."""
    for det, key in sorted(_PER_CHANNEL):
        value = (params or {}).get(det, {}).get(key)
        if value is not None and len(value) not in (1, channels):
            want = "one" if channels == 1 else f"{channels}, or one for every channel"
            raise ConfigError(f"--param {det}.{key}={list(value)}: {det}.{key} takes one "
                              f"normalisation std per input channel, and this classifier "
                              f"takes {channels}-channel images; give {want}")


def norm_std_notes(params: dict[str, dict[str, Any]] | None, channels: int) -> list[str]:
    """A note on each ``norm_std`` given (accepted: it is pytorch-ood's argument). pytorch-ood
    divides the sign gradient of channel ``c`` by ``norm_std[c]`` so that ``eps`` is in the
    units of unnormalised inputs when the model takes normalised ones, as its examples' models
    do. robustrep's classifiers take [0, 1] pixels and normalise inside
    (:mod:`robustrep.tasks.ood.detectors`): ``eps`` is in pixel units already, and the std
    makes the step 1/std larger than the reference's. ODIN broadcasts one std over every
    channel; MahalanobisODIN divides only the channels it has a std for."""
    notes = []
    for det, key in sorted(_PER_CHANNEL):
        std = (params or {}).get(det, {}).get(key)
        if std is None:
            continue
        eps = params[det].get("eps", registry()[det].params["eps"].default)
        if det == "ODIN" or len(std) == channels:
            per_channel = [std[c % len(std)] for c in range(channels)]
        else:  # pytorch-ood's loop over the stds given: the other channels keep eps
            per_channel = [std[0]] + [1.0] * (channels - 1)
        steps = ", ".join(dict.fromkeys(f"{eps / s:.3g}" for s in per_channel))
        notes.append(f"--param {det}.{key}={list(std)}: robustrep's classifiers take [0, 1] "
                     f"pixels and normalise inside, so {det}.eps ({eps:g}) is in pixel units "
                     f"already, and {key} divides each channel's step by its std again: steps "
                     f"of {steps} pixels, 1/std times the reference's eps; leave {key} out "
                     f"for the reference's step")
    return notes


def _check_vra_order(given: dict[str, Any]) -> None:
    """VRA keeps activations between its lower and upper percentile: a lower one above the
    upper was refused by its constructor only once every feature was extracted."""
    if not given.keys() & {"lower_percentile", "upper_percentile"}:
        return
    params = registry()["VRA"].params
    low, high = (given.get(k, params[k].default) for k in ("lower_percentile", "upper_percentile"))
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        raise ConfigError(f"--param VRA.lower_percentile={low}, VRA.upper_percentile={high}: "
                          f"VRA.lower_percentile takes a fraction at most VRA.upper_percentile "
                          f"(defaults {params['lower_percentile'].default} and "
                          f"{params['upper_percentile'].default})")


def _check_mcd_samples(given: dict[str, Any]) -> None:
    """MCD's ``var`` mode (its default) scores the variance of the softmax over its ``samples``
    dropout passes: over one pass that is NaN for every image, found only once the scores were."""
    params = registry()["MCD"].params
    samples, mode = (given.get(k, params[k].default) for k in ("samples", "mode"))
    if mode == "var" and samples == 1:
        raise ConfigError(f"--param MCD.samples=1: MCD.samples takes an int >= 2 with MCD.mode "
                          f"'var' (default {params['samples'].default}): the variance over one "
                          f"dropout pass is NaN; give more, or MCD.mode='mean'")


class _NoneDefault(NamedTuple):
    """A parameter whose pytorch-ood default is None: ``kind``, a value of the kind it takes
    (None says nothing of it: ReAct.threshold=-1 or =abc was accepted), and ``means``, what the
    default does, as the refusals say it."""

    kind: Any
    means: str


# ViM's d has robustrep's default (D // 2, an int: its kind); ReAct's threshold is fitted; GEN's
# M takes every class
_NONE_DEFAULTS = {
    ("ViM", "d"): _NoneDefault(1, "D//2 of the feature size D"),
    ("ReAct", "threshold"): _NoneDefault(
        1.0, "None: the ReAct.percentile of the ID train activations"),
    ("GEN", "M"): _NoneDefault(1, "None: every class"),
}

# Choices a detector checks with a bare assert in its constructor, after every feature was
# extracted (MCD: ``assert mode in ["mean", "var"]``); ASH lists its own (``ASH.variants``).
_CHOICES = {("MCD", "mode"): ("mean", "var")}


class _Rule(NamedTuple):
    """The numbers a parameter takes, ``low`` to ``high`` (each excluded where ``open_low`` or
    ``open_high``), as the refusal names them: ``noun`` (None: the kind of its default, int or
    float) and ``why``, what the detector does with it that the bounds come from."""

    low: float
    high: float = math.inf
    open_low: bool = False
    open_high: bool = True
    noun: str | None = "number"
    why: str = ""

    def holds(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def text(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return (f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.open_high else ']'}")

    def tail(self, value: float) -> str:
        """What the refusal adds after the value: the reason, or a percentage's fraction."""
        if self.noun == "fraction" and 1 < value <= 100:
            return f"; use {value / 100:g} for {value:g}%"
        return f": {self.why}" if self.why else ""


# Arguments a detector divides by (temperatures) or counts with (neighbours, samples, ViM's
# subspace dimension): 0 passed the sign check and failed only after every feature was extracted
# (NaN scores, sklearn's "Expected n_neighbors > 0", an empty ViM subspace). ReAct's threshold
# clips the (post-ReLU) activations: at 0 or below every map becomes one value and so does every
# score; GEN's exponent gamma is > 0 (Liu et al., CVPR 2023) and M counts its top classes.
_POSITIVE = _Rule(0, open_low=True, noun=None)

# pytorch-ood 0.4's fractions in [0, 1] (its _check_fraction), refused by the constructor only
# once every feature was extracted
_FRACTION = _Rule(0, 1, open_high=False, noun="fraction")

# Each parameter's rules, checked in order before any feature is extracted: the bounds besides
# _POSITIVE and _FRACTION were read from pytorch-ood 0.4's code, where a value outside passed the
# kind and sign checks and failed (NaN or constant scores) or acted otherwise than results.json
# records, only after every feature was extracted. Upper bounds set by the class count:
# _CLASS_COUNTS.
_RULES: dict[tuple[str, str], tuple[_Rule, ...]] = {
    ("EnergyBased", "t"): (_POSITIVE,),
    ("GEN", "gamma"): (_POSITIVE,),
    ("GEN", "M"): (_POSITIVE,),
    ("GradNorm", "micro_batch_size"): (_POSITIVE,),
    ("GradNorm", "temperature"): (_POSITIVE,),
    ("KNN", "k"): (_POSITIVE,),
    ("MaxSoftmax", "t"): (_POSITIVE,),
    ("MCD", "samples"): (_POSITIVE,),
    ("NNGuide", "k"): (_POSITIVE,),
    ("ODIN", "temperature"): (_POSITIVE,),
    ("OpenMax", "tailsize"): (_POSITIVE,),
    ("ReAct", "threshold"): (_POSITIVE,),
    ("ViM", "d"): (_POSITIVE,),
    ("UoS", "mc_dropout"): (_POSITIVE,),
    ("ReAct", "percentile"): (_FRACTION,),
    ("VRA", "lower_percentile"): (_FRACTION,),
    ("VRA", "upper_percentile"): (_FRACTION,),
    ("LTS", "p"): (_FRACTION,),
    ("PNML", "eps"): (_Rule(0, 0.5, True, True, why="it clamps the class probabilities to "
                            "[eps, 1 - eps]: at 0 a zero probability makes the regret NaN, from "
                            "0.5 on every probability is one value"),),
    ("NCI", "alpha"): (_Rule(0, why="the weight of its feature-norm penalty (0: none), which "
                             "pytorch-ood leaves out when it is below 0"),),
    ("OpenMax", "alpha"): (_Rule(1, why="the number of top classes whose activations it "
                                 "revises: 0 revises none"),),
    ("OpenMax", "euclid_weight"): (_Rule(0, 1, open_high=False, why="the weight of the "
                                         "Euclidean distance, the cosine distance's being "
                                         "1 - euclid_weight"),),
    ("ASH", "percentile"): (_FRACTION, _Rule(0, 1, why="the fraction of the activations it "
                                             "prunes: at 1 none is left to score")),
    ("SCALE", "percentile"): (_FRACTION, _Rule(0, 1, why="it scales by the sum of the top "
                                               "1 - percentile of the activations: at 1 there "
                                               "is none")),
    ("DICE", "p"): (_FRACTION, _Rule(0, 1, why="the fraction of the weight contributions it "
                                     "masks: at 1 it masks them all and every score is one "
                                     "value")),
}


def _check_rules(spec: DetectorSpec, key: str, value: float, item: str) -> None:
    """The number ``value`` against each rule :data:`_RULES` holds for the parameter."""
    for rule in _RULES.get((spec.name, key), ()):
        if not rule.holds(value):
            noun = rule.noun or type(_kind_of(spec, key)).__name__
            raise ConfigError(f"--param {item}: {spec.name}.{key} takes a"
                              f"{'n' * (noun[0] in 'aeiou')} {noun} {rule.text()} (default "
                              f"{_default_text(spec, key)}), got {value!r}{rule.tail(value)}")


def _check_param_range(spec: DetectorSpec, key: str, value: Any, item: str) -> None:
    """A finite number, a number within the rules the detector's code sets (:data:`_RULES`),
    and a name among a class's choices (ASH's ``variants``): each failed only after extraction
    (an inf temperature gave constant scores; ``ASH.variant=nope`` a bare AssertionError)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"--param {item}: {spec.name}.{key} takes a finite number, "
                              f"got {value}")
        _check_rules(spec, key, value, item)
    # ASH.variants for ASH(variant=...)
    choices = _CHOICES.get((spec.name, key)) or getattr(spec.cls, f"{key}s", None)
    # a value of another kind is no choice either: ASH.variant=3 failed only after extraction
    if isinstance(choices, (dict, tuple)) and not (isinstance(value, str) and value in choices):
        raise ConfigError(f"--param {item}: {spec.name}.{key} takes one of "
                          f"{', '.join(choices)} (default {_default_text(spec, key)}), "
                          f"got {value!r}")


def _check_param_type(spec: DetectorSpec, key: str, value: Any, item: str) -> None:
    """A value of the kind the parameter's default has (before any feature is extracted)."""
    _check_param_range(spec, key, value, item)
    if value is None and _default(spec, key) is None and (spec.name, key) in _NONE_DEFAULTS:
        return  # the default said again: fitted, or every class
    default = _kind_of(spec, key)
    kinds = {bool: (bool,), int: (int,), float: (int, float)}.get(type(default))
    kind = type(default).__name__
    if kinds is not None and type(default) is not bool and default > 0 and \
            isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        # a count, temperature or percentile that defaults positive: a sign typo, which the
        # detector would only refuse (or silently misuse) after every feature is extracted
        raise ConfigError(f"--param {item}: {spec.name}.{key} takes a non-negative {kind} "
                          f"(default {default!r}), got {value!r}")
    if kinds is None or (isinstance(value, kinds) and
                         (type(default) is bool or not isinstance(value, bool))):
        return
    raise ConfigError(f"--param {item}: {spec.name}.{key} takes a{'n' * (kind[0] in 'aeiou')} "
                      f"{kind} (default {_default_text(spec, key)}), got {value!r}")


def _default(spec: DetectorSpec, key: str) -> Any:
    """The parameter's default: robustrep's where pytorch-ood has none (ViM's d, an int:
    D // 2), else pytorch-ood's."""
    return _robustrep_defaults(spec.name, 2).get(key, spec.params[key].default)


def _kind_of(spec: DetectorSpec, key: str) -> Any:
    """A value of the kind the parameter takes: its default, or where that is None a value of
    the kind :data:`_NONE_DEFAULTS` gives it."""
    default = _default(spec, key)
    if default is None and (spec.name, key) in _NONE_DEFAULTS:
        return _NONE_DEFAULTS[(spec.name, key)].kind
    return default


def _default_text(spec: DetectorSpec, key: str) -> str:
    if (spec.name, key) in _NONE_DEFAULTS:
        return _NONE_DEFAULTS[(spec.name, key)].means
    return repr(_default(spec, key))


def check_feature_params(params: dict[str, dict[str, Any]] | None, feature_dim: int) -> None:
    """The arguments bounded by the feature size ``D``, checked once the model is built and
    before anything is fitted: ViM keeps a ``d``-dimensional principal subspace and scores the
    ``D - d`` others, so ``d >= D`` leaves nothing to score (``d = D`` failed in the
    eigendecomposition; above ``D`` pytorch-ood quietly set ``D // 2`` while results.json kept
    the ``d`` given)."""
    d = (params or {}).get("ViM", {}).get("d")
    if d is not None and not 1 <= d < feature_dim:
        raise ConfigError(f"--param ViM.d={d}: ViM.d must be in 1..{feature_dim - 1} for this "
                          f"classifier's {feature_dim}-d features (it keeps d dimensions and "
                          f"scores the other D - d)")


# Arguments that count the classifier's classes: GEN averages its top-M softmax probabilities
# (Liu et al., CVPR 2023) and OpenMax revises the activations of its top alpha classes (Bendale
# & Boult, CVPR 2016). pytorch-ood takes the top min(M, C) of C classes in silence (OpenMax's
# fit sets alpha = min(C, alpha)), while results.json records the value given.
_CLASS_COUNTS = (("GEN", "M"), ("OpenMax", "alpha"))


def check_class_params(params: dict[str, dict[str, Any]] | None, num_classes: int,
                       source: str) -> None:
    """Refuse a GEN ``M`` or OpenMax ``alpha`` given above ``num_classes``, the classifier's
    outputs, as soon as they are known (``source`` says whose they are), before any feature is
    extracted. Their defaults (every class; 10) are left to pytorch-ood, which caps them."""
    for det, key in _CLASS_COUNTS:
        value = (params or {}).get(det, {}).get(key)
        if value is not None and value > num_classes:
            raise ConfigError(f"--param {det}.{key}={value}: {det}.{key} counts the classes it "
                              f"reads from the top, so it must be in 1..{num_classes} for "
                              f"{source}; lower it")


# Arguments that count the images a detector is fitted on: KNN's k nearest neighbours among the
# ID train features (Sun et al., ICML 2022) and NNGuide's k nearest in its bank of them (Park et
# al., ICCV 2023). pytorch-ood refuses a k above their number only in the fit, after every
# feature was extracted.
_FIT_COUNTS = (("KNN", "k"), ("NNGuide", "k"))


def check_fit_counts(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]] | None,
                     size: int, source: str, more: str | None = None,
                     feature_dim: int | None = None) -> None:
    """Refuse a ``k`` (given with ``--param`` or the default) above ``size``, the number of
    images the detectors ``specs`` are fitted on, and a ViM ``d`` not below it
    (:func:`_check_vim_fit`; its default needs ``feature_dim``), as soon as it is known:
    ``source`` says which images they are, ``more`` how to fit on more (None: no way but a
    lower ``k`` or ``d``)."""
    scored = {spec.name: spec for spec in specs}
    if "ViM" in scored and size >= 1:
        _check_vim_fit((params or {}).get("ViM", {}), size, source, more, feature_dim)
    for det, key in _FIT_COUNTS:
        if det not in scored or size < 1:  # no fit data at all is refused elsewhere
            continue
        given = (params or {}).get(det, {})
        value = given.get(key, scored[det].params[key].default)
        if value <= size:
            continue
        head, fix = ((f"--param {det}.{key}={value}", "lower it") if key in given else
                     (f"{det}.{key} (default {value})", f"give --param {det}.{key}={size} or "
                                                        f"lower"))
        raise ConfigError(f"{head}: {det} takes its {key} nearest neighbours among the images it "
                          f"is fitted on, {source}, so {det}.{key} must be at most {size:,}; "
                          f"{fix}" + (f", or {more}" if more else ""))


def _check_vim_fit(given: dict[str, Any], size: int, source: str, more: str | None,
                   feature_dim: int | None) -> None:
    """ViM (Wang et al., CVPR 2022) keeps the ``d`` principal directions of its fit features
    (centred at ``-W^+ b``) and scores the norm of the rest, scaled to the fit images' mean
    logit. ``size`` images span at most ``size`` directions: with ``size <= d`` the principal
    subspace holds them all, their residual is float noise, and so is the scale it divides by
    (5 fit images, 96-d features, d = 48: AUROC 0.00, exit 0). ``d`` is ``--param ViM.d`` or
    robustrep's default ``D // 2`` (:func:`~robustrep.tasks.ood.detectors._robustrep_defaults`),
    unknown before the feature size ``feature_dim`` is."""
    d = given.get("d")
    if d is None and feature_dim is not None:
        d = _robustrep_defaults("ViM", feature_dim)["d"]
    if d is None or size > d:
        return
    named = given.get("d") is not None
    head = (f"--param ViM.d={d}" if named else
            f"ViM.d (default {d}, half the {feature_dim}-d features)")
    fix = ("no ViM.d suits one image" if size < 2 else f"lower it to {size - 1:,} or below"
           if named else f"give --param ViM.d={size - 1} or lower")
    raise ConfigError(f"{head}: ViM scores what lies outside the {d} principal directions of "
                      f"its fit images' features, so it needs more fit images than ViM.d, and "
                      f"it is fitted on {source}: N images span at most N directions, which "
                      f"leaves it nothing to score; {fix}" + (f", or {more}" if more else ""))
