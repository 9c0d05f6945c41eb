"""The feature networks ``gan eval`` and ``gan fid`` compute FID, KID and precision/recall on,
and robustrep's cache of what is slow to make.

Feature networks (``--fid-features``; default: ``digits`` for digits, ``inception`` for other
images), resolved and loaded when ``gan eval``'s :class:`~robustrep.tasks.gan.evaluate.Evaluator`
is built (:func:`build_extractor`), each with the record fields that name it (``fid_features``,
``fid_convention``):

- ``inception``: the FID Inception-v3 (``robustrep.metrics.extractors``) from a local weight file
  (``--inception-weights`` or ``$ROBUSTREP_INCEPTION``; pytorch-fid's or torch-fidelity's file) in
  the TF-FID input convention (8-bit images, TF1 bilinear resize; equal to torch-fidelity's
  features), the one most GAN tables use. Nothing is downloaded.
- ``inception-pytorch-fid``: the same network with pytorch-fid's resize and scaling.
- ``digits``: a :class:`~robustrep.metrics.DigitsFeatureNet` trained once as a digit classifier on
  the digits train split and cached in ``$ROBUSTREP_CACHE`` (default ``~/.cache/robustrep``),
  keyed by a hash of its training recipe and image shape.
- ``run:CLASSIFY_RUN``: the pre-logit features of a ``robustrep classify train`` run
  (``tasks/common/classifier_run.py``), e.g. one trained on the GAN's own image folder; images
  are resized (bilinear, antialiased) to the run's image size.

The cache holds the digits network and the real side's statistics
(:func:`robustrep.tasks.gan.evaluate.cached_features`), the latter keyed also by the sizes and
modification times of the files they were read from (:func:`files_fingerprint`). Caches are
read with ``torch.load(weights_only=True)``; one that cannot be read (truncated, written by
something else) is rebuilt rather than trusted. A filled cache is only read, so a read-only one
serves; a cache that cannot be written (read-only, full) costs only the time to compute its file
again next time: one note names the folder and ``$ROBUSTREP_CACHE``, and the command goes on.

Apart from ``evaluate.py``: which network, from which file, run or training, is one idea;
computing and scoring its features (``evaluate.py``) is another.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep.data import digits, innermost
from robustrep.metrics import DigitsFeatureNet, load_fid_inception, train_digits_feature_net
from robustrep.metrics.extractors import FID_RESIZES
from robustrep.tasks.common.checkpoint import safe_load, save_atomic
from robustrep.tasks.common.classifier_run import load_run_features
from robustrep.tasks.common import download
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import CheckpointError, RunFolderError
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.runopen import absolute_prefixed
from robustrep.tasks.gan.config import INCEPTION_ENV
from robustrep.tasks.gan.data import GanData

DIGITS_NET_RECIPE = {"net": "DigitsFeatureNet", "epochs": 5, "batch_size": 128, "lr": 1e-3,
                     "seed": 0, "data": "sklearn digits, fixed 80% train split", "version": 1}
FID_FEATURES = ("inception", "inception-pytorch-fid", "digits", "run:CLASSIFY_RUN")


# ---------------------------------------------------------------------------------------------
# the cache


def read_cache(path: Path) -> dict | None:
    """A cache file's dict, or None when it is absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        saved = safe_load(path, "cache file")
    except CheckpointError:
        return None
    return saved if isinstance(saved, dict) else None


def cache_dir() -> Path:
    """The programs' cache (:func:`robustrep.tasks.common.download.cache_dir`); made when a file
    is first kept there (:func:`keep_in_cache`), so reading a read-only one never writes."""
    return download.cache_dir()


def keep_in_cache(obj: Any, path: Path, what: str) -> None:
    """Save ``obj`` at ``path`` in the cache; where the cache cannot be written (a read-only or
    full disk, another user's folder), one note on stderr names the folder and the variable
    that moves it, and the command goes on with what it computed (it is computed again next
    time): the cache saves time, it is never what a command needs."""
    try:
        save_atomic(obj, path)  # makes the folder
    except (OSError, RunFolderError) as err:  # the latter: save_atomic's line for an OSError
        print(f"note: {what} could not be kept in robustrep's cache {path.parent} "
              f"({_system_reason(err) or err}); it is computed again next time: set "
              f"{download.CACHE_ENV} to a folder you can write to", file=sys.stderr, flush=True)


def _system_reason(err: BaseException | None) -> str | None:
    """The system's words (``Read-only file system``) for the OSError behind ``err``."""
    while err is not None and not (isinstance(err, OSError) and err.strerror):
        err = err.__context__
    return err.strerror if err is not None else None


def recipe_hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def files_fingerprint(dataset: Any, root: str | os.PathLike | None = None) -> str | None:
    """What a cache key of real features says of the files they were read from: their count and
    a hash of each file's path (relative to their common folder), size and mtime_ns, taken from
    the file list ``dataset`` already holds (:func:`data_files`: a stat call a file, no second
    walk), else from every file under ``root``. A rewritten, added or removed file changes it:
    keyed by path and image count alone, the cache gave the FID of the files as they were, not
    as they are, without a word. None for data read from no file (the built-in digits)."""
    files = data_files(dataset) or _files_under(root)
    if not files:
        return None
    files = [os.path.abspath(f) for f in files]
    start = len(os.path.commonpath([os.path.dirname(f) for f in files]).rstrip(os.sep)) + 1
    digest = hashlib.sha1()
    for name in files:
        try:
            info = os.stat(name)
            size, mtime = info.st_size, info.st_mtime_ns
        except OSError:  # gone since it was listed: the read that follows names it
            size = mtime = -1
        digest.update(f"{name[start:]}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return f"{len(files)} file{'s' * (len(files) != 1)}, sha1 {digest.hexdigest()[:16]}"


def data_files(dataset: Any) -> list[str]:
    """The files a robustrep dataset reads its images from (wrappers such as ``Subset`` and the
    x-flip unwrapped): a zip's or an lmdb's archive, CIFAR's batch and meta files, SVHN's
    ``.mat``, an image folder's or list's images; [] for others."""
    dataset = innermost(dataset, through=("dataset", "base"))
    root = Path(str(getattr(dataset, "root", "")))
    if getattr(dataset, "path", None) is not None:  # a dataset zip, read whole
        return [str(dataset.path)]
    if getattr(dataset, "dbs", None) is not None:  # LSUN's databases
        return [os.path.join(db.root, "data.mdb") for db in dataset.dbs]
    if hasattr(dataset, "base_folder") and hasattr(dataset, "train_list"):  # CIFAR
        names = dataset.train_list if dataset.train else dataset.test_list
        return [str(root / dataset.base_folder / n) for n, _ in names] + \
            [str(root / dataset.base_folder / dataset.meta["filename"])]
    if hasattr(dataset, "split_list") and hasattr(dataset, "filename"):  # SVHN
        return [str(root / dataset.filename)]
    samples = getattr(dataset, "samples", None) or []
    files = [str(s[0] if isinstance(s, tuple) else s) for s in samples]
    listed = getattr(dataset, "list_file", None)  # an image list's own file
    return files + [str(listed)] if files and listed is not None else files


def _files_under(root: str | os.PathLike | None) -> list[str]:
    """Every file under ``root`` (itself, when a file): for a dataset whose files
    :func:`data_files` does not know."""
    if root is None or not os.path.exists(root):
        return []
    if not os.path.isdir(root):
        return [str(root)]
    return sorted(str(p) for p in Path(root).rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# extractors


def digits_feature_net(shape: tuple[int, ...], device: torch.device,
                       show_progress: bool = False) -> tuple[nn.Module, dict]:
    """The cached digits CNN for images of ``shape``'s size (trained on first use, tens of
    seconds on a CPU: said on stderr with ``show_progress``); returns it and info. One grey
    network serves every channel count (:class:`_Features` makes RGB grey): a 1- and a
    3-channel network gave two FIDs of the same pixels under one name."""
    shape = (1, *shape[1:])
    recipe = {**DIGITS_NET_RECIPE, "shape": list(shape)}
    path = cache_dir() / f"digits_feature_net-{recipe_hash(recipe)}.pt"
    saved = read_cache(path)
    if saved is not None and "state" in saved and "info" in saved:
        net = DigitsFeatureNet(shape[0])
        net.load_state_dict(saved["state"])
        info = saved["info"]
    else:
        net, info = _train_digits_net(recipe, shape, path, show_progress)
    net = net.to(device).eval().requires_grad_(False)
    return _Features(net), info


def _train_digits_net(recipe: dict, shape: tuple[int, ...], path: Path,
                      show_progress: bool) -> tuple[DigitsFeatureNet, dict]:
    """Train the digits CNN of ``recipe`` (once: then read from the cache at ``path``), with a
    progress bar and an estimate as the other long steps have (``--quiet``: none)."""
    train = digits(shape[-1], shape[0], train=True)
    test = digits(shape[-1], shape[0], train=False)
    kwargs = {k: recipe[k] for k in ("epochs", "batch_size", "lr", "seed")}
    from robustrep.tasks.common.runfiles import can_write
    side = f"{shape[-1]}x{shape[-1]}"
    # a cache that cannot be written: trained again each time (keep_in_cache's note says how)
    kept = (f"once: cached in {path.parent}" if can_write(path.parent) else
            f"each time: {path.parent} cannot be written")
    with progress(recipe["epochs"] * len(train.images), unit="image", enabled=show_progress,
                  desc=f"training the digits feature network for FID at {side} ({kept})") as bar:
        net = train_digits_feature_net(train.images, train.targets, on_batch=bar.update,
                                       **kwargs)
    with torch.no_grad():
        acc = (net(test.images).argmax(1) == test.targets).float().mean().item()
    info = {"extractor": "digits-cnn", "test_accuracy": round(acc, 4), "cache": str(path),
            "recipe": recipe}
    keep_in_cache({"state": net.state_dict(), "info": info}, path, "the digits feature network")
    return net, info


class _Features(nn.Module):
    """``forward`` = the pooled features of a (grey) DigitsFeatureNet; RGB input is made grey:
    its first channel where all are equal (grey read as RGB, exactly), else its ITU-R BT.601
    luma, as PIL's ``convert("L")`` and the built-in grey digits make it (the channels' mean
    was another grey: a folder of PIL-grey copies scored FID 5.9 against its colour originals,
    not 0)."""

    def __init__(self, net: DigitsFeatureNet):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > 1:
            grey = bool((x == x[:, :1]).all())
            luma = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = x[:, :1].contiguous() if grey else (x * luma).sum(1, keepdim=True)
        return self.net.features(x)


def inception_path(given: str | None) -> Path:
    path = given or os.environ.get(INCEPTION_ENV)
    if not path:  # the cached copy, fetched on first use (never when offline)
        from robustrep.tasks.common.download import DownloadError, inception_weights
        try:
            return inception_weights()
        except DownloadError as err:
            raise FileNotFoundError(
                f"FID/KID on Inception features need the FID Inception-v3 weights: pass "
                f"--inception-weights PATH or set $ROBUSTREP_INCEPTION to pytorch-fid's "
                f"pt_inception-2015-12-05-6726825d.pth, or let robustrep fetch it: {err}") from None
    if given is None and not Path(path).expanduser().exists():  # say where the path came from
        raise FileNotFoundError(f"${INCEPTION_ENV} names {path}, which does not exist; point it "
                                f"at pytorch-fid's pt_inception-2015-12-05-6726825d.pth, or unset "
                                f"it to let robustrep fetch the file into its cache")
    return Path(path).expanduser()


def fid_features_choice(cfg, fid_features: str | None = None) -> str:
    """The feature network to use: ``fid_features``, else the run's, else the dataset's default
    (digits for digits, inception for other images); ConfigError for an unknown name. A
    ``run:DIR`` comes back with DIR absolute, as a run saves it and a record names it."""
    choice = fid_features or getattr(cfg, "fid_features", None)
    if choice is None:
        choice = "digits" if cfg.dataset == "digits" else "inception"
    check_fid_features(choice)
    return absolute_prefixed(choice, "run:")


def check_fid_features(choice: str) -> None:
    if choice in FID_FEATURES[:3] or (choice.startswith("run:") and len(choice) > 4):
        return
    raise ConfigError(f"fid_features must be one of {', '.join(FID_FEATURES)}; got {choice!r}")


class RunImages(nn.Module):
    """A classify run's features of GAN images: channels and size adapted to the run's input."""

    def __init__(self, net: nn.Module, channels: int, size: int | None):
        super().__init__()
        self.net, self.channels, self.size = net, channels, size

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x.mean(1, True)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        return self.net(x)


def run_feature_net(run_dir: str, device: torch.device) -> tuple[nn.Module, dict]:
    net, config = load_run_features(run_dir, device)
    size = config.get("image_size")
    ckpt = Path(run_dir) / "checkpoints" / "latest.pt"
    info = {"extractor": f"classify run {config['model']} ({config['weights']} weights)",
            # a retrained run must not reuse cached real statistics
            "weights": f"{ckpt} (mtime_ns {ckpt.stat().st_mtime_ns})",
            "fid_features": f"run:{run_dir}",
            "fid_convention": (f"pre-logit features of classify run {run_dir} "
                               f"({config['model']}, {size}x{size}); comparable only with FIDs "
                               "on the same run")}
    return RunImages(net, int(config["channels"]), size), info


def build_extractor(cfg, data: GanData, device: torch.device,
                    inception_weights: str | None = None, fid_features: str | None = None,
                    show_progress: bool = False) -> tuple[nn.Module, dict]:
    """The feature network ``fid_features`` (see the module docstring) and its record fields;
    ``show_progress``: say so when one is trained first."""
    choice = fid_features_choice(cfg, fid_features)
    if choice == "digits":
        net, info = digits_feature_net(data.shape, device, show_progress)
        side = data.shape[-1]
        return net, {**info, "fid_features": "digits",
                     "fid_convention": f"digits CNN features (robustrep) of grey {side}x{side} "
                                       f"images (colour as BT.601 luma); comparable only with "
                                       f"FIDs on the same network"}
    if choice.startswith("run:"):
        return run_feature_net(choice[4:], device)
    resize = "tf" if choice == "inception" else "pytorch-fid"
    path = inception_path(inception_weights or cfg.inception_weights)
    if path.is_file():
        safe_load(path, "Inception weights file")  # unreadable or unsafe: one CheckpointError
    try:
        net = load_fid_inception(path, input_range=(0.0, 1.0), resize=resize).to(device)
    except ValueError as err:  # a readable file that is not the FID Inception state dict
        raise CheckpointError(str(err)) from None
    return net, {"extractor": "fid-inception-v3", "weights": str(path),
                 "fid_features": f"inception-{resize}", "fid_convention": FID_RESIZES[resize]}
