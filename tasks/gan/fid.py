"""``robustrep gan fid A B``: FID, KID and precision/recall between any two image sets.

Each of A and B is one of (checked in this order):

- a named reference, computed once from local data and cached in ``$ROBUSTREP_CACHE``:
  ``digits`` (the built-in 1,797 sklearn digits at 32x32, as ``gan train`` sees them),
  ``cifar10-train``, ``cifar10-test``, ``cifar100-train``, ``cifar100-test``, ``svhn-train``,
  ``svhn-test`` (read from ``--data-root`` in the layouts of ``robustrep.data.cifar`` and
  ``robustrep.data.svhn``);
- a GAN run folder (``config.json`` and ``checkpoints/``): ``--num`` samples of its G-EMA, drawn
  with the fixed evaluation seed of ``gan eval``;
- a stylegan2-ada network pickle (``.pkl``, read without running its code): ``--num`` samples of
  its G_ema as above, with noise drawn as stylegan2-ada's metrics draw it (``noise_mode``
  random) and, for a conditional network, classes drawn uniformly (the reference draws them from
  the dataset's labels: the same distribution on a class-balanced set such as CIFAR-10);
- an image folder (``ROOT/<class>/<image>`` or flat, as ``imagefolder`` data), each image
  centre-cropped to its shorter side, which all must share (images of several sizes are refused
  before any feature is computed, ``fid_sources.one_side``), or resized on the shorter side to
  ``--resolution`` and centre-cropped;
- a stylegan2-ada dataset ``.zip`` (``robustrep.data.zipdata``), read as a folder;
- a statistics ``.npz`` holding ``mu`` ``[D]`` and ``sigma`` ``[D, D]`` (pytorch-fid's
  ``--save-stats``, TTUR and clean-fid write them), torch-fidelity's cached statistics (a
  ``.pt`` of ``mu``/``sigma``) or stylegan2-ada's (a ``.pkl`` of its ``FeatureStats``, the
  covariance rescaled to the unbiased one; ``stats_files.feature_stats_pickle``; a ``.pkl`` of
  ``mu``/``sigma`` too): FID only, no KID or precision/recall, except from a stylegan2-ada
  cache that kept the features (``capture_all``: ``all_features``), which is read as those
  features, and scored as any side's;
- a samples file (:func:`~robustrep.tasks.gan.fid_sources.samples_to_unit`): ``.pt`` (a
  tensor, or a dict with ``samples`` as ``gan sample --pt`` writes; read with
  ``weights_only=True``; a ``gan train`` checkpoint is refused naming ``gan eval`` and
  ``gan sample``), ``.npy``, or an ``.npz`` with one array.

A is the set judged and B the reference (torch-fidelity's ``--input1``/``--input2`` order):
precision is the share of A inside B's manifold, recall the share of B inside A's; FID and KID
are symmetric. Image sides of two sizes are compared at the larger (channels too: grey is
repeated to RGB), the smaller resized up and the record saying ``resized_to``, so the order of A
and B does not change FID or KID. Features come from one network for both sides,
``--fid-features`` as in ``gan train`` (``tasks/gan/feature_nets.py``), and everything after the
features (streamed float64 statistics, FID, KID, precision/recall, their recorded convention)
is ``gan eval``'s code.

``--save-stats FILE.npz`` writes A's statistics (``mu`` float64 ``[D]``, ``sigma`` the unbiased
covariance ``[D, D]``, as pytorch-fid's ``np.cov``) plus ``fid_features``, ``fid_convention`` and
``num``, which pytorch-fid ignores; ``np.load(FILE)['mu']`` reads it. An existing FILE is
replaced only with ``--force`` (as ``gan sample``'s files; written whole, then renamed into
place), and never when it is A or B. A FILE that cannot be written (another process's file made
there meanwhile, a full disk) is one line and exit 2 after the scores are printed, as otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from robustrep.metrics import frechet_distance
from robustrep.tasks.common.errors import DataError, UserError, WriteFailed
from robustrep.tasks.common.output_paths import check_output_file
from robustrep.tasks.common.runfiles import write_atomic
from robustrep.tasks.gan.evaluate import (cached_features, format_table, score_features,
                                          stream_features)
from robustrep.tasks.gan.feature_nets import RunImages, build_extractor, fid_features_choice
from robustrep.tasks.gan.fid_sources import (BATCH, REFERENCES, Source, is_run, npz_source,
                                              open_source)
from robustrep.tasks.gan.stats_files import PickleNotRead, feature_stats_pickle


# a record's fid_features (what a saved statistics file names) -> the --fid-features choice
RECORDED = {"inception-tf": "inception"}


def feature_choice(args, sources: list[Source]) -> str:
    """``--fid-features``, else what a source names (a stats file's or run's network, the
    digits reference's), else ``inception``."""
    named = [RECORDED.get(s.fid_features, s.fid_features) for s in sources
             if s.fid_features is not None]
    choice = args.fid_features or (named[0] if named else "inception")
    return fid_features_choice(SimpleNamespace(fid_features=choice, dataset=None))


def side_features(source: Source, net, info: dict, shape, device: torch.device,
                  show_progress: bool = True) -> dict | None:
    """``{"stats", "feats"}`` of an image source (cached for named references) or of the
    features a statistics file kept (:func:`kept_features`); None for other statistics."""
    if source.stats is not None:
        return kept_features(source, device)
    desc = f"features of {source.spec}" if show_progress else None
    if source.cache_key is None:
        return stream_features(net, source.batches(), device, desc=desc, total=source.count)
    key = {**source.cache_key, "shape": list(shape),
           "extractor": {k: v for k, v in info.items() if k != "cache"}}
    return cached_features("fid-reference", key, net, source.batches, device, desc=desc,
                           total=source.count)


def kept_features(source: Source, device: torch.device) -> dict | None:
    """``{"stats", "feats"}`` of the features a statistics file kept (stylegan2-ada's
    ``capture_all`` cache), streamed as a network's features are (:func:`stream_features`:
    float64 statistics, the same random subset kept for KID and precision/recall); None for
    statistics alone."""
    if source.features is None:
        return None
    return stream_features(nn.Identity(), source.features.split(BATCH), device)


def mean_cov(source: Source, feats: dict | None) -> tuple[Any, Any]:
    return source.stats if feats is None else feats["stats"].mean_cov()


def check_dims(sources: list[Source], dim: int, network: str,
               convention: str | None = None) -> None:
    """A statistics file must have the feature network's dimension and, when it names its
    network and convention (files ``--save-stats`` wrote), be that network in that convention
    (else the sides are not comparable: the digits network of another image size, say)."""
    for source in sources:
        if None not in (source.stats, source.fid_convention, convention) and \
                source.fid_convention != convention:
            raise DataError(f"{source.spec} holds statistics in the convention "
                            f"{source.fid_convention!r}, but the other side is computed in "
                            f"{convention!r}: FIDs compare only within one network and "
                            f"convention (recompute the statistics with --save-stats)")
        named = source.fid_features
        if source.stats is not None and named is not None and named != network:
            raise DataError(f"{source.spec} holds statistics of the feature network {named}, "
                            f"but the other side is computed with {network}: FIDs compare only "
                            f"within one network and convention (choose it with "
                            f"--fid-features)")
        if source.stats is not None and source.stats[0].shape[0] != dim:
            raise DataError(f"{source.spec} holds {source.stats[0].shape[0]}-d statistics but "
                            f"the feature network {network} gives {dim}-d features: they come "
                            f"from different networks (choose one with --fid-features)")


def _check_save_stats(args) -> None:
    """``--save-stats``, before any work: an ``.npz``, never over an existing file unless
    ``--force`` (as ``gan sample``'s files), never over A or B, which it is computed from."""
    if args.force and args.save_stats is None:
        raise UserError("--force overwrites an existing --save-stats file, and no --save-stats "
                        "is given: drop it")
    if args.save_stats is not None:
        out = Path(args.save_stats).expanduser()
        if out.suffix != ".npz":
            raise UserError(f"--save-stats {out}: give a path ending in .npz")
        _check_not_an_input(out, args)
        if out.exists() and not args.force:
            raise UserError(f"--save-stats {out} already exists; pass --force to overwrite it "
                            f"or choose another name")
        check_output_file(out, "--save-stats")
    if args.b is None and args.save_stats is None:
        raise UserError("give two sets to compare (A B), or one with --save-stats FILE.npz")


def _check_not_an_input(out: Path, args) -> None:
    """``--force`` would replace A or B itself (a samples ``.npz``) with its statistics."""
    for side, spec in (("A", args.a), ("B", args.b)):
        if spec is None or spec in REFERENCES or not out.exists():
            continue
        given = Path(spec).expanduser()
        if given.exists() and os.path.samefile(given, out):
            raise UserError(f"--save-stats {out} is {side} ({spec}), which the statistics are "
                            f"computed from; choose another name")


def _statistics_only(args, sources: list[Source]) -> dict[str, str]:
    """The record's ``fid_features`` and ``fid_convention`` of two statistics files: what they
    name (refused when they differ, or differ from ``--fid-features``; :func:`named_by`);
    ``--inception-weights`` acts on nothing here."""
    if args.inception_weights is not None:
        raise UserError("--inception-weights loads the network that computes features, and A "
                        "and B are both statistics files (their mu and sigma are compared as "
                        "saved): drop it")
    recorded = {RECORDED.get(s.fid_features, s.fid_features) for s in sources} - {None}
    if args.fid_features is not None and recorded - {args.fid_features}:
        raise DataError(f"{args.a} and {args.b} hold statistics of {', '.join(sorted(recorded))}"
                        f", not of --fid-features {args.fid_features}: FIDs compare only within "
                        f"one network (drop --fid-features)")
    dims = [s.stats[0].shape[0] for s in sources]
    if dims[0] != dims[1]:
        raise DataError(f"{args.a} holds {dims[0]}-d statistics and {args.b} {dims[1]}-d: they "
                        "come from different feature networks")
    named = {s.fid_features for s in sources} - {None}
    if len(named) > 1:
        raise DataError(f"{args.a} and {args.b} hold statistics of different feature networks "
                        f"({', '.join(sorted(named))}); FIDs compare only within one network "
                        "and convention")
    conventions = {s.fid_convention for s in sources} - {None}
    if len(conventions) > 1:  # one network, images fed otherwise (another size, grey or RGB)
        raise DataError(f"{args.a} and {args.b} hold statistics in different conventions "
                        f"({'; '.join(sorted(conventions))}); FIDs compare only within one "
                        f"network and convention (recompute one with --save-stats)")
    return {key: named_by(sources, key, next(iter(values), None))
            for key, values in (("fid_features", named), ("fid_convention", conventions))}


def named_by(sources: list[Source], key: str, value: str | None) -> str:
    """The record's ``key`` (``fid_features``, ``fid_convention``): ``value``, which the images
    were fed to or the statistics files name, and the sides whose statistics file names none
    (pytorch-fid's bare ``mu``/``sigma``, stylegan2-ada's cache): read as in it, they may be in
    another (the record said ``TF-FID`` alone of a pytorch-fid file against TF-FID features)."""
    if value is None:
        return "named by neither statistics file"
    sides = "AB"[:len(sources)]
    bare = [i for i, s in enumerate(sources) if s.stats is not None and getattr(s, key) is None]
    if not bare:
        return value
    named = " and ".join(sides[i] for i in range(len(sources)) if i not in bare)
    return f"{value} for {named}; {' and '.join(sides[i] for i in bare)}'s statistics name none"


def _network(args, sources: list[Source], shape, device: torch.device) -> tuple[Any, dict]:
    """The feature network for images of ``shape`` (every image side is adapted to it), checked
    against the statistics files before any feature is computed."""
    choice = feature_choice(args, sources)
    if choice == "digits":
        _check_digits_side(sources, shape[-1])
    for source in sources:  # before the network is built (or its weights fetched)
        named = RECORDED.get(source.fid_features, source.fid_features)
        if args.fid_features is not None and source.stats is not None and \
                named not in (None, choice):
            raise DataError(f"{source.spec} holds statistics of the feature network "
                            f"{source.fid_features}, but --fid-features {choice} was asked: "
                            f"FIDs compare only within one network (drop --fid-features)")
    cfg = SimpleNamespace(fid_features=choice, dataset=None,
                          inception_weights=args.inception_weights)
    try:
        net, info = build_extractor(cfg, SimpleNamespace(shape=shape), device,
                                    show_progress=not args.quiet)
    except FileNotFoundError as err:
        chosen = args.fid_features is not None or any(s.stats is not None for s in sources)
        other = ("" if chosen else  # statistics files fix the network
                 "; or score both sides on another network with --fid-features (digits, "
                 "run:CLASSIFY_RUN; not comparable with Inception FIDs)")
        raise UserError(f"{err}{other}") from None
    net = RunImages(net, shape[0], shape[-1]) if choice == "digits" else net
    with torch.no_grad():
        dim = net(torch.zeros(2, *shape, device=device)).shape[1]
    check_dims(sources, dim, info["fid_features"], info["fid_convention"])
    return net, info


# DigitsFeatureNet halves its maps twice (2x2 max-pools): a side below 4 pools to nothing
DIGITS_MIN_SIDE = 4


def _check_digits_side(sources: list[Source], side: int) -> None:
    """Images too small for the digits network, refused before it is trained or read for that
    size (a 3x3 set was torch's "Output size is too small" traceback)."""
    if side >= DIGITS_MIN_SIDE:
        return
    names = " and ".join(s.spec for s in sources if s.stats is None)
    resizable = any(Path(s.spec).suffix.lower() == ".zip" or Path(s.spec).is_dir()
                    for s in sources if s.stats is None)
    advice = (f"give --resolution {DIGITS_MIN_SIDE} or more to resize a folder's or zip's "
              f"images up" if resizable
              else f"resize the samples to {DIGITS_MIN_SIDE}x{DIGITS_MIN_SIDE} or more")
    raise DataError(f"{names}: images compared at {side}x{side}, too small for the digits "
                    f"feature network, which takes {DIGITS_MIN_SIDE}x{DIGITS_MIN_SIDE} or larger "
                    f"(it halves them twice); {advice}, or score them with --fid-features "
                    f"inception")


def _check_options_act(args) -> None:
    """``--num`` draws from a run, ``--resolution`` sizes a folder or zip and ``--data-root`` is
    where a named reference other than the built-in digits is read from: given where no side is
    one, they were ignored without a word."""
    from robustrep.tasks.gan.config import FidOptions
    readers = [name for name, (dataset, _) in REFERENCES.items() if dataset != "digits"]
    if args.data_root is not None and not {args.a, args.b} & set(readers):
        raise UserError(f"--data-root {args.data_root} is where the named references "
                        f"{', '.join(readers)} are read from, and neither A nor B is one: drop "
                        f"it")
    paths = [Path(s).expanduser() for s in (args.a, args.b) if s is not None and
             s not in REFERENCES]
    runs = [p for p in paths if is_run(p) or p.suffix.lower() == ".pkl"]
    images = [p for p in paths if p.suffix.lower() == ".zip" or (p.is_dir() and p not in runs)]
    if args.num != FidOptions.__dataclass_fields__["num"].default and \
            all(p.suffix.lower() == ".pkl" and _holds_statistics(p) for p in runs):
        raise UserError(f"--num {args.num} sets the samples drawn from a GAN run or network "
                        f"pickle, and neither A nor B is one: drop it (a file or folder is read "
                        f"whole)")
    arrays = [p for p in paths if p.suffix.lower() in (".pt", ".npy", ".npz")]
    if args.range is not None and not arrays:
        raise UserError(f"--range {args.range} is the value range of float samples in a "
                        f".pt/.npy/.npz file, and neither A nor B is one: drop it (images are "
                        f"0..255)")
    if args.resolution is not None and not images:
        raise UserError(f"--resolution {args.resolution} sizes the images of a folder or zip, and "
                        f"neither A nor B is one: drop it")


def _holds_statistics(path: Path) -> bool:
    """A ``.pkl`` of stylegan2-ada's cached statistics, not a network: nothing to draw from
    (read only when ``--num`` is given; a network pickle is told apart at its first global)."""
    if not path.is_file():  # missing: open_source names it
        return False
    try:
        return feature_stats_pickle(str(path), path) is not None
    except PickleNotRead:  # damaged, or neither network nor statistics: open_source says so
        return False
    except DataError:  # statistics, if unusable ones: open_source says why
        return True


def compare(args) -> dict[str, Any]:
    """Open A (and B), compute features on one network, return the metrics record."""
    _check_save_stats(args)
    _check_options_act(args)
    sources = [open_source(args.a, args)] + ([] if args.b is None else [open_source(args.b, args)])
    if args.save_stats is not None and sources[0].stats is not None:
        raise UserError(f"--save-stats writes A's statistics, and {args.a} already is a "
                        "statistics file")
    record: dict[str, Any] = {"a": sources[0].what}
    if len(sources) > 1:
        record["b"] = sources[1].what
    feats: list[dict | None] = [None] * len(sources)
    info: dict[str, Any] = {}
    images = [s for s in sources if s.stats is None]
    if images:
        # one size whatever the order (FID and KID are symmetric): the larger side's, the
        # smaller images resized up to it
        shape = tuple(max(s.shape[i] for s in images) for i in range(3))
        net, info = _network(args, sources, shape, args.torch_device)
        _note_unnamed_statistics(args, sources, info)
        feats, saved, failed = _features_saving(args, sources, net, info, shape)
        record.update({key: named_by(sources, key, info[key])
                       for key in ("fid_features", "fid_convention")})
        if len({tuple(s.shape) for s in images}) > 1:
            record["resized_to"] = f"{shape[0]}x{shape[1]}x{shape[2]}"
    else:  # A a statistics file: no --save-stats (refused above)
        record.update(_statistics_only(args, sources))
        feats = [kept_features(s, args.torch_device) for s in sources]
        saved, failed = None, None
    if len(sources) > 1:
        record.update(_scores(sources, feats, not getattr(args, "quiet", False)))
    for i, f in enumerate(feats):
        if f is not None:
            record[f"num_{'ab'[i]}"] = f["stats"].num
    if saved is not None:
        record["save_stats"] = saved
    if failed is not None:
        print(format_table(record), flush=True)  # before the error line on stderr
        raise failed
    return record


def _features_saving(args, sources: list[Source], net, info: dict, shape
                     ) -> tuple[list[dict | None], str | None, WriteFailed | None]:
    """Each side's features, ``--save-stats`` written as soon as A's exist (:func:`_saved`): a
    stop while B's features or KID were computed (minutes with Inception on a CPU) had lost
    them."""
    feats: list[dict | None] = []
    saved = failed = None
    for source in sources:
        feats.append(side_features(source, net, info, shape, args.torch_device,
                                   not getattr(args, "quiet", False)))
        if len(feats) == 1:
            saved, failed = _saved(args, feats[0], info)
    return feats, saved, failed


def _saved(args, feats: dict | None, info: dict) -> tuple[str | None, WriteFailed | None]:
    """``--save-stats`` written (its path), or why it could not be (a file another process
    wrote there meanwhile, a full disk): the caller prints the record it computes, as when the
    file is written, and then the line (the process that lost the race to a new file had
    computed the scores, and printed none of them)."""
    if args.save_stats is None:
        return None, None
    try:
        saved = str(save_stats(args.save_stats, feats, info, args.force))
    except WriteFailed as err:
        return None, err
    from robustrep.tasks.common.stops import stop_note
    # a stop from here on (B's features, KID): the general line said "does the work again"
    stop_note(f"--save-stats {saved} was written whole, the scores not; the same command again "
              f"needs --force to write it again")
    return saved, None


def _note_unnamed_statistics(args, sources: list[Source], info: dict) -> None:
    """A statistics file that names no network (a bare ``mu``/``sigma`` .npz: pytorch-fid's
    ``--save-stats``, published statistics) is scored against the network chosen by default:
    said, since pytorch-fid's network resizes otherwise than TF-FID's and the FID moves."""
    if args.fid_features is not None:
        return
    for source in sources:
        if source.stats is not None and source.fid_features is None:
            print(f"note: {source.spec} holds mu and sigma that name no network or convention "
                  f"(a pytorch-fid --save-stats file, or published statistics): the other "
                  f"side was computed with {info['fid_features']} ({info['fid_convention']}); "
                  f"a file pytorch-fid wrote is compared with --fid-features "
                  f"inception-pytorch-fid", file=sys.stderr)


def _scores(sources: list[Source], feats: list[dict | None],
            show_progress: bool = False) -> dict[str, Any]:
    if all(f is not None for f in feats):
        # B is the reference ("real") side, A the set judged ("fake") side
        scores = score_features(feats[1], feats[0], show_progress=show_progress)
        return {"fid": scores.pop("fid"), **scores}
    # a statistics file's arrays are on the CPU, the other side's features where the net ran
    stats = [torch.as_tensor(t).cpu() for s, f in zip(sources, feats) for t in mean_cov(s, f)]
    return {"fid": frechet_distance(*stats),
            "kid": "n/a (a side is statistics only)"}


def save_stats(path: str, feats: dict, info: dict, replace: bool = False) -> Path:
    """A's statistics as pytorch-fid's ``.npz`` (``mu``, ``sigma``) plus the network's name; a
    new file only unless ``replace`` (--force): one written there meanwhile is kept."""
    mu, sigma = feats["stats"].mean_cov()
    arrays = {"mu": mu.cpu().numpy(), "sigma": sigma.cpu().numpy(),
              "fid_features": np.array(info["fid_features"]),
              "fid_convention": np.array(info["fid_convention"]),
              "num": np.array(feats["stats"].num)}
    return write_atomic(Path(path).expanduser(), lambda handle: np.savez(handle, **arrays),
                        replace)


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of a statistics ``.npz`` (the check :func:`compare` applies)."""
    source = npz_source(str(path), Path(path), None)
    if source.stats is None:
        raise DataError(f"{path} holds samples, not statistics (mu, sigma)")
    return source.stats


