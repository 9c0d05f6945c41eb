"""Regularizers by name: ``register_regularizer``, ``create_regularizer``, one combination grammar.

The pattern is timm's ``register_model`` / ``create_model``: each technique module decorates its
class, the decorator records the name, the paper, where the method acts in each program and the
constructor's options (their defaults read from the signature, so they are stated once, in the
class), and ``create_regularizer(name, **kwargs)`` builds it, dropping ``None`` kwargs so a
program's unset options never override the core defaults.

Where a method acts decides which methods combine: a run takes at most one method per *place*
(``gan``: D function, D inputs, extra D term; ``classify``: input mixing, feature shrinkage,
adversarial inputs), except in places marked as shared, where the program switches between
members (timm's Mixup/CutMix switch), and never in two places a program cannot fill together
(``classify``'s feature shrinkage and input mixing). ``excludes`` names, per program, further
pairs that cannot run together.
:func:`parse_combination` is the one grammar every program uses: ``"adaptivemix,asgan"`` or
``"mixup+cutmix"`` (comma or plus), ``"none"`` or ``""`` for no regularizer.

Every place has one protocol (:mod:`robustrep.api`); a registered class implements the protocol
of each place its ``acts`` names, and :func:`check_places` refuses a name whose class does not.
:func:`register_discriminator` registers a method that replaces the discriminator (RP-GAN).

The built-in methods are read without importing them (nor torch): their modules' decorators and
``__init__`` signatures and docstrings are parsed with :mod:`ast` (the class stays the one source
of names, places, defaults and help), and a module is imported only when one of its classes is
asked for (:attr:`RegularizerInfo.cls`). Modules from outside register by import (``--plugin``),
or, from an installed package, through the ``robustrep.regularizers`` entry-point group, whose
modules are read like the built-ins.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import re
from typing import Any

from robustrep._lists import check_no_empty_item
from robustrep._options import (NotLiteral, OptionInfo, callable_options, decorator_calls,
                                literal, module_constants, parse_module, static_options,
                                summary)

__all__ = ["RegularizerInfo", "OptionInfo", "register_regularizer", "register_discriminator",
           "create_regularizer", "MissingOptionsError", "list_regularizers", "regularizer_info",
           "parse_combination", "check_places", "name_of", "split_combination", "SHARED_PLACES",
           "CLASHING_PLACES"]

# Modules whose decorators name the built-in methods; read with ast, imported on first use.
_MODULES = ("robustrep.adaptivemix", "robustrep.mixing", "robustrep.adversarial",
            "robustrep.free", "robustrep.dat", "robustrep.asgan", "robustrep.projection",
            "robustrep.ssgan", "robustrep.infomax")

# Places where several methods may be listed: the program draws one of them per batch.
SHARED_PLACES = {("classify", "input mixing")}
# Places a program cannot fill together: a classifier's feature shrinkage computes the logits
# from its own forward of the clean batch, which leaves no mixed batch and mixed target to score.
CLASHING_PLACES = {"classify": (("feature shrinkage", "input mixing"),)}

_DECORATORS = {"register_regularizer": "regularizer", "register_discriminator": "discriminator"}



@dataclasses.dataclass(frozen=True)
class RegularizerInfo:
    """What the registry knows of one regularizer (or discriminator factory)."""

    name: str
    module: str
    qualname: str
    paper: str
    acts: dict[str, str]  # program -> place, e.g. {"gan": "D function"}
    excludes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    options: dict[str, OptionInfo] = dataclasses.field(default_factory=dict)
    kind: str = "regularizer"  # or "discriminator": replaces D (register_discriminator)
    summary: str = ""

    @property
    def kwargs(self) -> dict[str, Any]:
        """The constructor's options and their defaults."""
        return {k: o.default for k, o in self.options.items()}

    @property
    def cls(self) -> type:
        """The class; imports its module on first use."""
        live = _LIVE.get(self.name)
        if live is None:
            try:
                importlib.import_module(self.module)
            except Exception as err:  # noqa: BLE001 (a plugin's import error, named in one line)
                raise ValueError(f"regularizer {self.name!r}: its module {self.module} fails to "
                                 f"import ({type(err).__name__}: {err})") from err
            live = _LIVE.get(self.name)
        if live is None:
            raise ValueError(f"module {self.module} does not register {self.name!r}")
        return live


# Installed packages add methods through this entry-point group; each entry point names a module
# (``toy = mypkg.toy``), read like the built-ins and imported on first use.
ENTRY_POINT_GROUP = "robustrep.regularizers"

_REGISTRY: dict[str, RegularizerInfo] = {}
_LIVE: dict[str, type] = {}  # name -> class, for the modules imported so far
_UNREADABLE: dict[str, str] = {}  # entry-point module -> why it registers nothing
_CLASHES: dict[str, str] = {}  # name -> the entry-point class that registers it a second time
_loaded = False



def _register(name: str, kind: str, paper: str, acts: dict[str, str],
              excludes: dict[str, tuple[str, ...]] | None):
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"regularizer name must be lower-case letters, digits or '-'; "
                         f"got {name!r}")
    if name == "none":  # --reg none means no method: a method of that name could not be chosen
        raise ValueError("regularizer name 'none' is taken: it means no regularizer")
    if not isinstance(acts, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in acts.items()):
        raise TypeError(f"acts must map each program to its place, e.g. "
                        f"{{'classify': 'feature shrinkage'}}; got {acts!r}")

    def decorate(cls: type) -> type:
        if name in _LIVE and _LIVE[name] is not cls:
            raise ValueError(f"regularizer {name!r} is already registered "
                             f"(by {_LIVE[name].__qualname__})")
        # robustrep's own names are known before the registry loads (a plugin imported first
        # would otherwise take one, and the library's module then fail to import)
        known = _REGISTRY.get(name) or _builtin_infos().get(name)
        if name not in _LIVE and known is not None and (known.module, known.qualname) != (
                cls.__module__, cls.__qualname__):
            raise ValueError(f"regularizer {name!r} is already registered "
                             f"(by {known.module}.{known.qualname})")
        _LIVE[name] = cls
        _REGISTRY[name] = RegularizerInfo(
            name, cls.__module__, cls.__qualname__, paper, dict(acts),
            {k: tuple(v) for k, v in (excludes or {}).items()}, callable_options(cls), kind,
            summary(cls.__doc__))
        return cls

    return decorate


def register_regularizer(name: str, *, paper: str, acts: dict[str, str],
                         excludes: dict[str, tuple[str, ...]] | None = None):
    """Class decorator: register ``cls`` as regularizer ``name``.

    Args:
        name: the name used on command lines (lower case, letters/digits/dashes).
        paper: the citation, e.g. ``"Liu et al., CVPR 2023"``.
        acts: where the method acts in each program that supports it; the class implements the
            protocol of each place (:mod:`robustrep.api`).
        excludes: per program, the names of regularizers this one cannot run with.

    Raises:
        ValueError: a name registered twice or not of the accepted form.
    """
    return _register(name, "regularizer", paper, acts, excludes)


def register_discriminator(name: str, *, paper: str, acts: dict[str, str],
                           excludes: dict[str, tuple[str, ...]] | None = None):
    """Class decorator: register ``cls`` as a method that replaces the discriminator.

    ``cls(**options)`` builds the D: an ``nn.Module`` whose logits are ``[B, K]``, K members
    whose losses the program sums (RP-GAN's ensemble); it takes the place named in ``acts``
    (``gan``: ``"D function"``)
    and is selected with ``--reg NAME`` like a regularizer. Arguments as
    :func:`register_regularizer`.
    """
    return _register(name, "discriminator", paper, acts, excludes)


# --- the built-in modules, read from their source (robustrep._options) ---------------------------


def _read_module(module: str) -> list[RegularizerInfo]:
    """The registrations in ``module``'s source, without importing it."""
    tree = parse_module(module)
    consts = module_constants(tree)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found = []
    for cls, deco in decorator_calls(classes.values(), _DECORATORS):
        kw = {k.arg: literal(k.value, consts) for k in deco.keywords}
        found.append(RegularizerInfo(
            literal(deco.args[0], consts), module, cls.name, kw["paper"], dict(kw["acts"]),
            {k: tuple(v) for k, v in kw.get("excludes", {}).items()},
            static_options(cls, classes, consts), _DECORATORS[deco.func.id],
            summary(ast.get_docstring(cls))))
    return found


@functools.lru_cache(maxsize=None)
def _builtin_infos() -> dict[str, RegularizerInfo]:
    """robustrep's own registrations, read from its modules' source (never imported here)."""
    return {info.name: info for module in _MODULES for info in _read_module(module)}


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for info in _builtin_infos().values():
            _REGISTRY.setdefault(info.name, info)  # an imported module's entry stays
        for module in _entry_point_modules():
            _load_entry_point(module)
        _loaded = True


def _entry_point_modules(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """The modules that installed packages name in entry-point ``group``."""
    from importlib.metadata import entry_points
    return sorted({ep.value.partition(":")[0].strip() for ep in entry_points(group=group)})


def _load_entry_point(module: str) -> None:
    """Register an installed plugin module: from its source when its decorators are literal,
    else by importing it (the user installed it to run it); a module that fails either way is
    remembered, and named when one of its methods is asked for."""
    try:
        infos = _read_module(module)
    except (ImportError, SyntaxError, OSError, NotLiteral, KeyError, TypeError) as err:
        infos, why = [], f"{type(err).__name__}: {err}"
    else:
        why = "it registers no regularizer"
    for info in infos:
        known = _REGISTRY.setdefault(info.name, info)
        if (known.module, known.qualname) != (info.module, info.qualname):
            _CLASHES[info.name] = f"{info.module}.{info.qualname}"
    if infos:
        return
    before = set(_REGISTRY)
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 (a broken plugin must not break every command)
        why = f"{type(err).__name__}: {err}"
    if set(_REGISTRY) == before:
        _UNREADABLE[module] = " ".join(why.split())


def _unreadable_note() -> str:
    return "".join(f"; installed plugin {m} ({ENTRY_POINT_GROUP}) registered nothing: {why}"
                   for m, why in sorted(_UNREADABLE.items()))


def list_regularizers(program: str | None = None) -> list[str]:
    """Registered names, sorted; only those acting in ``program`` when given (a program no
    regularizer acts in is a ValueError, as in :func:`parse_combination`)."""
    _ensure_loaded()
    if program is not None:
        _check_program(program)
    return sorted(n for n, info in _REGISTRY.items() if program is None or program in info.acts)


def _check_program(program: str) -> None:
    programs = sorted({p for info in _REGISTRY.values() for p in info.acts})
    if program not in programs:  # else every name would be "unknown for <program>"
        raise ValueError(f"program must be one of {', '.join(map(repr, programs))}; "
                         f"got {program!r}")


def regularizer_info(name: str) -> RegularizerInfo:
    """The :class:`RegularizerInfo` of ``name`` (any case): module, class, paper, places per
    program, options and summary, read from the source without importing it."""
    if not isinstance(name, str):  # "unknown regularizer 3" would hide that a name was due
        raise TypeError(f"regularizer name must be a str, got {type(name).__name__}")
    _ensure_loaded()
    if isinstance(name, str) and name.lower() in _REGISTRY:  # names are lower case, as --reg's
        name = name.lower()
    if name not in _REGISTRY:
        raise ValueError(f"unknown regularizer {name!r}; registered: "
                         f"{', '.join(list_regularizers())}{_unreadable_note()}")
    return _REGISTRY[name]


def _check_unique(name: str) -> None:
    """Refuse a name two classes register (an installed plugin's entry point reusing a name):
    either could be meant, so neither is built."""
    if name in _CLASHES:
        first = _REGISTRY[name]
        raise ValueError(f"regularizer {name!r} is registered twice: by {first.module}."
                         f"{first.qualname} and by the installed plugin {_CLASHES[name]} "
                         f"({ENTRY_POINT_GROUP} entry point); uninstall or rename one")


def create_regularizer(name: str, **kwargs: Any) -> Any:
    """Build regularizer ``name``; ``None`` kwargs are dropped so the class defaults apply,
    except the options the class lists in ``none_is_a_value`` (``input_range=None``: unbounded
    inputs), where ``None`` is passed on."""
    info = regularizer_info(name)
    name = info.name
    _check_unique(name)
    cls = info.cls  # imports the module, which may refresh the entry
    kept = getattr(cls, "none_is_a_value", ())
    given = {k: v for k, v in kwargs.items() if v is not None or k in kept}
    unknown = sorted(set(kwargs) - set(info.kwargs))
    if unknown:
        raise TypeError(f"regularizer {name!r} takes no option(s) {', '.join(unknown)}; "
                        f"options: {', '.join(info.kwargs)}")
    missing = [n for n in _required(cls) if n not in given]
    if missing:  # Python's own "missing 2 required positional arguments" names no method
        raise MissingOptionsError(
            f"regularizer {name!r} needs the option(s) {', '.join(missing)}, which have no "
            f"default ({'; '.join(_option_help(info, n) for n in missing)})", missing)
    return cls(**given)


class MissingOptionsError(TypeError):
    """:func:`create_regularizer` without a constructor option that has no default; ``missing``
    names them (a program turns them into its flags)."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


def _required(cls: Any) -> list[str]:
    """The constructor's options without a default."""
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _option_help(info: Any, name: str) -> str:
    text = info.options[name].help if name in info.options else ""
    return f"{name}: {text.split('. ')[0].rstrip('.')}" if text else name


def name_of(cls: type) -> str | None:
    """The name ``cls`` is registered under (its module imported), or None."""
    return next((n for n, c in _LIVE.items() if c is cls), None)


def plugin_classes() -> dict[str, list[tuple[str, str]]]:
    """``{module: [(name, class qualname), ...]}`` of the imported registrations that are not
    robustrep's own (``--plugin`` modules, installed entry points): the code a program's error
    boundary names as the user's when it raises (:mod:`robustrep.tasks.common.errors`)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, cls in sorted(_LIVE.items()):
        if cls.__module__.partition(".")[0] != "robustrep":
            out.setdefault(cls.__module__, []).append((name, cls.__qualname__))
    return out


def check_places(names: tuple[str, ...] | list[str], program: str) -> None:
    """Refuse a name whose class does not implement the protocol of its place in ``program``.

    Imports the classes. Raises:
        ValueError: one line naming the regularizer, the place and the missing methods.
    """
    from robustrep.api import PLACES, implements
    for name in names:
        info = regularizer_info(name)
        place = info.acts.get(program)
        if place is None:
            raise ValueError(f"regularizer {name!r} does not act in {program}")
        if info.kind == "discriminator":
            if not callable(info.cls):
                raise ValueError(f"discriminator {name!r} is not callable")
            continue
        proto = PLACES.get((program, place))
        if proto is None:
            raise ValueError(f"regularizer {name!r} names place {place!r} of {program}, which "
                             f"{program} does not have; places: "
                             f"{', '.join(p for g, p in PLACES if g == program)}")
        if not implements(info.cls, program, place):
            need = [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]
            raise ValueError(f"regularizer {name!r} ({info.module}.{info.qualname}) acts in "
                             f"{program} {place} but does not implement {proto.__name__} "
                             f"(robustrep.api): it needs {', '.join(need)}")


def split_combination(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The names of ``"adaptivemix,asgan"`` / ``"mixup+cutmix"`` (or a list of them), lower
    case, ``none`` dropped; not checked (:func:`parse_combination` checks them)."""
    return tuple(n for n in _as_written(text) if n and n != "none")


def _as_written(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The names between the separators, lower case, empty ones and ``none`` kept."""
    if isinstance(text, (list, tuple)):
        text = ",".join(text)
    return [n.strip().lower() for n in re.split(r"[,+]", str(text or ""))]


def parse_combination(text: str | None, program: str, joiner: str = ",") -> tuple[str, ...]:
    """``"adaptivemix,asgan"`` -> ``("adaptivemix", "asgan")`` for ``program``.

    Names are separated by ``,`` or ``+``; ``none`` (or nothing) means no regularizer. ``joiner``
    is the one the error's example uses: ``+`` where a comma separates settings (``--regs`` of
    ``ood bench``, ``report``'s ``--gan-regs``).

    Raises:
        ValueError: an empty item (``mixup,,pgd``, ``mixup+``), an unknown name (the message
            lists the valid ones for ``program``), a name given twice, two methods in one place,
            or an excluded pair.
    """
    if text is not None and not isinstance(text, (str, list, tuple)):
        raise TypeError(f"regularizers must be a str such as 'mixup,pgd', a list of names or "
                        f"None, got {type(text).__name__}")
    _ensure_loaded()
    _check_program(program)
    valid = list_regularizers(program)
    how = "commas" if joiner == "," else repr(joiner)
    seps = "',' or '+'" if joiner == "," else "'+'"  # a comma separates settings otherwise
    check_no_empty_item("regularizers", text, f"names joined by {seps}, or none", ",+")
    names = split_combination(text)
    _check_none(text, names)
    for name in names:
        if name not in valid:
            raise ValueError(f"unknown regularizer {name!r} for {program}; valid: none, "
                             f"{', '.join(valid)} (combine with {how}, e.g. "
                             f"{_example(program).replace(',', joiner)}){_unreadable_note()}")
    for name in names:
        _check_unique(name)
    if len(set(names)) != len(names):
        raise ValueError(f"regularizers {text!r} name a method twice")
    _check_places(names, program, text)
    for name in names:
        clash = [n for n in names if n in _REGISTRY[name].excludes.get(program, ())]
        if clash:
            raise ValueError(f"{name} cannot be combined with {', '.join(clash)}")
    return names


def _check_none(text: Any, names: tuple[str, ...]) -> None:
    """``none`` beside methods says two things; which one was meant is the user's to say. (An
    empty name, as in a trailing comma, is refused before: see :func:`check_no_empty_item`.)"""
    if names and "none" in _as_written(text):
        raise ValueError(f"regularizers {text!r} combine none with methods; give the methods "
                         f"alone, or none alone")


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
    for first, second in CLASHING_PLACES.get(program, ()):
        if first in by_place and second in by_place:
            raise ValueError(f"regularizers {text!r} combine {' and '.join(by_place[first])} "
                             f"({first}) with {' and '.join(by_place[second])} ({second}); "
                             f"{program} runs {first} on the clean batch, so it takes no "
                             f"{second}")


def _example(program: str) -> str:
    return {"gan": "adaptivemix,asgan", "classify": "mixup,pgd"}.get(program, "a,b")
