"""The argparse flags of a config dataclass: one ``--flag`` per field (:func:`add_config_args`),
whose ``type=`` converts and checks the text as a config file's value is checked
(:func:`arg_type`, through :func:`~robustrep.tasks.common.optionspec.convert_value`):
``--am-alpha 0.5`` -> 0.5, ``--mean 0.5 0.5 0.5`` or ``--mean 0.5,0.5,0.5`` ->
``[0.5, 0.5, 0.5]``; a field's ``check`` refuses in argparse's one line. A plain option, not a
config field, gets the same conversion from :func:`option_type`.

A trainer's flags default to ``None``, so that an option the user did not give never overrides
a preset; a command that is not a trainer (``classify eval``, ``ood score``...) takes its fields'
defaults (``real_defaults=True``), and ``option`` then also says how a field looks on the
command line (positional, aliases, repeated, the word for nothing: ``optionspec._CLI``).

Apart from ``config.py``: building the command line from the declaration is one idea; resolving
a config from its layers (defaults, preset, config file, flags, a resumed run's saved config,
:mod:`robustrep.tasks.common.config`) is another, which imports this module to read a config
file's keys that name a generated flag.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.optionspec import (OptionSpec, OptionValueError, convert_value,
                                               expand_ranges, option_specs, split_items)


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
            items = split_items(spec, text) if spec.sequence is not None and spec.split else None
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
                return [convert_value(item_spec, t) for t in expand_ranges(spec, items)]
            return convert_value(item_spec, text)
        except OptionValueError:
            # argparse prefixes "argument --flag: "
            raise argparse.ArgumentTypeError(f"must be {spec.accepted()}; got {text!r}") from None
    parse.__name__ = spec.kind.__name__  # argparse names the type in some messages
    parse.spec = spec  # type: ignore[attr-defined]  # a file's value too: _fold_flag_keys
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


def field_default(field: dataclasses.Field) -> Any:
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
    default = field_default(field)
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
