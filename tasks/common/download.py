"""Downloads into a cache, with a SHA-256 check, and an offline switch that forbids them.

:func:`download` streams a URL into a temporary file inside the cache folder, hashes it on the way,
and renames it into place only when it is complete and its SHA-256 matches: a failed, cut or
wrong-hash download leaves nothing in the cache (the scheme of ``torch.hub.download_url_to_file``,
pytorch/pytorch ``torch/hub.py``), and the partial file of a killed one is removed by the next.
One process fetches a file at a time (a lock on the cache folder); the others wait for it. A
hash may be the full hex digest or a prefix of at least 8 characters, the convention of
torch.hub's ``check_hash`` for files named ``name-<prefix>.pth``.

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

import fcntl
import glob
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _fetch(url: str, dest: Path, sha256: str | None, timeout: float) -> None:
    """Stream ``url`` to a temporary file next to ``dest``; rename it into place when whole and
    of the right hash. The temporary file is removed on every failure."""
    fd, tmp = temp_beside(dest, ".part")
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            if length is not None and size != int(length):
                raise DownloadError(f"download of {url} was cut after {size} of {length} bytes; "
                                    f"nothing was kept in {dest.parent}")
            out.flush()
            os.fsync(out.fileno())
        if not _hash_ok(digest.hexdigest(), sha256):
            raise DownloadError(f"{url} has SHA-256 {digest.hexdigest()}, expected {sha256}...; "
                                f"refused, nothing was kept in {dest.parent}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise DownloadError(f"could not download {url} into {dest}: "
                            f"{' '.join(str(err).split()) or type(err).__name__}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
        raise DownloadError(f"{what}: {dest} is missing and downloads are off ({reason}); place "
                            f"the file from {urls[0]} at {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _fetching(dest):
        if dest.is_file():  # another process fetched it while this one waited
            return _cached(dest, sha256, what, urls)
        errors = []
        for url in urls:
            try:
                _fetch(url, dest, sha256, timeout)
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
            import sys
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
    ``download=True`` (its URLs and MD5 checks); nothing when offline, where a missing dataset is
    one line naming what to place under ``root``."""
    if name not in DATASET_FILES:
        raise UserError(f"--download works for {', '.join(DATASET_FILES)}; got {name!r}")
    cls_name, files = DATASET_FILES[name]
    reason = offline_reason()
    if reason:
        raise DownloadError(f"--download {name}: downloads are off ({reason}); place "
                            f"{files} under {root} yourself")
    import torchvision.datasets as tvd
    cls = getattr(tvd, cls_name)
    folder = Path(root).expanduser()
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for split in (("train", "test") if name == "svhn" else (True, False)):
            kwargs = {"split": split} if name == "svhn" else {"train": split}
            cls(str(folder), download=True, **kwargs)
    except (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError) as err:
        _remove_empty(made)  # a failed download leaves no empty folder behind
        raise DownloadError(f"--download {name}: torchvision could not fetch it into {root}: "
                            f"{' '.join(str(err).split())}") from None


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
