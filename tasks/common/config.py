"""Configs for the task programs: dataclasses, named presets, and one typed-options layer.

A program declares its options as one dataclass. Each field states, once: its default (the real
default), its type (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``list[int]``,
``list[float]``, ``tuple[...]``) and in ``metadata`` its help, its ``choices`` and its range
(``min``/``max``, with ``min_exclusive``/``max_exclusive``; every float must also be finite unless
``"finite": False``). From that one declaration this module derives:

* the argparse flag, whose ``type=`` converts and checks the text (``--am-alpha 0.5`` -> 0.5;
  ``--mean 0.5 0.5 0.5`` or ``--mean 0.5,0.5,0.5`` -> ``[0.5, 0.5, 0.5]``);
* the check of values from a preset, a ``--config`` JSON/YAML file and a resumed run's saved
  ``config.json``, through the same :func:`convert_value`.

Text is converted the same way wherever it comes from: ``lr_g: "1e-3"`` in a config file is the
number 1e-3, exactly as ``--lr-g 1e-3`` is (YAML 1.1 itself reads an unquoted ``1e-3`` as a
string, so refusing strings would refuse the common spelling). Text that does not convert
(``steps: abc``, ``spectral_norm: maybe``) is a one-line :class:`ConfigError` naming the option,
the value and what is accepted.

A command that is not a trainer (``classify eval``, ``ood score``, ``gan fid``, ``report``...)
declares its options the same way, as a small dataclass whose flags default to the fields'
defaults (``add_config_args(..., real_defaults=True)``); ``option`` then also says how a field
looks on the command line (positional, aliases, repeated, the word for nothing: see ``_CLI``).

The resolved config is, in order: the dataclass defaults, then a named preset, then a config
file, then command-line flags. Flags default to ``None`` so that an option the user did not give
never overrides a preset (the same rule as timm's ``create_model`` dropping ``None`` kwargs).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
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
        max=meta.get("max"), min_exclusive=bool(meta.get("min_exclusive", False)),
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
            return str(value)
        raise _fail(spec, value)
    if isinstance(value, bool):
        raise _fail(spec, value)
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


def _split(spec: OptionSpec, value: Any) -> list:
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
        return [p for v in value for p in (_split(spec, v) if isinstance(v, str) else [v])]
    return [value]  # one number for a list option: a list of one


def _ranges_expanded(spec: OptionSpec, items: list) -> list:
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
    items = _split(spec, value) if spec.split else list(value)
    try:
        out = [_scalar(spec, v) for v in _ranges_expanded(spec, items)]
        for v in out:
            _check_scalar(spec, v, v)
    except OptionValueError:
        raise _fail(spec, value) from None
    if (not out and not spec.allow_empty) or (spec.length is not None
                                               and len(out) != spec.length):
        raise _fail(spec, value)
    return spec.sequence(out)


def convert_values(cls: type, values: dict[str, Any], where: Callable[[str], str]) -> dict:
    """Every entry of ``values`` converted by its field's spec; ``where(name)`` names a bad one.

    Unknown names are a ConfigError listing the valid options.
    """
    specs = option_specs(cls)
    unknown = sorted(set(values) - set(specs))
    if unknown:
        import difflib
        close = difflib.get_close_matches(unknown[0], list(specs), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]!r}?" if close else
                f"none of the {len(specs)} options is close (they are listed by --help)")
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} in {where('')}; {hint}")
    out = {}
    for name, value in values.items():
        try:
            out[name] = convert_value(specs[name], value)
        except OptionValueError as err:
            raise ConfigError(f"{where(name)} {err}") from None
    return out


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


# ---------------------------------------------------------------------------------------------
# argparse


class _Extend(argparse.Action):
    """``--mean 0.5 0.5,0.5`` -> one flat list (each token may itself be a comma list)."""

    def __call__(self, parser, namespace, values, option_string=None):
        # the word for nothing parses to []: beside other values it would be dropped silently
        if len(values) > 1 and any(part == [] for part in values):
            raise argparse.ArgumentError(self, f"{self.nothing} cannot be combined with other "
                                               f"values; give {self.nothing} alone")
        flat = [v for part in values for v in part]
        setattr(namespace, self.dest, self.type_sequence(flat))

    type_sequence: type = list
    nothing: str | None = None


def arg_type(spec: OptionSpec) -> Callable[[str], Any]:
    """The argparse ``type=`` of ``spec``: text -> checked value (one token of a list)."""
    item_spec = dataclasses.replace(spec, sequence=None, length=None, optional=False,
                                    nothing=None)

    def parse(text: str) -> Any:
        try:
            items = _split(spec, text) if spec.sequence is not None and spec.split else None
        except OptionValueError as err:  # an empty item; argparse prefixes "argument --flag: "
            raise argparse.ArgumentTypeError(str(err)) from None
        if spec.sequence is not None and not text.replace(",", " ").split():
            # "" would read as the empty list
            nothing = f" (write {spec.nothing} for no values)" if spec.nothing else ""
            raise argparse.ArgumentTypeError(f"must be {spec.accepted()}; got an empty value"
                                             f"{nothing}")
        try:
            if spec.nothing is not None and text.strip() == spec.nothing:
                return convert_value(spec, text)
            if items is not None:
                return [convert_value(item_spec, t) for t in _ranges_expanded(spec, items)]
            return convert_value(item_spec, text)
        except OptionValueError:
            # argparse prefixes "argument --flag: "
            raise argparse.ArgumentTypeError(f"must be {spec.accepted()}; got {text!r}") from None
    parse.__name__ = spec.kind.__name__  # argparse names the type in some messages
    return parse


def _checked(parse: Callable[[str], Any], check: Callable[[Any], None]) -> Callable[[str], Any]:
    """``parse``, then a field's ``check`` of the value; its refusal becomes argparse's one line
    (``argument RUN: ...``), which a type function may raise only as ArgumentTypeError."""
    def parse_and_check(text: str) -> Any:
        value = parse(text)
        try:
            check(value)
        except UserError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value
    parse_and_check.__name__ = parse.__name__
    return parse_and_check


def option_type(kind: type, **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` for a plain option (not a config field): ``option_type(int, min=1)``.

    The message names the flag (argparse prefixes ``argument --flag:``).
    """
    spec = OptionSpec(name="value", kind=kind, **bounds)

    def parse(text: str) -> Any:
        try:
            return convert_value(spec, text)
        except OptionValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = kind.__name__
    return parse


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                    groups: dict[str, str] | None = None, real_defaults: bool = False,
                    default_preset: tuple[str, dict[str, Any]] | None = None) -> None:
    """Add one ``--flag`` per dataclass field to ``parser``.

    A trainer's flags default to ``None`` (an option not given never overrides the preset);
    with ``real_defaults`` (a command without presets: ``classify eval``, ``ood score``...)
    each flag defaults to its field's default, a field without one is required, and a bool is
    a plain switch. ``groups`` maps a field-name prefix (``"am_"``) to the title of its
    ``--help`` section (a field's ``group`` metadata does too); the other fields go to the
    general section. ``default_preset`` (name, values): the preset a run without ``--preset``
    starts from, whose values the help states as the defaults.
    """
    title = "options (override the preset" + (
        f"; the defaults shown are {default_preset[0]}'s, the default preset)" if default_preset
        else ")")
    general = parser if real_defaults else parser.add_argument_group(title)
    shown = default_preset[1] if default_preset else {}
    sections = {prefix: parser.add_argument_group(title)
                for prefix, title in (groups or {}).items()}
    titled: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        title = field.metadata.get("group")
        if title is not None and title not in titled:
            titled[title] = parser.add_argument_group(title)
        group = titled[title] if title is not None else next(
            (g for prefix, g in sections.items() if field.name.startswith(prefix)), general)
        spec = option_specs(cls)[field.name]
        args, kwargs = _argument(field, spec, real_defaults, shown.get(field.name, _UNSET))
        group.add_argument(*args, **kwargs)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


_UNSET = object()


def _argument(field: dataclasses.Field, spec: OptionSpec, real_defaults: bool,
              preset_value: Any = _UNSET) -> tuple[list[str], dict[str, Any]]:
    """The ``add_argument`` arguments of one field (``preset_value``: the default preset's)."""
    meta = field.metadata
    default = _field_default(field)
    stated = default if preset_value is _UNSET else preset_value
    help_text = meta.get("help", "")
    # State the default once: not again where the help already says what it is (the default,
    # or the core's value that None stands for). A command's parser (HelpFormatter) adds it.
    if not real_defaults and "default" not in help_text.lower() and not (
            stated is None and "core" in help_text):
        help_text = f"{help_text} (default: {stated})".strip()
    kwargs: dict[str, Any] = {"help": help_text, "type": arg_type(spec)}
    if meta.get("check"):
        kwargs["type"] = _checked(kwargs["type"], meta["check"])
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    if meta.get("positional"):  # no default: required; a default: may be left out
        if default is not dataclasses.MISSING:
            kwargs.update(nargs="?", default=default)
        kwargs.setdefault("metavar", field.name.upper())
        return [field.name], kwargs
    kwargs["dest"] = field.name
    if not real_defaults:
        kwargs["default"] = None
    elif default is dataclasses.MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    flags = list(spec.flags or [spec.flag])
    if "bare" in meta:  # the flag alone stands for this value (argparse's const)
        kwargs.update(nargs="?", const=meta["bare"])
    if spec.kind is bool and spec.sequence is None:
        if real_defaults:  # a plain switch: `--quiet`; a positional may follow it
            return flags, {"dest": field.name, "action": "store_true", "help": help_text}
        # A switch: `--flag` alone means true; `--flag false` also works.
        kwargs.update(metavar="BOOL", nargs="?", const=True)
    elif meta.get("repeat"):
        kwargs.update(action="append", type=arg_type(dataclasses.replace(spec, sequence=None)))
        kwargs.setdefault("metavar", "NAME=VALUE")
    elif spec.sequence is not None and meta.get("nargs", "+") is None:
        kwargs.setdefault("metavar", spec.kind.__name__.upper() + ",...")
    elif spec.sequence is not None:
        action = type("_Extend", (_Extend,), {"type_sequence": spec.sequence,
                                              "nothing": spec.nothing or "an empty value"})
        kwargs.update(nargs=meta.get("nargs", "+"), action=action)
        kwargs.setdefault("metavar", spec.kind.__name__.upper())
    elif spec.kind is dict:
        kwargs["metavar"] = "JSON"
    elif spec.choices is not None:
        kwargs.setdefault("metavar", "{" + ",".join(map(str, spec.choices)) + "}")
    return flags, kwargs


# ---------------------------------------------------------------------------------------------
# config files, presets, resume


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]], line: str = "") -> dict[str, Any]:
    """A mapping from ``pairs``; a key given twice is an error (parsers keep the last silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"option {key!r} is given twice{line}; keep one")
        seen[key] = value
    return seen


def _unique_key_loader(yaml: Any) -> type:
    """``yaml.SafeLoader`` refusing a key given twice in one mapping."""
    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            pairs = [(self.construct_object(k, deep=deep), self.construct_object(v, deep=deep))
                     for k, v in node.value]
            _unique_keys(pairs, f" (mapping at line {node.start_mark.line + 1})")
            return super().construct_mapping(node, deep=deep)
    return Loader


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a .json/.yaml file; a ConfigError naming the file (and line) otherwise."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what} (accepted: a .json or .yaml file)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read: {err}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml  # installed with timm (huggingface_hub)
        try:
            data = yaml.load(text, Loader=_unique_key_loader(yaml))  # safe_load's loader
        except _DuplicateKey as err:
            raise ConfigError(f"config file {path}: {err}") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ConfigError(f"config file {path}{where}: YAML syntax error: {what}") from None
    elif path.suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as err:
            raise ConfigError(f"config file {path}: {err}") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path} line {err.lineno}, column {err.colno}: "
                              f"JSON syntax error: {err.msg}") from None
    else:
        raise ConfigError(f"config file {path} must end in .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    return data


def resolve_config(cls: type, presets: dict[str, dict[str, Any]], preset: str | None,
                   config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None,
                   default_preset: str | None = None) -> Any:
    """Build a ``cls`` instance from defaults, a preset, a config file and overrides.

    ``preset`` is ``--preset`` as given (None: not given); a config file may name the preset
    itself (a run's config.json does), and ``default_preset`` applies when neither does.
    """
    values: dict[str, Any] = {}
    data = load_config_file(config_file) if config_file is not None else {}
    named = data.pop("preset", None) if "preset" in {f.name for f in dataclasses.fields(cls)} \
        else None
    if named is not None:  # the file's options are meant on top of its preset
        if preset is not None and preset != named:
            raise ConfigError(f"config file {config_file} names preset {named!r} but --preset "
                              f"is {preset!r}; drop one of them")
        if not isinstance(named, str) or named not in presets:
            raise ConfigError(f"config file {config_file} names preset {named!r}, which is not "
                              f"one of this program's: {', '.join(presets)}")
        preset = str(named)
    preset = default_preset if preset is None else preset
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(presets)}")
        merge_options(values, convert_values(
            cls, presets[preset], lambda n: f"preset {preset!r}" + (f": {n}" if n else "")))
    if config_file is not None:
        merge_options(values, convert_values(cls, data, lambda n: f"config file {config_file}"
                                             + (f": {n}" if n else "")))
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        merge_options(values, convert_values(cls, given, lambda n: _flag_or_cli(n)))
    if preset is not None and "preset" in {f.name for f in dataclasses.fields(cls)}:
        values["preset"] = preset
    cfg = cls(**values)
    check_fields(cfg)
    return cfg


def _flag_or_cli(name: str) -> str:
    if name in GENERATED_DESTS.values():  # set by its JSON flag or the generated ones
        return f"--{name.replace('_', '-')} or the --NAME-OPTION flags"
    return "--" + name.replace("_", "-") if name else "the command line"


def overrides_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The dataclass fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {k: v for k, v in vars(args).items() if k in names and v is not None}
    for prefix, field in GENERATED_DESTS.items():  # --NAME-OPTION flags, generated
        generated: dict[str, dict[str, Any]] = {}
        for dest, value in vars(args).items():
            if dest.startswith(prefix) and value is not None:
                _, name, opt = dest.split("__", 2)
                generated.setdefault(name, {})[opt] = value
        if generated and field in names:
            merge_options(out, {field: generated})
    return out


def merge_options(values: dict[str, Any], top: dict[str, Any]) -> None:
    """``values.update(top)``, except that the ``{name: {option: value}}`` fields
    (``reg_options``, ``arch_options``) merge option by option: ``--rec-weight`` on top of a
    config file's ``reg_options: {rec: {count: 5}}`` keeps ``count``."""
    for key, value in top.items():
        below = values.get(key)
        if key in GENERATED_DESTS.values() and isinstance(below, dict) and isinstance(value, dict):
            value = {**below, **{name: {**below[name], **opts}
                                 if isinstance(below.get(name), dict) and isinstance(opts, dict)
                                 else opts for name, opts in value.items()}}
        values[key] = value


REG_OPTION_DEST = "regopt__"  # dest prefix of a generated regularizer flag: regopt__NAME__OPTION
ARCH_OPTION_DEST = "archopt__"  # a plugin network family's flag: archopt__FAMILY__OPTION
# dest prefix -> the config field (a {name: {option: value}} mapping) its flags fill
GENERATED_DESTS = {REG_OPTION_DEST: "reg_options", ARCH_OPTION_DEST: "arch_options"}


def merge_for_resume(saved: dict[str, Any], overrides: dict[str, Any], resumable: Iterable[str],
                     run: Any) -> dict[str, Any]:
    """The saved config of ``run`` with ``overrides``; only ``resumable`` options may change.

    A resumed run must be the same run: any other option that differs from the saved value is a
    ConfigError naming it and listing what may change.
    """
    changed = {k: v for k, v in overrides.items() if v is not None and saved.get(k) != v}
    fixed = sorted(set(changed) - set(resumable))
    if fixed:
        flags = ", ".join(_flag_or_cli(k) for k in fixed)
        raise ConfigError(f"cannot change {', '.join(fixed)} when resuming {run}: the saved config "
                          f"is kept, and these options differ from it: {', '.join(fixed)} "
                          f"({flags}). Options that may change: {', '.join(sorted(resumable))}")
    return {**saved, **changed}


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any], source: str = "the saved config") -> Any:
    """A ``cls`` from a saved mapping, every value checked; errors name ``source``."""
    values = convert_values(cls, data, lambda n: source + (f": {n}" if n else ""))
    cfg = cls(**values)
    check_fields(cfg)
    return cfg
