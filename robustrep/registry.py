"""Regularizers by name: ``register_regularizer``, ``create_regularizer``, one combination grammar.

The pattern is timm's ``register_model`` / ``create_model``: each technique module decorates its
class, the decorator records the name, the paper, where the method acts in each program and the
constructor's options (their defaults read from the signature, so they are stated once, in the
class), and ``create_regularizer(name, **kwargs)`` builds it, dropping ``None`` kwargs so a
program's unset options never override the core defaults.

Where a method acts decides which methods combine: a run takes at most one method per *place*
(``gan``: D function, D inputs, extra D term; ``classify``: input mixing, feature shrinkage,
adversarial inputs), except in places marked as shared, where the program switches between
members (timm's Mixup/CutMix switch). ``excludes`` names, per program, further pairs that
cannot run together.
:func:`parse_combination` is the one grammar every program uses: ``"adaptivemix,asgan"`` or
``"mixup+cutmix"`` (comma or plus), ``"none"`` or ``""`` for no regularizer.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import Any

__all__ = ["RegularizerInfo", "register_regularizer", "create_regularizer", "list_regularizers",
           "regularizer_info", "parse_combination", "SHARED_PLACES"]

# Modules whose decorators fill the registry; imported on first use, so `import robustrep` stays
# fast and free of side effects.
_MODULES = ("robustrep.adaptivemix", "robustrep.mixing", "robustrep.adversarial",
            "robustrep.projection")

# Places where several methods may be listed: the program draws one of them per batch.
SHARED_PLACES = {("classify", "input mixing")}


@dataclasses.dataclass(frozen=True)
class RegularizerInfo:
    """What the registry knows of one regularizer."""

    name: str
    cls: type
    paper: str
    acts: dict[str, str]  # program -> place, e.g. {"gan": "D function"}
    excludes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # class defaults

    @property
    def summary(self) -> str:
        return (self.cls.__doc__ or "").strip().splitlines()[0] if self.cls.__doc__ else ""


_REGISTRY: dict[str, RegularizerInfo] = {}
_loaded = False


def _defaults(cls: type) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def register_regularizer(name: str, *, paper: str, acts: dict[str, str],
                         excludes: dict[str, tuple[str, ...]] | None = None):
    """Class decorator: register ``cls`` as regularizer ``name``.

    Args:
        name: the name used on command lines (lower case, letters/digits/dashes).
        paper: the citation, e.g. ``"Liu et al., CVPR 2023"``.
        acts: where the method acts in each program that supports it.
        excludes: per program, the names of regularizers this one cannot run with.

    Raises:
        ValueError: a name registered twice or not of the accepted form.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"regularizer name must be lower-case letters, digits or '-'; "
                         f"got {name!r}")

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"regularizer {name!r} is already registered "
                             f"(by {_REGISTRY[name].cls.__qualname__})")
        _REGISTRY[name] = RegularizerInfo(name, cls, paper, dict(acts), dict(excludes or {}),
                                          _defaults(cls))
        return cls

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(module)
        _loaded = True


def list_regularizers(program: str | None = None) -> list[str]:
    """Registered names, sorted; only those acting in ``program`` when given."""
    _ensure_loaded()
    return sorted(n for n, info in _REGISTRY.items() if program is None or program in info.acts)


def regularizer_info(name: str) -> RegularizerInfo:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"unknown regularizer {name!r}; registered: "
                         f"{', '.join(list_regularizers())}")
    return _REGISTRY[name]


def create_regularizer(name: str, **kwargs: Any) -> Any:
    """Build regularizer ``name``; ``None`` kwargs are dropped so the class defaults apply."""
    info = regularizer_info(name)
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(info.kwargs))
    if unknown:
        raise TypeError(f"regularizer {name!r} takes no option(s) {', '.join(unknown)}; "
                        f"options: {', '.join(info.kwargs)}")
    return info.cls(**given)


def parse_combination(text: str | None, program: str) -> tuple[str, ...]:
    """``"adaptivemix,asgan"`` -> ``("adaptivemix", "asgan")`` for ``program``.

    Names are separated by ``,`` or ``+``; ``none`` (or nothing) means no regularizer.

    Raises:
        ValueError: an unknown name (the message lists the valid ones for ``program``), a name
            given twice, two methods in one place, or an excluded pair.
    """
    _ensure_loaded()
    programs = sorted({p for info in _REGISTRY.values() for p in info.acts})
    if program not in programs:  # else every name would be "unknown for <program>"
        raise ValueError(f"program must be one of {', '.join(map(repr, programs))}; "
                         f"got {program!r}")
    valid = list_regularizers(program)
    names = tuple(n.strip().lower() for n in re.split(r"[,+]", str(text or "")) if n.strip())
    names = tuple(n for n in names if n != "none")
    for name in names:
        if name not in valid:
            raise ValueError(f"unknown regularizer {name!r} for {program}; valid: none, "
                             f"{', '.join(valid)} (combine with commas, e.g. {_example(program)})")
    if len(set(names)) != len(names):
        raise ValueError(f"regularizers {text!r} name a method twice")
    _check_places(names, program, text)
    for name in names:
        clash = [n for n in names if n in _REGISTRY[name].excludes.get(program, ())]
        if clash:
            raise ValueError(f"{name} cannot be combined with {', '.join(clash)}")
    return names


def _check_places(names: tuple[str, ...], program: str, text: str | None) -> None:
    by_place: dict[str, list[str]] = {}
    for name in names:
        by_place.setdefault(_REGISTRY[name].acts[program], []).append(name)
    for place, members in by_place.items():
        if len(members) > 1 and (program, place) not in SHARED_PLACES:
            options = [n for n in list_regularizers(program) if _REGISTRY[n].acts[program] == place]
            raise ValueError(f"regularizers {text!r} combine {' and '.join(members)}, which act "
                             f"in the same place ({place}); take at most one of "
                             f"{', '.join(options)}")


def _example(program: str) -> str:
    return {"gan": "adaptivemix,asgan", "classify": "mixup,pgd"}.get(program, "a,b")
