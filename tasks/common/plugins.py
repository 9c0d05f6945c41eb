"""``--plugin MODULE``: user modules that register regularizers and GAN network families.

A plugin registers by import (``@register_regularizer``, ``@register_network``), so it is loaded
before the parser reads the registries. The plugins a process loaded are remembered, so that the
commands it starts in new processes (``report``'s runs, ``ood bench``'s classifiers, through
:mod:`robustrep.tasks.common.launch`) load them too: a ``--reg`` the parent accepted is then
accepted by the child that trains it. An exception a plugin's own code raises is one line
naming the plugin (:func:`plugin_failure`), not robustrep's traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

from robustrep.tasks.common.errors import UserError

# What this process loaded, as a child process names it: a file as its absolute path (a child
# starts in another folder), a module by its name.
_LOADED: list[str] = []
# Folders a module plugin was found in by name (the working folder), which a child process gets
# in PLUGIN_PATH_VAR and puts at the end of its sys.path: never first, where a checkout's
# robustrep/ there would shadow the installed package.
_PATHS: list[str] = []
PLUGIN_PATH_VAR = "ROBUSTREP_PLUGIN_PATH"


def load_plugins(argv: list[str]) -> list[str]:
    """Import every ``--plugin MODULE`` (anywhere on the command line) and return the rest.

    ``MODULE`` is a module name or a ``.py`` file.

    Raises:
        UserError: a plugin that cannot be imported (one line naming it).
    """
    rest, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--plugin" or arg.startswith("--plugin="):
            name = arg.partition("=")[2] if "=" in arg else (
                argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in arg else 2
            if not name:
                raise UserError("--plugin needs a module name or a .py file")
            _remember(_import_plugin(name))
            continue
        rest.append(arg)
        i += 1
    return rest


def plugin_args() -> list[str]:
    """``--plugin`` options that load this process's plugins in a child process."""
    return [arg for name in _LOADED for arg in ("--plugin", name)]


def plugin_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child process, with the folders plugins were found in (PLUGIN_PATH_VAR)."""
    if _PATHS:
        env = {**env, PLUGIN_PATH_VAR: os.pathsep.join(_PATHS)}
    return env


def resume_flags(run: Any) -> str:
    """``--resume RUN`` with the ``--plugin`` options the run needs (this process's)."""
    return shlex.join(["--resume", str(run), *plugin_args()])


def _remember(name: str) -> None:
    if name not in _LOADED:
        _LOADED.append(name)


def _import_plugin(name: str) -> str:
    """Import ``name``; return how a child process names it."""
    try:
        if name.endswith(".py") or "/" in name:
            path = Path(name)
            if not path.is_file():
                raise UserError(f"--plugin {name}: no such file (accepted: a module name or a "
                                f".py file)")
            key, where = f"robustrep_plugin_{path.stem}", path.resolve()
            loaded = sys.modules.get(key)
            # registered already when in-process callers load it twice: not run again
            if loaded is None or Path(loaded.__file__).resolve() != where:
                spec = importlib.util.spec_from_file_location(key, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            return str(where)
        _import_by_name(name)
        return name
    except UserError:
        raise
    except SystemExit as err:  # sys.exit() at import would end robustrep without a word
        raise UserError(f"--plugin {name}: cannot import it: it called sys.exit({err.code!r}) "
                        f"while being imported") from err
    except Exception as err:  # noqa: BLE001 (any failure of a user's module is one line)
        raise UserError(f"--plugin {name}: cannot import it: {type(err).__name__}: "
                        f"{err}") from err


def _import_by_name(name: str) -> None:
    """Import module ``name``; one in the working folder is found as ``python -m`` finds it
    (the ``robustrep`` console script does not put the working folder on sys.path), and one in
    a parent's folders (PLUGIN_PATH_VAR) as the parent found it."""
    for folder in os.environ.get(PLUGIN_PATH_VAR, "").split(os.pathsep):
        if folder and folder not in sys.path:
            sys.path.append(folder)
    top, here = name.partition(".")[0], os.getcwd()
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != top or not ((Path(here) / top).is_dir()
                                   or (Path(here) / f"{top}.py").is_file()):
            raise
        sys.path.append(here)
        importlib.import_module(name)
    source = getattr(sys.modules[top], "__file__", None) or ""
    if source and Path(source).resolve().is_relative_to(Path(here).resolve()) \
            and here not in _PATHS:  # found in the working folder: a child starts elsewhere
        _PATHS.append(here)


def plugin_failure(err: BaseException) -> str | None:
    """One line for an exception a plugin's own code raised (a regularizer or a network family
    of a ``--plugin`` module or an installed entry point), or None.

    The plugin raised it when, of the traceback's frames in robustrep or in a plugin module, the
    innermost is the plugin's: frames of torch or the standard library below it are calls the
    plugin made. An error inside robustrep code that a plugin called (the ``score`` an extra D
    term calls is robustrep's D) stays a bug of robustrep, with its traceback.
    """
    owners = _plugin_owners()
    if not owners:
        return None
    last, ours = None, _robustrep_folders()
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        path = _real_path(frame.f_code.co_filename)
        owner = next((o for where, o in owners.items() if path == where
                      or path.startswith(where + os.sep)), None)
        if owner is not None:
            last = (owner, frame.f_code, lineno)
        elif any(path.startswith(top + os.sep) for top in ours):
            last = None
    if last is None:
        return None
    (module, shown, members), code, lineno = last
    function = getattr(code, "co_qualname", code.co_name)  # Python 3.11+: Class.method
    named = [f for f, qualname in members if function.startswith(qualname + ".")] or \
        [f for f, _ in members]
    message = " ".join(f"{type(err).__name__}: {err}".split())
    return (f"{' / '.join(named)}: the plugin module {shown} raised {message} (in {function}, "
            f"line {lineno} of {Path(code.co_filename).name}); it is the plugin's code, not "
            f"robustrep's: --debug shows the traceback")


def _plugin_owners() -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
    """``{file or package folder: (module, how it is shown, [(flag and name, qualname)])}``
    of the plugin modules imported so far: their regularizers and network families."""
    found: dict[str, list[tuple[str, str]]] = {}
    registry = sys.modules.get("robustrep.registry")
    for module, classes in (registry.plugin_classes() if registry else {}).items():
        found.setdefault(module, []).extend((f"--reg {n}", q) for n, q in classes)
    nets = sys.modules.get("robustrep.nets")
    for role, table in (getattr(nets, "_REGISTRY", None) or {}).items():
        for name, factory in sorted(table.items()):
            module = getattr(factory, "__module__", "") or ""
            if module.partition(".")[0] != "robustrep":
                found.setdefault(module, []).append((f"--arch {name}", factory.__qualname__))
    owners = {}
    for module, members in found.items():
        where = _module_place(sys.modules.get(module))
        if where is not None:
            members = list(dict.fromkeys(members))  # a family's G and D may be one class
            owners[where[0]] = (module, where[1], members)
    return owners


def _module_place(module: object) -> tuple[str, str] | None:
    """Where a plugin module's code lives and how a line names it: a ``--plugin FILE`` by its
    file; a module of a package (``mypkg.regs``) by its package's folder, whose other modules
    are the plugin's too, and its name."""
    name, path = getattr(module, "__name__", ""), getattr(module, "__file__", None)
    if not path:
        return None
    if name.startswith("robustrep_plugin_"):  # loaded from a file (tasks/common/plugins.py)
        return _real_path(path), path
    top = sys.modules.get(name.partition(".")[0])
    folders = list(getattr(top, "__path__", None) or [])
    if "." in name and folders:
        return _real_path(folders[0]), name
    return _real_path(path), name


def _robustrep_folders() -> list[str]:
    import robustrep
    import robustrep.tasks
    return [_real_path(p) for p in (*robustrep.__path__, *robustrep.tasks.__path__)]


def _real_path(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))
