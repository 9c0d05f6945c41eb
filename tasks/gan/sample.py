"""``robustrep gan sample RUN``: samples from a run's G-EMA as a PNG grid and/or a ``.pt`` file.

Images are saved in [0, 1] in the grid and in G's range [-1, 1] in the ``.pt`` file (a dict with
``samples``, ``step`` and ``seed``); 2-D mixture runs get a scatter plot over the mode centres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common.checkpoint import (LATEST, checkpoint_names, load_checkpoint,
                                              load_weights, save_atomic)
from robustrep.tasks.common.config import from_dict
from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.common.plots import image_grid, scatter2d
from robustrep.tasks.common.errors import CheckpointError, UserError
from robustrep.tasks.common.rundir import RunDir, check_output_file, check_run_program
from robustrep.tasks.gan.config import GanConfig, saved_config
from robustrep.tasks.gan.data import to_unit_range
from robustrep.tasks.gan.models import build_generator, generate


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
                   use_ema: bool = True) -> tuple[torch.nn.Module, GanConfig, int, torch.device]:
    """G-EMA (or G) of a run's checkpoint (latest by default), on ``device``, in eval mode."""
    cfg = run_config(run)
    dev = resolve_device(device)
    where = checkpoint_path(run, checkpoint)
    where = where / LATEST if where.is_dir() else where  # the file, in messages
    state = load_checkpoint(where, map_location="cpu")
    G = build_generator(cfg, sample_shape(cfg))
    key = "ema" if use_ema and state.get("ema") is not None else "G"
    if not isinstance(state.get(key), dict):
        raise CheckpointError(f"checkpoint {where} has no {key!r} weights; it is not a GAN "
                              f"checkpoint of this run")
    load_weights(G, state[key], f"checkpoint {where}", "the run's generator",
                 "use an earlier checkpoint (--checkpoint)")
    return G.to(dev).eval(), cfg, int(state["step"]), dev


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
               force: bool = False, truncation: float = 1.0) -> dict[str, Any]:
    """Write a grid (default ``RUN/samples/sample-step<N>-seed<S>-n<NUM>.png``, ``-noema``
    added for the raw weights: the same name is the same images, so a rerun rewrites it with
    what it held), optionally a ``.pt``."""
    if num < 1:
        raise UserError(f"--num must be >= 1 (the number of samples), got {num}")
    if nrow is not None and nrow < 1:
        raise UserError(f"--nrow must be >= 1, got {nrow}")
    for name, target in (("--grid", grid), ("--pt", pt)):
        if target is not None:
            check_sample_file(target, name, force)
    from robustrep.tasks.gan.pickles import is_pickle
    if is_pickle(run):  # a stylegan2-ada network pickle instead of a run folder
        return _sample_pickle(run, num, grid, pt, seed, device, use_ema, nrow, force, truncation)
    if grid is None:
        check_output_file(Path(run) / "samples" / "x.png", "the samples folder")
    G, cfg, step, dev = load_generator(run, checkpoint, device, use_ema)
    use_ema = ema_used(cfg, use_ema)  # what was sampled: the names and the record say it
    samples = generate(G, num, dev, seed=seed, **_truncated(G, truncation, run)).cpu()
    if grid is None:
        drawn = _drawn(seed, num, use_ema, truncation)
        grid = Path(run) / "samples" / f"sample-step{step:08d}-{drawn}.png"
    if cfg.is_points:
        from robustrep.data import mixture
        path = scatter2d(samples, mixture(cfg.dataset).centers, grid,
                         title=f"{cfg.preset} {cfg.reg} step {step}")
    else:
        path = image_grid(to_unit_range(samples), grid, nrow=nrow or max(1, int(num ** 0.5)))
    return _write_pt({"grid": str(path), "num": num, "step": step, "ema": use_ema,
                      "truncation": truncation}, samples, pt, step, seed)


def _drawn(seed: int, num: int, use_ema: bool, truncation: float = 1.0) -> str:
    """What a default grid name says of its images: seed, count, (raw) weights, truncation."""
    return (f"seed{seed}-n{num}" + ("" if use_ema else "-noema")
            + ("" if truncation == 1 else f"-trunc{truncation:g}"))


def _truncated(G: torch.nn.Module, psi: float, source: Any) -> dict[str, Any]:
    """G's keyword for truncation ``psi``: none at 1; refused for a G without ``w_avg``."""
    if psi == 1:
        return {}
    if getattr(getattr(G, "mapping", None), "w_avg", None) is None:
        raise UserError(f"--truncation {psi:g} needs a StyleGAN2 generator (the truncation "
                        f"trick moves w towards its running average w_avg); {source}'s "
                        f"{type(G).__name__} has none")
    return {"truncation_psi": psi}


def _write_pt(out: dict[str, Any], samples: torch.Tensor, pt, step: int, seed: int
              ) -> dict[str, Any]:
    if pt is not None:
        pt = save_atomic({"samples": samples, "step": step, "seed": seed, "range": "[-1, 1]",
                          "ema": out["ema"], "truncation": out["truncation"]}, pt)
        out["pt"] = str(pt)
    return out


def _sample_pickle(path, num, grid, pt, seed, device, use_ema, nrow, force=False,
                   truncation=1.0) -> dict[str, Any]:
    """``gan sample NET.pkl``: the grid defaults to ``<NET>-seed<S>-n<NUM>.png`` in the working
    folder."""
    from robustrep.tasks.gan.pickles import pickle_generator
    if grid is None:
        grid = Path(f"{Path(path).stem}-{_drawn(seed, num, use_ema, truncation)}.png")
        check_sample_file(grid, "--grid", force)
    dev = resolve_device(device)
    G = pickle_generator(path, dev, use_ema)
    samples = generate(G, num, dev, seed=seed, **_truncated(G, truncation, path)).cpu()
    out_path = image_grid(to_unit_range(samples), grid, nrow=nrow or max(1, int(num ** 0.5)))
    return _write_pt({"grid": str(out_path), "num": num, "step": 0, "ema": use_ema,
                      "truncation": truncation}, samples, pt, 0, seed)
