"""Feature statistics read from files, each as a statistics
:class:`~robustrep.tasks.gan.fid_sources.Source`.

Every statistics file passes one check (:func:`stats_source`): ``mu`` [D] and ``sigma`` [D, D]
of finite real numbers, ``sigma`` a covariance matrix (symmetric, no negative eigenvalue beyond
the rounding of its dtype), ``num`` a whole number. stylegan2-ada's metric cache
(``metrics/metric_utils.py`` ``FeatureStats.save``: a pickle of the object's ``__dict__``; a
``.pkl``; a ``.pkl`` of a ``mu``/``sigma`` dict is read as a ``.npz``'s) is read here too
(:func:`feature_stats_pickle`), its covariance rescaled to the unbiased one (a cache that kept the
features, ``capture_all``, is read as those features: KID and precision/recall too), by the
array unpickler (:mod:`robustrep.safe_pickle`), which rebuilds arrays and plain values and runs
nothing; a pickle holding objects is left to the network pickle's reader.

:mod:`robustrep.tasks.gan.fid_sources` tells statistics from samples, folders and networks and
hands them here (pytorch-fid's ``.npz``, torch-fidelity's ``.pt``, a ``.pkl``): what makes
statistics usable is one idea, the sources of images another. ``fid_sources`` imports this
module, so :func:`stats_source` imports :class:`Source` inside itself (no import cycle)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from robustrep.safe_pickle import ArrayUnpickler
from robustrep.tasks.common.errors import DataError
from robustrep.tasks.common.runopen import absolute_prefixed

if TYPE_CHECKING:  # fid_sources.py imports this module: Source is only named in annotations
    from robustrep.tasks.gan.fid_sources import Source


# ---------------------------------------------------------------------------------------------
# any statistics file: its arrays checked


def _absolute_run(net: str | None, convention: str | None) -> tuple[str | None, str | None]:
    """An earlier version wrote ``run:DIR`` as given, in the name and in the convention text
    (``... classify run DIR (model, size) ...``): both read with DIR from this folder, as this
    version writes them, so that the same network compares as the same."""
    if net is None or not net.startswith("run:"):
        return net, convention
    now = absolute_prefixed(net, "run:")
    if convention is not None:
        convention = convention.replace(f"classify run {net[4:]} (", f"classify run {now[4:]} (")
    return now, convention


def stats_source(spec: str, path: Path, arrays: dict[str, np.ndarray],
                  kind: str = "statistics", features: Tensor | None = None) -> Source:
    from robustrep.tasks.gan.fid_sources import Source  # no cycle

    mu, sigma = arrays.get("mu"), arrays.get("sigma")
    if mu is None or sigma is None:
        raise DataError(f"{path}: a statistics file needs both 'mu' and 'sigma'; found "
                        f"{sorted(map(str, arrays))}")
    if mu.ndim != 1 or mu.shape[0] == 0 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DataError(f"{path}: 'mu' must be [D] and 'sigma' [D, D] with D >= 1, got "
                        f"{mu.shape} and {sigma.shape}")
    stored = sigma.dtype
    mu, sigma = _real_numbers(path, "mu", mu), _real_numbers(path, "sigma", sigma)
    _check_covariance(path, sigma, stored)
    net = _text(arrays["fid_features"]) if "fid_features" in arrays else None
    num = arrays.get("num")
    if num is not None and (num.shape != () or not np.issubdtype(num.dtype, np.integer)):
        raise DataError(f"{path}: 'num' must be one whole number (the images counted), got "
                        f"{num.dtype} of shape {num.shape}")
    num = f", {int(num)} images" if num is not None else ""
    convention = _text(arrays["fid_convention"]) if "fid_convention" in arrays else None
    net, convention = _absolute_run(net, convention)
    return Source(spec, f"{kind} {path} ({mu.shape[0]}-d{num})", stats=(mu, sigma),
                  features=features, fid_features=net, fid_convention=convention)


def _text(value: Any) -> str:
    """A name stored in a statistics file: numpy's 0-d text array, or bytes (a file written with
    ``np.bytes_``: str() gave "np.bytes_(b'digits')", which matched no network)."""
    value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _real_numbers(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    """``array`` as float64 when it holds finite real numbers; else one line naming the key
    (a complex or text array would be cast with a warning or fail deep in the distance)."""
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{path}: '{key}' must hold real numbers, got {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise DataError(f"{path}: '{key}' holds NaN or inf; statistics of non-finite features "
                        f"(or of fewer than two images) cannot be compared")
    return array


def _check_covariance(path: Path, sigma: np.ndarray, stored: np.dtype = np.dtype("float64")
                      ) -> None:
    """Refuse a ``sigma`` that no set of features has: not symmetric, or with a negative
    eigenvalue beyond the rounding of the dtype it was stored in (float32's at least). The
    distance would symmetrise the first and read the second as a smaller spread, and print a
    wrong (even negative) FID."""
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if float(np.abs(sigma - sigma.T).max()) > 1e-5 * scale:
        raise DataError(f"{path}: 'sigma' is not symmetric, so it is no covariance matrix; give "
                        f"the statistics as saved (gan fid --save-stats, pytorch-fid)")
    # Cholesky of sigma + a rounding margin succeeds exactly when no eigenvalue is below minus
    # that margin: the check without an eigendecomposition. float16 storage rounds at 1e-3.
    rel = max(1e-5, 10 * float(np.finfo(stored).eps)) if stored.kind == "f" else 1e-5
    margin = rel * max(float(np.trace(sigma)) / len(sigma), scale * 1e-3)
    try:
        np.linalg.cholesky(sigma + margin * np.eye(len(sigma)))
    except np.linalg.LinAlgError:
        raise DataError(f"{path}: 'sigma' ({stored}) has negative eigenvalues beyond its "
                        f"rounding, so it is no covariance matrix; give the statistics as saved "
                        f"(gan fid --save-stats, pytorch-fid)") from None


def as_array(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return np.asarray(value)


# ---------------------------------------------------------------------------------------------
# stylegan2-ada's statistics pickles


class PickleNotRead(DataError):
    """A ``.pkl`` that is neither statistics nor a network pickle: damaged, or plain values of
    another kind (``gan fid``'s ``--num`` check leaves it to :func:`open_source` to name)."""


# what stylegan2-ada's FeatureStats.save writes (its __dict__), and what a .pkl may be
FEATURE_STATS = ("num_items", "raw_mean", "raw_cov")
PKL_ACCEPTED = ("a stylegan2-ada network pickle (G, D, G_ema), stylegan2-ada's cached statistics "
                "(FeatureStats.save: num_items, raw_mean, raw_cov) or a dict of mu and sigma")


class _StatsUnpickler(ArrayUnpickler):
    """The array unpickler, noting a refused global or persistent id: such a pickle holds
    objects (a network pickle's records), so the network pickle's reader judges it."""

    objects = False

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except pickle.UnpicklingError:
            self.objects = True
            raise

    def persistent_load(self, pid: Any) -> Any:
        self.objects = True
        return super().persistent_load(pid)


def feature_stats_pickle(spec: str, path: Path) -> Source | None:
    """Statistics in a ``.pkl``: stylegan2-ada's cached feature statistics (``FeatureStats.save``:
    a pickle of a dict with ``num_items``, ``raw_mean`` = the sum of the features, ``raw_cov`` =
    the sum of their outer products, or ``all_features``: then the :class:`Source` holds those
    features, scored as any side's), or a dict of ``mu`` and ``sigma`` (read as a ``.npz``'s),
    as a statistics :class:`Source`; None when ``path`` names objects
    (a network pickle: the array unpickler refuses its first global; a zip, torch.save's, which
    the network pickle's reader names). A pickle that cannot be read, or that holds plain values
    of another kind, is :class:`PickleNotRead` (it was "network pickle X: ..." for statistics).

    stylegan2-ada's covariance divides by N (``get_mean_cov``); it is rescaled by N / (N - 1) to
    the unbiased covariance every other side has here (pytorch-fid's ``np.cov``), so that the
    file gives the FID the images it was computed from give."""
    if zipfile.is_zipfile(path):
        return None
    reader = None
    try:
        with open(path, "rb") as handle:
            reader = _StatsUnpickler(handle, what="a stylegan2-ada statistics pickle")
            data = reader.load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as err:
        if reader is not None and reader.objects:
            return None  # the network pickle's reader says what is wrong
        if isinstance(err, OSError):  # the file, not its bytes: no advice to write it again
            raise PickleNotRead(f"{path} cannot be read ({err.strerror or err})") from None
        raise PickleNotRead(f"{path} cannot be read as a pickle ({type(err).__name__}: {err}); "
                            f"it may be truncated or corrupt: copy or write it again") from None
    if isinstance(data, dict) and ("mu" in data or "sigma" in data):
        return stats_source(spec, path, {str(k): as_array(v) for k, v in data.items()})
    if not isinstance(data, dict) or not set(FEATURE_STATS) & set(data):
        raise PickleNotRead(f"{path} holds {_held(data)}, neither network nor statistics; a "
                            f".pkl must be {PKL_ACCEPTED}")
    missing = [k for k in FEATURE_STATS if k not in data]
    if missing:  # statistics, not whole
        raise DataError(f"{path}: stylegan2-ada statistics without {', '.join(missing)} "
                        f"(FeatureStats.save writes {', '.join(FEATURE_STATS)}); compute them "
                        f"again")
    num = data["num_items"]
    if not isinstance(num, (int, np.integer)) or num < 2:
        raise DataError(f"{path}: stylegan2-ada statistics counting {num!r} image(s) "
                        f"(num_items); FID needs at least 2")
    try:
        feats = _kept_features(path, data, int(num))
        mu, sigma = _feature_stats_moments(data, int(num)) if feats is None else (
            feats.mean(0, dtype=np.float64), np.cov(feats, rowvar=False, dtype=np.float64))
    except (ValueError, TypeError) as err:  # text or ragged arrays where numbers belong
        raise DataError(f"{path}: stylegan2-ada statistics whose sums or features are not "
                        f"arrays of numbers ({err})") from None
    if mu is None:
        raise DataError(f"{path}: stylegan2-ada statistics holding neither the mean and "
                        f"covariance nor the features (capture_mean_cov and capture_all off)")
    return stats_source(spec, path, {"mu": mu, "sigma": sigma, "num": np.array(int(num))},
                        kind="stylegan2-ada statistics",
                        features=None if feats is None else torch.from_numpy(feats))


def _held(data: Any) -> str:
    """What a pickle of plain values holds, for the line refusing it: a dict's keys."""
    if isinstance(data, dict):
        keys = sorted(map(str, data))
        more = f", ... ({len(keys)} keys)" if len(keys) > 6 else ""
        return f"a dict of {', '.join(keys[:6]) or 'nothing'}{more}"
    return f"a {type(data).__name__}"


def _kept_features(path: Path, data: dict, num: int) -> np.ndarray | None:
    """The features a ``FeatureStats`` dict kept (``capture_all``: KID's and precision/recall's
    caches), ``[num_items, D]`` float32 as it stores them; None when it kept none. Such a cache
    is the features themselves, not their mean and covariance: reduced to those, KID and
    precision/recall were "n/a (a side is statistics only)" of a file that can give them."""
    kept = data.get("all_features")
    if not isinstance(kept, (list, tuple)) or not kept:  # [] unless capture_all
        return None
    feats = np.concatenate([np.asarray(f, dtype=np.float32) for f in kept])
    if feats.ndim != 2 or feats.shape[1] == 0:
        raise ValueError(f"features of shape {feats.shape}, not [N, D]")
    if len(feats) != num:
        raise DataError(f"{path}: stylegan2-ada statistics whose kept features (all_features) "
                        f"hold {len(feats)} rows but num_items says {num}; the file is "
                        f"damaged or edited: compute it again")
    bad = int((~np.isfinite(feats)).any(1).sum())
    if bad:
        raise DataError(f"{path}: stylegan2-ada statistics whose kept features (all_features) "
                        f"hold NaN or inf in {bad} of {num} rows; they cannot be compared")
    return feats


def _feature_stats_moments(data: dict, num: int) -> tuple[Any, Any]:
    """Mean and unbiased covariance of a ``FeatureStats`` dict from its sums (None, None when it
    kept none); the shapes are left to :func:`stats_source`'s check."""
    if data.get("capture_mean_cov") and data["raw_mean"] is not None:
        mu = np.asarray(data["raw_mean"], dtype=np.float64) / num
        raw_cov = np.asarray(data["raw_cov"], dtype=np.float64)
        if mu.ndim != 1 or raw_cov.shape != (len(mu), len(mu)):
            return mu, raw_cov  # refused by shape, not broadcast into a [D, D]
        return mu, (raw_cov / num - np.outer(mu, mu)) * (num / (num - 1))
    return None, None
