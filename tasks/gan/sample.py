"""``robustrep gan sample RUN``: samples from a run's G-EMA as a PNG grid and/or a ``.pt`` file.

Images are saved in [0, 1] in the grid and in G's range [-1, 1] in the ``.pt`` file (a dict with
``samples``, ``step`` and ``seed``; clamped there as in the PNGs and in FID, since StyleGAN2's
output is not bounded); 2-D mixture runs get a scatter plot over the mode centres and their
points unchanged in the ``.pt`` file. ``--seeds`` and ``--outdir`` follow stylegan2-ada's
``generate.py`` (one image per seed, ``seed0000.png``).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common.checkpoint import (LATEST, checkpoint_names, load_checkpoint,
                                              load_weights, save_atomic, with_last_step)
from robustrep.tasks.common.config import from_dict
from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.common.plots import image_grid, scatter2d
from robustrep.tasks.common.errors import CheckpointError, RunFolderError, UserError
from robustrep.tasks.common.options import no_ema_note, unique
from robustrep.tasks.common.output_paths import check_output_file, check_writable
from robustrep.tasks.common.rundir import RunDir, check_run_program
from robustrep.tasks.common.folder_guard import forget_folder, guard_folder
from robustrep.tasks.common.runfiles import (TMP_SUFFIX, existing_parent, remove_abandoned_tmp,
                                            write_atomic)
from robustrep.tasks.gan.config import GanConfig, saved_config
from robustrep.tasks.gan.data import to_unit_range
from robustrep.tasks.gan.models import build_generator, generate_batches, generate_seeds


def run_config(run: str | Path) -> GanConfig:
    saved = RunDir(run).read_config()
    check_run_program(saved, GanConfig, run, "gan")
    return from_dict(GanConfig, saved_config(saved), source=str(Path(run) / "config.json"))


def sample_shape(cfg: GanConfig) -> tuple[int, ...]:
    if cfg.is_points:
        return (2,)
    channels = cfg.channels or (1 if cfg.dataset == "digits" else 3)
    return (channels, cfg.image_size, cfg.image_size)


def checkpoint_path(run: str | Path, checkpoint: str | Path | None) -> Path:
    """``--checkpoint`` as given, or the bare name of a file in ``RUN/checkpoints``
    (``step_00000400.pt``); the run's latest when None. A missing one lists what there is."""
    folder = RunDir(run).checkpoints
    if checkpoint is None:
        return folder
    path = Path(checkpoint)
    if path.exists():
        return path
    if (folder / path).is_file():
        return folder / path
    have = checkpoint_names(folder)
    raise CheckpointError(f"--checkpoint {checkpoint}: no such file; {folder} holds "
                          f"{', '.join(have) or 'no checkpoint'} (give a path, or one of these "
                          f"names)")


def ema_used(cfg: GanConfig, use_ema: bool) -> bool:
    """Whether :func:`load_generator` gives the G-EMA: asked for, and the run keeps one (a run
    with ``ema_decay`` 0, as the SNGAN presets, has only G, which is then what is sampled)."""
    return use_ema and cfg.ema_decay > 0


def load_generator(run: str | Path, checkpoint: str | Path | None = None, device: str = "auto",
                   use_ema: bool = True, choose: bool = True
                   ) -> tuple[torch.nn.Module, GanConfig, int, torch.device]:
    """G-EMA (or G) of a run's checkpoint (latest by default), on ``device``, in eval mode;
    ``choose``: the command has ``--checkpoint`` to pick another when latest.pt is damaged."""
    cfg = run_config(run)
    dev = resolve_device(device)
    where = checkpoint_path(run, checkpoint)
    where = where / LATEST if where.is_dir() else where  # the file, in messages
    try:
        state = load_checkpoint(where, map_location="cpu")
    except CheckpointError as err:  # "use another checkpoint" named none: name the last step's
        if checkpoint is not None:
            raise
        how = "give --checkpoint {name}" if choose else f"copy it over {where} to use it"
        raise with_last_step(err, where, how) from None
    G = build_generator(cfg, sample_shape(cfg))
    key = "ema" if use_ema and state.get("ema") is not None else "G"
    if not isinstance(state.get(key), dict):
        raise CheckpointError(f"checkpoint {where} has no {key!r} weights; it is not a GAN "
                              f"checkpoint of this run")
    try:
        load_weights(G, state[key], f"checkpoint {where}", "the run's generator",
                     "use an earlier checkpoint (--checkpoint)")
    except CheckpointError as err:  # an edited config.json, not the checkpoint, may be at fault
        raise _config_edited(run, where, state.get("config"), cfg) or err from None
    no_ema_note(run, use_ema, state.get("ema") is not None)
    return G.to(dev).eval(), cfg, int(state["step"]), dev


def _config_edited(run: str | Path, where: Path, saved: Any, cfg: GanConfig
                   ) -> CheckpointError | None:
    """The line for a checkpoint that does not fit the generator ``RUN/config.json`` builds
    when that file differs from the options the checkpoint was saved with (its ``config``): the
    file to restore is config.json (the checkpoint was named, which is the file to keep)."""
    from robustrep.tasks.common.config import to_dict
    from robustrep.tasks.common.training import config_changes
    from robustrep.tasks.gan.config import RESUMABLE
    if not isinstance(saved, dict):
        return None
    changes = config_changes(saved_config(saved), to_dict(cfg), RESUMABLE)
    if not changes:
        return None
    return CheckpointError(f"{Path(run) / 'config.json'} differs from the options checkpoint "
                           f"{where} was trained with ({'; '.join(changes[:3])}), and its "
                           f"generator does not fit the checkpoint: restore config.json")


GRID_SUFFIXES = (".png", ".jpg", ".jpeg")
# option -> (what the file is, the suffixes it may end in): a torch file named .png (or an image
# named .pt) would mislead whoever opens it; `gan fid` reads a samples file by its .pt suffix.
SAMPLE_FILES = {"--grid": ("the grid is an image", GRID_SUFFIXES),
                "--pt": ("the samples are a torch file that gan fid reads", (".pt",))}


def check_sample_file(path: str | Path, option: str, force: bool = False) -> Path:
    """A file the user named for samples: never inside a run's ``checkpoints/`` (where it would
    replace ``latest.pt``), never over an existing file unless ``force``, with its kind's suffix
    (:data:`SAMPLE_FILES`)."""
    path = check_output_file(path, option)
    if "checkpoints" in path.resolve().parent.parts:
        raise UserError(f"{option} {path} is inside a checkpoints/ folder, whose files a run "
                        f"needs to resume and sample; write the samples elsewhere")
    what, suffixes = SAMPLE_FILES[option]
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{option} {path}: {what}; give a path ending in {', '.join(suffixes)}")
    if path.exists() and not force:
        raise UserError(f"{option} {path} already exists; pass --force to overwrite it or "
                        f"choose another name")
    return path


def sample_run(run: str | Path, num: int = 64, grid: str | Path | None = None,
               pt: str | Path | None = None, seed: int = 0, checkpoint: str | Path | None = None,
               device: str = "auto", use_ema: bool = True, nrow: int | None = None,
               force: bool = False, truncation: float = 1.0, seeds: Sequence[int] | None = None,
               outdir: str | Path | None = None, noise_mode: str | None = None,
               class_idx: int | None = None, show_progress: bool = False) -> dict[str, Any]:
    """Write a grid (default ``RUN/samples/sample-step<N>-seed<S>-n<NUM>.png``, ``-noema``
    added for the raw weights: the same name is the same images, so a rerun rewrites it with
    what it held), and/or one PNG per image into ``outdir``, optionally a ``.pt``.

    ``seeds`` (``[0, 1, 5]``) draws one image per seed as stylegan2-ada's ``generate.py`` does
    (:func:`~robustrep.tasks.gan.models.generate_seeds`), with its noise mode ``const`` unless
    ``noise_mode`` says otherwise; else ``num`` images from ``seed``. Images go to ``outdir``
    batch by batch (50k of them need not fit in memory); a grid or ``.pt`` holds them all."""
    seed_list = _check_request(num, nrow, grid, outdir, seeds, seed)
    for name, target in (("--grid", grid), ("--pt", pt)):
        if target is not None:
            check_sample_file(target, name, force)
    G, cfg, step, dev, use_ema = _generator(run, checkpoint, device, use_ema,
                                            own_folder=grid is None and outdir is None)
    if cfg is not None and cfg.is_points and outdir is not None:
        raise UserError(f"--outdir writes images, and {run} is a 2-D mixture run; draw its "
                        f"samples as a scatter plot (--grid) or a .pt file (--pt)")
    if noise_mode is None and seed_list is not None and has_noise_inputs(G):
        noise_mode = "const"  # generate.py's default
    kwargs = g_options(G, run, truncation, noise_mode, class_idx)
    total = num if seed_list is None else len(seed_list)
    if grid is not None or pt is not None or outdir is None:  # all of them kept in memory
        check_memory(total, _numel(G, cfg), _kept_for(grid, pt, seed_list),
                     images=cfg is None or not cfg.is_points)
    if grid is None and outdir is None:  # the default name says what the images are
        names = _drawn(seed, num, use_ema, truncation, seed_list, noise_mode, class_idx)
        grid = (check_sample_file(f"{Path(run).stem}-{names}.png", "--grid", force)
                if cfg is None else Path(run) / "samples" / f"sample-step{step:08d}-{names}.png")
    if outdir is not None:  # before any file is listed or made
        check_disk(total, _numel(G, cfg), outdir, "--seeds" if seed_list is not None else
                   "--num")
    files = None if outdir is None else _image_files(outdir, seed_list, num, force)
    batches = (generate_seeds(G, seed_list, dev, **kwargs) if seed_list is not None
               else generate_batches(G, num, dev, seed, **kwargs))
    try:
        samples = _drain(batches, files, keep=grid is not None or pt is not None, total=total,
                         show=show_progress)
    finally:
        if files is not None:
            forget_folder(files.folder)
    out = {"num": total, "step": step, "ema": use_ema,
           "truncation": truncation, "noise_mode": noise_mode, "class": class_idx}
    if files is not None:
        out["outdir"] = str(Path(files[0]).parent)
    if grid is not None:
        out["grid"] = str(_write_grid(samples, cfg, step, grid, nrow))
    if pt is not None:  # images clamped as the PNGs and FID take them (StyleGAN2 overshoots)
        points = cfg is not None and cfg.is_points
        kept = samples if points else samples.clamp(-1, 1)
        out["pt"] = str(save_atomic({"samples": kept, "step": step, "seed": seed,
                                     "seeds": seed_list, "range": None if points else "[-1, 1]",
                                     **out}, pt))
    return out


def _check_request(num: int, nrow: int | None, grid, outdir, seeds: Sequence[int] | None,
                   seed: int) -> list[int] | None:
    """The counts and the seeds asked for, checked before anything is loaded."""
    if num < 1:
        raise UserError(f"--num must be >= 1 (the number of samples), got {num}")
    if nrow is not None and nrow < 1:
        raise UserError(f"--nrow must be >= 1, got {nrow}")
    if nrow is not None and outdir is not None and grid is None:
        raise UserError(f"--nrow {nrow} sets the grid's rows, and --outdir writes no grid: drop "
                        f"it, or give --grid as well")
    if seeds is None:
        return None
    if (num, seed) != (64, 0):
        raise UserError("--seeds draws one image per seed: drop --num and --seed, which set the "
                        "images drawn without it")
    return list(unique(seeds, "--seeds", "seed"))


def _generator(run: str | Path, checkpoint, device: str, use_ema: bool, own_folder: bool
               ) -> tuple[torch.nn.Module, GanConfig | None, int, torch.device, bool]:
    """G of a network pickle (no config, step 0) or of a run's checkpoint, and whether it is the
    G-EMA; ``own_folder``: the run's ``samples/`` will be written, so it must be writable."""
    from robustrep.tasks.gan.pickles import is_pickle, pickle_generator
    if Path(run).suffix.lower() == ".pkl" and not Path(run).exists():
        raise CheckpointError(f"{run}: no such file (a stylegan2-ada network pickle, or a run "
                              f"folder)")
    if is_pickle(run):  # a stylegan2-ada network pickle instead of a run folder
        if checkpoint is not None:  # it was ignored: the pickle's own weights were drawn
            raise UserError(f"--checkpoint {checkpoint} picks a run folder's checkpoint, and "
                            f"{run} is a network pickle (one set of weights); drop "
                            f"--checkpoint, or give the run folder")
        dev = resolve_device(device)
        return pickle_generator(run, dev, use_ema, what="RUN"), None, 0, dev, use_ema
    if own_folder:
        _check_samples_folder(run)
    G, cfg, step, dev = load_generator(run, checkpoint, device, use_ema)
    return G, cfg, step, dev, ema_used(cfg, use_ema)  # what was sampled: names and record say


def _check_samples_folder(run: str | Path) -> None:
    """``RUN/samples``, where the default grid goes, can be written (before G is loaded); else
    one line naming the folder and the options that write elsewhere. A probe file's path was
    named as the folder ("cannot write the samples folder RUN/samples/x.png")."""
    folder = Path(run) / "samples"
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, where the run's samples folder (the default "
                             f"grid's) belongs; move it away, or give --grid FILE.png or "
                             f"--outdir DIR to write elsewhere")
    try:
        check_writable(folder, "the run's samples folder")
    except RunFolderError as err:  # its line ends "choose another folder"
        raise RunFolderError(f"{err} with --grid FILE.png or --outdir DIR") from None


def _kept_for(grid, pt, seeds: list[int] | None) -> str:
    """Why every sample is kept in memory, in the words of the options asking for it."""
    files = " and ".join(name for name, target in (("--grid", grid), ("--pt", pt))
                         if target is not None) or "the default grid"
    return f"{'--seeds' if seeds is not None else '--num'} with {files}"


def _numel(G: torch.nn.Module, cfg: GanConfig | None) -> int:
    """Values in one sample: the run's sample shape, or a pickle's image size."""
    if cfg is not None:
        return math.prod(sample_shape(cfg))
    return G.img_channels * G.img_resolution ** 2


def available_memory() -> int | None:
    """Bytes this machine can still give a process (Linux ``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(total: int, numel: int, why: str, images: bool = True) -> None:
    """A grid or ``.pt`` holds every sample (float32), and ``torch.cat`` copies them once more:
    refuse, before any sampling, a count that cannot fit, rather than end with the machine out
    of memory after hours of sampling (``--outdir`` alone streams the images instead)."""
    need = 2 * total * numel * 4
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"{why} keeps all {total:,} samples in memory: at least "
                        f"{need / 1e9:.1f} GB, and this machine has {have / 1e9:.1f} GB "
                        f"available; "
                        + ("write them one PNG at a time with --outdir DIR alone (batch by "
                           "batch), or draw fewer" if images else "draw fewer"))


# a PNG's bytes besides its pixels: signature, IHDR, IDAT and IEND chunks, zlib's header
PNG_OVERHEAD = 70


def disk_room(folder: Path) -> tuple[int, int | None, int] | None:
    """Free bytes, free files (inodes; None where the file system does not count them) and the
    block size of the file system holding ``folder`` (or its nearest existing parent)."""
    folder = existing_parent(folder)
    try:
        stats = os.statvfs(folder)
        free = shutil.disk_usage(folder).free
    except (OSError, AttributeError):  # no statvfs (Windows), a folder gone meanwhile
        return None
    return free, (stats.f_favail if stats.f_files else None), stats.f_frsize or stats.f_bsize


def check_disk(total: int, numel: int, outdir: str | Path, option: str) -> None:
    """``--outdir`` gets one PNG per sample: refuse, before any file is listed or made, a count
    its file system cannot hold (``--num 100000000`` built 10^8 file names, then wrote images
    until the disk was full). A PNG of a sample takes at least ``numel / 2`` bytes (deflate
    rarely halves a generated image's 8-bit pixels) and at least one block of the disk."""
    room = disk_room(Path(outdir).expanduser().absolute())
    if room is None:
        return
    free, files, block = room
    each = -(-(numel // 2 + PNG_OVERHEAD) // max(block, 1)) * max(block, 1)
    need = total * each
    if need > free:
        raise UserError(f"{option} {total:,} with --outdir {outdir}: {total:,} PNGs need at "
                        f"least {need / 1e9:.1f} GB ({each:,} bytes each at least, in whole blocks "
                        f"of {block:,} bytes), and its disk has {free / 1e9:.1f} GB free; draw "
                        f"fewer, or choose a folder on a larger disk")
    if files is not None and total > files:
        raise UserError(f"{option} {total:,} with --outdir {outdir}: one PNG per sample, and "
                        f"its file system can hold only {files:,} more files (inodes); draw "
                        f"fewer, or choose a folder on another disk")


def _drain(batches, files: ImageFiles | None, keep: bool, total: int,
           show: bool) -> torch.Tensor | None:
    """Run the generator's batches, writing each batch's images to ``files`` as it comes; all
    the samples (on the CPU) when ``keep``."""
    from robustrep.tasks.common.cli import stop_note
    from robustrep.tasks.common.progress import progress
    kept, done = [], 0
    with progress(total, desc="sampling", enabled=show, unit="image") as bar:
        for batch in batches:
            batch = batch.cpu()
            if files is not None:
                if not done:
                    files.make()  # guarded from the first image on
                # a stop now: a rerun meets these files and is refused without --force; the
                # count is of whole files, image by image (it was by batch: 1000 said, 1261 there)
                _write_images(batch, files[done:done + len(batch)], lambda n, start=done: stop_note(
                    f"{start + n} of {total} images written to {files.folder}, each whole; "
                    f"the same command with --force writes them all again"))
            if keep:
                kept.append(batch)
            done += len(batch)
            bar.update(len(batch))
    return torch.cat(kept) if keep else None


def has_noise_inputs(G: torch.nn.Module) -> bool:
    import inspect
    return "noise_mode" in inspect.signature(G.forward).parameters


def g_options(G: torch.nn.Module, source: Any, truncation: float = 1.0,
              noise_mode: str | None = None, class_idx: int | None = None) -> dict[str, Any]:
    """G's keywords for ``--truncation``, ``--noise-mode`` and ``--class``, each refused for a G
    it does nothing to; a conditional G needs its class, as in stylegan2-ada's generate.py."""
    kwargs: dict[str, Any] = {}
    if truncation != 1:
        if getattr(getattr(G, "mapping", None), "w_avg", None) is None:
            raise UserError(f"--truncation {truncation:g} needs a StyleGAN2 generator (the "
                            f"truncation trick moves w towards its running average w_avg); "
                            f"{source}'s {type(G).__name__} has none")
        kwargs["truncation_psi"] = truncation
    if noise_mode is not None:
        if not has_noise_inputs(G):
            raise UserError(f"--noise-mode {noise_mode} sets a StyleGAN2 generator's noise "
                            f"inputs; {source}'s {type(G).__name__} has none")
        kwargs["noise_mode"] = noise_mode
    c_dim = getattr(G, "c_dim", 0)
    if c_dim and class_idx is None:
        raise UserError(f"{source} is a conditional network ({c_dim} classes): give --class N "
                        f"with N in 0..{c_dim - 1}")
    if class_idx is not None and not 0 <= class_idx < c_dim:
        raise UserError(f"--class {class_idx}: " + (f"{source} has classes 0..{c_dim - 1}"
                        if c_dim else f"{source} is an unconditional network; drop it"))
    return kwargs if class_idx is None else {**kwargs, "class_idx": class_idx}


class ImageFiles(Sequence):
    """The PNG paths of ``--outdir``, each made when it is asked for (``files[i:j]``): a list
    of ``--num`` paths took minutes and gigabytes of memory for 10^8 of them."""

    def __init__(self, folder: Path, seeds: list[int] | None, num: int):
        self.folder, self.seeds, self.num = folder, seeds, num
        self._names: set[str] | None = None  # the seeds' names, made when first asked for

    def __len__(self) -> int:
        return self.num if self.seeds is None else len(self.seeds)

    def name(self, i: int) -> str:
        return f"{i:06d}.png" if self.seeds is None else f"seed{self.seeds[i]:04d}.png"

    def is_own(self, name: str) -> bool:
        """Whether ``name`` is one of the files it would write."""
        if self.seeds is None:
            number = name[:-4]
            return (name.endswith(".png") and number.isdigit() and int(number) < self.num
                    and self.name(int(number)) == name)
        if self._names is None:
            self._names = {self.name(i) for i in range(len(self))}
        return name in self._names

    def make(self) -> None:
        """The folder, made before the first image and guarded from then on: removed or moved
        while the images are written, the next one stops the command (a folder made again
        would hold only the later images)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        guard_folder(self.folder, f"--outdir {self.folder} was removed or moved while gan "
                                  f"sample was writing there; nothing more is written there; "
                                  f"the same command again writes all the images")

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.folder / self.name(index % len(self))

    def taken(self) -> list[Path]:
        """The files it would write that are there already, in writing order (the folder
        listed once: a file test per name took as long as the names did)."""
        try:
            there = set(os.listdir(self.folder))  # broken links too, as the writes meet them
        except (FileNotFoundError, NotADirectoryError):
            return []
        if self.seeds is not None:
            return [self.folder / n for n in map(self.name, range(len(self))) if n in there]
        numbers = sorted(int(n[:-4]) for n in there if n.endswith(".png") and n[:-4].isdigit()
                         and len(n) >= 10 and int(n[:-4]) < self.num)
        return [self[i] for i in numbers if self.name(i) in there]


def _image_files(outdir: str | Path, seeds: list[int] | None, num: int,
                 force: bool) -> ImageFiles:
    """The PNG paths of ``--outdir`` (``seed0000.png`` per seed, as generate.py names them, else
    ``000000.png`` on), checked before any sampling: none over a file unless ``force``."""
    folder = check_writable(outdir, "--outdir")
    if "checkpoints" in folder.resolve().parts:
        raise UserError(f"--outdir {outdir} is inside a checkpoints/ folder, whose files a run "
                        f"needs to resume and sample; write the images elsewhere")
    files = ImageFiles(folder, seeds, num)
    taken = files.taken()
    if taken and not force:
        raise UserError(f"--outdir {outdir} already holds {taken[0].name}"
                        + (f" and {len(taken) - 1} more of the files it would write"
                           if len(taken) > 1 else "")
                        + "; pass --force to overwrite them or choose another folder")
    removed = remove_abandoned_tmp(folder, files.is_own)
    if removed:  # a killed gan sample's half-written PNGs
        print(f"note: removed {removed} temporary file(s) .*.png.*{TMP_SUFFIX} that an earlier "
              f"gan sample into {folder} left when it was killed", file=sys.stderr)
    _note_other_images(outdir, files)
    return files


def _note_other_images(outdir: str | Path, files: ImageFiles) -> None:
    """Say when ``--outdir`` holds images this command does not write: a rerun with ``--force``
    and a smaller ``--num`` left the earlier run's 000050.png... beside the new ones, and
    ``gan fid DIR`` then scored both sets as one, without a word."""
    from robustrep.data import IMG_EXTENSIONS
    try:
        names = os.listdir(files.folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    others = sorted(n for n in names if not n.startswith(".") and not files.is_own(n)
                    and os.path.splitext(n)[1].lower() in IMG_EXTENSIONS)
    if others:
        print(f"note: --outdir {outdir} also holds {len(others)} image(s) this command does not "
              f"write (the first: {others[0]}); gan fid {outdir} would read them with the new "
              f"ones: choose an empty folder to keep the sets apart", file=sys.stderr)


def _write_images(samples: torch.Tensor, files: Sequence[Path],
                  written: Callable[[int], None] = lambda n: None) -> None:
    """Each image as its own PNG, in generate.py's conversion ``x * 127.5 + 128`` clamped to
    0..255 and truncated to uint8 (torchvision's grid rounds the same way); ``written(n)``
    after the n-th file is whole."""
    from PIL import Image
    pixels = (samples * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for n, (image, path) in enumerate(zip(pixels, files), 1):
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        write_atomic(path, lambda handle, p=picture: p.save(handle, format="PNG"))
        written(n)


def _write_grid(samples: torch.Tensor, cfg: GanConfig | None, step: int, grid: str | Path,
                nrow: int | None) -> Path:
    """The grid, or a 2-D run's scatter plot over the mixture's mode centres."""
    if cfg is not None and cfg.is_points:
        from robustrep.data import mixture
        return scatter2d(samples, mixture(cfg.dataset).centers, grid,
                         title=f"{cfg.preset} {cfg.reg} step {step}")
    return image_grid(to_unit_range(samples), grid,
                      nrow=nrow or max(1, int(len(samples) ** 0.5)))


def _runs(seeds: list[int]) -> str:
    """``[0, 1, 2, 7]`` as ``0-2_7``: the seeds in a file name."""
    parts, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            first, last = seeds[start], seeds[i - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return "_".join(parts)


def _drawn(seed: int, num: int, use_ema: bool, truncation: float = 1.0,
           seeds: list[int] | None = None, noise_mode: str | None = None,
           class_idx: int | None = None) -> str:
    """What a default grid name says of its images: seed(s), count, (raw) weights, truncation,
    noise mode, class."""
    return ((f"seeds{_runs(seeds)}" if seeds else f"seed{seed}-n{num}")
            + ("" if use_ema else "-noema")
            + ("" if truncation == 1 else f"-trunc{truncation:g}")
            + (f"-noise{noise_mode}" if noise_mode else "")
            + ("" if class_idx is None else f"-class{class_idx}"))
