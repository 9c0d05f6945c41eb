"""Build what ``--reg`` names through the registry, by place, for any program.

A program lists, per registered name, which of its config fields feed which constructor option
(``{"adaptivemix": {"alpha": "am_alpha", ...}}``); a name it does not list (a plugin) is built with
its class defaults. :func:`build_places` checks that every class implements the protocol of its
place (:mod:`robustrep.api`), builds the objects with ``create_regularizer`` (``None`` options
keep the class defaults) and returns them by place, so the training code calls "the regularizer
of this place" without naming any method. Every failure is one :class:`ConfigError` line.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robustrep.registry import (MissingOptionsError, check_places, create_regularizer,
                                regularizer_info)
from robustrep.tasks.common.config import ConfigError


class Fixed:
    """A constructor option the program fixes (not a config field), e.g. ``Fixed("mse")``."""

    def __init__(self, value: Any):
        self.value = value


class Unread:
    """A constructor option the program never reads (``acts`` says where it does act): it gets
    no flag, the class default applies, and a config file's ``reg_options`` setting it is
    refused, so that no run records a value that changed nothing."""

    def __init__(self, acts: str):
        self.acts = acts


class PerMethod(str):
    """A config field several methods share (``PerMethod("mix_alpha")``: ``--mix-alpha`` for
    mixup, cutmix and srmix) whose value a method's own ``--NAME-OPTION`` (``--cutmix-alpha``)
    overrides for that method alone, as timm's ``--mixup 0.8 --cutmix 1.0`` gives each mixing
    kind its own alpha. A str, so every reader of the field's name keeps working; the own
    value goes to ``reg_options`` and is checked by the field's range, as the field is."""


# name -> {constructor option: config field name (or PerMethod), Fixed(value) or Unread(where
# it acts)}
OptionFields = dict[str, dict[str, "str | Fixed | Unread"]]

# name -> {constructor option: value}: what a resumed run keeps from its record of the options
# it trained with (tasks.common.regularizer_record.kept_options)
Kept = dict[str, dict[str, Any]]

# A registered discriminator's input shape comes from the data, never from a flag.
DATA_OPTIONS = ("image_size", "in_channels")


def reg_option(name: str, opt: str, choices: tuple | None = None, **bounds: Any) -> Any:
    """A config field for option ``opt`` of registered method ``name``: default ``None`` (the
    class's own default applies), help from the class docstring's ``Args:`` with that default
    (read from the source, without importing the class)."""
    from robustrep.tasks.common.config import option
    info = regularizer_info(name).options[opt]
    text = info.help.rstrip(".") or opt.replace("_", " ")
    return option(None, _with_core_default(text, info.default), choices, **bounds)


def _with_core_default(text: str, default: Any) -> str:
    """An option's help with the core's default, unless the help says what its None default
    stands for ("(None: 8/255 for Linf, 0.5 for L2)"), which "(core: None)" would only repeat."""
    if default is None and "(None: " in text:
        return text
    return f"{text} (core: {fmt_value(default)})"


def fmt_value(value: Any) -> str:
    return str(round(value, 6)) if isinstance(value, float) else str(value)


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def scalar_kind(annotation: str) -> tuple[type | None, bool, tuple | None]:
    """``"float | None"`` (or ``"Optional[float]"``) -> ``(float, True, None)``;
    ``'Literal["linf", "l2"]'`` -> ``(str, False, ("linf", "l2"))``, its choices (read in any
    case, as every choice option is); ``(None, _, None)`` for what a flag cannot hold."""
    annotation = annotation.strip()
    for prefix in ("Optional[", "typing.Optional["):
        if annotation.startswith(prefix) and annotation.endswith("]"):
            annotation = annotation[len(prefix):-1] + " | None"
    choices = _literal(annotation)
    if choices is not None:
        return str, False, choices
    parts = [p.strip() for p in annotation.split("|")]
    optional = "None" in parts
    kinds = [p for p in parts if p != "None"]
    return (_SCALARS.get(kinds[0]) if len(kinds) == 1 else None), optional, None


def _literal(annotation: str) -> tuple[str, ...] | None:
    """The strings of a ``Literal[...]`` annotation, else None."""
    import ast
    for prefix in ("Literal[", "typing.Literal["):
        if annotation.startswith(prefix) and annotation.endswith("]"):
            try:
                values = ast.literal_eval(f"({annotation[len(prefix):-1]},)")
            except (ValueError, SyntaxError):
                return None
            return values if all(isinstance(v, str) for v in values) else None
    return None


def add_regularizer_args(parser: Any, program: str, fields: OptionFields,
                         derived: tuple[str, ...] = ()) -> None:
    """``--NAME-OPTION`` for every option of every method acting in ``program`` that no config
    field maps (``fields``; a :class:`PerMethod` field's option gets one, :func:`_per_method_flag`)
    and the program does not set itself (``derived``, e.g. GAN's ``fuse_passes``: a flag for it
    could only be refused): type from the class signature, help from its docstring, default
    ``None`` (the class default); the values go to the config's ``reg_options``."""
    from robustrep.registry import list_regularizers
    from robustrep.tasks.common.config import REG_OPTION_DEST
    for name in list_regularizers(program):
        info = regularizer_info(name)
        if info.kind != "regularizer" and _built_in(info):
            continue  # the program builds its own discriminators from its config fields
        own = {opt: f for opt, f in fields.get(name, {}).items() if isinstance(f, PerMethod)}
        mapped = (set(fields.get(name, {})) - set(own)) | set(derived) | set(
            DATA_OPTIONS if info.kind != "regularizer" else ())
        add_option_flags(parser, name, info.options, mapped, REG_OPTION_DEST,
                         f"--reg {name}: further options ({info.module}.{info.qualname})")
        for opt, field in own.items():
            _per_method_flag(parser, name, opt, field)


def _per_method_flag(parser: Any, name: str, opt: str, field: str) -> None:
    """``--cutmix-alpha``, the flag of a :class:`PerMethod` option, as generated but typed by
    its shared field's flag (``--mix-alpha``: ``--cutmix-alpha 0`` is refused as ``--mix-alpha
    0`` is, by the field's range) and with a help naming what it overrides."""
    own = parser._option_string_actions.get(option_flag(name, opt))
    shared = parser._option_string_actions.get("--" + field.replace("_", "-"))
    if own is None or shared is None:  # the program's own flag of that name; no shared flag
        return
    own.type = shared.type
    flag = shared.option_strings[0]
    own.help = (f"{name}'s own {opt}: overrides {flag} for {name} alone (default: {flag}'s "
                f"value; one per method, as timm's --mixup and --cutmix)")


def option_flag(name: str, option: str) -> str:
    """The flag of regularizer (or network family) ``name``'s constructor ``option``."""
    return f"--{name}-{option.replace('_', '-')}"


def add_option_flags(parser: Any, name: str, options: dict[str, Any], skip: set[str],
                     dest: str, title: str) -> None:
    """``--NAME-OPTION`` for each of ``options`` (``OptionInfo`` by option name) not in
    ``skip`` whose annotation a flag can hold, in one ``--help`` section ``title``; default
    ``None``, stored as ``{dest}{name}__{option}`` (:func:`overrides_from_args` collects them).
    An option whose flag the program already has (a plugin named ``g`` with an option ``width``
    meets ``--g-width``) gets none: the section says so and how to set it instead."""
    from robustrep.tasks.common.config import GENERATED_DESTS, OptionSpec
    from robustrep.tasks.common.config_flags import arg_type
    group, taken, unknown = None, [], []
    for opt, oi in options.items():
        kind, optional, choices = scalar_kind(oi.annotation)
        flag = option_flag(name, opt)
        if opt not in skip and not oi.annotation:  # a None, list or tuple default says no kind
            unknown.append(opt)
        if opt in skip or kind is None:
            continue
        if flag in parser._option_string_actions:
            taken.append((flag, opt))
            continue
        if group is None:
            group = parser.add_argument_group(title)
        spec = OptionSpec(name=opt, kind=kind, optional=optional, choices=choices)
        kwargs: dict[str, Any] = {"default": None, "type": arg_type(spec),
                                  "dest": f"{dest}{name}__{opt}",
                                  "help": _with_core_default(oi.help.rstrip(".") or opt,
                                                             oi.default)}
        if kind is bool:
            kwargs.update(metavar="BOOL", nargs="?", const=True)
        elif choices:
            kwargs["metavar"] = "{" + ",".join(choices) + "}"
        else:
            kwargs["metavar"] = kind.__name__.upper()
        group.add_argument(flag, **kwargs)
    if taken or unknown:
        field = GENERATED_DESTS[dest]
        group = group or parser.add_argument_group(title)
        group.description = "; ".join(
            [f"{flag} is the program's own option, so {name}'s {opt!r} has no flag: set it in a "
             f"--config file as {field}: {{{name}: {{{opt}: VALUE}}}}" for flag, opt in taken]
            + [f"{name}'s {opt!r} has no flag (no annotation, and its default "
               f"{fmt_value(options[opt].default)} names no kind): annotate it (e.g. {opt}: "
               f"float | None = None) or set it in a --config file as {field}: {{{name}: "
               f"{{{opt}: VALUE}}}}" for opt in unknown])


def _built_in(info: Any) -> bool:
    return info.module.startswith("robustrep.")


def discriminator_options(cfg: Any, name: str, shape: tuple[int, ...],
                          fields: OptionFields) -> dict[str, Any]:
    """The constructor options of registered discriminator ``name``: its ``--NAME-OPTION``
    values, and the data's ``image_size``/``in_channels`` where the class takes them."""
    return options_for(cfg, name, fields, dict(zip(DATA_OPTIONS, (shape[-1], shape[0]))))


def options_for(cfg: Any, name: str, fields: OptionFields,
                context: dict[str, Any] | None = None, kept: Kept | None = None
                ) -> dict[str, Any]:
    """The constructor options of ``name`` from ``cfg``; ``context`` holds values the program
    derives (e.g. ``fuse_passes``), passed to the classes that take them, and ``kept`` what a
    resumed run recorded for options ``cfg`` leaves to the core defaults."""
    taken = regularizer_info(name).kwargs
    mapped = fields.get(name, {})
    opts = {opt: field.value if isinstance(field, Fixed) else getattr(cfg, field)
            for opt, field in mapped.items() if not isinstance(field, Unread)}
    opts.update({k: v for k, v in (context or {}).items() if k in taken and k not in opts})
    given = (getattr(cfg, "reg_options", None) or {}).get(name, {})
    for opt in given:
        if opt in (context or {}) and opt in taken:  # e.g. the data's input_range
            raise ConfigError(f"reg_options: {name}'s {opt!r} is set by this program "
                              f"({context[opt]!r} here, from the data and networks); drop it")
        field = mapped.get(opt)
        if isinstance(field, Unread):
            raise ConfigError(f"reg_options: {name}'s {opt!r} acts only in {field.acts}, "
                              f"not here; drop it")
        if isinstance(field, Fixed):
            raise ConfigError(f"reg_options: {name}'s {opt!r} is fixed to {field.value!r} in "
                              f"this program; drop it")
        # it would override the flag silently, unchecked by its range
        if field is not None and not isinstance(field, PerMethod):
            raise ConfigError(f"reg_options: {name}'s {opt!r} is set by its own option "
                              f"{field} (--{field.replace('_', '-')}); set it there")
    for opt, value in given.items():
        field = mapped.get(opt)
        if not isinstance(field, PerMethod):
            opts[opt] = typed_option(name, opt, value)
        elif value is not None:  # None: the shared field's value stands
            opts[opt] = _own_value(cfg, name, opt, field, value)
    opts.update((kept or {}).get(name, {}))  # only options left None above (kept_options)
    return opts


def _own_value(cfg: Any, name: str, opt: str, field: str, value: Any) -> Any:
    """A :class:`PerMethod` option's own value (``reg_options: {cutmix: {alpha: 0}}``, from
    ``--cutmix-alpha``, a config file or ``--reg-options``) converted and checked by its shared
    field's spec (``mix_alpha``'s range, > 0), as that field's flag is."""
    from robustrep.tasks.common.config import OptionValueError, convert_value, option_specs
    spec = option_specs(type(cfg)).get(field) if dataclasses.is_dataclass(cfg) else None
    if spec is None:  # a config without that field: the class's annotation
        return typed_option(name, opt, value)
    try:
        return convert_value(spec, value)
    except OptionValueError as err:
        raise ConfigError(f"reg_options: {name}'s {opt!r} ({option_flag(name, opt)}) "
                          f"{err}") from None


def typed_option(name: str, opt: str, value: Any) -> Any:
    """A ``reg_options`` value (config file, ``--reg-options``) read as its ``--NAME-OPTION``
    flag reads it, by the constructor's annotation: ``"false"`` is False, ``"abc"`` for a float
    is refused here instead of reaching the class."""
    from robustrep.tasks.common.config import OptionSpec, OptionValueError, convert_value
    info = regularizer_info(name).options.get(opt)
    kind, optional, choices = (scalar_kind(info.annotation) if info is not None
                               else (None, False, None))
    if kind is None:  # a misspelt option (create_regularizer names it) or no scalar type
        return value
    try:
        return convert_value(OptionSpec(name=opt, kind=kind, optional=optional,
                                        choices=choices), value)
    except OptionValueError as err:
        raise ConfigError(f"reg_options: {name}'s {opt!r} {err}") from None


def build_places(cfg: Any, program: str, names: tuple[str, ...] | list[str],
                 fields: OptionFields, context: dict[str, Any] | None = None,
                 skip_kind: str = "discriminator", kept: Kept | None = None
                 ) -> dict[str, list[tuple[str, Any]]]:
    """``{place: [(name, object), ...]}`` for ``names`` in ``program`` (in the order given).

    Registered discriminators (``skip_kind``) are not built here: the program builds its D from
    them. Raises ConfigError (one line) for a class that implements no protocol of its place or
    options its class refuses.
    """
    try:
        check_places(names, program)
    except ValueError as err:
        raise ConfigError(f"--reg: {err}") from None
    stray = sorted(set(getattr(cfg, "reg_options", None) or {}) - set(names))
    if stray:
        raise ConfigError(f"reg_options (--{stray[0]}-...) set options of {', '.join(stray)}, "
                          f"which --reg does not list (it lists: {', '.join(names) or 'none'})")
    places: dict[str, list[tuple[str, Any]]] = {}
    for name in names:
        info = regularizer_info(name)
        if info.kind == skip_kind:
            continue
        try:
            obj = create_regularizer(name, **options_for(cfg, name, fields, context, kept))
        except MissingOptionsError as err:  # the flags that give them
            flags = ", ".join(option_flag(name, o) for o in err.missing)
            raise ConfigError(f"--reg {name}: {err}; give {flags} (or --reg-options JSON, or "
                              f"reg_options in a config file)") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"--reg {name}: {err}") from None
        except Exception as err:  # noqa: BLE001 (a plugin's own failure, in one line)
            if _built_in(info):
                raise
            raise ConfigError(f"--reg {name}: {info.module}.{info.qualname}() raised "
                              f"{type(err).__name__}: {err}") from err
        places.setdefault(info.acts[program], []).append((name, obj))
    return places


def refuse_unlisted_flags(args: Any, names: tuple[str, ...] | list[str]) -> None:
    """A method's own flag (``--cutmix-alpha``) given for a method ``--reg`` does not list,
    named as the user typed it: :func:`build_places` sees only the ``reg_options`` the flag
    filled (as a config file or ``--reg-options`` fill them), and named those."""
    from robustrep.tasks.common.config import REG_OPTION_DEST
    for dest, value in vars(args).items():
        name, _, opt = dest[len(REG_OPTION_DEST):].partition("__")
        if dest.startswith(REG_OPTION_DEST) and value is not None and name not in names:
            raise ConfigError(f"{option_flag(name, opt)} sets an option of {name}, which --reg "
                              f"does not list (it lists: {', '.join(names) or 'none'}); drop it "
                              f"or add {name} to --reg")


# what a shared field (--mix-alpha) needs where every listed method has its own value
OWN_VALUE_NEED = "a method in --reg without its own value"


def unused_options(values: dict[str, Any], only_with: dict[str, tuple[str, tuple[str, ...]]],
                   names: list[str] | tuple[str, ...] | None, fields: OptionFields,
                   own: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """{what they need: [fields]} for the options set in ``values`` (not None, not False) that
    the other options make do nothing: ``only_with`` (field -> (option, the values it acts
    with)), and a regularizer's option fields (``fields``) without it among ``names`` (None: the
    regularizer list is malformed and reported by itself). ``own`` are fields the program uses
    itself too (GAN's ``loss``), never reported. A :class:`PerMethod` field acts on the methods
    listed without their own value (``--mix-alpha`` with ``--mixup-alpha`` and ``--cutmix-alpha``
    both given changes nothing)."""
    out: dict[str, list[str]] = {}
    for name, (other, accepted) in only_with.items():
        if values.get(name) not in (None, False) and values.get(other) not in accepted:
            need = f"--{other} {' or '.join(accepted)} ({other} is {values.get(other)!r})"
            out.setdefault(need, []).append(name)
    if names is None:
        return out
    used = {f for n in names for opt, f in fields.get(n, {}).items()
            if _own_value_given(values, n, opt, f) is None}
    for field in dict.fromkeys(f for fs in fields.values() for f in fs.values()
                               if isinstance(f, str) and f not in own):
        if values.get(field) is None or field in used:
            continue
        overridden = [(n, opt) for n in names for opt, f in fields.get(n, {}).items()
                      if f == field]
        if overridden:  # every listed method that reads it has its own value
            flags = ", ".join(option_flag(n, opt) for n, opt in overridden)
            need = (f"{OWN_VALUE_NEED} (reg is {values.get('reg')!r}, "
                    f"whose {flags} override{'s' * (len(overridden) == 1)} it)")
        else:
            methods = [n for n, fs in fields.items() if field in fs.values()]
            need = f"--reg {' or '.join(methods)} (reg is {values.get('reg')!r})"
        out.setdefault(need, []).append(field)
    return out


def _own_value_given(values: dict[str, Any], name: str, opt: str, field: Any) -> Any:
    """The value ``values``' ``reg_options`` give method ``name``'s ``opt`` of its own where
    ``field`` is a :class:`PerMethod` field (None where it is not, or none is given)."""
    if not isinstance(field, PerMethod):
        return None
    options = values.get("reg_options")
    given = options.get(name) if isinstance(options, dict) else None
    return given.get(opt) if isinstance(given, dict) else None


def _described(value: Any) -> str:
    import torch
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {list(value.shape)}"
    return f"a {type(value).__name__}"


def checked_loss(value: Any, method: Any, call: str) -> Any:
    """``value``, the loss a regularizer's ``call`` returned, if it is a floating scalar tensor;
    else one line naming the method (its name, or the object, named only then: this runs every
    step; a plugin's wrong return was a traceback deep in autograd or the logger)."""
    import torch
    if not (isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point()):
        if not isinstance(method, str):
            from robustrep.registry import name_of
            method = name_of(type(method)) or type(method).__name__
        raise ConfigError(f"--reg {method}: {call} returned {_described(value)}; it must return "
                          f"the loss as a floating-point scalar tensor (robustrep.api)")
    return value


def checked_feature_terms(out: Any, method: str, batch: int, classes: int) -> dict[str, Any]:
    """A feature regularizer's ``feature_terms`` output as robustrep.api describes it: a dict
    with ``"logits"`` [B, classes] and a scalar ``"loss"`` (and ``"lam"``, ``"index"`` for the
    logits of a mix); else one line naming the method."""
    import torch
    call = f"--reg {method}: feature_terms"
    if not isinstance(out, dict) or "logits" not in out or "loss" not in out:
        keys = f" with keys {', '.join(map(str, out))}" if isinstance(out, dict) else ""
        raise ConfigError(f"{call} returned {_described(out)}{keys}; it must return a dict "
                          f"with 'logits' and 'loss' (robustrep.api)")
    logits = out["logits"]
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (batch, classes):
        raise ConfigError(f"{call} returned logits as {_described(logits)}; they must be "
                          f"[{batch}, {classes}] (batch, classes)")
    checked_loss(out["loss"], method, "feature_terms['loss']")
    if "index" in out and "lam" not in out:
        raise ConfigError(f"{call} returned 'index' without 'lam': the logits of a mix need "
                          f"both (robustrep.api)")
    return out


def check_additive_weight(cfg: Any) -> None:
    """AdaptiveMix's additive mode adds ``weight * shrinkage`` to the plain loss: weight 0 is the
    baseline at AdaptiveMix's cost. (In reference mode weight 0 still trains on the mixed
    samples: an ablation, kept.)"""
    if getattr(cfg, "am_mode", None) == "additive" and getattr(cfg, "am_weight", None) == 0:
        raise ConfigError("--am-weight 0 with --am-mode additive adds nothing to the plain loss; "
                          "give a weight > 0, or --am-mode reference for mixing without "
                          "shrinkage")


def refuse_unused(unused: dict[str, list[str]], source: str | None = None,
                  settable: Any = None) -> None:
    """ConfigError, one line, for the first group :func:`unused_options` found, named where the
    user gave them: the flags, or the keys of ``source`` (``config file F``, whose keys are no
    flags the user typed). The advice is one that can be followed: drop them, or set the option
    they need, unless ``settable`` (an option's name -> whether it may still be set) says it
    may not (a resume keeps its --dataset); what a method's own value overrides: drop it, or
    that own value."""
    if not unused:
        return
    need, names = next(iter(unused.items()))
    said = (f"{source}: {', '.join(names)}" if source else
            ", ".join("--" + n.replace("_", "-") for n in names))
    verb, them = ("applies", "it") if len(names) == 1 else ("apply", "them")
    drop = f"drop {them}" + (" from the file" if source else "")
    other = need.split(" ", 1)[0][2:].replace("-", "_") if need.startswith("--") else None
    if settable is not None and not (other is not None and settable(other)):
        kept = f"a resume keeps --{other.replace('_', '-')} as saved: " if other else ""
        advice = kept + drop
    elif need.startswith(OWN_VALUE_NEED):
        advice = f"{drop}, or one of those own values"
    else:
        advice = f"{drop} or set that option"
    raise ConfigError(f"{said} {verb} only with {need}; {advice}")


def discriminator_of(names: tuple[str, ...] | list[str]) -> str | None:
    """The registered discriminator among ``names`` (it replaces the program's D), if any."""
    return next((n for n in names if regularizer_info(n).kind == "discriminator"), None)
