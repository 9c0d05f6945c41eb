"""``robustrep gan eval RUN``: FID, KID, precision/recall, or mode statistics for 2-D mixtures.

Feature networks (``--fid-features``; default: ``digits`` for digits, ``inception`` for other
images), resolved and loaded when the :class:`Evaluator` is built:

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

Only Inception FIDs in one convention compare with published numbers; FIDs on ``digits`` or a
``run:`` network are on their own scale and compare only with FIDs on the same network. Every
record names its network and convention (``fid_features``, ``fid_convention``) and the KID subset
size it used (``kid_subset_size``: at most 1000, and never more than either set); a ``gan eval``
record also names the run and checkpoint it scored (``run``, ``checkpoint``), and ``--out`` never
replaces another run's.

The real side's statistics (streamed mean/covariance over up to ``max_real`` images, plus a
subset of features for KID and precision/recall) are cached in the same folder, keyed by a hash
of the dataset, its root, the image shape and the extractor, as stylegan2-ada caches its
reference statistics. Generated samples come from G-EMA in eval mode with a fixed seed, so two
evaluations of one checkpoint agree.

Metrics: ``fid``; ``kid`` and ``kid_std`` (100 subsets of ``kid_subset_size`` for ``gan eval``, 10
during training); ``precision`` and
``recall`` (Kynkaanniemi et al. 2019, k = 3, on up to ``pr_samples`` of each side). For the 2-D
mixtures: ``modes_covered``, ``high_quality`` (share within 3 std of a mode) and ``kl_uniform``
(VEEGAN/PacGAN protocol; KL of the high-quality samples' mode histogram to uniform, in nats). With
no sample within 3 std of any mode there is no histogram and the KL is undefined: it is recorded as
null (``n/a`` in the table) with ``kl_uniform_note`` saying why, never as a bare NaN.

Caches are read with ``torch.load(weights_only=True)``; one that cannot be read (truncated,
written by something else) is rebuilt rather than trusted. A filled cache is only read, so a
read-only one serves; a cache that cannot be written (read-only, full) costs only the time to
compute its file again next time: one note names the folder and ``$ROBUSTREP_CACHE``, and the
command goes on. The output file is checked for writability before any work.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from robustrep.data import digits
from robustrep.metrics import (DigitsFeatureNet, FeatureStats, frechet_distance, kid,
                               load_fid_inception, mode_stats, precision_recall,
                               train_digits_feature_net)
from robustrep.metrics.extractors import FID_RESIZES
from robustrep.tasks.common.checkpoint import safe_load, save_atomic
from robustrep.tasks.common.classifier_run import load_run_features
from robustrep.tasks.common import download
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import (CheckpointError, DataError, FolderGone, RunFolderError,
                                          UserError)
from robustrep.tasks.common.options import check_run_folder
from robustrep.tasks.common.output_paths import check_output_file, check_replaceable
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.regularizers import refuse_unused
from robustrep.tasks.common.eval_records import check_same_run
from robustrep.tasks.common.runfiles import write_text_atomic
from robustrep.tasks.gan.config_checks import check_inception_file, inception_unused
from robustrep.tasks.gan.data import GanData, to_unit_range
from robustrep.tasks.gan.models import generate, generate_batches

EVAL_SEED = 2024
DIGITS_NET_RECIPE = {"net": "DigitsFeatureNet", "epochs": 5, "batch_size": 128, "lr": 1e-3,
                     "seed": 0, "data": "sklearn digits, fixed 80% train split", "version": 1}
INCEPTION_ENV = "ROBUSTREP_INCEPTION"
FID_FEATURES = ("inception", "inception-pytorch-fid", "digits", "run:CLASSIFY_RUN")
KID_SUBSET_SIZE = 1000  # torch-fidelity's and the KID paper's default


def _read_cache(path: Path) -> dict | None:
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


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
    path = cache_dir() / f"digits_feature_net-{_hash(recipe)}.pt"
    saved = _read_cache(path)
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
    side = f"{shape[-1]}x{shape[-1]}"
    with progress(recipe["epochs"] * len(train.images), unit="image", enabled=show_progress,
                  desc=f"training the digits feature network for FID at {side} (once: cached "
                       f"in {path.parent})") as bar:
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
    (digits for digits, inception for other images); ConfigError for an unknown name."""
    choice = fid_features or getattr(cfg, "fid_features", None)
    if choice is None:
        choice = "digits" if cfg.dataset == "digits" else "inception"
    check_fid_features(choice)
    return choice


def check_fid_features(choice: str) -> None:
    if choice in FID_FEATURES[:3] or (choice.startswith("run:") and len(choice) > 4):
        return
    raise ConfigError(f"fid_features must be one of {', '.join(FID_FEATURES)}; got {choice!r}")


class _RunImages(nn.Module):
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
    return _RunImages(net, int(config["channels"]), size), info


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


# ---------------------------------------------------------------------------------------------
# features


@torch.no_grad()
def _extract(net: nn.Module, images: Tensor, batch: int = 250) -> Tensor:
    return torch.cat([net(images[i:i + batch]).float() for i in range(0, len(images), batch)])


def _real_batches(data: GanData, max_real: int | None, batch: int = 250):
    """Real images in [0, 1] (CPU), at most ``max_real`` (None: all)."""
    if data.pool is not None:
        images = to_unit_range(data.pool[:max_real])
        yield from images.split(batch)
        return
    n = len(data.dataset) if max_real is None else min(len(data.dataset), max_real)
    subset = torch.utils.data.Subset(data.dataset, range(n))
    for images, _ in DataLoader(subset, batch_size=batch, num_workers=0):
        yield images


def stream_features(net: nn.Module, batches, device: torch.device, keep: int = 10_000,
                    desc: str | None = None, total: int | None = None) -> dict[str, Any]:
    """Streamed statistics of ``net``'s features of every image in ``batches`` (each in [0, 1])
    and ``keep`` of the feature vectors, a uniform random subset (seeded; all of them when there
    are no more), for KID and precision/recall. The first ``keep`` would be one or two classes
    of a folder sorted by class. With ``desc``, the images done (of ``total``, when known) are
    shown as they go, with an estimate."""
    stats, subset, seen = FeatureStats(), KeptSubset(keep), 0
    with progress(total, desc=desc or "", enabled=desc is not None, unit="image",
                  leave=False) as bar:
        for images in batches:
            feats = _extract(net, images.to(device))
            stats.update(feats)
            subset.add(feats)
            seen += len(feats)
            bar.update(len(feats))
    if seen == 0:
        raise DataError("no images to compute features of")
    return {"stats": stats, "feats": subset.result()}


class KeptSubset:
    """A uniform random subset of ``keep`` rows of a stream: each row gets a random key (a
    seeded CPU generator) and the rows of the ``keep`` largest keys stay, kept in stream order
    (the chosen indices are sorted before they are taken)."""

    def __init__(self, keep: int, seed: int = 0):
        self.keep, self.gen = keep, torch.Generator().manual_seed(seed)
        self.rows: list[Tensor] = []
        self.keys: list[Tensor] = []
        self.held = 0

    def add(self, rows: Tensor) -> None:
        self.rows.append(rows)
        self.keys.append(torch.rand(len(rows), generator=self.gen, dtype=torch.float64))
        self.held += len(rows)
        if self.held > 2 * self.keep:  # compact now and then: memory stays O(keep)
            self._compact()

    def _compact(self) -> None:
        rows, keys = torch.cat(self.rows), torch.cat(self.keys)
        if len(keys) > self.keep:
            top = keys.topk(self.keep).indices.sort().values
            rows, keys = rows[top.to(rows.device)], keys[top]
        self.rows, self.keys, self.held = [rows], [keys], len(keys)

    def result(self) -> Tensor:
        self._compact()
        return self.rows[0]


def cached_features(name: str, key: dict, net: nn.Module, batches, device: torch.device,
                    keep: int = 10_000, desc: str | None = None,
                    total: int | None = None) -> dict[str, Any]:
    """:func:`stream_features`, cached in :func:`cache_dir` under ``name`` and a hash of ``key``
    (which must name the data and the extractor); ``batches`` is called only on a miss."""
    path = cache_dir() / f"{name}-{_hash({**key, 'keep': keep, 'kept': 'random'})}.pt"
    saved = _read_cache(path)
    if saved is not None and "stats" in saved and "feats" in saved:
        return {"stats": FeatureStats().load_state_dict(saved["stats"]),
                "feats": saved["feats"].to(device)}
    out = stream_features(net, batches(), device, keep, desc, total)
    keep_in_cache({"stats": out["stats"].state_dict(), "feats": out["feats"].cpu(), "key": key},
                  path, f"the feature statistics {path.name}")
    return out


def real_reference(cfg, data: GanData, net: nn.Module, info: dict, device: torch.device,
                   max_real: int | None = 50_000, keep: int = 10_000,
                   show_progress: bool = True) -> dict[str, Any]:
    """Real statistics and a feature subset, cached by dataset, root, shape and extractor.

    ``max_real=None`` uses every real image (stylegan2-ada's ``_full`` metrics). The x-flipped
    copies of ``--mirror`` are not reals here, as in stylegan2-ada's ``fid50k_full``."""
    data = data.unmirrored()
    n = len(data) if max_real is None else min(len(data), max_real)
    key = {"dataset": cfg.dataset, "root": str(cfg.data_root), "shape": list(data.shape),
           "n": n, "extractor": {k: v for k, v in info.items() if k != "cache"}}
    return cached_features(f"gan-real-{cfg.dataset}", key, net,
                           lambda: _real_batches(data, max_real), device, keep,
                           f"features of the real {cfg.dataset} images" if show_progress
                           else None, n)


def score_features(real: dict[str, Any], fake: dict[str, Any], kid_subsets: int = 100,
                   pr_samples: int = 5000) -> dict[str, Any]:
    """FID from the two sides' statistics; KID and precision/recall from their kept features
    (``fake`` is the set judged: precision is the share of it inside the real manifold)."""
    mu_r, sigma_r = real["stats"].mean_cov()
    mu_f, sigma_f = fake["stats"].mean_cov()
    fake_feats = fake["feats"]
    real_feats = real["feats"].to(fake_feats.device)
    # KID refuses subsets larger than a set; small sets say which size they used.
    subset = min(KID_SUBSET_SIZE, len(real_feats), len(fake_feats))
    kid_mean, kid_std = kid(real_feats, fake_feats, num_subsets=kid_subsets, subset_size=subset,
                            generator=torch.Generator(fake_feats.device).manual_seed(0))
    n = min(pr_samples, len(real_feats), len(fake_feats))
    if n > 3:  # a seeded random n of the larger side (PR does not depend on the order)
        gen = torch.Generator().manual_seed(0)
        pr = precision_recall(*(f[torch.randperm(len(f), generator=gen)[:n].sort().values.to(
            f.device)] for f in (real_feats, fake_feats)), k=3)
    else:  # each sample's 3 nearest neighbours need 4 samples a side; FID and KID stand
        pr = dict.fromkeys(("precision", "recall"), f"n/a ({n} samples on a side; needs 4)")
    return {"fid": frechet_distance(mu_r, sigma_r, mu_f, sigma_f), "kid": kid_mean,
            "kid_std": kid_std, "precision": pr["precision"], "recall": pr["recall"],
            "kid_subset_size": subset, "kid_subsets": kid_subsets, "pr_samples": n, "pr_k": 3}


def fid_name(num_generated: int, num_real: int | None) -> str:
    """stylegan2-ada's metric name: ``fid50k_full`` is 50,000 generated against every real
    image, ``fid10k`` 10,000 against at most 10,000 reals; other counts are written out."""
    gen = f"{num_generated // 1000}k" if num_generated % 1000 == 0 else str(num_generated)
    if num_real is None:
        return f"fid{gen}_full"
    return f"fid{gen}" if num_real == num_generated else f"fid{gen}_real{num_real}"


# ---------------------------------------------------------------------------------------------
# generation and scoring


class Evaluator:
    """Scores a generator against the run's data (see the module docstring).

    Args:
        cfg: the run's config.
        data: from ``tasks.gan.data.build_data``.
        device: where features are computed.
        num_samples: generated samples per call.
        inception_weights: FID weights file (else ``cfg.inception_weights`` or the env var).
        fid_features: the feature network (else ``cfg.fid_features``, else the dataset's).
        pr_samples: samples per side for precision/recall.
        kid_subsets: KID subsets (100, the torch-fidelity default, for ``gan eval``; training
            uses 10: on CPU the 100 float64 kernel products of 1000 x 1000 take ~20 s).
        show_progress: show the images done, with an estimate, while features are computed.
    """

    def __init__(self, cfg, data: GanData, device: torch.device, num_samples: int,
                 inception_weights: str | None = None, pr_samples: int = 5000,
                 kid_subsets: int = 100, fid_features: str | None = None,
                 max_real: int | None = 50_000, show_progress: bool = True):
        self.cfg, self.data, self.device = cfg, data, device
        self.show_progress = show_progress
        self.num_samples, self.pr_samples, self.kid_subsets = num_samples, pr_samples, kid_subsets
        self.info: dict[str, Any] = {}
        if data.is_points:
            self.info = {"extractor": "none (2-D mode statistics)"}
            return
        self.net, self.info = build_extractor(cfg, data, device, inception_weights, fid_features,
                                              show_progress)
        self.real = real_reference(cfg, data, self.net, self.info, device, max_real=max_real,
                                   show_progress=show_progress)
        self.num_real = self.real["stats"].num

    def __call__(self, G: nn.Module) -> dict[str, Any]:
        if self.data.is_points:
            return self.score_points(generate(G, self.num_samples, self.device, EVAL_SEED))
        batches = generate_batches(G, self.num_samples, self.device, EVAL_SEED)
        return self.score_images(to_unit_range(b) for b in batches)

    def score_points(self, samples: Tensor) -> dict[str, Any]:
        stats = mode_stats(samples.cpu(), self.data.centers, self.data.std)
        out = {"modes_covered": stats["modes_covered"], "num_modes": len(self.data.centers),
               "high_quality": stats["high_quality"], "kl_uniform": stats["kl_uniform"],
               "num_samples": len(samples)}
        if not math.isfinite(out["kl_uniform"]):  # no high-quality sample: no mode histogram
            out["kl_uniform"] = None
            out["kl_uniform_note"] = (f"undefined: none of the {len(samples)} samples lies "
                                      f"within 3 std of a mode, so there is no mode histogram "
                                      f"to compare with uniform")
        return out

    def score_images(self, batches) -> dict[str, Any]:
        """Scores of generated images in [0, 1] (a tensor or an iterable of batches)."""
        if isinstance(batches, Tensor):
            batches = batches.split(250)
        fake = stream_features(self.net, batches, self.device,
                               desc="generated images" if self.show_progress else None,
                               total=self.num_samples)
        scores = score_features(self.real, fake, self.kid_subsets, self.pr_samples)
        return {"fid": scores.pop("fid"), **scores, "num_samples": fake["stats"].num,
                "num_real": self.num_real, "fid_features": self.info["fid_features"],
                "fid_convention": self.info["fid_convention"]}


# ---------------------------------------------------------------------------------------------
# the command


def format_table(metrics: dict[str, Any]) -> str:
    # + 0.0: a value rounding to zero from below (a set against itself) prints as 0.0000
    rows = [(k, f"{round(v, 4) + 0.0:.4f}" if isinstance(v, float) else "n/a" if v is None
             else str(v)) for k, v in metrics.items() if not isinstance(v, (dict, list))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def evaluate_run(run: str | Path, checkpoint: str | Path | None = None,
                 num_samples: int | None = None, inception_weights: str | None = None,
                 device: str = "auto", out: str | Path | None = None,
                 use_ema: bool = True, fid_features: str | None = None,
                 max_real: int | None = 50_000, show_progress: bool = True) -> dict[str, Any]:
    """Score a run's checkpoint; write ``RUN/eval.json`` (``RUN/eval-noema.json`` for G itself,
    so that the EMA's record is kept; or ``out``) and return the metrics.

    ``fid_features`` defaults to the network the run was trained with (its config);
    ``max_real=None`` compares with every real image. The record names the FID as stylegan2-ada
    does (``fid_name``, and the value again under that name: ``fid50k_full`` for 50,000
    samples against all reals), and names the run and checkpoint file it scored (``run``,
    ``checkpoint``, absolute paths); ``out`` holding another run's record is refused
    (:func:`_check_same_run`).
    """
    from robustrep.tasks.gan.sample import ema_used, load_generator, run_config  # no cycle

    if num_samples is not None and num_samples < 2:
        raise UserError(f"--num-samples must be >= 2 (FID and KID need two samples), "
                        f"got {num_samples}")
    if Path(run).is_file() and Path(run).suffix.lower() == ".pkl":
        raise UserError(f"{run} is a file; gan eval scores a run folder (one holding "
                        f"config.json and checkpoints/): score a network pickle's G-EMA with "
                        f"gan fid {run} REF (REF: an image folder, a dataset .zip or a named "
                        f"reference such as cifar10-train)")
    # a file or a missing RUN was named only through --out's default, RUN/eval.json
    check_run_folder(run, "RUN", "gan eval {run} --checkpoint {name}")
    if inception_weights is not None:  # acting on nothing, or no file: before any work
        cfg = run_config(run)
        need = inception_unused(cfg.dataset, fid_features or cfg.fid_features)
        if need is not None:
            refuse_unused({need: ["inception_weights"]})
        check_inception_file(inception_weights)
    name = "eval.json" if use_ema else "eval-noema.json"  # --no-ema used to replace eval.json
    path = check_output_file(Path(out) if out is not None else Path(run) / name, "--out")
    if out is not None:  # its own record may be replaced, never a user's file
        check_replaceable(path, ("step", "reg"), "gan eval", "--out")
        _check_same_run(path, run)  # nor another run's record
    G, cfg, step, dev = load_generator(run, checkpoint, device, use_ema)
    from robustrep.tasks.gan.data import build_data
    data = build_data(cfg)
    default_n = 2500 if data.is_points else min(10_000, max(cfg.eval_samples, len(data)))
    evaluator = Evaluator(cfg, data, dev, num_samples or default_n, inception_weights,
                          fid_features=fid_features, max_real=max_real,
                          show_progress=show_progress)
    # the record names what it scored: --out may not replace another run's (_check_same_run)
    metrics = {"run": str(Path(run).resolve()),
               "checkpoint": str(_checkpoint_file(run, checkpoint)), "step": step,
               "preset": cfg.preset, "reg": cfg.reg, **evaluator(G),
               "generator": "ema" if ema_used(cfg, use_ema) else "G", **evaluator.info}
    if "fid" in metrics:
        real = None if max_real is None or max_real >= len(data.unmirrored()) else max_real
        name = fid_name(metrics["num_samples"], real)
        metrics.update({"fid_name": name, name: metrics["fid"]})
    if out is None and not Path(run).is_dir():  # not made again holding eval.json alone
        raise FolderGone(f"{run} was removed or moved while gan eval scored it; nothing was "
                         f"written; run the command again on the run's new place")
    path.parent.mkdir(parents=True, exist_ok=True)
    note = _replaced_note(path, metrics)  # before the earlier record is replaced
    write_text_atomic(path, json.dumps(metrics, indent=2, default=str) + "\n")
    if note:
        print(note, file=sys.stderr)
    metrics["json"] = str(path)
    return metrics


# what makes two records of a run other evaluations (a rerun of the same one says nothing)
_SETTINGS = ("step", "generator", "num_samples", "num_real", "fid_features")


def _replaced_note(path: Path, metrics: dict[str, Any]) -> str | None:
    """The note for an earlier record at ``path`` of another evaluation that ``metrics``
    replaces: stylegan2-ada's calc_metrics appends to its metric-*.jsonl, so a user may expect
    the earlier numbers to be kept."""
    from robustrep.tasks.common.eval_records import as_own_run, setting_changes
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none there (a damaged one was refused before)
        return None
    diff = setting_changes(as_own_run(old, metrics), metrics, _SETTINGS) if isinstance(
        old, dict) else []
    return (f"note: {path} replaced: it held another evaluation ({'; '.join(diff)}); give "
            f"--out another file to keep both") if diff else None


def _checkpoint_file(run: str | Path, checkpoint: str | Path | None) -> Path:
    """The checkpoint file :func:`evaluate_run` scored (``latest.pt`` when none was named)."""
    from robustrep.tasks.common.checkpoint import LATEST
    from robustrep.tasks.gan.sample import checkpoint_path
    where = checkpoint_path(run, checkpoint)
    return (where / LATEST if where.is_dir() else where).resolve()


def _check_same_run(path: Path, run: str | Path) -> None:
    """``--out``'s earlier record (check_replaceable has made sure it is one) is replaced only
    when it scored ``run`` (:func:`~robustrep.tasks.common.eval_records.check_same_run`)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none there
        return
    check_same_run(old if isinstance(old, dict) else {}, path, run, "an eval record",
                   folder=False)
