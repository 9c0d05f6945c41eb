"""``robustrep gan eval RUN``: FID, KID, precision/recall, or mode statistics for 2-D mixtures.

Features come from the network ``--fid-features`` names (default: ``digits`` for digits,
``inception`` for other images), resolved and loaded when the :class:`Evaluator` is built, by
:mod:`robustrep.tasks.gan.feature_nets`, which also holds the cache both modules use: which
network, from which file or run, is one idea; computing and scoring its features is this one.

Only Inception FIDs in one convention compare with published numbers; FIDs on ``digits`` or a
``run:`` network are on their own scale and compare only with FIDs on the same network. Every
record names its network and convention (``fid_features``, ``fid_convention``) and the KID subset
size it used (``kid_subset_size``: at most 1000, and never more than either set); a ``gan eval``
record also names the run and checkpoint it scored (``run``, ``checkpoint``), the generator
(``generator``: ``ema`` or ``G``, as training records do) and the feature network (``extractor``;
the digits CNN's own accuracy on the held-out digits as ``feature_net_test_accuracy``), and
``--out`` never replaces another run's.

The real side's statistics (streamed mean/covariance over up to ``max_real`` images, plus a
subset of features for KID and precision/recall) are cached in the same folder as the digits
network (:func:`~robustrep.tasks.gan.feature_nets.cache_dir`; a cache that cannot be read is
rebuilt, one that cannot be written only costs the time), keyed by a hash of the dataset, its
root, the image shape and the extractor, as stylegan2-ada caches its reference statistics, and
of its files' sizes and modification times, which stylegan2-ada's key leaves out (an edited
file gives another key, not the old file's features).
Generated samples come from G-EMA in eval mode with a fixed seed, so two evaluations of one
checkpoint agree.

Metrics: ``fid``; ``kid`` and ``kid_std`` (100 subsets of ``kid_subset_size`` for ``gan eval``, 10
during training); ``precision`` and
``recall`` (Kynkaanniemi et al. 2019, k = 3, on each side's own count up to 5000: ``pr_samples``
generated against ``pr_samples_real`` reals, as torch-fidelity and stylegan2-ada's ``pr50k3``
take each side whole: equal to torch-fidelity's up to 5000 a side, docs/metrics.md). For the 2-D
mixtures: ``modes_covered``, ``high_quality`` (share within 3 std of a mode) and ``kl_uniform``
(VEEGAN/PacGAN protocol; KL of the high-quality samples' mode histogram to uniform, in nats). With
no sample within 3 std of any mode there is no histogram and the KL is undefined: it is recorded as
null (``n/a`` in the table) with ``kl_uniform_note`` saying why, never as a bare NaN.

The output file is checked for writability before any work.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from robustrep.metrics import (FeatureStats, frechet_distance, kid, knn_radii, mode_stats,
                               precision_recall)
from robustrep.tasks.common.errors import DataError, FolderGone, UserError
from robustrep.tasks.common.options import check_run_folder
from robustrep.tasks.common.output_paths import check_output_file, check_replaceable
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.regularizers import refuse_unused
from robustrep.tasks.common.eval_records import check_same_run
from robustrep.tasks.common.runfiles import write_text_atomic
from robustrep.tasks.gan.config_checks import check_inception_file, inception_unused
from robustrep.tasks.gan.data import GanData, to_unit_range
from robustrep.tasks.gan.feature_nets import (build_extractor, cache_dir, files_fingerprint,
                                              keep_in_cache, read_cache, recipe_hash)
from robustrep.tasks.gan.models import generate, generate_batches

EVAL_SEED = 2024
KID_SUBSET_SIZE = 1000  # torch-fidelity's and the KID paper's default


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
    path = cache_dir() / f"{name}-{recipe_hash({**key, 'keep': keep, 'kept': 'random'})}.pt"
    saved = read_cache(path)
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
    """Real statistics and a feature subset, cached by dataset, root, the files' sizes and
    modification times (:func:`~robustrep.tasks.gan.feature_nets.files_fingerprint`), shape and
    extractor.

    ``max_real=None`` uses every real image (stylegan2-ada's ``_full`` metrics). The x-flipped
    copies of ``--mirror`` are not reals here, as in stylegan2-ada's ``fid50k_full``."""
    data = data.unmirrored()
    n = len(data) if max_real is None else min(len(data), max_real)
    files = None if data.pool is not None else files_fingerprint(data.dataset, cfg.data_root)
    key = {"dataset": cfg.dataset, "root": str(cfg.data_root), "shape": list(data.shape),
           "n": n, "extractor": {k: v for k, v in info.items() if k != "cache"}}
    if files is not None:  # an edited data file is not read from the cache of the old one
        key["files"] = files
    return cached_features(f"gan-real-{cfg.dataset}", key, net,
                           lambda: _real_batches(data, max_real), device, keep,
                           f"features of the real {cfg.dataset} images" if show_progress
                           else None, n)


def score_features(real: dict[str, Any], fake: dict[str, Any], kid_subsets: int = 100,
                   pr_samples: int = 5000, show_progress: bool = False) -> dict[str, Any]:
    """FID from the two sides' statistics; KID and precision/recall from their kept features
    (``fake`` is the set judged: precision is the share of it inside the real manifold).
    ``show_progress``: a bar over KID's subsets (12-46 s on 2 CPU cores had passed without a
    word after the features' bar)."""
    mu_f, sigma_f = fake["stats"].mean_cov()
    # a cached real side is read onto the CPU; the generated side is where G ran
    mu_r, sigma_r = (t.to(mu_f.device) for t in real["stats"].mean_cov())
    fake_feats = fake["feats"]
    real_feats = real["feats"].to(fake_feats.device)
    # KID refuses subsets larger than a set; small sets say which size they used.
    subset = min(KID_SUBSET_SIZE, len(real_feats), len(fake_feats))
    with progress(kid_subsets, desc="KID subsets", enabled=show_progress, unit="subset",
                  leave=False) as bar:
        kid_mean, kid_std = kid(real_feats, fake_feats, num_subsets=kid_subsets,
                                subset_size=subset,
                                generator=torch.Generator(fake_feats.device).manual_seed(0),
                                progress=lambda done: bar.update(done - bar.n))
    n_real, n_fake = (min(pr_samples, len(f)) for f in (real_feats, fake_feats))
    if min(n_real, n_fake) > 3:
        reals, radii = _real_manifold(real, n_real, fake_feats.device)
        pr = precision_recall(reals, _random_rows(fake_feats, n_fake), k=PR_K, real_radii=radii)
    else:  # each sample's 3 nearest neighbours need 4 samples a side; FID and KID stand
        pr = dict.fromkeys(("precision", "recall"),
                           f"n/a ({min(n_real, n_fake)} samples on a side; needs 4)")
    return {"fid": frechet_distance(mu_r, sigma_r, mu_f, sigma_f), "kid": kid_mean,
            "kid_std": kid_std, "precision": pr["precision"], "recall": pr["recall"],
            "kid_subset_size": subset, "kid_subsets": kid_subsets, "pr_samples": n_fake,
            "pr_samples_real": n_real, "pr_k": PR_K}


PR_K = 3  # the paper's neighbourhood, as stylegan2-ada's pr50k3 and torch-fidelity's default


def _random_rows(feats: Tensor, n: int) -> Tensor:
    """A seeded random ``n`` of ``feats``' rows in their order: never the first ``n`` of a folder
    sorted by class (precision and recall do not depend on the order)."""
    if n >= len(feats):
        return feats
    rows = torch.randperm(len(feats), generator=torch.Generator().manual_seed(0))[:n]
    return feats[rows.sort().values.to(feats.device)]


def _real_manifold(real: dict[str, Any], n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``n`` of the reals on ``device`` and their k-NN radii, kept in ``real``: a training run
    judges each evaluation's samples against one real side, whose radii (5000 x 5000
    distances) cost more than the rest of the scores."""
    key = ("pr_manifold", n, str(device))
    if key not in real:
        reals = _random_rows(real["feats"], n).to(device)
        real[key] = reals, knn_radii(reals, PR_K)
    return real[key]


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
        scores = score_features(self.real, fake, self.kid_subsets, self.pr_samples,
                                self.show_progress)
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
    from robustrep.tasks.gan.sample import ema_used, load_generator  # no cycle
    path = _check_request(run, num_samples, inception_weights, fid_features, out, use_ema)
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
               "generator": "ema" if ema_used(cfg, use_ema) else "G",
               **feature_net_fields(evaluator.info)}
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


def _check_request(run: str | Path, num_samples: int | None, inception_weights: str | None,
                   fid_features: str | None, out: str | Path | None, use_ema: bool) -> Path:
    """gan eval's options, before any work: the record file it may write (its own earlier
    record, never a user's file or another run's)."""
    from robustrep.tasks.gan.sample import run_config  # no cycle
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
    # its own record may be replaced, never a user's file (RUN/eval.json by default too)
    check_replaceable(path, ("step", "reg"), "gan eval",
                      "--out" if out is not None else "the default --out")
    if out is not None:  # nor another run's record (one in RUN is RUN's)
        _check_same_run(path, run)
    return path


def feature_net_fields(info: dict[str, Any]) -> dict[str, Any]:
    """The feature network's record fields, its own accuracy on the digits test split named as
    the network's: a bare ``test_accuracy`` among FID and KID read as the generator's."""
    return {("feature_net_test_accuracy" if k == "test_accuracy" else k): v
            for k, v in info.items()}


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
