"""Downloads into a cache, with a SHA-256 check, and an offline switch that forbids them.

:func:`download` streams a URL into a temporary file inside the cache folder, hashes it on the way,
and renames it into place only when it is complete and its SHA-256 matches: a failed, cut or
wrong-hash download leaves nothing in the cache (the scheme of ``torch.hub.download_url_to_file``,
pytorch/pytorch ``torch/hub.py``), and the partial file of a killed one is removed by the next.
One process fetches a file at a time (a lock on the cache folder); the others wait for it. A
hash may be the full hex digest or a prefix of at least 8 characters, the convention of
torch.hub's ``check_hash`` for files named ``name-<prefix>.pth``. A transfer shows a progress
bar (plain lines in a log) and ends with a line naming the file saved; one that stalls, fewer
than :data:`MIN_RATE` bytes a second over its timeout, is given up.

``ROBUSTREP_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forbids every network access: a file absent from
the cache is then one line naming the file to place and where, before any connection is opened.

Published files fetched on first use:

- the FID Inception-v3 weights (:func:`inception_weights`), pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth`` (mseitzer/pytorch-fid ``src/pytorch_fid/inception.py``
  ``FID_WEIGHTS_URL``), with torch-fidelity's copy of the same weights as the fallback
  (toshas/torch-fidelity ``feature_extractor_inceptionv3.py`` ``URL_INCEPTION_V3``);
  ``$ROBUSTREP_INCEPTION_URL`` replaces both URLs (a mirror, or a test server);
- CIFAR-10/100 and SVHN through torchvision's own ``download=True`` (:func:`download_dataset`).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.runfiles import temp_beside

OFFLINE_VARS = ("ROBUSTREP_OFFLINE", "HF_HUB_OFFLINE")
CACHE_ENV = "ROBUSTREP_CACHE"
INCEPTION_URL_ENV = "ROBUSTREP_INCEPTION_URL"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d"  # SHA-256 prefix in both published file names (torch.hub style)
INCEPTION_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE,
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
)
CHUNK = 1 << 20
MB = 10**6
MIN_RATE = 1024  # bytes a second over a timeout's span: less is a stalled transfer


class DownloadError(UserError):
    """A download that failed, was cut, or whose hash is wrong; nothing was kept."""


def offline_reason() -> str | None:
    """``"VAR=value"`` of the first offline switch that is set (not empty/0/false), else None."""
    for var in OFFLINE_VARS:
        value = os.environ.get(var, "").strip()
        if value and value.lower() not in ("0", "false", "no", "off"):
            return f"{var}={value}"
    return None


def cache_path() -> Path:
    """``$ROBUSTREP_CACHE``, else ``~/.cache/robustrep``, as it is (not checked)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "robustrep").expanduser()


def cache_advice(path: str | os.PathLike) -> str | None:
    """What to do when ``path`` cannot be written, where it is robustrep's cache, a file in it, or
    a folder above it that making the cache would create; None for any other path. The line
    of an output folder ("choose another --out") would send the user the wrong way."""
    try:
        cache = cache_path().absolute()
        where = Path(path).expanduser().absolute()
        # a folder above it only while it does not exist: a `mkdir -p` of the cache stopped there
        above = where in cache.parents and not where.exists()
    except (OSError, RuntimeError, ValueError):  # no home folder to expand, a NUL in the path
        return None
    if where != cache and cache not in where.parents and not above:
        return None
    return (f"it is robustrep's cache (${CACHE_ENV}, else ~/.cache/robustrep): set "
            f"{CACHE_ENV} to a folder you can write to")


def cache_dir() -> Path:
    """``$ROBUSTREP_CACHE``, else ``~/.cache/robustrep`` (the gan program's cache too)."""
    path = cache_path()
    if path.exists() and not path.is_dir():
        what = f"${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "the cache folder"
        raise UserError(f"{what} {path} is a file, not a folder; point {CACHE_ENV} at a folder")
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_ok(digest: str, expected: str | None) -> bool:
    return expected is None or digest.startswith(expected.lower())


def _fetch(url: str, dest: Path, sha256: str | None, timeout: float, what: str) -> int:
    """Stream ``url`` to a temporary file next to ``dest``; rename it into place when whole and
    of the right hash, and return its size. The temporary file is removed on every failure."""
    fd, tmp = temp_beside(dest, ".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            digest, size = _stream(resp, out, timeout, int(length) if length else None, what)
            if length is not None and size != int(length):
                raise DownloadError(f"download of {url} was cut after {size} of {length} bytes; "
                                    f"nothing was kept in {dest.parent}")
            out.flush()
            os.fsync(out.fileno())
        if not _hash_ok(digest.hexdigest(), sha256):
            raise DownloadError(f"{url} has SHA-256 {digest.hexdigest()}, expected {sha256}...; "
                                f"refused, nothing was kept in {dest.parent}")
        os.replace(tmp, dest)
        return size
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise DownloadError(f"could not download {url} into {dest}: "
                            f"{_failure(err, timeout, dest)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream(resp: http.client.HTTPResponse, out: BinaryIO, timeout: float, total: int | None,
            what: str) -> tuple[Any, int]:
    """Copy ``resp`` into ``out`` under a progress bar, as ``(sha256, size)``. The socket's
    ``timeout`` is per read: a server sending a byte every 20 s never ended a 95 MB download,
    so fewer than :data:`MIN_RATE` bytes a second over any ``timeout`` seconds give up."""
    from robustrep.tasks.common.progress import progress
    digest, size = hashlib.sha256(), 0
    start = since = time.monotonic()
    size_since = 0
    with progress(-(-total // MB) if total else None, desc=what, unit="MB", leave=False) as bar:
        while chunk := resp.read1(CHUNK):  # read(CHUNK) would wait for a whole MiB
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            bar.update(size // MB - bar.n)
            now = time.monotonic()
            if now - since < timeout:
                continue
            if size - size_since < MIN_RATE * (now - since):
                raise DownloadError(
                    f"download of {resp.url} stalled: {size - size_since} bytes in the last "
                    f"{now - since:.0f} s ({size} of {total or '?'} bytes in {now - start:.0f} "
                    f"s, under {MIN_RATE} bytes/s); gave up, nothing was kept")
            since, size_since = now, size
    return digest, size


def _failure(err: Exception, timeout: float, dest: Path) -> str:
    """The reason of a failed download in a few words: how long a timeout waited, and where a
    full cache is moved (the read-only one's advice: the user chose no folder for it)."""
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError):
        return f"no data for {timeout:g} s (timed out)"
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(reason, OSError) and reason.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{text}; {cache_advice(dest) or 'free some space or choose another folder'}"
    return text


def _say_saved(what: str, dest: Path, size: int) -> None:
    print(f"saved {what} ({size / MB:.1f} MB) to {dest}", file=sys.stderr, flush=True)


def download(urls: str | tuple[str, ...], dest: str | os.PathLike, sha256: str | None,
             what: str, timeout: float = 60.0) -> Path:
    """``dest`` if it is there (and of the right hash), else fetched from the first of ``urls``
    that works. DownloadError when offline (before any connection), on a failed or cut transfer,
    or on a wrong hash; a wrong-hash file already at ``dest`` is never used."""
    dest = Path(dest).expanduser()
    urls = (urls,) if isinstance(urls, str) else tuple(urls)
    if dest.is_file():
        return _cached(dest, sha256, what, urls)
    reason = offline_reason()
    if reason:
        # "downloads are off" and how to turn them on: the gan program's line before this one
        # offers to "let robustrep fetch it"
        raise DownloadError(f"{what}: {dest} is missing and downloads are off ({reason}): unset "
                            f"{reason.split('=')[0]} to fetch it, or place the file from "
                            f"{urls[0]} there")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _fetching(dest):
        if dest.is_file():  # another process fetched it while this one waited
            return _cached(dest, sha256, what, urls)
        errors = []
        for url in urls:
            try:
                _say_saved(what, dest, _fetch(url, dest, sha256, timeout, what))
                return dest
            except DownloadError as err:
                errors.append(str(err))
    raise DownloadError(f"{what}: " + " | ".join(errors))


def _cached(dest: Path, sha256: str | None, what: str, urls: tuple[str, ...]) -> Path:
    if _hash_ok(sha256_of(dest), sha256):
        return dest
    raise DownloadError(f"{what}: {dest} has the wrong SHA-256 (expected {sha256}...); delete "
                        f"it to fetch it again, or place the file from {urls[0]} there")


@contextmanager
def _fetching(dest: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``dest``'s folder while ``dest`` is fetched: a second
    process (two runs of a report) waits and then finds the file instead of fetching it again,
    and the partial files of killed downloads (a SIGTERM or ``kill -9`` skips the clean-up of
    :func:`_fetch`) are removed, which only the lock's holder may do. Nothing is left behind:
    the lock is the folder's own. A file system without ``flock`` fetches unlocked."""
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        locked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # said, as a wait for an output folder is (runlock.output_lock)
            print(f"note: waiting for another process fetching {dest}", file=sys.stderr,
                  flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            locked = False  # a partial file may then be another process's, still growing
        for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.part") if locked else ():
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # drops the lock


def inception_weights(folder: str | os.PathLike | None = None) -> Path:
    """The FID Inception-v3 weights file in the cache (``folder``, default :func:`cache_dir`),
    downloaded from its published URLs on first use; what the gan program calls when neither
    ``--inception-weights`` nor ``$ROBUSTREP_INCEPTION`` names a file."""
    urls = (os.environ[INCEPTION_URL_ENV],) if os.environ.get(INCEPTION_URL_ENV) \
        else INCEPTION_URLS
    dest = Path(folder).expanduser() if folder is not None else cache_dir()
    # the gan program's line names --inception-weights before this one's ("could not ...")
    return download(urls, dest / INCEPTION_FILE, INCEPTION_SHA256, "FID Inception weights")


# name -> (torchvision class, the files torchvision leaves under the root)
DATASET_FILES = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py/"),
    "cifar100": ("CIFAR100", "cifar-100-python/"),
    "svhn": ("SVHN", "train_32x32.mat, test_32x32.mat"),
}


def download_dataset(name: str, root: str | os.PathLike) -> None:
    """Fetch ``name`` (cifar10, cifar100, svhn) into ``root`` with torchvision's
    ``download=True`` (its URLs and MD5 checks); offline, a dataset already there is used, and a
    missing one is one line naming what to place under ``root``."""
    if name not in DATASET_FILES:
        raise UserError(f"--download works for {', '.join(DATASET_FILES)}; got {name!r}")
    cls_name, files = DATASET_FILES[name]
    import torchvision.datasets as tvd
    cls = getattr(tvd, cls_name)
    folder = Path(root).expanduser()
    reason = offline_reason()
    if reason:  # nothing to fetch when torchvision finds every split intact
        if not all(_present(cls, folder, split) for split in _splits(name)):
            raise DownloadError(f"--download {name}: downloads are off ({reason}); place "
                                f"{files} under {root} yourself")
        return
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    for split in _splits(name):
        try:
            cls(str(folder), download=True, **split)
        except (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError) as err:
            _remove_empty(made)  # a failed download leaves no empty folder behind
            # torchvision's RuntimeError: the file it fetched failed its check (a leftover
            # of an earlier try says nothing about a refused connection)
            why = (isinstance(err, RuntimeError) and _fetched_file_problem(cls, folder, split)
                   or " ".join(str(err).split()))
            raise DownloadError(f"--download {name}: torchvision could not fetch it into "
                                f"{root}: {why}") from None


def _splits(name: str) -> list[dict[str, Any]]:
    """The keywords of each split's torchvision dataset."""
    if name == "svhn":
        return [{"split": "train"}, {"split": "test"}]
    return [{"train": True}, {"train": False}]


def _present(cls: Any, folder: Path, split: dict[str, Any]) -> bool:
    """Whether torchvision finds ``split`` whole (its MD5 checks) in ``folder``."""
    try:
        cls(str(folder), download=False, **split)
    except (RuntimeError, OSError, ValueError):
        return False
    return True


def _fetched_file_problem(cls: Any, folder: Path, split: dict[str, Any]) -> str | None:
    """What is wrong with the file torchvision fetched and refused ("File not found or
    corrupted", said alike of a cut transfer and of another file): a gzip archive that ends
    early was cut; a whole one, or a file of another kind, fails the MD5. None: not known."""
    from torchvision.datasets.utils import calculate_md5
    if hasattr(cls, "split_list"):  # SVHN: a file for each split
        _, filename, md5 = cls.split_list[split["split"]]
    else:
        filename, md5 = getattr(cls, "filename", None), getattr(cls, "tgz_md5", None)
    path = folder / filename if filename else None
    if path is None or not path.is_file():
        return None
    got = calculate_md5(str(path))
    if md5 is None or got == md5:
        return None
    size = f"{path} ({path.stat().st_size} bytes)"
    if path.name.endswith((".gz", ".tgz")):
        import gzip
        try:
            with gzip.open(path) as stream:
                while stream.read(CHUNK):
                    pass
        except EOFError:
            return f"the transfer was cut: {size} ends early; run again to fetch it again"
        except (OSError, ValueError):
            pass  # not gzip at all: another file, as a wrong MD5 says
        else:
            return (f"{size} arrived whole but its MD5 {got} is not torchvision's {md5}: the "
                    f"server sent another file; check its URL (a mirror?)")
    return (f"{size} fails torchvision's MD5 check ({got}, expected {md5}): the transfer was "
            f"cut or the file differs; run again to fetch it again")


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()  # only an empty one: a partial download is kept for a retry
        except OSError:
            return


def download_for(dataset: str, data_root: str | None) -> None:
    """``--download``: the run's dataset into its ``data_root``, checked before any work."""
    check_download(dataset, data_root)
    download_dataset(dataset, data_root)


def check_download(dataset: str, data_root: str | None) -> None:
    """What ``--download`` needs, refused in one line (``--dry-run`` says it too)."""
    if dataset not in DATASET_FILES:
        raise UserError(f"--download works for {', '.join(DATASET_FILES)}; this run's dataset "
                        f"is {dataset!r}")
    if not data_root:
        raise UserError("--download needs --data-root FOLDER (where the dataset goes)")
    if "WORLD_SIZE" in os.environ:  # torchrun's; unset, a --dry-run stays free of torch
        from robustrep.tasks.common.distributed import world_size_from_env
        if world_size_from_env() > 1:
            raise UserError("--download: fetch the data once without torchrun, then start the "
                            "multi-process run")
