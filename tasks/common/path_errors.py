"""One line for an OSError about a path the user chose, in place of a traceback.

A missing path, a file where a folder should be (or the reverse), a path already there, no
permission, a read-only file system, a full disk or quota (ENOENT, ENOTDIR, EISDIR, EEXIST,
EACCES, EPERM, EROFS, ENOSPC, EDQUOT: :data:`_PATH_ERRNOS`) or a name too long for the system
(ENAMETOOLONG) is the user's to fix, not a bug: :func:`path_problem` says it in one line with
what to do, as it does robustrep's own errno-less ``FileNotFoundError``-style messages. Any
other OSError keeps its traceback (:func:`~robustrep.tasks.common.cli.run_command` asks).

The remedy depends on where the path is. "Choose another --out" is said only for a path inside
the output folder: for a data folder or a plugin's file that cannot be read, another output
folder changes nothing, so the line names what to fix about that path itself (its permissions,
its space); a path in robustrep's cache gets the cache's own advice.
"""

from __future__ import annotations

import errno
import os
from typing import Any

# OSErrors that are about a path the user chose (missing, not writable, disk full): one line,
# with what to do about a path in the output folder, and about any other path (data read, a
# plugin): "choose another --out" is no help for a data folder that cannot be read.
_PATH_ERRNOS = {
    errno.ENOENT: ("", ""), errno.ENOTDIR: ("", ""), errno.EISDIR: ("", ""),
    errno.EEXIST: ("", ""),
    errno.EACCES: ("; choose a folder you can write to (--out)",
                   "; check its permissions, or give another path"),
    errno.EPERM: ("; choose a folder you can write to (--out)",
                  "; check its permissions, or give another path"),
    errno.EROFS: ("; choose a writable folder (--out)", "; it is on a read-only file system"),
    errno.ENOSPC: ("; free some space or choose another folder (--out)", "; free some space"),
    errno.EDQUOT: ("; free some space or choose another folder (--out)", "; free some space"),
}
DEFAULT_OUT_ROOT = "runs"  # where a command's output goes without --out (runs/<task>/...)


_RAISED_WITH_MESSAGE = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                        PermissionError)


def path_problem(err: OSError, out: str | None = None,
                 options: dict[str, Any] | None = None) -> str | None:
    """One line for an OSError about a user's path, or None for any other OSError.

    Either the system's error on a named path (``[Errno 28] No space left on device: 'run/x'``),
    or one of robustrep's own ``FileNotFoundError("... (accepted: ...)")``-style messages.
    ``out`` is the command's ``--out`` (None: not given, its default under ``runs/``); the
    advice names it only for a path inside it, and robustrep's cache for a path there. A name
    too long for the system is said with the limit it passes, and the option of ``options``
    (name -> value: :func:`~robustrep.tasks.common.cli.path_options`) that gave the path.
    """
    if err.errno is None and isinstance(err, _RAISED_WITH_MESSAGE):
        return str(err)
    if err.errno == errno.ENAMETOOLONG and err.filename is not None:
        from robustrep.tasks.common.runfiles import too_long
        return too_long(err.filename, _option_of(err.filename, options or {}))
    if err.errno not in _PATH_ERRNOS or err.filename is None:
        return None
    from robustrep.tasks.common.download import cache_advice
    in_out, elsewhere = _PATH_ERRNOS[err.errno]
    cache = cache_advice(err.filename)  # $ROBUSTREP_CACHE under a file, or not writable
    advice = (f"; {cache}" if cache else
              in_out if _inside(err.filename, out or DEFAULT_OUT_ROOT) else elsewhere)
    return f"{err.strerror}: {err.filename}{advice}"


def _option_of(path: Any, options: dict[str, Any]) -> str | None:
    """The name of the option of ``options`` whose value is ``path`` or a folder holding it
    (the innermost), or None."""
    given = [(name, value) for name, value in options.items()
             if isinstance(value, (str, os.PathLike)) and os.fspath(value) != ""
             and _inside(path, value)]
    return max(given, key=lambda item: len(os.path.abspath(os.fspath(item[1]))),
               default=(None,))[0]


def _inside(path: Any, folder: Any) -> bool:
    """Whether ``path`` is ``folder`` or inside it (both as the working folder resolves them)."""
    try:
        where, top = (os.path.abspath(os.path.expanduser(os.fsdecode(p))) for p in (path, folder))
    except (TypeError, ValueError):
        return False
    return where == top or where.startswith(top.rstrip(os.sep) + os.sep)
