"""Build what ``--reg`` names through the registry, by place, for any program.

A program lists, per registered name, which of its config fields feed which constructor option
(``{"adaptivemix": {"alpha": "am_alpha", ...}}``); a name it does not list (a plugin) is built with
its class defaults. :func:`build_places` checks that every class implements the protocol of its
place (:mod:`robustrep.api`), builds the objects with ``create_regularizer`` (``None`` options
keep the class defaults) and returns them by place, so the training code calls "the regularizer
of this place" without naming any method. Every failure is one :class:`ConfigError` line.
"""

from __future__ import annotations

from typing import Any

from robustrep.registry import check_places, create_regularizer, regularizer_info
from robustrep.tasks.common.config import ConfigError

class Fixed:
    """A constructor option the program fixes (not a config field), e.g. ``Fixed("mse")``."""

    def __init__(self, value: Any):
        self.value = value


# name -> {constructor option: config field name, or Fixed(value)}
OptionFields = dict[str, dict[str, "str | Fixed"]]


def options_for(cfg: Any, name: str, fields: OptionFields,
                context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The constructor options of ``name`` from ``cfg``; ``context`` holds values the program
    derives (e.g. ``fuse_passes``), passed to the classes that take them."""
    taken = regularizer_info(name).kwargs
    opts = {opt: field.value if isinstance(field, Fixed) else getattr(cfg, field)
            for opt, field in fields.get(name, {}).items()}
    opts.update({k: v for k, v in (context or {}).items() if k in taken and k not in opts})
    return opts


def build_places(cfg: Any, program: str, names: tuple[str, ...] | list[str],
                 fields: OptionFields, context: dict[str, Any] | None = None,
                 skip_kind: str = "discriminator") -> dict[str, list[tuple[str, Any]]]:
    """``{place: [(name, object), ...]}`` for ``names`` in ``program`` (in the order given).

    Registered discriminators (``skip_kind``) are not built here: the program builds its D from
    them. Raises ConfigError (one line) for a class that implements no protocol of its place or
    options its class refuses.
    """
    try:
        check_places(names, program)
    except ValueError as err:
        raise ConfigError(f"--reg: {err}") from None
    places: dict[str, list[tuple[str, Any]]] = {}
    for name in names:
        info = regularizer_info(name)
        if info.kind == skip_kind:
            continue
        try:
            obj = create_regularizer(name, **options_for(cfg, name, fields, context))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"--reg {name}: {err}") from None
        places.setdefault(info.acts[program], []).append((name, obj))
    return places


def discriminator_of(names: tuple[str, ...] | list[str]) -> str | None:
    """The registered discriminator among ``names`` (it replaces the program's D), if any."""
    return next((n for n in names if regularizer_info(n).kind == "discriminator"), None)
