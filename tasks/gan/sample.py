"""``robustrep gan sample RUN``: samples from a run's G-EMA as a PNG grid and/or a ``.pt`` file.

Images are saved in [0, 1] in the grid and in G's range [-1, 1] in the ``.pt`` file (a dict with
``samples``, ``step`` and ``seed``; clamped there as in the PNGs and in FID, since StyleGAN2's
output is not bounded); 2-D mixture runs get a scatter plot over the mode centres and their
points unchanged in the ``.pt`` file. ``--seeds`` and ``--outdir`` follow stylegan2-ada's
``generate.py`` (one image per seed, ``seed0000.png``).

Before any sampling, the room a request needs is checked (:mod:`robustrep.tasks.gan.sample_room`:
memory for the samples a grid or ``.pt`` keeps, disk for ``--outdir``'s PNGs); ``--outdir``'s
files, their names, checks and writing, are :mod:`robustrep.tasks.gan.image_files`'s. This
module loads G and draws the samples.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
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
from robustrep.tasks.common.folder_guard import forget_folder
from robustrep.tasks.gan.config import GanConfig, saved_config
from robustrep.tasks.gan.data import to_unit_range
from robustrep.tasks.gan.image_files import ImageFiles, image_files, write_images
from robustrep.tasks.gan.models import build_generator, generate_batches, generate_seeds
from robustrep.tasks.gan.sample_room import check_disk, check_memory


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
        raise _config_edited(run, where, state.get("config"), cfg, choose) or err from None
    no_ema_note(run, use_ema, state.get("ema") is not None)
    return G.to(dev).eval(), cfg, int(state["step"]), dev


def _config_edited(run: str | Path, where: Path, saved: Any, cfg: GanConfig,
                   choose: bool = True) -> CheckpointError | None:
    """The line for a checkpoint that does not fit the generator ``RUN/config.json`` builds
    when that file differs from the options the checkpoint was saved with (its ``config``): the
    file to restore is config.json (the checkpoint was named, which is the file to keep). A
    checkpoint saved under another ``--out`` is another run's: config.json was never edited."""
    from robustrep.tasks.common.config import to_dict
    from robustrep.tasks.common.training import config_changes, other_run
    from robustrep.tasks.gan.config import RESUMABLE
    if not isinstance(saved, dict):
        return None
    changes = config_changes(saved_config(saved), to_dict(cfg), RESUMABLE)
    if not changes:
        return None
    theirs = other_run(saved, to_dict(cfg), changes)
    if theirs is not None:
        use = (f"give one of its own (in {RunDir(run).checkpoints}) with --checkpoint" if choose
               else f"put its own checkpoint at {where}")
        return CheckpointError(f"checkpoint {where} was saved by {theirs}, not by {run}: {use}")
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
    # a file of the user's is a new one (a file written there meanwhile is kept) unless --force;
    # a run's own samples/ grid is the same images again under the same name
    replace_grid = force or (grid is None and outdir is None and cfg is not None)
    if grid is None and outdir is None:  # the default name says what the images are
        names = _drawn(seed, num, use_ema, truncation, seed_list, noise_mode, class_idx)
        grid = (check_sample_file(f"{Path(run).stem}-{names}.png", "--grid", force)
                if cfg is None else Path(run) / "samples" / f"sample-step{step:08d}-{names}.png")
    if outdir is not None:  # before any file is listed or made
        check_disk(total, _numel(G, cfg), outdir, "--seeds" if seed_list is not None else
                   "--num")
    files = None if outdir is None else image_files(outdir, seed_list, num, force)
    batches = (generate_seeds(G, seed_list, dev, **kwargs) if seed_list is not None
               else generate_batches(G, num, dev, seed, **kwargs))
    try:
        samples = _drain(batches, files, keep=grid is not None or pt is not None, total=total,
                         show=show_progress, replace=force)
    finally:
        if files is not None:
            forget_folder(files.folder)
    out = {"num": total, "step": step, "ema": use_ema,
           "truncation": truncation, "noise_mode": noise_mode, "class": class_idx}
    if files is not None:
        out["outdir"] = str(Path(files[0]).parent)
    if grid is not None:
        _writing(show_progress, total, grid)
        out["grid"] = str(_write_grid(samples, cfg, step, grid, nrow, replace_grid))
    if pt is not None:  # images clamped as the PNGs and FID take them (StyleGAN2 overshoots)
        _writing(show_progress, total, pt)
        points = cfg is not None and cfg.is_points
        kept = samples if points else samples.clamp(-1, 1)
        out["pt"] = str(save_atomic({"samples": kept, "step": step, "seed": seed,
                                     "seeds": seed_list, "range": None if points else "[-1, 1]",
                                     **out}, pt, replace=force))
    return out


def _writing(show: bool, total: int, path: str | Path) -> None:
    """Said before a grid or ``.pt`` file of ``total`` samples is written: 8 s of 20,000 on 2
    CPU cores had passed without a word after the samples' bar."""
    if show:
        print(f"writing {path} ({total} samples)", file=sys.stderr, flush=True)


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


def _drain(batches, files: ImageFiles | None, keep: bool, total: int,
           show: bool, replace: bool = True) -> torch.Tensor | None:
    """Run the generator's batches, writing each batch's images to ``files`` as it comes; all
    the samples (on the CPU) when ``keep``."""
    from robustrep.tasks.common.stops import stop_note
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
                write_images(batch, files[done:done + len(batch)], lambda n, start=done: stop_note(
                    f"{start + n} of {total} images written to {files.folder}, each whole; "
                    f"the same command with --force writes them all again"), replace)
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


def _write_grid(samples: torch.Tensor, cfg: GanConfig | None, step: int, grid: str | Path,
                nrow: int | None, replace: bool) -> Path:
    """The grid, or a 2-D run's scatter plot over the mixture's mode centres."""
    if cfg is not None and cfg.is_points:
        from robustrep.data import mixture
        return scatter2d(samples, mixture(cfg.dataset).centers, grid,
                         title=f"{cfg.preset} {cfg.reg} step {step}", replace=replace)
    return image_grid(to_unit_range(samples), grid,
                      nrow=nrow or max(1, int(len(samples) ** 0.5)), replace=replace)


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
