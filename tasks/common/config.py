"""Configs for the task programs: dataclasses, named presets, and one typed-options layer.

A program declares its options as one dataclass. Each field states, once: its default (the real
default), its type (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``list[int]``,
``list[float]``, ``tuple[...]``) and in ``metadata`` its help, its ``choices`` and its range
(``min``/``max``, with ``min_exclusive``/``max_exclusive``; every float must also be finite unless
``"finite": False``). From that one declaration come:

* the argparse flag (:mod:`robustrep.tasks.common.config_flags`), whose ``type=`` converts and
  checks the text (``--am-alpha 0.5`` -> 0.5; ``--mean 0.5 0.5 0.5`` or ``--mean 0.5,0.5,0.5``
  -> ``[0.5, 0.5, 0.5]``);
* the check of values from a preset, a ``--config`` JSON/YAML file and a resumed run's saved
  ``config.json``, through the same :func:`convert_value` (``tasks/common/optionspec.py``: the
  typed description of a field and the one conversion of its values).

Text is converted the same way wherever it comes from: ``lr_g: "1e-3"`` in a config file is the
number 1e-3, exactly as ``--lr-g 1e-3`` is (YAML 1.1 itself reads an unquoted ``1e-3`` as a
string, so refusing strings would refuse the common spelling). Text that does not convert
(``steps: abc``, ``spectral_norm: maybe``) is a one-line :class:`ConfigError` naming the option,
the value and what is accepted.

A command that is not a trainer (``classify eval``, ``ood score``, ``gan fid``, ``report``...)
declares its options the same way, as a small dataclass whose flags default to the fields'
defaults (``config_flags.add_config_args(..., real_defaults=True)``); ``option`` then also says
how a field looks on the command line (positional, aliases, repeated, the word for nothing: see
``optionspec._CLI``).

The resolved config is, in order: the dataclass defaults, then a named preset, then a config
file, then command-line flags. Flags default to ``None`` so that an option the user did not give
never overrides a preset (the same rule as timm's ``create_model`` dropping ``None`` kwargs).

This module resolves the config from those layers (:func:`resolve_config`; a config file read by
:func:`load_config_file`, its keys that name a generated ``--NAME-OPTION`` flag folded into the
field the flag fills), reads the flags the user gave (:func:`overrides_from_args`) and keeps a
resumed run's saved config (:func:`merge_for_resume`, :func:`from_dict`); the flags themselves
are built by ``config_flags``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config_flags import add_config_args, field_default
from robustrep.tasks.common.optionspec import (
    BETA, NONNEG, POSITIVE, PROB, REQUIRED, UNIT, ConfigError, OptionSpec, OptionValueError,
    check_fields, convert_value, convert_values, option, option_specs, parse_literal,
    spec_from_field)

# the typed-options layer (optionspec) is imported from here by the programs, as before
__all__ = ["BETA", "NONNEG", "POSITIVE", "PROB", "REQUIRED", "UNIT", "ConfigError", "OptionSpec",
           "OptionValueError", "check_fields", "convert_value", "convert_values", "option",
           "option_specs", "parse_literal", "spec_from_field", "GENERATED_DESTS",
           "REG_OPTION_DEST", "ARCH_OPTION_DEST", "load_config_file", "resolve_config",
           "overrides_from_args", "merge_options", "merge_for_resume",
           "refuse_unused_on_resume", "to_dict", "from_dict"]


# ---------------------------------------------------------------------------------------------
# config files, presets, resume


class _FileMistake(ValueError):
    """A config file read faithfully that cannot be taken as written (a key given twice, a
    number its YAML versions read otherwise)."""


def _unique_keys(pairs: list[tuple[str, Any]], line: str = "") -> dict[str, Any]:
    """A mapping from ``pairs``; a key given twice is an error (parsers keep the last silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, (str, int, float, type(None))):  # YAML's `[1, 2]: 3`
            raise _FileMistake(f"a {type(key).__name__} as a key{line} is no option name; "
                               f"option names are words, e.g. steps")
        if key in seen:
            raise _FileMistake(f"option {key!r} is given twice{line}; keep one")
        seen[key] = value
    return seen


def _unique_key_loader(yaml: Any) -> type:
    """``yaml.SafeLoader`` refusing a key given twice in one mapping, and a number that YAML 1.1
    (PyYAML) and YAML 1.2 read differently (:func:`_check_yaml_number`)."""
    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            pairs = [(self.construct_object(k, deep=deep), self.construct_object(v, deep=deep))
                     for k, v in node.value]
            _unique_keys(pairs, f" (mapping at line {node.start_mark.line + 1})")
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_int(self, node):
            _check_yaml_number(node, value := super().construct_yaml_int(node), octal=True)
            return value

        def construct_yaml_float(self, node):
            _check_yaml_number(node, value := super().construct_yaml_float(node), octal=False)
            return value

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    Loader.add_constructor("tag:yaml.org,2002:float", Loader.construct_yaml_float)
    return Loader


def _check_yaml_number(node: Any, value: Any, octal: bool) -> None:
    """Refuse ``010`` (octal 8 to PyYAML's YAML 1.1, 10 to YAML 1.2 and to the command line) and
    ``1:30`` (90, base 60, to YAML 1.1; a string to YAML 1.2): a number read otherwise than
    written is never guessed."""
    text = str(node.value).strip().lstrip("+-").replace("_", "")
    octal = octal and len(text) > 1 and text[0] == "0" and text[1:2].isdigit()
    if octal or ":" in text:
        reading = "octal" if octal else "base 60"
        raise _FileMistake(f"{node.value!r} (line {node.start_mark.line + 1}) is {value:g} to "
                            f"YAML 1.1 ({reading}, as PyYAML reads it) but not to YAML 1.2 or "
                            f"the command line; write the number you mean plainly, or quote it")


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
        except _FileMistake as err:
            raise ConfigError(f"config file {path}: {err}") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ConfigError(f"config file {path}{where}: YAML syntax error: {what}") from None
    elif path.suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except _FileMistake as err:
            raise ConfigError(f"config file {path}: {err}") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path} line {err.lineno}, column {err.colno}: "
                              f"JSON syntax error: {err.msg}") from None
    else:
        raise ConfigError(f"config file {path} must end in .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    named = [k for k in data if not isinstance(k, str)]
    if named:  # YAML's `1: 2` or `null: 3`: no option is named so
        raise ConfigError(f"config file {path}: {named[0]!r} is no option name (a key of "
                          f"{type(named[0]).__name__}); option names are words, e.g. steps")
    return data


def resolve_config(cls: type, presets: dict[str, dict[str, Any]], preset: str | None,
                   config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None,
                   default_preset: str | None = None,
                   unused: Callable[[dict[str, Any]], dict[str, list[str]]] | None = None,
                   say_preset_dropped: bool = False) -> Any:
    """Build a ``cls`` instance from defaults, a preset, a config file and overrides.

    ``preset`` is ``--preset`` as given (None: not given); a config file may name the preset
    itself (a run's config.json does), and ``default_preset`` applies when neither does.
    ``unused`` is the program's ``unused_options``: an option of a lower layer that a higher
    layer's choice turns off gives way to that choice (``--optimizer adamw`` over a preset's or
    a saved config.json's momentum, ``--schedule cosine`` over its milestones), as the higher
    layer decides; an option the same layer sets and turns off is still refused. A config
    file's key naming a generated ``--NAME-OPTION`` flag (``pgd_norm``) is that flag's value in
    ``reg_options`` (``arch_options``): :func:`_fold_flag_keys`. What gives way of the file's
    is said in a note, as is the preset's with ``say_preset_dropped`` (:func:`_note_dropped`).
    """
    values: dict[str, Any] = {}
    data = load_config_file(config_file) if config_file is not None else {}
    flag_keys = _generated_flag_keys(cls)
    _fold_flag_keys(cls, data, config_file, flag_keys)
    _refuse_other_programs(cls, data, config_file)
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
    from_preset: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(presets)}")
        from_preset = convert_values(
            cls, presets[preset], lambda n: f"preset {preset!r}" + (f": {n}" if n else ""))
        merge_options(values, from_preset)
    layer = functools.partial(_merge_layer, cls, values, unused)
    from_file: dict[str, Any] = {}
    dropped: dict[str, list[str]] = {}
    if config_file is not None:
        _no_run_flags(cls, data, config_file)
        from_file = convert_values(cls, data, lambda n: f"config file {config_file}"
                                   + (f": {n}" if n else ""), also=flag_keys)
        _add_groups(dropped, layer(from_file))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given:
        by_flags = layer(convert_values(cls, given, lambda n: _flag_or_cli(n)))
        _note_dropped(f"config file {config_file}", "file", _groups_of(by_flags, set(from_file)))
        _add_groups(dropped, by_flags)
    if say_preset_dropped:  # what the preset set and neither the file nor a flag set again
        _note_dropped(f"preset {preset}", "preset",
                      _groups_of(dropped, set(from_preset) - set(from_file) - set(given)),
                      as_flags=True)
    if unused is not None and from_file:  # named as the file spells them, not as flags
        from robustrep.tasks.common.regularizers import refuse_unused
        refuse_unused(_groups_of(unused(_with_defaults(cls, values)), set(from_file) - set(given)),
                      source=f"config file {config_file}")
    if preset is not None and "preset" in {f.name for f in dataclasses.fields(cls)}:
        values["preset"] = preset
    cfg = cls(**values)
    check_fields(cfg)
    return cfg


def _generated_flag_keys(cls: type) -> dict[str, tuple[argparse.Action, str, str, str]]:
    """``{"pgd_norm": (action, "reg_options", "pgd", "norm")}``: each flag ``cls`` generates
    (its ``add_generated_flags``, the one its trainer's parser calls) by the keys a config file
    may give it, the flag's name with ``_`` (as a field) or ``-`` (as the flag); empty for a
    class that generates none."""
    from robustrep.tasks.common.options import TrainRunOptions
    add = getattr(cls, "add_generated_flags", None)
    if add is None:
        return {}
    # built as the trainer's parser is: a flag its run options or fields (aliases too) take
    # gets no generated form there, so it folds nothing here either
    parser = argparse.ArgumentParser(add_help=False)
    run_fields = {f.name for f in dataclasses.fields(TrainRunOptions)}
    add_config_args(parser, TrainRunOptions, real_defaults=True)
    add_config_args(parser, cls, skip=tuple(run_fields))
    add(parser)
    fields = {f.name for f in dataclasses.fields(cls)}
    keys: dict[str, tuple[argparse.Action, str, str, str]] = {}
    for action in parser._actions:
        prefix = next((p for p in GENERATED_DESTS if action.dest.startswith(p)), None)
        if prefix is None or not action.option_strings:
            continue
        _, name, opt = action.dest.split("__", 2)
        word = action.option_strings[0].removeprefix("--")
        if word.replace("-", "_") in fields:
            continue
        for key in (word.replace("-", "_"), word):
            keys.setdefault(key, (action, GENERATED_DESTS[prefix], name, opt))
    return keys


def _fold_flag_keys(cls: type, data: dict[str, Any], path: Any,
                    keys: dict[str, tuple[argparse.Action, str, str, str]]) -> None:
    """A config file's key that names a generated flag (``pgd_norm: l2``: timm's ``-c`` files
    give flags' names) goes into the field the flag fills, ``reg_options: {pgd: {norm: l2}}``,
    converted as the flag converts it; the layers above and below then merge option by option
    as for the flag. Setting one option both ways in one file is refused, as a key given twice
    is (which would win is not the file's to say)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    found = [(k, *keys[k]) for k in data if isinstance(k, str) and k not in fields and k in keys]
    folded: dict[tuple[str, str, str], str] = {}
    for key, action, field, name, opt in found:
        value = data.pop(key)
        flag = action.option_strings[0]
        if (field, name, opt) in folded:
            raise ConfigError(f"config file {path}: {folded[field, name, opt]} and {key} both "
                              f"set {flag}; keep one")
        folded[field, name, opt] = key
        try:
            value = convert_value(action.type.spec, value)
        except OptionValueError as err:
            raise ConfigError(f"config file {path}: {key} ({flag}) {err}") from None
        mapping = _file_mapping(cls, data, field, path)
        if opt in mapping.get(name, {}):
            raise ConfigError(f"config file {path} sets {name}'s {opt!r} twice, as {key} "
                              f"({flag}) and in {field}: {{{name}: {{{opt}: ...}}}}; keep one")
        mapping.setdefault(name, {})[opt] = value
        data[field] = mapping


def _file_mapping(cls: type, data: dict[str, Any], field: str, path: Any) -> dict[str, Any]:
    """The file's own ``field`` (``reg_options``) as a mapping (``{}`` when not given)."""
    if data.get(field) is None:
        return {}
    try:
        return convert_value(option_specs(cls)[field], data[field])
    except OptionValueError as err:
        raise ConfigError(f"config file {path}: {field} {err}") from None


# the trainers that take --config and their config classes, by name: imported only to name the
# trainer a mostly foreign config file belongs to (only the program run is imported otherwise)
TRAINERS = {"gan train": "robustrep.tasks.gan.config:GanConfig",
            "classify train": "robustrep.tasks.classify.config:ClassifyConfig"}


def _trainer_configs() -> dict[str, type]:
    import importlib
    found = {}
    for command, where in TRAINERS.items():
        module, _, name = where.partition(":")
        found[command] = getattr(importlib.import_module(module), name)
    return found


def _refuse_other_programs(cls: type, data: dict[str, Any], path: Any) -> None:
    """A config file that holds another trainer's options (``gan train --config`` of a classify
    run's config.json) is named as such: the list of its 40 "unknown options", or its preset
    "not one of this program's", said what was wrong only option by option. Only a file most of
    whose options (and at least 3) are foreign, nearly all of them the other trainer's."""
    fields = {f.name for f in dataclasses.fields(cls)}
    foreign = [k for k in data if k not in fields]
    if len(foreign) < 3 or 2 * len(foreign) <= len(data):
        return
    trainers = _trainer_configs()
    mine = next((name for name, other in trainers.items() if other is cls), None)
    for name, other in trainers.items():
        theirs = {f.name for f in dataclasses.fields(other)}
        if other is cls or mine is None or 10 * sum(k in theirs for k in foreign) < 9 * len(
                foreign):
            continue
        raise ConfigError(f"config file {path} is the config of a `{name}` run (its options "
                          f"{', '.join(foreign[:3])}, ... are {name}'s): give it to `robustrep "
                          f"{name} --config`; {mine} takes a config of its own options (listed "
                          f"by 'robustrep {mine} --help'), such as a {mine} run's config.json")


def _no_run_flags(cls: type, data: dict[str, Any], path: str | Path) -> None:
    """A config file's key that is one of the trainers' run flags (``resume``, ``out``,
    ``stop_after``...) is named as such: "unknown option resume; did you mean 'preset'?" sent
    the user the wrong way."""
    from robustrep.tasks.common.options import TrainRunOptions
    fields = {f.name for f in dataclasses.fields(cls)}
    flags = [k for k in data if k in {f.name for f in dataclasses.fields(TrainRunOptions)}
             and k not in fields]
    if flags:
        flag = "--" + flags[0].replace("_", "-")
        raise ConfigError(f"config file {path}: {flags[0]} is the command-line flag {flag} of a "
                          f"run, not an option a config file sets; give {flag} on the command "
                          f"line")


def _merge_layer(cls: type, values: dict[str, Any],
                 unused: Callable[[dict[str, Any]], dict[str, list[str]]] | None,
                 layer: dict[str, Any]) -> None:
    """``layer`` merged into ``values``; the options below it that its choices turn off are
    dropped (see :func:`resolve_config`), and returned by what they need."""
    if unused is None:
        merge_options(values, layer)
        return {}
    before = {n for names in unused(_with_defaults(cls, values)).values() for n in names}
    merge_options(values, layer)
    dropped = _groups_of(unused(_with_defaults(cls, values)),
                         {n for n in values if n not in before and n not in layer})
    for names in dropped.values():
        for name in names:
            values.pop(name, None)
    return dropped


def _with_defaults(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    return {**{f.name: field_default(f) for f in dataclasses.fields(cls)}, **values}


def _groups_of(groups: dict[str, list[str]], names: set[str]) -> dict[str, list[str]]:
    """``groups`` (what they need: fields) cut to the fields among ``names``."""
    cut = {need: [n for n in fields if n in names] for need, fields in groups.items()}
    return {need: fields for need, fields in cut.items() if fields}


def _add_groups(into: dict[str, list[str]], groups: dict[str, list[str]]) -> None:
    for need, fields in groups.items():
        into.setdefault(need, []).extend(fields)


def _note_dropped(source: str, kind: str, groups: dict[str, list[str]],
                  as_flags: bool = False) -> None:
    """Say which options of a lower layer (``source``: ``preset digits-stylegan2``, ``config
    file F``) a higher layer's choice turned off (``groups``: what they need -> fields): a
    preset or a file is a set of starting values the flags override, as timm's ``-c`` file and
    stylegan2-ada's ``--cfg``, and no flag unsets one, so they give way, not silently (the rest
    of a preset's recipe stays, which the note makes plain); one a layer turns off itself is
    refused (:func:`resolve_config`). ``as_flags``: named as flags (``--w-dim``), else as the
    file spells them."""
    said = [", ".join("--" + n.replace("_", "-") if as_flags else n for n in fields)
            + f" {'apply' if fields[1:] else 'applies'} only with {need}"
            for need, fields in groups.items()]
    if said:
        print(f"note: {source}'s {'; '.join(said)}: left out of this run (the {kind}'s other "
              f"options stay)", file=sys.stderr)


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
    ConfigError naming it and listing what may change. The ``{name: {option: value}}`` fields
    merge option by option (:func:`merge_options`), as on a fresh run: ``--mixup-alpha 0.8``
    given again beside a saved cutmix alpha changes nothing.
    """
    merged, _ = _over_saved(saved, overrides)
    changed = {k: merged[k] for k in overrides if k in merged and saved.get(k) != merged[k]}
    fixed = sorted(set(changed) - set(resumable))
    if fixed:
        flags = ", ".join(_flag_or_cli(k) for k in fixed)
        raise ConfigError(f"cannot change {', '.join(fixed)} when resuming {run}: the saved config "
                          f"is kept, and these options differ from it: {', '.join(fixed)} "
                          f"({flags}). Options that may change: {', '.join(sorted(resumable))}")
    return {**saved, **changed}


def refuse_unused_on_resume(saved: dict[str, Any], overrides: dict[str, Any],
                            unused: Callable[[dict[str, Any]], dict[str, list[str]]],
                            resumable: Iterable[str]) -> None:
    """A flag given to a resume that the run's other options make do nothing, refused with
    advice that can be followed: "set that option" only where a resume may change it
    (``--num-workers`` on a digits run: its ``--dataset`` is kept). ``saved``: the run's
    config as this version reads it (``saved_config``: the saved unused options dropped)."""
    from robustrep.tasks.common.regularizers import refuse_unused
    merged, given = _over_saved(saved, overrides)
    refuse_unused(_groups_of(unused(merged), set(given)), settable=set(resumable).__contains__)


def _over_saved(saved: dict[str, Any], overrides: dict[str, Any]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``saved`` with the given (not None) ``overrides`` merged option by option, and those."""
    merged = dict(saved)
    given = {k: v for k, v in overrides.items() if v is not None}
    merge_options(merged, given)
    return merged, given


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any], source: str = "the saved config") -> Any:
    """A ``cls`` from a saved mapping, every value checked; errors name ``source``."""
    values = convert_values(cls, data, lambda n: source + (f": {n}" if n else ""))
    cfg = cls(**values)
    check_fields(cfg)
    return cfg
