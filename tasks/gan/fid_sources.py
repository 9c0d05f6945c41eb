"""The image sets ``robustrep gan fid`` compares (:mod:`robustrep.tasks.gan.fid` lists them):
each spec becomes a :class:`Source`, given statistics or a callable streaming image batches in
[0, 1], checked as it is opened (samples files' layout and range, folders' and runs' image
counts; statistics files' shapes and covariance in :mod:`robustrep.tasks.gan.stats_files`).

Statistics come as pytorch-fid's ``.npz`` (``mu``, ``sigma``; also TTUR's, clean-fid's, and
``gan fid --save-stats``'s), as torch-fidelity's cache (``torch.save`` of ``{"mu", "sigma"}``
numpy arrays, ``torch_fidelity/metric_fid.py``; a ``.pt``) or as stylegan2-ada's metric cache
(``metrics/metric_utils.py`` ``FeatureStats.save``; a ``.pkl``). This module tells them from
samples and networks (:func:`npz_source`, :func:`torch_stats_or_samples`, :func:`open_source`);
:mod:`~robustrep.tasks.gan.stats_files` reads the pickles and checks every statistics file, an
idea of its own. The last two are pickles: they are read by the array unpickler
(:mod:`robustrep.safe_pickle`), which rebuilds arrays and plain values and runs nothing."""

from __future__ import annotations

import io
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustrep.safe_pickle import ArrayUnpickler
from robustrep.tasks.common.checkpoint import safe_load
from robustrep.tasks.common.errors import DataError, UserError, program_advice, report_skipped
from robustrep.tasks.gan.evaluate import EVAL_SEED
from robustrep.tasks.gan.feature_nets import fid_features_choice, files_fingerprint
from robustrep.tasks.gan.stats_files import as_array, feature_stats_pickle, stats_source

# name -> (dataset, train split); ``digits`` is all 1,797 images, as gan train's data.
REFERENCES = {"digits": ("digits", None), "cifar10-train": ("cifar10", True),
              "cifar10-test": ("cifar10", False), "cifar100-train": ("cifar100", True),
              "cifar100-test": ("cifar100", False), "svhn-train": ("svhn", True),
              "svhn-test": ("svhn", False)}
ACCEPTED = ("an image folder, a dataset .zip, a GAN run folder, a stylegan2-ada network pickle "
            "(.pkl), statistics (a .npz with mu and sigma, torch-fidelity's .pt, stylegan2-ada's "
            ".pkl or a .pkl of mu and sigma), "
            "a samples file (.pt, .npy, .npz) or a named reference (" + ", ".join(REFERENCES)
            + ")")
RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}
BATCH = 250


@dataclass
class Source:
    """One side of the comparison: given statistics, or images to compute features of.

    Attributes:
        spec: what the user typed.
        what: a description for the printed table.
        stats: ``(mu, sigma)`` from a statistics file, else None.
        features: the feature vectors ``[N, D]`` a statistics file kept (stylegan2-ada's cache
            with ``capture_all``), else None: the side's FID, KID and precision/recall are
            computed from them as from any side's features (``stats`` are their mean and
            covariance, for the checks every statistics file passes).
        batches: a callable returning an iterator of image batches ``[B, C, H, W]`` in [0, 1].
        shape: one image's ``(C, H, W)``, or None for statistics.
        fid_features: the feature network the source names (a stats file's, a run's), if any.
        fid_convention: the input convention a statistics file names, if any.
        cache_key: set for named references, whose features are cached (for those read from
            files, the files' sizes and modification times are part of it).
        count: how many images ``batches`` gives, for the progress shown (None: not known).
    """

    spec: str
    what: str
    stats: tuple[np.ndarray, np.ndarray] | None = None
    features: Tensor | None = None
    batches: Callable[[], Iterator[Tensor]] | None = None
    shape: tuple[int, ...] | None = None
    fid_features: str | None = None
    fid_convention: str | None = None
    cache_key: dict[str, Any] | None = field(default=None)
    count: int | None = None


# ---------------------------------------------------------------------------------------------
# samples files


def _layout(shape: tuple[int, ...], where: str) -> str:
    """``NCHW``, ``NHWC`` or ``NHW`` for an array of ``shape``; DataError when it is not clear."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 2 and shape[1] == 2:  # what `gan sample --pt` writes for a mixture run
        raise DataError(f"{where}: holds 2-D points (shape {shape}), a ring/grid run's samples; "
                        f"gan fid compares images (gan eval RUN scores a mixture run's modes)")
    if len(shape) == 2:
        raise DataError(_features_given(shape, where))
    if len(shape) != 4:
        raise DataError(f"{where}: samples must be [N, C, H, W], [N, H, W, C] or [N, H, W] "
                        f"(C = 1 or 3), got shape {shape}")
    first, last = shape[1] in (1, 3), shape[3] in (1, 3)
    if first == last:
        raise DataError(f"{where}: cannot tell the channel axis of shape {shape} (accepted: "
                        f"[N, C, H, W] or [N, H, W, C] with exactly one of C in 1 or 3)")
    return "NCHW" if first else "NHWC"


def _features_given(shape: tuple[int, ...], where: str) -> str:
    """The refusal of feature vectors ``[N, D]`` given as samples: torch-fidelity caches each
    input's features beside its statistics (``NAME-features-2048.pt``,
    ``NAME-stat-fid-2048.pt``), and only the latter is a side gan fid reads."""
    name = Path(where).name
    if "-features-" in name:
        stats = Path(where).with_name(name.replace("-features-", "-stat-fid-"))
        give = f"give torch-fidelity's statistics file of the same input, {stats}"
    else:
        give = ("give their statistics as an .npz of mu and sigma (np.savez(FILE, mu=f.mean(0), "
                "sigma=np.cov(f, rowvar=False)))")
    return (f"{where}: holds feature vectors (shape {shape}, [N, D]), not images; gan fid reads "
            f"features as statistics: {give}")


def samples_to_unit(array: Tensor, where: str, declared: str | None = None
                    ) -> tuple[Tensor, str]:
    """Samples ``[N, C, H, W]``, ``[N, H, W, C]`` or ``[N, H, W]`` as float ``[N, C, H, W]`` in
    [0, 1], and the range they were read in (a :data:`RANGES` key), which the side's
    description names: a tanh generator's samples without a negative value read as [0, 1].

    Value ranges: ``uint8`` is 0..255; a float array takes ``declared`` (``0,1``, ``-1,1`` or
    ``0,255``: ``--range``, or the ``range`` a ``gan sample --pt`` file records), else its values
    decide: all in [0, 1] is [0, 1] (pytorch-fid's input), some negative and all in [-1, 1] is
    [-1, 1] (a generator's tanh). Anything else (floats beyond [-1, 1] undeclared, values outside
    the declared range, other integer types) is refused.
    """
    layout = _layout(tuple(array.shape), where)
    x = array.unsqueeze(1) if layout == "NHW" else array
    x = x.permute(0, 3, 1, 2) if layout == "NHWC" else x
    if x.dtype == torch.uint8:
        if declared not in (None, "0,255"):  # 8-bit values are 0..255 whatever was declared
            raise DataError(f"{where}: samples are uint8 (0..255), not the declared range "
                            f"{declared}; drop --range (it is for float samples)")
        return x.float() / 255.0, "0,255"
    if not x.is_floating_point():
        raise DataError(f"{where}: samples must be uint8 (0..255) or floating point, got "
                        f"{x.dtype}")
    x = x.float()
    finite = torch.isfinite(x)
    if not bool(finite.all()):  # min/max of NaN say nothing of the range; name the samples
        raise DataError(f"{where}: {int((~finite).flatten(1).any(1).sum())} of {len(x)} "
                        f"samples hold NaN or inf; a diverged generator's samples cannot be "
                        f"scored")
    lo, hi = float(x.min()), float(x.max())
    if declared is None:
        if lo >= 0.0 and hi <= 1.0:
            declared = "0,1"
        elif lo >= -1.0 and hi <= 1.0:
            declared = "-1,1"
        else:
            raise DataError(f"{where}: float samples span [{lo:.3g}, {hi:.3g}], neither [0, 1] "
                            f"nor [-1, 1]; pass --range 0,255 if they are 0..255 values")
    low, high = RANGES[declared]
    if lo < low - 1e-6 or hi > high + 1e-6:
        raise DataError(f"{where}: samples span [{lo:.3g}, {hi:.3g}], outside the declared "
                        f"range [{low:g}, {high:g}]")
    return (x - low) / (high - low), declared


def _range_of(value: Any, where: str) -> str | None:
    """A ``gan sample --pt`` file's ``range`` entry (``"[-1, 1]"``) as a RANGES key."""
    if value is None:
        return None
    key = str(value).strip("[] ").replace(" ", "")
    if key not in RANGES:
        raise DataError(f"{where}: 'range' must be one of [0, 1], [-1, 1], [0, 255]; "
                        f"got {value!r}")
    return key


def _tensor_source(spec: str, data: Any, declared: str | None, where: str) -> Source:
    if isinstance(data, dict):
        if "samples" not in data:
            raise DataError(f"{where}: a dict of samples needs the key 'samples' (as gan sample "
                            f"--pt writes); found keys {sorted(map(str, data))}")
        declared = declared or _range_of(data.get("range"), where)
        data = data["samples"]
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if not isinstance(data, Tensor):
        raise DataError(f"{where}: expected a tensor or array of samples, got "
                        f"{type(data).__name__}")
    # the layout first: a [1, N, C, H, W] array is no "1 sample"; then the count, before the
    # range check, which needs values
    _layout(tuple(data.shape), where)
    _check_two(data.shape[0], where)
    images, read = samples_to_unit(data, where, declared)
    how = (f"{str(data.dtype).replace('torch.', '')} values read as "
           f"[{read.replace(',', ', ')}]" +
           ("" if declared or data.dtype == torch.uint8 else " (no --range: from their values)"))
    return Source(spec, f"{len(images)} samples from {where}, {how}",
                  shape=tuple(images.shape[1:]),
                  batches=lambda: iter(images.split(BATCH)), count=len(images))


def npz_source(spec: str, path: Path, declared: str | None) -> Source:
    if not zipfile.is_zipfile(path):  # np.load would read it as a pickle, advising allow_pickle
        raise DataError(f"{path} is not a readable .npz file (not a zip of .npy arrays, as "
                        f"numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise _numpy_error(path, ".npz file", err) from None
    if "mu" in arrays or "sigma" in arrays:
        return stats_source(spec, path, arrays)
    if len(arrays) != 1:
        raise DataError(f"{path}: an .npz must hold 'mu' and 'sigma' (statistics) or exactly "
                        f"one array of samples; found {sorted(arrays) or 'nothing'}")
    return _tensor_source(spec, next(iter(arrays.values())), declared, str(path))


def _numpy_error(path: Path, what: str, err: Exception) -> DataError:
    """numpy's refusal to load ``path`` as one line: object arrays are refused as pickles, not
    with numpy's advice to allow them."""
    if "pickle" in str(err):
        return DataError(f"{path} holds pickled objects, which are never loaded (code could "
                         f"run); save plain numeric arrays")
    return DataError(f"{path} is not a readable {what} ({err})")


PT_ADVICE = ("save the samples as one tensor [N, C, H, W] (torch.save(x, FILE)), or a dict "
             "with 'samples' as gan sample --pt writes")
# a damaged samples file is written again, not swapped for "another checkpoint" (safe_load's)
PT_DAMAGED = ("write it again (robustrep gan sample RUN --pt FILE.pt, or torch.save(x, FILE) of "
              "your own samples)")


def torch_stats_or_samples(spec: str, path: Path, declared: str | None) -> Source:
    """A ``.pt`` file: statistics (a dict with ``mu``/``sigma``, tensors or torch-fidelity's
    numpy arrays) or samples (:func:`_tensor_source`)."""
    data = _numpy_archive(path)
    if data is None:  # the default advice, a file of this robustrep, fits no user's samples
        data = safe_load(path, "samples file", advice=PT_ADVICE, damaged=PT_DAMAGED)
    if isinstance(data, dict) and ("mu" in data or "sigma" in data):
        arrays = {str(k): as_array(v) for k, v in data.items()}
        return stats_source(spec, path, arrays)
    _refuse_checkpoint(path, data)
    return _tensor_source(spec, data, declared, str(path))


def _refuse_checkpoint(path: Path, data: Any) -> None:
    """A robustrep training checkpoint given as samples (stylegan2-ada's metrics take a
    snapshot file, ``calc_metrics.py --network``), refused with the commands that score it:
    it was "a dict of samples needs the key 'samples'", advice for a samples file."""
    if not isinstance(data, dict) or "samples" in data or not {"config", "step"} <= set(data):
        return
    step = data["step"]
    if "G" not in data:  # classify train's (its weights are "model")
        what = "a classify train" if "model" in data else "a robustrep training"
        raise DataError(f"{path} is {what} checkpoint (step {step}), not samples: gan fid "
                        f"compares images (a classify run gives the features with "
                        f"--fid-features run:RUN)")
    where = path if path.parent.name == "checkpoints" else path.absolute()
    run, name, which = where.parent.parent, where.name, ""
    if where.parent.name != "checkpoints" or not is_run(run):  # copied out of its run
        run, name, which = "RUN", str(path), " (RUN: the run folder it was saved in)"
    raise DataError(f"{path} is a gan train checkpoint (step {step}), not samples: score it with "
                    f"robustrep gan eval {run} --checkpoint {name}, or draw samples with "
                    f"robustrep gan sample {run} --checkpoint {name} --pt FILE.pt and give "
                    f"FILE.pt to gan fid{which}")


def _numpy_archive(path: Path) -> Any:
    """The contents of a ``torch.save`` archive that holds no tensor, only numpy arrays and plain
    values (torch-fidelity's statistics cache), which the safe ``torch.load`` refuses as Python
    objects; None for any other file, which :func:`safe_load` then reads or refuses."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
            if len(names) != 1:
                return None
            payload = io.BytesIO(archive.read(names[0]))
        return ArrayUnpickler(payload, what="a statistics file").load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, OSError, EOFError, ValueError,
            TypeError, AttributeError, IndexError, KeyError, UnicodeDecodeError):
        return None  # a tensor's storage (a persistent id), another global, damage


# ---------------------------------------------------------------------------------------------
# folders, runs, references


def _check_two(count: int, where: str) -> None:
    """A mean and a covariance need two images at least."""
    if count < 2:
        raise DataError(f"{where}: FID needs at least 2 samples, got {count}")


def _dataset_batches(dataset) -> Iterator[Tensor]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=0)
    return (images for images, _ in loader)


def _folder_source(spec: str, path: Path, resolution: int | None) -> Source:
    from robustrep.data.local import image_folder

    try:
        # every file is opened (verify) before any is read for its size, so an unreadable or
        # dangling image is named as unreadable, not with PIL's or the OS's error
        dataset = image_folder(path, resolution or 1, verify=True)
        if resolution is None:  # the side the images share: generated sets keep their size
            files = [s[0] if isinstance(s, tuple) else s for s in dataset.samples]
            resolution = one_side(f"image folder {path}",
                                  ((str(f), _header_size(f)) for f in files))
            dataset = image_folder(path, resolution)  # the files just verified, at that side
        report_skipped(dataset)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(program_advice(err, skip_option=False)) from None  # no such option
    _check_two(len(dataset), f"image folder {path}")
    return Source(spec, f"image folder {path} ({len(dataset)} images at {resolution}x"
                        f"{resolution})", shape=(3, resolution, resolution),
                  batches=lambda: _dataset_batches(dataset), count=len(dataset))


def _header_size(source: Any) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header: PIL decodes no pixel for ``size``
    (about 0.1 ms an image); a zip's members: ``robustrep.data.zipdata.member_sizes``."""
    from robustrep.data.images import open_image

    with open_image(source) as image:
        return image.size


def one_side(where: str, sizes: Iterable[tuple[str, tuple[int, int]]]) -> int:
    """The side a folder's or zip's images are compared at without ``--resolution``: their
    shorter side (a non-square image is centre-cropped to it), which all of them must share.

    Images of several sides are refused, naming the first image and the first of another
    side, before any feature is computed: they were resized to the first image's side, so
    one 8x8 thumbnail sorted first among 256x256 images gave the FID of thumbnails, without a
    word. torch-fidelity and pytorch-fid refuse such a folder too (its images do not batch);
    ``--resolution`` resizes every image on purpose, as clean-fid resizes all to one size."""
    counts: dict[int, int] = {}
    first = other = None
    for name, size in sizes:
        side = min(size)
        counts[side] = counts.get(side, 0) + 1
        first = first or (name, size)
        if other is None and side != min(first[1]):
            other = (name, size)
    if other is None:
        return min(first[1])
    common = max(counts, key=counts.get)
    (name0, (w0, h0)), (name1, (w1, h1)) = first, other
    raise DataError(f"{where} holds images of several sizes ({name0} is {w0}x{h0}, {name1} "
                    f"{w1}x{h1}; {counts[common]} of the {sum(counts.values())} images have "
                    f"the side {common}); FID compares one size, so pass --resolution N "
                    f"(each image's shorter side resized to N, then centre-cropped) or give "
                    f"images of one size")


def _run_source(spec: str, path: Path, num: int, device: torch.device) -> Source:
    from robustrep.tasks.gan.data import to_unit_range
    from robustrep.tasks.gan.models import generate_batches
    from robustrep.tasks.gan.sample import load_generator, sample_shape

    G, cfg, step, dev = load_generator(path, device=str(device), choose=False)  # no --checkpoint
    if cfg.is_points:
        raise UserError(f"{path} is a 2-D mixture run; gan fid compares images (use gan eval "
                        f"for its mode statistics)")
    batches = lambda: (to_unit_range(b) for b in generate_batches(G, num, dev, EVAL_SEED))
    return Source(spec, f"GAN run {path} (G-EMA, step {step}, {num} samples)",
                  shape=sample_shape(cfg), batches=batches,
                  fid_features=fid_features_choice(cfg), count=num)


def _pickle_source(spec: str, path: Path, num: int, device: torch.device) -> Source:
    from robustrep.tasks.gan.data import to_unit_range
    from robustrep.tasks.gan.models import generate_batches
    from robustrep.tasks.gan.pickles import pickle_generator

    G = pickle_generator(path, device)
    batches = lambda: (to_unit_range(b) for b in generate_batches(G, num, device, EVAL_SEED))
    classes = f", classes drawn uniformly from {G.c_dim}" if G.c_dim else ""
    return Source(spec, f"network pickle {path} (G_ema, {num} samples{classes})",
                  shape=(G.img_channels, G.img_resolution, G.img_resolution), batches=batches,
                  count=num)


def _reference_source(spec: str, data_root: str | None) -> Source:
    from robustrep.data import create_dataset

    dataset, train = REFERENCES[spec]
    if dataset == "digits":
        ds = create_dataset("digits", train=None, size=32, channels=1)
        return Source(spec, f"digits ({len(ds)} images, 32x32)", shape=(1, 32, 32),
                      batches=lambda: _dataset_batches(ds), fid_features="digits",
                      cache_key={"reference": spec}, count=len(ds))
    if data_root is None:
        raise UserError(f"the reference {spec} is computed from local files: pass --data-root "
                        f"(the folder holding the {dataset} files); nothing is downloaded")
    try:
        ds = create_dataset(dataset, root=Path(data_root).expanduser(), train=train)
    except (FileNotFoundError, ValueError) as err:
        raise DataError(str(err)) from None
    root = str(Path(data_root).expanduser().resolve())
    # the files' sizes and mtimes: features of edited batches are not read from the cache
    key = {"reference": spec, "root": root, "n": len(ds), "files": files_fingerprint(ds)}
    return Source(spec, f"{spec} ({len(ds)} images from {data_root})", shape=(3, 32, 32),
                  batches=lambda: _dataset_batches(ds), count=len(ds), cache_key=key)


def is_run(path: Path) -> bool:
    """A folder holding a run's config.json is a run, checkpoints or not (named as a run)."""
    return path.is_dir() and (path / "config.json").is_file()


def open_source(spec: str, args) -> Source:
    """The :class:`Source` ``spec`` names (see the module docstring); one-line errors."""
    if spec in REFERENCES:
        _note_shadowed(spec)
        return _reference_source(spec, args.data_root)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder; give {ACCEPTED}")
    if path.is_dir():
        if is_run(path):
            return _run_source(spec, path, args.num, args.torch_device)
        _refuse_lmdb(path)
        return _folder_source(spec, path, args.resolution)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        stats = feature_stats_pickle(spec, path)
        return stats or _pickle_source(spec, path, args.num, args.torch_device)
    if suffix == ".zip":
        return _zip_source(spec, path, args.resolution)
    if suffix == ".npz":
        return npz_source(spec, path, args.range)
    if suffix == ".npy":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # np.load would read it as a pickle
                raise DataError(f"{path} is not a readable .npy array (no NumPy header, which "
                                f"numpy.save writes)")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise _numpy_error(path, ".npy array", err) from None
        return _tensor_source(spec, array, args.range, str(path))
    if suffix == ".pt":
        return torch_stats_or_samples(spec, path, args.range)
    raise DataError(f"{spec}: unknown file type {suffix or '(none)'}; give {ACCEPTED}")


LMDB_REMEDY = ("export its images to a folder (LSUN's python data.py export DB_lmdb --out_dir "
               "DIR) or to a dataset zip (stylegan2-ada's python dataset_tool.py --source "
               "DB_lmdb --dest OUT.zip) and give that; gan eval RUN scores a run trained on it "
               "against it")


def _refuse_lmdb(path: Path) -> None:
    """A folder that is an LMDB database (``data.mdb``, as LSUN ships each category) or holds
    some (an LSUN root), which gan fid does not read: it was read as an image folder, "no
    images found" or "class folder ... holds no images"."""
    if (path / "data.mdb").is_file():
        raise DataError(f"{path} is an LMDB database (it holds data.mdb, as LSUN ships a "
                        f"category), which gan fid does not read: {LMDB_REMEDY}")
    try:
        entries = sorted(path.iterdir())
    except OSError:  # an unreadable folder: the image folder's reader names it
        return
    held = next((p for p in entries if (p / "data.mdb").is_file()), None)
    if held is not None:
        raise DataError(f"{path} holds LMDB databases ({held.name}/data.mdb, as LSUN ships its "
                        f"categories), which gan fid does not read: {LMDB_REMEDY}")


def _note_shadowed(spec: str) -> None:
    """A named reference is read as the reference, as documented, also where a file or folder
    of that name is in the working directory; a note says so (the folder ``digits`` was left
    unread without a word, the built-in digits scored in its place)."""
    if os.path.lexists(spec):
        kind = "folder" if os.path.isdir(spec) else "file"
        print(f"note: {spec} is read as the named reference, not as the {kind} ./{spec} here; "
              f"write ./{spec} to read the {kind}", file=sys.stderr)


def _zip_source(spec: str, path: Path, resolution: int | None) -> Source:
    from robustrep.data.zipdata import ZipImageDataset, member_sizes

    try:  # its labels unread (dataset.json as stylegan2-ada's unconditional reader leaves it)
        dataset = ZipImageDataset(path, resolution, channels=3, verify=True, labels=False)
        if resolution is None:  # the side the images share, as for a folder (a zip made by
            # hand may hold several sizes); at that side, non-square images centre-cropped
            sizes = member_sizes(path, dataset.names)  # verified above: each an image
            side = one_side(f"dataset zip {path}", ((f"member {n}", wh) for n, wh in sizes))
            dataset = ZipImageDataset(path, side, channels=3, labels=False)
        side = dataset[0][0].shape[-1]
    except (FileNotFoundError, ValueError) as err:
        raise DataError(str(err)) from None
    _check_two(len(dataset), f"dataset zip {path}")
    return Source(spec, f"dataset zip {path} ({len(dataset)} images at {side}x{side})",
                  shape=(3, side, side), batches=lambda: _dataset_batches(dataset),
                  count=len(dataset))
