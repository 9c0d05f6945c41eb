"""Reading a classifier's weights file, once, as timm users save them, and checking it fits.

Accepted: a bare ``state_dict`` (``.pth``/``.pt``/``.bin`` through
``torch.load(weights_only=True)``, or ``.safetensors``); a training checkpoint holding one, as
timm's ``train.py`` writes it (``state_dict``, ``state_dict_ema``, its ``args`` Namespace) or as
robustrep's runs do (``model``, ``ema``, ``config``), its EMA weights first as timm's
``load_checkpoint(use_ema=True)`` takes them (huggingface/pytorch-image-models,
``timm/models/_helpers.py``); wrapper prefixes (DDP's ``module.``, a wrapper's ``model.``)
stripped where every key has them. A file that holds NaN, inf or integer parameters, or keys and
shapes of another architecture, is one line naming it.

timm's ``train.py`` (``timm/utils/checkpoint_saver.py``) saves ``arch`` (its ``--model``) and
``args``, its options: ``model``, ``mean``/``std`` (None: the model's pretrained_cfg, as
``timm.data.resolve_data_config`` takes them), ``num_classes``, ``img_size``/``input_size``.
They are kept (:class:`TrainOptions`): the model a file names and the normalisation it was
trained with.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._validate import nan_tensors
from robustrep.tasks.common.checkpoint import mismatch_text, safe_load
from robustrep.tasks.common.errors import CheckpointError
from robustrep.tasks.common.options import no_ema_text
from robustrep.tasks.common.weights import hub_cache_entry


# a training checkpoint's entries, in the order timm's load_checkpoint (use_ema=True, its
# default) takes them, with a robustrep checkpoint's own (``ema``, ``model``): the EMA weights
# where the file keeps them
EMA_KEYS = ("state_dict_ema", "model_ema", "ema")
RAW_KEYS = ("state_dict", "model")


class WeightsMismatch(CheckpointError, ValueError):
    """A readable weights file that is no state dict, or holds the keys and shapes of another
    architecture: the user's file, one line (exit 2). Also a ValueError, as its callers
    (``ood score``, ``load_run_features``) and the library's documented contract expect."""


def _ema_entries(data: Any) -> list[str]:
    """The EMA entries a training checkpoint holds (none for a bare state dict)."""
    return [k for k in EMA_KEYS if isinstance(data, dict) and isinstance(data.get(k), dict)]


def _weights_entry(data: dict, path: Path, use_ema: bool = True) -> tuple[dict, str | None]:
    """The state dict inside a training checkpoint (``data`` itself when it is none): its EMA
    weights unless ``use_ema`` is False; and, for a file holding both, the note saying which."""
    raw = [k for k in RAW_KEYS if isinstance(data.get(k), dict)]
    if not use_ema and not raw and _ema_entries(data):
        raise WeightsMismatch(f"{path} holds only {_ema_entries(data)[0]}, EMA weights, and no "
                              f"{' or '.join(RAW_KEYS)} entry: --no-ema has no raw weights to "
                              f"take; drop --no-ema")
    ema = _ema_entries(data) if use_ema else []
    found = ema + raw
    if not found:
        return data, None
    note = None
    if ema and raw:
        note = (f"note: {path} holds {ema[0]} and {raw[0]}; {ema[0]}, the EMA weights, is loaded "
                f"(as timm's load_checkpoint does by default; classify eval and ood score take "
                f"--no-ema for {raw[0]})")
    return data[found[0]], note


@dataclass
class TrainOptions:
    """What timm's ``train.py`` saved beside the weights: ``model``, its ``--model`` (the
    ``args.model`` it saves, else its ``arch`` where that is a timm name: without ``args`` timm
    saves the class name, ``resnet``); ``where``, the entry that named it; ``norm``, the
    ``args.mean``/``args.std`` keys its ``args`` has (a value: what it trained with; None:
    the model's pretrained_cfg, timm's default; a key absent: another trainer's ``args``,
    which says nothing about them); ``model_kwargs``, its ``--model-kwargs``, which it passed
    to ``timm.create_model`` (a wrn's ``final_act=False``: without it the model has a layer
    the weights lack)."""

    model: str | None = None
    where: str | None = None
    norm: dict[str, list[float] | None] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def train_options(data: Any) -> TrainOptions | None:
    """The :class:`TrainOptions` of a loaded file (None where it holds neither ``args`` nor
    ``arch``)."""
    if not isinstance(data, dict):
        return None
    args = data.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    args = args if isinstance(args, dict) else {}
    arch = data.get("arch")
    if not args and not isinstance(arch, str):
        return None
    options = TrainOptions(norm={k: _numbers(args[k], k) for k in ("mean", "std") if k in args},
                           model_kwargs=_model_kwargs(args.get("model_kwargs")))
    if isinstance(args.get("model"), str) and args["model"]:
        options.model, options.where = args["model"], "args.model"
    elif isinstance(arch, str) and _is_timm_name(arch):
        options.model, options.where = arch, "arch"
    return options


# what timm.create_model takes from the file's own entries, or from the command: not a kwarg
_BUILT_OTHERWISE = ("num_classes", "in_chans", "pretrained", "pretrained_cfg",
                    "pretrained_cfg_overlay", "checkpoint_path")


def _model_kwargs(value: Any) -> dict[str, Any]:
    """``args.model_kwargs`` (timm's ``--model-kwargs k=v``, parsed to Python literals): the
    plain values by name; an entry of another shape is left out (no trainer's kwargs)."""
    if not isinstance(value, dict):
        return {}
    plain = (bool, int, float, str, type(None))
    return {k: v for k, v in value.items() if isinstance(k, str) and k not in _BUILT_OTHERWISE
            and (isinstance(v, plain) or isinstance(v, (list, tuple))
                 and all(isinstance(x, plain) for x in v))}


def _numbers(value: Any, key: str) -> list[float] | None:
    """``args.mean``/``args.std`` as a list of floats (timm's ``--mean 0.5`` is ``[0.5]``);
    None for None, and for a value no trainer's normalisation can be (read as unset)."""
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    if key == "std" and not all(v > 0 for v in value):
        return None
    return [float(v) for v in value]


def _is_timm_name(name: str) -> bool:
    import timm
    return bool(timm.is_model(name))


def named_model(path: Path) -> TrainOptions | None:
    """The options of a timm ``train.py`` checkpoint, for the model it names before it is
    read (``--checkpoint`` without ``--model``): the tensors are memory-mapped, not read
    (:func:`read_weights` reads them once the model is known). None for a .safetensors file
    (no options in it); an unreadable file is read_weights' CheckpointError."""
    if path.suffix.lower() == ".safetensors":
        return None
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - a legacy (not zip) file, or damage: safe_load says
            data = safe_load(path, "weights file", advice=_ADVICE)
    return train_options(data)


_ADVICE = ("save the model's state_dict() (torch.save(model.state_dict(), FILE)) or a "
           ".safetensors file")


def _damaged_advice(path: Path) -> str:
    """What to do about a damaged weights file: another file, or for one of the Hugging Face
    cache (a cut download) its cache entry deleted, so that it is fetched again."""
    entry = hub_cache_entry(path)
    if entry is None:
        return "use another file"
    return f"it is in the Hugging Face cache: delete {entry} to have it fetched again"


@dataclass
class WeightsFile:
    """One read of a weights file (:func:`read_weights`), handed on so no caller reads it again.

    ``state``: its tensors (wrapper prefixes stripped); ``normalisation``: the ``mean``/``std``
    of a robustrep checkpoint (else empty); ``run_config``: the ``config`` a classify run's
    checkpoint keeps (None for other files); ``notes``: what loading it has to say, on stderr
    once the model is built from it (:meth:`say_notes`), so a file refused says nothing else;
    ``ema``: whether the state is a training checkpoint's EMA weights; ``trained``: timm
    ``train.py``'s options saved with it (None for other files).
    """

    path: Path
    state: dict[str, Tensor]
    normalisation: dict[str, list[float]] = field(default_factory=dict)
    run_config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    ema: bool = False  # the EMA weights of a training checkpoint were taken
    trained: TrainOptions | None = None

    def say_notes(self) -> None:
        for note in self.notes:
            print(note, file=sys.stderr)


def read_weights(path: Path, use_ema: bool = True) -> WeightsFile:
    """The tensors of a weights file, the input normalisation and run config it carries, and
    its notes (unsaid); an unreadable, empty or pickled-object file is one CheckpointError
    naming it (safe_load: weights_only, never the full unpickler)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file
        try:
            data = load_file(str(path))
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError, ... on a bad file
            raise CheckpointError(f"weights file {path} is not a readable .safetensors file "
                                  f"({type(err).__name__}: {str(err)[:120]}); "
                                  f"{_damaged_advice(path)}") from None
    else:
        # timm's train.py saves its argparse.Namespace of options beside the weights; the safe
        # unpickler rebuilds one as an attribute bag (no code runs), and nothing else more
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = safe_load(path, "weights file", advice=_ADVICE, damaged=_damaged_advice(path))
    has_ema = bool(_ema_entries(data))
    run_config = data.get("config") if isinstance(data, dict) else None
    trained = train_options(data)
    notes = []
    if isinstance(data, dict):
        data, note = _weights_entry(data, path, use_ema)
        notes += [note] if note else []
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise WeightsMismatch(f"{path} is not a state dict: expected a mapping of parameter "
                              f"names to tensors (a .pth/.pt from torch.save(model.state_dict()) "
                              f"or a .safetensors file)")
    bad = nan_tensors(data)  # trained on, they give a NaN loss at step 1 that names no file
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(f"weights file {path} holds NaN values ({bad[0]}{more}); use "
                              f"weights saved before the run that wrote them diverged")
    note = no_ema_text(path, use_ema, has_ema, f"no {', '.join(EMA_KEYS[:-1])} or "
                       f"{EMA_KEYS[-1]} entry")
    notes += [note] if note else []
    data, normalisation = _split_normalisation(data)
    return WeightsFile(path, strip_prefixes(data), normalisation,
                       run_config if isinstance(run_config, dict) else None, notes,
                       ema=use_ema and has_ema, trained=trained)


def _split_normalisation(state: dict[str, Tensor]
                         ) -> tuple[dict[str, Tensor], dict[str, list[float]]]:
    """robustrep's Classifier keeps its input normalisation as buffers ``mean`` and ``std``
    beside the timm model's ``model.*`` (a run's ``checkpoints/latest.pt`` given as the weights
    file): the two are split off, so the ``model.`` prefix can go and the run's normalisation
    is kept."""
    others = [k for k in state if k not in ("mean", "std")]
    if len(others) == len(state) - 2 and others and all(k.startswith("model.") for k in others):
        return ({k: state[k] for k in others},
                {k: state[k].flatten().tolist() for k in ("mean", "std")})
    return state, {}


# Key prefixes other trainers add around a model: DDP's ``module.``, a Lightning/wrapper ``model.``
# (and the two together); stripped only when every key has it, so a real submodule keeps its name.
WRAPPER_PREFIXES = ("module.", "model.")


def strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` without the wrapper prefixes that every one of its keys carries."""
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped = True
    return state


def check_fits(name: str, model: nn.Module, state: dict[str, Tensor], path: Path,
               head: bool = False) -> None:
    """Raise :class:`WeightsMismatch` when the file's keys/shapes do not fit ``model`` (the
    classifier too only with ``head``)."""
    classifiers = (model.pretrained_cfg.get("classifier") or ()) if not head else ()
    classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
    first_conv = model.pretrained_cfg.get("first_conv") or ()
    first_conv = (first_conv,) if isinstance(first_conv, str) else tuple(first_conv)

    def skip(key: str) -> bool:
        return any(key.startswith(c + ".") for c in classifiers)

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not skip(k)}
    got = {k: tuple(v.shape) for k, v in state.items() if not skip(k)}

    def same_shape(key: str, want: tuple, have: tuple) -> bool:
        # The input conv may differ in channels only (timm adapts it); other shapes must match.
        return want == have or (any(key == c + ".weight" for c in first_conv)
                                and want[0] == have[0] and want[2:] == have[2:])
    differ = mismatch_text(expected, got, same_shape)
    if differ:
        raise WeightsMismatch(f"weights file {path} does not fit timm model {name!r}: "
                              + differ + ". Give the weights of the same architecture"
                              + (" and --num-classes of its head." if head else "."))


def check_parameter_values(model: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """The file's values for the model's parameters must be real numbers: integers (weights
    cast to int64 are nearly all zero) would be cast back without a word, and an inf (NaN is
    refused on reading) gives a NaN loss at step 1 that names no file. A buffer may hold
    integers or inf on purpose (a count, a mask), so only parameters are checked."""
    params = dict(model.named_parameters())
    whole = [k for k, v in state.items() if k in params and params[k].is_floating_point()
             and not v.is_floating_point()]
    if whole:
        raise CheckpointError(f"weights file {path} holds {state[whole[0]].dtype} values for "
                              f"the parameter {whole[0]} (and {len(whole) - 1} more), not "
                              f"floating point; save the model's floating-point state_dict()")
    bad = [k for k, v in state.items() if k in params and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(f"weights file {path} holds infinite values ({bad[0]}{more}); use "
                              f"weights saved before the run that wrote them diverged")
