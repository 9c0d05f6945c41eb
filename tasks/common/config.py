"""Configs for the task programs: dataclasses, named presets, and validated overrides.

A program declares its options as one dataclass (field defaults are the real defaults, stated
once, with ``metadata={"help": ..., "choices": ...}``). The resolved config is, in order: the
dataclass defaults, then a named preset, then a JSON/YAML config file, then command-line flags.
Flags default to ``None`` so that an option the user did not give never overrides a preset
(the same rule as timm's ``create_model`` dropping ``None`` kwargs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A bad preset, option or config file; the message says what is accepted."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return tp


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--flag`` per dataclass field (default ``None``) to ``parser``."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group("options (override the preset)")
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        tp = _base_type(hints[field.name])
        meta = field.metadata
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{meta.get('help', '')} (default: {default})".strip()
        kwargs: dict[str, Any] = {"default": None, "help": help_text, "dest": field.name}
        if tp is bool:
            # A switch: `--flag` alone means true; `--flag false` also works.
            kwargs.update(type=_parse_bool, metavar="BOOL", nargs="?", const=True)
        elif tp in (int, float, str):
            kwargs["type"] = tp
        elif typing.get_origin(tp) in (list, tuple):
            item = typing.get_args(tp)[0] if typing.get_args(tp) else str
            kwargs.update(nargs="+", type=item)
        else:
            kwargs["type"] = str
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        group.add_argument(_flag(field.name), **kwargs)


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (accepted: a .json or .yaml file)")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # installed with timm (huggingface_hub)
        data = yaml.safe_load(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ConfigError(f"config file {path} must end in .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    return data


def _check_keys(cls: type, values: dict[str, Any], source: str) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} in {source}; valid options: "
                          f"{', '.join(sorted(valid))}")


def _check_choices(cls: type, cfg: Any) -> None:
    for field in dataclasses.fields(cls):
        choices = field.metadata.get("choices")
        if choices is not None and getattr(cfg, field.name) not in choices:
            raise ConfigError(f"{field.name} must be one of {', '.join(map(str, choices))}; "
                              f"got {getattr(cfg, field.name)!r}")


def resolve_config(cls: type, presets: dict[str, dict[str, Any]], preset: str | None,
                   config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> Any:
    """Build a ``cls`` instance from defaults, a preset, a config file and overrides."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(presets)}")
        _check_keys(cls, presets[preset], f"preset {preset!r}")
        values.update(presets[preset])
    if config_file is not None:
        data = load_config_file(config_file)
        _check_keys(cls, data, str(config_file))
        values.update(data)
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        _check_keys(cls, given, "the command line")
        values.update(given)
    if preset is not None and "preset" in {f.name for f in dataclasses.fields(cls)}:
        values["preset"] = preset
    cfg = cls(**values)
    _check_choices(cls, cfg)
    return cfg


def overrides_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The dataclass fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def merge_for_resume(saved: dict[str, Any], overrides: dict[str, Any], resumable: Iterable[str],
                     run: Any) -> dict[str, Any]:
    """The saved config of ``run`` with ``overrides``; only ``resumable`` options may change.

    A resumed run must be the same run: any other option that differs from the saved value is a
    ConfigError naming it and listing what may change.
    """
    changed = {k: v for k, v in overrides.items() if v is not None and saved.get(k) != v}
    fixed = sorted(set(changed) - set(resumable))
    if fixed:
        raise ConfigError(f"cannot change {', '.join(fixed)} when resuming {run}: the saved config "
                          f"is kept, and these options differ from it: {', '.join(fixed)}. "
                          f"Options that may change: {', '.join(sorted(resumable))}")
    return {**saved, **changed}


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    _check_keys(cls, data, "the saved config")
    return cls(**data)
