"""Pickles from other projects, read without running their code.

``pickle.load`` calls whatever global a file names, so a dataset batch or a network file from
elsewhere could run arbitrary code. :class:`ArrayUnpickler` rebuilds only plain containers,
strings, numbers and numpy arrays (through numpy's own reconstructors, as ``np.save`` pickles
them), plus the globals a caller allows by ``(module, name)``; any other global is refused with
one line. Used for the CIFAR python batches (``robustrep.data.cifar``) and stylegan2-ada network
pickles (``robustrep.stylegan2_pickle``).
"""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["ArrayUnpickler", "load_array_pickle"]

# Where numpy's pickle support lives: numpy 1 names numpy.core, numpy 2 numpy._core.
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric", "numpy")
_NUMPY_NAMES = ("scalar", "_reconstruct", "_frombuffer", "dtype", "ndarray")
# Protocol 2 pickles bytes as _codecs.encode(text, "latin1"): a pure conversion, no code.
_BUILTIN = {("_codecs", "encode"): codecs.encode}


def _numpy_global(name: str) -> Any:
    core = np._core if hasattr(np, "_core") else np.core
    return {"scalar": core.multiarray.scalar, "_reconstruct": core.multiarray._reconstruct,
            "_frombuffer": core.numeric._frombuffer, "dtype": np.dtype,
            "ndarray": np.ndarray}[name]


class ArrayUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only numpy's array globals and ``allowed``.

    Args:
        file: the binary file to read.
        allowed: ``(module, name) -> factory`` of further globals; the factory returns the
            object the name stands for (built lazily, so an unused entry imports nothing).
        what: how the refusal names the file's kind, e.g. ``"a CIFAR batch"``.
        encoding: as ``pickle.Unpickler`` (``"latin1"`` for Python 2 pickles).
    """

    def __init__(self, file: BinaryIO, allowed: Mapping[tuple[str, str], Callable[[], Any]]
                 | None = None, what: str = "this file", encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.allowed = dict(allowed or {})
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        make = self.allowed.get((module, name))
        if make is not None:
            return make()
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return _numpy_global(name)
        if (module, name) in _BUILTIN:
            return _BUILTIN[module, name]
        raise pickle.UnpicklingError(f"refuses the global {module}.{name}: {self.what} may hold "
                                     f"only arrays, numbers, strings and plain containers")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refuses a persistent id in {self.what}")


def load_array_pickle(path: str | Path, what: str = "this file",
                      encoding: str = "ASCII") -> Any:
    """Unpickle ``path`` with :class:`ArrayUnpickler` (no further globals)."""
    with open(path, "rb") as handle:
        return ArrayUnpickler(handle, what=what, encoding=encoding).load()
