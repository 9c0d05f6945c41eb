"""stylegan2-ada network pickles (``.pkl``) in the GAN program: ``gan sample PKL`` and
``gan train --init PKL`` (fine-tuning from published weights).

The file is read by :func:`robustrep.stylegan2_pickle.load_stylegan2_pickle` (a restricted
unpickler; nothing in the file runs); every problem is one line naming the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common.errors import CheckpointError
from robustrep.tasks.gan.config_checks import stylegan2_channels


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


def init_states(path: str, cfg: Any, G: torch.nn.Module, D: torch.nn.Module
                ) -> tuple[dict[str, dict], str | None]:
    """State dicts of the pickle's G, D and G_ema, checked against the run's networks ``G`` and
    ``D`` (built from its config ``cfg``) before any run folder is made, and the note naming
    the float16 settings the run fine-tunes them with where the pickle's differ (None if not)."""
    nets = load_pickle(path, "--init")
    _check_shapes(path, cfg, nets, G, D)
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
    return states, _fine_tuning_note(path, nets, G, D)


# the generator's sizes a run sets, with the option that sets each (the channels and size are
# the data's: --channels, --image-size)
G_SIZES = (("img_resolution", "--image-size"), ("img_channels", "--channels"),
           ("z_dim", "--z-dim"), ("w_dim", "--w-dim"))


def _check_shapes(path: str, cfg: Any, nets: dict, G: torch.nn.Module,
                  D: torch.nn.Module) -> None:
    """Name what makes the pickle's networks unlike the run's, before their tensors are
    compared: a conditional network (no option makes the run's G take classes), then every
    option that shapes them, each with the pickle's value and the run's, so that one corrected
    command fits (the tensor named first said neither the option nor the value), and a mapping
    lr multiplier no option sets."""
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
    wrong += _differences(path, cfg, nets, G, D)
    lr = _mapping_lr(theirs, G)
    said = ([f"set {', '.join(wrong)}"] if wrong else []) + ([lr] if lr else [])
    if said:
        raise CheckpointError(f"--init {path} does not fit this run's networks; "
                              f"{'; '.join(said)}")


def _differences(path: str, cfg: Any, nets: dict, G: torch.nn.Module,
                 D: torch.nn.Module) -> list[str]:
    """The mapping layers, feature maps and D architecture where they differ. The run's G keeps
    no channel_base/channel_max, only the feature maps they give (``min(base // r, max)``, from
    which the values cannot be read back): those are compared, the pickle's recorded values
    named beside the run's options (``cfg``)."""
    wrong = []
    layers = [len(getattr(getattr(g, "mapping", None), "layers", ())) for g in (nets["G"], G)]
    if layers[0] != layers[1]:
        wrong.append(f"--mapping-layers {layers[0]} (this run: {layers[1]})")
    maps = [_feature_maps(g) for g in (nets["G"], G)]
    common = sorted(set(maps[0]) & set(maps[1]))
    if any(maps[0][r] != maps[1][r] for r in common):
        base, top = _recorded_channels(path)
        own = stylegan2_channels(cfg)
        run, pkl = (", ".join(str(m[r]) for r in common) for m in (maps[1], maps[0]))
        wrong.append(f"--channel-base {base} and --channel-max {top} (this run: {own[0]} and "
                     f"{own[1]}; feature maps at {common[0]} to {common[-1]}: this run {run}; "
                     f"the pickle {pkl})")
    arch = [_d_architecture(d) for d in (nets["D"], D)]
    if None not in arch and arch[0] != arch[1]:
        wrong.append(f"--d-arch {arch[0]} (this run: {arch[1]})")
    return wrong


def _mapping_lr(theirs: torch.nn.Module, G: torch.nn.Module) -> str | None:
    """The mapping network's lr multiplier where the pickle's differs from the run's. Its
    equalized-lr layers store their weights divided by it (stylegan2-ada's
    FullyConnectedLayer), so the pickle's tensors at another multiplier would map z to other
    w's; no option of gan train sets it (nor of stylegan2-ada's train.py: 0.01 throughout)."""
    gains = [_mapping_gain(g) for g in (theirs, G)]
    if None in gains or math.isclose(*gains):
        return None
    return (f"its mapping network's lr multiplier is {gains[0]:g} (this run: {gains[1]:g}), "
            f"which no option of gan train sets: its mapping weights are stored divided by it, "
            f"so at this run's they would compute another network")


def _mapping_gain(G: torch.nn.Module) -> float | None:
    layers = getattr(getattr(G, "mapping", None), "layers", ())
    return getattr(layers[0], "bias_gain", None) if len(layers) else None


def _fine_tuning_note(path: str, nets: dict, G: torch.nn.Module,
                      D: torch.nn.Module) -> str | None:
    """stylegan2-ada's --resume builds G and D from the run's options and copies the pickle's
    tensors into them (training_loop.py; its --fp32 turns both off for a resumed pickle too),
    so the float16 resolutions and the conv clamp are the run's: speed and float16-overflow
    settings that leave the weights as they are. Said where the pickle's differ, which was
    silent."""
    theirs, ours = _float16_settings(nets["G"], nets["D"]), _float16_settings(G, D)
    differ = [flag for flag in theirs if theirs[flag] != ours[flag]]
    if not differ:
        return None
    said = [" and ".join(f"{flag} {_shown(s[flag])}" for flag in differ) for s in (theirs, ours)]
    return (f"note: --init {path} was trained with {said[0]}; this run fine-tunes it with its "
            f"own {said[1]}, as stylegan2-ada's --resume does (float16 speed and overflow "
            f"settings, not weights)")


def _float16_settings(G: torch.nn.Module, D: torch.nn.Module) -> dict[str, tuple]:
    """{flag: (G's value, D's value)}: how many resolutions run in float16 (the blocks', so
    that --fp16-res values beyond the image's resolutions compare as they act) and the clamp."""
    def fp16(net: torch.nn.Module) -> int:
        return sum(bool(getattr(m, "use_fp16", False)) for m in net.modules())

    def clamp(net: torch.nn.Module) -> float | None:
        return next((m.conv_clamp for m in net.modules() if hasattr(m, "conv_clamp")), None)
    return {"--fp16-res": (fp16(G), fp16(D)), "--conv-clamp": (clamp(G), clamp(D))}


def _shown(values: tuple) -> str:
    """A setting of G and D ("off" for no clamp), D's named where it differs from G's."""
    g, d = ("off" if v is None else f"{v:g}" for v in values)
    return g if g == d else f"{g} (D: {d})"


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
