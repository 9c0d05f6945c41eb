"""stylegan2-ada network pickles (``.pkl``) in the GAN program: ``gan sample PKL`` and
``gan train --init PKL`` (fine-tuning from published weights).

The file is read by :func:`robustrep.stylegan2_pickle.load_stylegan2_pickle` (a restricted
unpickler; nothing in the file runs); every problem is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustrep.tasks.common.errors import CheckpointError


def is_pickle(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".pkl" and Path(path).is_file()


def load_pickle(path: str | Path, what: str, force_fp32: bool = False) -> dict:
    """``{'G', 'D', 'G_ema'}`` robustrep modules, or a one-line :class:`CheckpointError`."""
    from robustrep.stylegan2_pickle import StyleGAN2PickleError, load_stylegan2_pickle
    if Path(path).is_dir():
        raise CheckpointError(f"{what} {path} is a folder; give a stylegan2-ada network pickle "
                              f"(.pkl)")
    if not Path(path).is_file():
        raise CheckpointError(f"{what} {path}: no such file (a stylegan2-ada network pickle)")
    try:
        return load_stylegan2_pickle(path, force_fp32=force_fp32)
    except StyleGAN2PickleError as err:
        raise CheckpointError(f"{what} {path}: {err}") from None


def pickle_generator(path: str | Path, device: torch.device, use_ema: bool = True,
                     what: str = "network pickle"):
    """The pickle's G_ema (or G) for sampling, on ``device``; fp32 blocks off a GPU. A
    conditional G (``c_dim`` > 0) takes one-hot labels as its second argument. ``what`` names
    the file in an error (the argument that gave it)."""
    nets = load_pickle(path, what, force_fp32=device.type != "cuda")
    return nets["G_ema" if use_ema else "G"].to(device).eval()


def init_states(path: str, G: torch.nn.Module, D: torch.nn.Module) -> dict[str, dict]:
    """State dicts of the pickle's G, D and G_ema, checked against the run's networks ``G`` and
    ``D`` (built from its config) before any run folder is made."""
    nets = load_pickle(path, "--init")
    _check_shapes(path, nets["G"], G)
    states = {k: net.state_dict() for k, net in nets.items()}
    for key, own in (("G", G), ("D", D), ("G_ema", G)):
        mine = own.state_dict()
        theirs = states[key]
        bad = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        bad += [k for k in theirs if k not in mine]
        if bad:
            raise CheckpointError(
                f"--init {path}: its {key} does not fit this run's networks (first: {bad[0]}); "
                f"set --image-size, --z-dim, --w-dim, --mapping-layers, --channel-base, "
                f"--channel-max and --d-arch to the pickle's")
    return states


# the generator's sizes a run sets, with the option that sets each (the channels and size are
# the data's: --channels, --image-size)
G_SIZES = (("img_resolution", "--image-size"), ("img_channels", "--channels"),
           ("z_dim", "--z-dim"), ("w_dim", "--w-dim"))


def _check_shapes(path: str, theirs: torch.nn.Module, mine: torch.nn.Module) -> None:
    """Name what makes the pickle's G unlike the run's, before its tensors are compared: a
    conditional network (no option makes the run's G take classes) and the sizes a run sets,
    each with its option and the pickle's value (the tensor named first said neither)."""
    c_dim = getattr(theirs, "c_dim", 0)
    if c_dim:
        raise CheckpointError(f"--init {path} is a conditional network ({c_dim} classes); gan "
                              f"train trains unconditional ones: start from an unconditional "
                              f"pickle")
    wrong = [f"{option} {getattr(theirs, attr)} (this run: {getattr(mine, attr)})"
             for attr, option in G_SIZES
             if getattr(mine, attr, None) is not None and
             getattr(theirs, attr, None) != getattr(mine, attr)]
    if wrong:
        raise CheckpointError(f"--init {path}: its G does not fit this run's networks; set "
                              f"{', '.join(wrong)}")
