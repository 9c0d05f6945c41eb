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
    _check_shapes(path, nets, G, D)
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


def _check_shapes(path: str, nets: dict, G: torch.nn.Module, D: torch.nn.Module) -> None:
    """Name what makes the pickle's networks unlike the run's, before their tensors are
    compared: a conditional network (no option makes the run's G take classes), then every
    option that shapes them, each with the pickle's value, so that one corrected command fits
    (the tensor named first said neither the option nor the value)."""
    theirs = nets["G"]
    c_dim = getattr(theirs, "c_dim", 0)
    if c_dim:
        raise CheckpointError(f"--init {path} is a conditional network ({c_dim} classes); gan "
                              f"train trains unconditional ones: start from an unconditional "
                              f"pickle")
    wrong = [f"{option} {getattr(theirs, attr)} (this run: {getattr(G, attr)})"
             for attr, option in G_SIZES
             if getattr(G, attr, None) is not None and
             getattr(theirs, attr, None) != getattr(G, attr)]
    wrong += _differences(path, nets, G, D)
    if wrong:
        raise CheckpointError(f"--init {path} does not fit this run's networks; set "
                              f"{', '.join(wrong)}")


def _differences(path: str, nets: dict, G: torch.nn.Module, D: torch.nn.Module) -> list[str]:
    """The mapping layers, feature maps and D architecture where they differ. The run's G keeps
    no channel_base/channel_max, only the feature maps they give (``min(base // r, max)``, from
    which the values cannot be read back): those are compared, the pickle's recorded values
    named."""
    wrong = []
    layers = [len(getattr(getattr(g, "mapping", None), "layers", ())) for g in (nets["G"], G)]
    if layers[0] != layers[1]:
        wrong.append(f"--mapping-layers {layers[0]} (this run: {layers[1]})")
    maps = [_feature_maps(g) for g in (nets["G"], G)]
    common = sorted(set(maps[0]) & set(maps[1]))
    if any(maps[0][r] != maps[1][r] for r in common):
        base, top = _recorded_channels(path)
        run, pkl = (", ".join(str(m[r]) for r in common) for m in (maps[1], maps[0]))
        wrong.append(f"--channel-base {base} and --channel-max {top} (feature maps at "
                     f"{common[0]} to {common[-1]}: this run {run}; the pickle {pkl})")
    arch = [_d_architecture(d) for d in (nets["D"], D)]
    if None not in arch and arch[0] != arch[1]:
        wrong.append(f"--d-arch {arch[0]} (this run: {arch[1]})")
    return wrong


def _feature_maps(G: torch.nn.Module) -> dict[int, int]:
    """{resolution: feature maps} of a StyleGAN2 G's synthesis blocks."""
    blocks = getattr(getattr(G, "synthesis", None), "blocks", ())
    return {b.resolution: b.torgb.weight.shape[1] for b in blocks}


def _d_architecture(D: torch.nn.Module) -> str | None:
    """A StyleGAN2 D's architecture (orig, skip or resnet); None at 4x4, where it has no block."""
    blocks = getattr(getattr(D, "trunk", None), "blocks", ())
    return getattr(blocks[0], "architecture", None) if len(blocks) else None


def _recorded_channels(path: str) -> tuple[int, int]:
    """The pickle's G's channel_base and channel_max as its init_kwargs record them (defaults:
    the reference SynthesisNetwork's); read again only when the feature maps differ."""
    from robustrep.stylegan2_pickle import read_records
    kwargs = read_records(path)["G"].state.get("_init_kwargs") or {}
    syn = kwargs.get("synthesis_kwargs") or {}
    return syn.get("channel_base", 32768), syn.get("channel_max", 512)
