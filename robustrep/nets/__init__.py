"""Networks, one module per family, and the GAN networks by name.

- :mod:`~robustrep.nets.dcgan`: DCGAN G and D (Radford et al., ICLR 2016).
- :mod:`~robustrep.nets.sngan`: SNGAN-ResNet G and D for 32x32 (Miyato et al., ICLR 2018).
- :mod:`~robustrep.nets.mlp`: MLP G and D for 2-D points, and RP-GAN's ensemble for them.
- :mod:`~robustrep.nets.stylegan2`: StyleGAN2 G and D (Karras et al., CVPR 2020).
- :mod:`~robustrep.nets.wrn`: CIFAR wide ResNets, registered with timm on import.
- :mod:`~robustrep.nets.classifier`: a timm classifier with input normalisation inside, seen
  through the features/head split.

Networks that are a method's own (RP-GAN's projection ensemble, the UoS head) stay in the
method's module (:mod:`robustrep.projection`, :mod:`robustrep.uos`).

GAN networks are registered by family name, as timm registers models
(``@register_network("dcgan", "generator")``), and built with :func:`create_generator` and
:func:`create_discriminator`, which drop ``None`` options so the network's own defaults apply.
The contract of a registered factory:

- generator: ``fn(z_dim, shape, **options)`` -> a module with attribute ``z_dim`` mapping
  ``z [B, z_dim]`` to samples ``[B, *shape]``;
- discriminator: ``fn(shape, **options)`` -> a module mapping ``[B, *shape]`` to one logit per
  sample ``[B]``, split as ``head(features(x))`` (:mod:`robustrep.split`); a trunk that is an
  ``nn.Sequential`` may name, as ``local_end``, the index where its last map above 4x4 ends
  (InfoMax-GAN's local features).

``shape`` is one sample's shape: ``(C, H, W)`` for images, ``(2,)`` for points. The family
modules are imported when a network is first built: the built-in names are read from their
modules' ``@register_network`` decorators with :mod:`ast`, so ``import robustrep.nets`` and
:func:`list_networks` import no torch (a command's ``--help`` lists the families). A module from
outside registers its families by import (a ``--plugin``), or is named by an installed package
in the entry-point group :data:`ENTRY_POINT_GROUP` and then read like the built-ins (names and
options from its source, :func:`network_option_info`) and imported when first built; a built-in
name stays the built-in's.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

__all__ = ["register_network", "create_generator", "create_discriminator", "list_networks",
           "network_options", "network_option_info", "builtin_networks", "ROLES",
           "ENTRY_POINT_GROUP"]

ROLES = ("generator", "discriminator")

# The modules that register the built-in families; imported on first use.
_MODULES = ("robustrep.nets.dcgan", "robustrep.nets.sngan", "robustrep.nets.mlp",
            "robustrep.nets.stylegan2")

# Installed packages add families through this entry-point group: each entry point names a
# module (``tinyconv = mypkg.nets``), read like the built-ins and imported when first built.
ENTRY_POINT_GROUP = "robustrep.networks"

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {role: {} for role in ROLES}
_loaded = False
# (role, name) -> (module, options) of the built-in and installed families, read from the source
_declared: dict[tuple[str, str], tuple[str, dict[str, Any]]] | None = None


def _check_role(role: str) -> None:
    # _REGISTRY[role] would raise a bare KeyError; builtin_networks would list nothing
    if not isinstance(role, str) or role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")


def register_network(name: str, role: str):
    """Decorator: register ``fn`` as the ``role`` network of family ``name``.

    Raises:
        ValueError: an unknown role, a name not of lower-case letters/digits/dashes, or a name
            registered twice for one role.
    """
    _check_role(role)
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"network name must be lower-case letters, digits or '-'; got {name!r}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        known = _REGISTRY[role].get(name)
        if known is not None and known is not fn:
            raise ValueError(f"{role} {name!r} is already registered (by {known.__module__}."
                             f"{known.__qualname__})")
        owner = _declared_families().get((role, name), (None,))[0]
        if owner is not None and owner != fn.__module__:  # a plugin before the built-ins load
            raise ValueError(f"{role} {name!r} is already registered (by {owner})")
        _REGISTRY[role][name] = fn
        return fn

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(module)
        _loaded = True


def _declared_families() -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """``(role, name) -> (module, options)`` of the built-in families and those of the installed
    packages' entry points, read from their ``@register_network`` decorators (literal arguments)
    without importing them; an installed module that cannot be read so is imported (it registers
    by import), and one that fails to import lists nothing."""
    global _declared
    if _declared is None:
        from robustrep._options import read_decorated
        from robustrep.registry import _entry_point_modules
        found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        unread = []
        for module in (*_MODULES, *_entry_point_modules(ENTRY_POINT_GROUP)):
            try:
                calls = read_decorated(module, "register_network")
                if any(len(args) != 2 for args, _ in calls):  # keywords: not read, imported
                    raise ValueError(f"{module}: register_network(name, role) not positional")
            except (ImportError, OSError, SyntaxError, ValueError, TypeError, KeyError):
                if module in _MODULES:
                    raise
                unread.append(module)
                continue
            for (name, role), options in calls:
                found.setdefault((role, name), (module, options))
        _declared = found
        for module in unread:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 (a broken package must not break every command)
                pass
    return _declared


def builtin_networks(role: str = "generator") -> list[str]:
    """The family names of ``role`` that robustrep itself registers, sorted (no import)."""
    _check_role(role)
    return sorted(n for (r, n), (m, _) in _declared_families().items()
                  if r == role and m in _MODULES)


def list_networks(role: str = "generator") -> list[str]:
    """The registered family names of ``role``, sorted: the built-ins, those of installed
    packages (:data:`ENTRY_POINT_GROUP`) and those registered by modules imported so far (a
    ``--plugin``). Imports no family module."""
    _check_role(role)
    return sorted({n for r, n in _declared_families() if r == role} | set(_REGISTRY[role]))


def _factory(name: str, role: str) -> Callable[..., Any]:
    _check_role(role)
    fn = _REGISTRY[role].get(name)
    if fn is None:
        module = _declared_families().get((role, name), (None,))[0]
        if module is None or module in _MODULES:
            _ensure_loaded()
        else:
            try:
                importlib.import_module(module)
            except Exception as err:  # noqa: BLE001 (an installed package's failure: one line)
                raise ValueError(f"{role} {name!r}: its installed module {module} "
                                 f"({ENTRY_POINT_GROUP}) does not import: "
                                 f"{type(err).__name__}: {err}") from None
        fn = _REGISTRY[role].get(name)
    if fn is None:
        raise ValueError(f"unknown {role} {name!r}; registered: {', '.join(list_networks(role))}")
    return fn


def network_options(name: str, role: str) -> tuple[str, ...]:
    """The options ``create_<role>(name, ...)`` takes besides ``z_dim`` and ``shape``."""
    params = inspect.signature(_factory(name, role)).parameters
    return tuple(p for p in params if p not in ("z_dim", "shape"))


def network_option_info(name: str, role: str) -> dict[str, Any]:
    """:func:`network_options` with each option's default, annotation and help (the factory's
    docstring ``Args:``), as :class:`robustrep._options.OptionInfo`; a plugin family's options
    become command-line flags from these."""
    _check_role(role)
    declared = _declared_families().get((role, name))
    if name not in _REGISTRY[role] and declared is not None:
        options = declared[1]  # read from the source: --help imports no installed package
    else:
        from robustrep._options import callable_options
        options = callable_options(_factory(name, role))
    return {k: v for k, v in options.items() if k not in ("z_dim", "shape", "self")}


def create_generator(name: str, z_dim: int, shape: tuple[int, ...], **options: Any) -> Any:
    """Generator of family ``name`` for samples of ``shape``; ``None`` options are dropped."""
    fn = _factory(name, "generator")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        # z_dim 0 builds a G whose output is one constant image
        raise ValueError(f"z_dim must be a positive int, got {z_dim!r}")
    _check_options(fn, name, "generator", options)
    return fn(z_dim, tuple(shape), **_given(options))


def create_discriminator(name: str, shape: tuple[int, ...], **options: Any) -> Any:
    """Discriminator of family ``name`` for samples of ``shape``; ``None`` options are dropped."""
    fn = _factory(name, "discriminator")
    _check_options(fn, name, "discriminator", options)
    return fn(tuple(shape), **_given(options))


def _check_options(fn: Callable[..., Any], name: str, role: str, options: dict[str, Any]) -> None:
    """A misspelt option, named with the ones the family takes (as create_regularizer does;
    Python's own error names the factory's function, not the family). A None option is
    dropped unread, as before."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    unknown = sorted(set(_given(options)) - set(network_options(name, role)))
    if unknown:
        raise TypeError(f"{role} {name!r} takes no option(s) {', '.join(unknown)}; options: "
                        f"{', '.join(network_options(name, role)) or 'none'}")


def _given(options: dict[str, Any]) -> dict[str, Any]:
    # None means "the network's own default", so an unset program option never overrides it.
    return {k: v for k, v in options.items() if v is not None}
