"""Typed options: what one config field accepts, and the one conversion of its values.

A program declares its options as one dataclass (``tasks/common/config.py`` says how). Each
field states, once, its default, its type (``int``, ``float``, ``bool``, ``str``, ``X | None``,
``list[int]``, ``list[float]``, ``tuple[...]``, a ``dict`` of option mappings) and in its
``metadata`` (:func:`option`) its help, ``choices`` and range (an integer's is at most
:data:`INT_MAX` where it states no ``max``). :func:`option_specs` reads that into one
:class:`OptionSpec` per field, and :func:`convert_value` converts and checks a value against it,
whether the value is command-line text, a config file's or preset's value, or a saved
``config.json``'s: ``lr_g: "1e-3"`` in a file is the number 1e-3, exactly as
``--lr-g 1e-3`` is. A value that does not fit raises :class:`OptionValueError`, ``must be
<accepted>; got <value>``, which the callers turn into a one-line :class:`ConfigError` naming
the option and where it came from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from robustrep._lists import check_no_empty_item
from robustrep.tasks.common.errors import UserError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


# Ranges for field metadata (``option(..., **POSITIVE)``), checked for flags, files and saved
# configs alike.
POSITIVE = {"min": 0, "min_exclusive": True}
NONNEG = {"min": 0}
UNIT = {"min": 0, "max": 1}
BETA = {"min": 0, "max": 1, "max_exclusive": True}
# a probability whose 0 would switch its method off while the run records it as taken
PROB = {"min": 0, "max": 1, "min_exclusive": True}
# An integer field's upper bound where it states none (spec_from_field): torch takes sizes and
# counts as C++ int64 and many kernels as int32, so --z-dim 1e23 was a C++ traceback and
# --steps 1e308 a loop without end. A field that needs more states its own "max" (seeds: 2**32 - 1).
INT_MAX = 2**31 - 1


def parse_literal(text: str) -> Any:
    """A ``NAME=VALUE`` value: a Python literal (``3``, ``0.5``, ``[1, 2]``, ``True``) or text."""
    import ast
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class ConfigError(UserError, ValueError):
    """A bad preset, option or config file; the message says what is accepted.

    Also a ValueError, so callers written before the UserError family still catch it.
    """


class OptionValueError(ValueError):
    """One value that does not convert; the message is ``must be <accepted>; got <value>``."""


# ---------------------------------------------------------------------------------------------
# the typed description of one option


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What one option accepts, derived from a dataclass field (or given directly)."""

    name: str
    kind: type  # int, float, bool or str: the scalar type (of the items, for a sequence)
    optional: bool = False  # None is accepted
    sequence: type | None = None  # list or tuple
    length: int | None = None  # fixed length of a tuple[X, X]
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    finite: bool = True
    nothing: str | None = None  # the word for None (a scalar) or the empty list (a sequence)
    allow_empty: bool = False  # a sequence may be empty
    split: bool = True  # a sequence's text splits at commas (not a repeated NAME=VALUE option)
    one_token: bool = False  # a sequence given as one comma-separated token (nargs None)
    flags: tuple[str, ...] | None = None  # the option strings, where not --<name>
    ranges: bool = False  # an integer list's item a-b stands for a, a+1, ..., b (--seeds 0-7)

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")

    def accepted(self) -> str:
        """``an integer >= 1``, ``a finite number in (0, 1)``, ``true or false``, ..."""
        if self.kind is dict:
            return "a mapping, e.g. {\"toy\": {\"weight\": 0.5}} (JSON on the command line)"
        if self.choices is not None:
            what = "one of " + ", ".join(map(str, self.choices))
        elif self.kind is bool:
            what = "true or false"
        elif self.kind is str:
            what = "a non-empty string"
        else:
            what = ("an integer" if self.kind is int else
                    "a finite number" if self.finite else "a number") + self._range()
        if self.sequence is not None:
            count = f"{self.length} " if self.length else ""
            how = ("" if not self.split else " (comma-separated)" if self.one_token
                   else " (space- or comma-separated)")
            what = f"a list of {count}values, each {what}{how}"
            what += (f", or ranges a-b (0-7,12) of at most {MAX_RANGE:,} values"
                     if self.ranges else "")
        return what + (f", or {self.nothing}" if self.nothing is not None else "")

    def _range(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            left, right = "(" if self.min_exclusive else "[", ")" if self.max_exclusive else "]"
            return f" in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f" {'>' if self.min_exclusive else '>='} {_num(lo)}"
        if hi is not None:
            return f" {'<' if self.max_exclusive else '<='} {_num(hi)}"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported option type {tp}: one type or one type | None")
        return args[0], True
    return tp, False


def spec_from_field(field: dataclasses.Field, hint: Any) -> OptionSpec:
    tp, optional = _unwrap_optional(hint)
    sequence, length = None, None
    origin = typing.get_origin(tp)
    if origin is dict or tp is dict:  # a mapping (JSON text on the command line)
        return OptionSpec(name=field.name, kind=dict, optional=optional)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis] or [str]
        if origin is tuple and Ellipsis not in typing.get_args(tp):
            length = len(typing.get_args(tp))
        sequence, tp = origin, args[0]
    if tp not in (int, float, bool, str):
        raise TypeError(f"option {field.name}: unsupported type {hint}")
    meta = field.metadata
    choices = meta.get("choices")
    repeat = bool(meta.get("repeat", False))
    return OptionSpec(
        name=field.name, kind=tp, optional=optional, sequence=sequence, length=length,
        choices=tuple(choices) if choices is not None else None, min=meta.get("min"),
        max=meta["max"] if "max" in meta else INT_MAX if tp is int else None,
        min_exclusive=bool(meta.get("min_exclusive", False)),
        max_exclusive=bool(meta.get("max_exclusive", False)),
        finite=bool(meta.get("finite", True)), nothing=meta.get("nothing"),
        allow_empty=repeat or meta.get("nargs") == "*" or meta.get("nothing") is not None,
        split=not repeat, one_token="nargs" in meta and meta["nargs"] is None,
        flags=tuple(meta["flags"]) if meta.get("flags") else None,
        ranges=bool(meta.get("ranges", False)))


@functools.cache
def option_specs(cls: type) -> dict[str, OptionSpec]:
    """Every field of the config dataclass ``cls`` as an :class:`OptionSpec`, by name."""
    hints = typing.get_type_hints(cls)  # resolves the string hints of `from __future__ import`
    return {f.name: spec_from_field(f, hints[f.name]) for f in dataclasses.fields(cls)}


_BOUNDS = ("min", "max", "min_exclusive", "max_exclusive", "finite")
# How a command's option looks on the command line (add_config_args with real_defaults):
# flags: its option strings where not --<name> (aliases: ("--num-samples", "--num")); positional:
# an argument without a flag; nargs: "*" (may be empty) or None (one comma-separated token) for
# a list; repeat: a list given by repeating the flag (NAME=VALUE items, not split at commas);
# nothing: the word meaning None or the empty list ("all", "none"); metavar; group: the title of
# its --help section; bare: the value of the flag given without one (``--resume`` alone); ranges:
# an integer list's item a-b stands for a..b, as stylegan2-ada's --seeds (command line and files);
# check: a function of the value, run as the command line is parsed (its one-line UserError is
# argparse's error naming the argument), for what must be refused before any work.
_CLI = ("flags", "positional", "nargs", "repeat", "nothing", "metavar", "group", "bare", "ranges",
        "check")
REQUIRED = dataclasses.MISSING  # option(REQUIRED, ...): a command's argument with no default


def option(default: Any, help: str, choices: tuple | None = None, **bounds: Any) -> Any:
    """A config field: its default, help, choices and range, e.g.
    ``lr: float = option(0.05, "peak learning rate", min=0, min_exclusive=True)``."""
    unknown = set(bounds) - set(_BOUNDS) - set(_CLI)
    if unknown:
        raise TypeError(f"option(): unknown keyword(s) {', '.join(sorted(unknown))}; "
                        f"valid: {', '.join(_BOUNDS + _CLI)}")
    meta: dict[str, Any] = {"help": help, **bounds}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# conversion and validation: one function for the CLI, config files and resumed configs


def _fail(spec: OptionSpec, value: Any) -> OptionValueError:
    return OptionValueError(f"must be {spec.accepted()}; got {value!r}")


def _scalar(spec: OptionSpec, value: Any) -> Any:
    kind = spec.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _fail(spec, value)
    if kind is str:
        if isinstance(value, bool) and value is False and spec.choices and "off" in spec.choices:
            return "off"  # YAML 1.1 reads an unquoted `amp: off` as false
        # "" is never meant: `--out "$RUN"` with RUN unset would write into the working folder
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) \
                and str(value).strip():
            return _as_spelt(spec, str(value))
        raise _fail(spec, value)
    if isinstance(value, bool):
        raise _fail(spec, value)
    if kind is int and isinstance(value, int):
        return value  # exact: the float below rounds past 2**53
    try:
        number = _number(value, fraction=kind is float)
    except (TypeError, ValueError, ZeroDivisionError):
        raise _fail(spec, value) from None
    if kind is int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass  # "1e5" is an integer written as a float; checked below
        if not math.isfinite(number) or not number.is_integer():
            raise _fail(spec, value)
        return int(number)
    return number


def _as_spelt(spec: OptionSpec, text: str) -> str:
    """``text`` as its choice is spelt when it names one in another case (``--norm linf`` is
    Linf, ``--threat-model l2`` RobustBench's L2): argparse and the reports compare exactly.
    Choices that differ only by case would be ambiguous and are left to the exact check."""
    if spec.choices is None or text in spec.choices:
        return text
    same = [c for c in spec.choices if isinstance(c, str) and c.lower() == text.lower()]
    return same[0] if len(same) == 1 else text


def _number(value: Any, fraction: bool) -> float:
    """``value`` as a float; with ``fraction``, text ``A/B`` is A divided by B, as radii are
    written (``--eps 8/255``, the papers' and the help's notation)."""
    if not isinstance(value, str):
        return float(value)
    top, slash, bottom = value.strip().partition("/")
    if slash and fraction:
        return float(top) / float(bottom)
    return float(value.strip())


def _check_scalar(spec: OptionSpec, value: Any, raw: Any) -> None:
    if spec.choices is not None and value not in spec.choices:
        raise _fail(spec, raw)
    if spec.kind not in (int, float):
        return
    if spec.finite and not math.isfinite(value):
        raise _fail(spec, raw)
    low_bad = spec.min is not None and (value <= spec.min if spec.min_exclusive
                                        else value < spec.min)
    high_bad = spec.max is not None and (value >= spec.max if spec.max_exclusive
                                         else value > spec.max)
    if low_bad or high_bad:
        raise _fail(spec, raw)


def split_items(spec: OptionSpec, value: Any) -> list:
    """A list option's items from text (split at commas and spaces) or a file's list.

    An empty item (``1,,2``, ``1,2,``, ``""`` in a list) is refused, as stylegan2-ada's
    ``--seeds`` parser refuses it: dropped, it would hide a value the user meant to give."""
    if isinstance(value, (str, list, tuple)):
        try:
            check_no_empty_item(None, value, spec.accepted())
        except ValueError as err:
            raise OptionValueError(str(err)) from None
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in (split_items(spec, v) if isinstance(v, str) else [v])]
    return [value]  # one number for a list option: a list of one


def expand_ranges(spec: OptionSpec, items: list) -> list:
    """``items`` with each ``a-b`` item expanded where ``spec`` takes ranges."""
    return [n for v in items for n in _range_item(spec, v)] if spec.ranges else items


def _range_item(spec: OptionSpec, value: Any) -> list:
    """``"3-5"`` as ``[3, 4, 5]`` (both ends included, as stylegan2-ada's ``--seeds``); any
    other item as itself. A range that ends before it starts fits nothing."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value) if isinstance(value, str) else None
    if match is None:
        return [value]
    lo, hi = int(match[1]), int(match[2])
    if hi < lo or (spec.max is not None and hi > spec.max) or hi - lo >= MAX_RANGE:
        raise _fail(spec, value)
    return list(range(lo, hi + 1))


MAX_RANGE = 1_000_000  # values one a-b item may stand for (2**32 seeds would not fit in memory)


def _mapping(spec: OptionSpec, value: Any) -> dict:
    """A mapping of names to mappings of option values (``reg_options``), from JSON text or a
    parsed file value."""
    raw = value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _fail(spec, raw) from None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
        raise _fail(spec, raw)
    return {k: dict(v) for k, v in value.items()}


def convert_value(spec: OptionSpec, value: Any) -> Any:
    """``value`` (text or a parsed JSON/YAML value) as ``spec``'s type, checked.

    Raises :class:`OptionValueError` (``must be <accepted>; got <value>``) when it does not fit.
    """
    if spec.nothing is not None and isinstance(value, str) and value.strip() == spec.nothing:
        value = None if spec.sequence is None else []
    if value is None:
        if spec.optional:
            return None
        raise _fail(spec, value)
    if spec.kind is dict:
        return _mapping(spec, value)
    if spec.sequence is None:
        out = _scalar(spec, value)
        _check_scalar(spec, out, value)
        return out
    items = split_items(spec, value) if spec.split else list(value)
    try:
        out = [_scalar(spec, v) for v in expand_ranges(spec, items)]
        for v in out:
            _check_scalar(spec, v, v)
    except OptionValueError:
        raise _fail(spec, value) from None
    if (not out and not spec.allow_empty) or (spec.length is not None
                                               and len(out) != spec.length):
        raise _fail(spec, value)
    return spec.sequence(out)


def convert_values(cls: type, values: dict[str, Any], where: Callable[[str], str],
                   also: Iterable[str] = ()) -> dict:
    """Every entry of ``values`` converted by its field's spec; ``where(name)`` names a bad one.

    Unknown names are a ConfigError with the closest option; ``also``: other names the caller
    accepts (a config file's generated-flag keys, ``pgd_norm``), offered too.
    """
    specs = option_specs(cls)
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} in {where('')}; "
                          f"{_closest(unknown[0], specs, also)}")
    out = {}
    for name, value in values.items():
        try:
            out[name] = convert_value(specs[name], value)
        except OptionValueError as err:
            raise ConfigError(f"{where(name)} {err}") from None
    return out


def _closest(name: str, specs: dict[str, OptionSpec], also: Iterable[str] = ()) -> str:
    """The hint for an unknown option ``name``: the field one of whose flags it spells (timm's
    ``opt`` is ``optimizer``, flag ``--opt``), else the closest name (of ``specs`` or
    ``also``)."""
    flag = "--" + name.replace("_", "-")
    alias = next((n for n, spec in specs.items() if spec.flags and flag in spec.flags), None)
    if alias is not None:
        return f"did you mean {alias!r}? ({flag} is its flag; a file gives the option's name)"
    import difflib
    names = list(specs) + [n for n in also if "-" not in n]  # one spelling each
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return (f"did you mean {close[0]!r}?" if close else
            f"none of the {len(specs)} options is close (they are listed by --help)")


def check_fields(cfg: Any) -> None:
    """Check every field of a config instance against its spec (types, choices, ranges).

    Called from the configs' ``__post_init__`` so that a config built in code, from a preset or
    from a saved run is held to the same rules as one built from flags; converts text in place.
    """
    for name, spec in option_specs(type(cfg)).items():
        value = getattr(cfg, name)
        try:
            setattr(cfg, name, convert_value(spec, value))
        except OptionValueError as err:
            raise ConfigError(f"{name} {err}") from None
