"""Writers of the real on-disk formats for the local loaders' tests (inside tmp_path): CIFAR's
Python 2 pickles, PNGs, and a small CIFAR-10 folder."""

import pickle

import numpy as np
import pytest
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


class _Py2Str(bytes):
    """A Python 2 ``str``, the type of every key and name in the official CIFAR pickles."""


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing ``_Py2Str`` with the (SHORT_)BINSTRING opcodes Python 2 used."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2_str


def _as_py2(obj):
    if isinstance(obj, str):
        return _Py2Str(obj.encode("latin1"))
    if isinstance(obj, dict):
        return {_as_py2(k): _as_py2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_as_py2(v) for v in obj]
    return obj


def write_py2_pickle(path, obj):
    """Write ``obj`` as the official files were written: a Python 2 cPickle, protocol 2."""
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(_as_py2(obj))


def cifar_data(rng, n):
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture
def cifar10_root(tmp_path):
    """cifar-10-batches-py/ with five train batches of 4, a test batch of 3 and batches.meta."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_py2_pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "data": cifar_data(rng, 4),
            "labels": [(4 * i + k) % 10 for k in range(4)],
            "filenames": [f"img_{i}_{k}.png" for k in range(4)]})
    test = cifar_data(rng, 3)
    write_py2_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": test,
                                             "labels": [7, 8, 9], "filenames": ["a", "b", "c"]})
    write_py2_pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES,
                                               "num_cases_per_batch": 4, "num_vis": 3072})
    return tmp_path, test


def write_png(path, size, color, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
