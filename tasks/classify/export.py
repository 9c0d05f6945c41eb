"""``robustrep classify export RUN OUT``: a run's weights as a file timm itself loads.

A run's ``checkpoints/latest.pt`` is a training checkpoint (optimizer, EMA, regularizer state)
of a :class:`~robustrep.nets.classifier.Classifier`, whose keys carry its ``model.`` prefix and
its input normalisation (``mean``/``std`` buffers): ``timm.create_model(NAME,
checkpoint_path=latest.pt)`` refuses it. The export reads the run with
:func:`~robustrep.tasks.common.classifier_run.load_run` (``weights_only``, finite weights, its
EMA weights unless ``use_ema`` is False) and writes the timm model's own state dict:

- ``.pth``, ``.pth.tar``, ``.pt``: ``torch.save`` of the dict timm's ``train.py`` saves and its
  ``load_checkpoint`` reads (huggingface/pytorch-image-models ``timm/models/_helpers.py``):
  ``state_dict``, ``arch`` and ``args`` (``model``, ``mean``, ``std``, ``num_classes``,
  ``in_chans``, ``img_size``), with the provenance under ``robustrep``; plain types only, so
  ``torch.load(weights_only=True)`` reads it, and ``classify eval --checkpoint OUT`` takes the
  model and normalisation from ``args`` as it does from timm's own files.
- ``.safetensors``: the state dict with the same facts as string metadata, which robustrep's
  reader (:mod:`robustrep.tasks.common.weights_file`) does not read: a note says what to give.

A UoS head (``--head uos``, ``s |W z/||z|||``) is no timm layer: no timm model gives its logits,
so such a run is refused. timm's pretrained_cfg knows nothing of the run's normalisation: the
printed line says it, with the ``timm.create_model`` call that loads the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from robustrep.tasks.common.errors import UserError

# what OUT may end in: torch.save's names (timm train.py's .pth.tar among them), and safetensors
TORCH_SUFFIXES = (".pth.tar", ".pth", ".pt")
SUFFIXES = (*TORCH_SUFFIXES, ".safetensors")


def check_out(out: Path) -> None:
    """OUT must be a new file with one of :data:`SUFFIXES` (case as written: timm tells a
    ``.safetensors`` file by its lower-case name): a user's file is never replaced."""
    if not out.name.endswith(SUFFIXES) or out.name in SUFFIXES:
        raise UserError(f"OUT {out}: give a path ending in {', '.join(TORCH_SUFFIXES)} "
                        f"(torch.save, as timm's train.py writes) or .safetensors")
    if out.is_symlink() or out.exists():  # a link, dangling or not, is the user's too
        what = "is a symbolic link" if out.is_symlink() else "exists"
        raise UserError(f"OUT {out} {what}; remove it or choose another path (export never "
                        f"replaces a file)")


def check_plain_timm(run: Path, config: dict[str, Any]) -> None:
    """Refuse a run whose logits the plain timm model cannot give: a UoS head (its ``|W v|`` on
    unit features, ``uos_scale`` with it) is robustrep's own layer, not timm's linear head."""
    if config.get("head") == "uos":
        raise UserError(f"RUN {run} has a UoS head (--head uos: logits s|W z/||z||| of a frozen "
                        f"W), a layer timm has not: no timm model gives its logits; export a "
                        f"run trained with --head linear")


def timm_kwargs(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The architecture and ``timm.create_model`` keywords that build the run's timm model as
    :func:`~robustrep.tasks.common.classifier.create_classifier` built it (a hub model's
    ``model_args``, ``img_size`` for a fixed-size model such as a ViT, a wrn's ``final_act``),
    without the training-only ones (dropout, drop path: no weights of theirs)."""
    from robustrep.tasks.common.classifier import build_args
    from robustrep.tasks.common.weights import resolve_model
    source = resolve_model(config["model"])
    kwargs = build_args(source, int(config["num_classes"]), int(config["channels"]),
                        config.get("image_size"), {"final_act": config.get("final_act")})
    return source.arch, kwargs


def timm_checkpoint(state: dict[str, Tensor], config: dict[str, Any], arch: str,
                    kwargs: dict[str, Any]) -> dict[str, Any]:
    """What a ``.pth`` export holds: timm train.py's keys, and where the weights came from."""
    # timm's train.py passes args.model_kwargs to create_model: a wrn's final_act, a hub
    # model's model_args, which classify eval --checkpoint reads back
    extra = {k: v for k, v in kwargs.items() if k not in ("num_classes", "in_chans", "img_size")}
    args = {"model": config["model"], "mean": [float(v) for v in config["mean"]],
            "std": [float(v) for v in config["std"]], "num_classes": int(config["num_classes"]),
            "in_chans": int(config["channels"]), "img_size": config.get("image_size"),
            "model_kwargs": extra}
    provenance = {"run": str(Path(config["run_dir"]).absolute()), "step": config.get("step"),
                  "weights": config["weights"], "create_model": {"model_name": arch, **kwargs}}
    return {"state_dict": state, "arch": arch, "args": args, "robustrep": provenance}


def write_export(out: Path, state: dict[str, Tensor], checkpoint: dict[str, Any]) -> None:
    """``checkpoint`` to ``out``, atomically and as a new file (one made there meanwhile is not
    replaced): ``torch.save`` of it, or for ``.safetensors`` its tensors with the other entries
    as JSON strings in the file's metadata."""
    import torch

    from robustrep.tasks.common.runfiles import write_atomic
    if not out.name.endswith(".safetensors"):
        write_atomic(out, lambda handle: torch.save(checkpoint, handle), replace=False)
        return
    from safetensors.torch import save
    # safetensors stores each tensor on its own: a contiguous copy, shared storage split
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    meta = {"format": "pt", "arch": checkpoint["arch"]}
    meta.update({k: v if isinstance(v, str) else json.dumps(v)
                 for k, v in {**checkpoint["args"], **checkpoint["robustrep"]}.items()})
    write_atomic(out, lambda handle: handle.write(save(tensors, meta)), replace=False)


def loading_line(out: Path, config: dict[str, Any], arch: str, kwargs: dict[str, Any]) -> str:
    """The one line the export prints: what was written, and the timm call that loads it, with
    the normalisation timm's pretrained_cfg does not know."""
    from timm.models import model_entrypoint, split_model_name_tag
    module = model_entrypoint(split_model_name_tag(arch)[0]).__module__
    needs = ("" if module.startswith("timm.") else
             f"`import {module}` (it registers {arch} with timm), then ")
    call = ", ".join([repr(arch), *(f"{k}={v!r}" for k, v in kwargs.items()),
                      f"checkpoint_path={str(out)!r}"])
    weights = "EMA" if config["weights"] == "ema" else "raw"
    return (f"wrote {out}: {config['model']}, the {weights} weights of {config['run_dir']} at "
            f"step {config.get('step')}; load it with {needs}timm.create_model({call}) and feed "
            f"it (x - mean) / std of images x in [0, 1], mean {_values(config['mean'])}, std "
            f"{_values(config['std'])} (timm's pretrained_cfg does not know them)")


def safetensors_note(out: Path, config: dict[str, Any]) -> str | None:
    """For a ``.safetensors`` export: robustrep's weights reader reads its tensors only (not
    the metadata), so ``classify eval``/``ood score --checkpoint`` need the model and the
    normalisation given."""
    if not out.name.endswith(".safetensors"):
        return None
    return (f"note: robustrep reads no metadata of {out}: give classify eval and ood score "
            f"--model {config['model']} --checkpoint {out} --mean {_flags(config['mean'])} "
            f"--std {_flags(config['std'])}")


def _values(values: list[float]) -> str:
    return "[" + ", ".join(str(float(v)) for v in values) + "]"


def _flags(values: list[float]) -> str:
    return " ".join(str(float(v)) for v in values)


def export_run(run: str | Path, out: str | Path, use_ema: bool = True) -> tuple[str, str | None]:
    """Write the weights of classify run ``run`` to the new file ``out`` for timm (EMA weights
    where the run has them, unless ``use_ema`` is False); returns the line to print and, for a
    ``.safetensors`` file, the note on robustrep's reading of it. UserError (one line) for a
    folder that is not a classify run, an OUT that exists or has another suffix, a UoS head."""
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.common.options import check_run_folder
    if not str(out).strip():  # Path("") is ".": "OUT .: give a path ..." named no path given
        raise UserError("OUT is empty; give a path ending in .pth or .safetensors, e.g. "
                        "model.safetensors")
    run, out = Path(run).expanduser(), Path(out).expanduser()
    check_run_folder(run, "RUN", "{run}")  # a checkpoint file given: its run folder
    check_out(out)
    classifier, config = load_run(run, "cpu", use_ema)
    check_plain_timm(run, config)
    arch, kwargs = timm_kwargs(config)
    state = classifier.model.state_dict()
    write_export(out, state, timm_checkpoint(state, config, arch, kwargs))
    return loading_line(out, config, arch, kwargs), safetensors_note(out, config)
