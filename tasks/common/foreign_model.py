"""Classifiers from weights no robustrep run made, and the notes on how they were loaded.

:func:`load_model` reads a state dict from any trainer (``--model NAME --checkpoint FILE``) or the
pretrained weights of ``NAME`` (``--pretrained``), builds the classifier with
:func:`~robustrep.tasks.common.classifier.create_classifier` and returns it with the config keys
of :func:`~robustrep.tasks.common.classifier_run.load_run`, so that classify eval and ood score
treat it as they treat a run. The file is read once, by robustrep (``weights_only=True`` or
safetensors). :func:`run_checkpoint_note` and :func:`default_norm_note` say what such a model
was used with that the user did not choose: other data than a classify run's checkpoint was
trained on, or timm's default input normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from robustrep.nets.classifier import Classifier
from robustrep.tasks.common.classifier import (NORM_DEFAULT, NORM_FILE, build_args, cfg_overlay,
                                               check_model_source, create_classifier,
                                               create_model, first_layer_name)
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.weights import resolve_model
from robustrep.tasks.common.weights_file import WeightsFile, check_fits, read_weights


def load_model(name: str, checkpoint: str | Path | None = None, pretrained: bool = False,
               num_classes: int | None = None, in_chans: int | None = None,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               image_size: int | None = None, device: str | torch.device = "cpu",
               use_ema: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """A classifier no robustrep run made, in eval mode, with the config keys of
    :func:`~robustrep.tasks.common.classifier_run.load_run`.

    ``checkpoint``: a state dict from any trainer (``.pth``/``.pt`` read with
    ``weights_only=True``, or ``.safetensors``; ``state_dict``/``model`` wrappers and ``module.``/
    ``model.`` key prefixes removed; a robustrep run's checkpoint gives its model and, unless
    ``mean``/``std`` are given, its normalisation), loaded whole, head included; ``num_classes`` and
    ``in_chans`` default to its classifier's rows and its input conv's channels. ``pretrained``:
    the weights of ``name`` as :func:`~robustrep.tasks.common.classifier.create_classifier` finds
    them, head kept (``num_classes`` defaults to the pretrained head's). A file that does not fit
    raises WeightsMismatch listing the missing, unexpected and wrongly shaped parameters in one
    line.

    The file is read once; ``config["checkpoint_config"]`` is the ``config`` a classify run's
    checkpoint keeps (None for any other file, and for ``pretrained``), for
    :func:`run_checkpoint_note`. ``config["norm_source"]`` says where ``mean`` and ``std`` came
    from (``"given"``, ``"file"``: the checkpoint's own, its buffers or the ``args.mean``/
    ``args.std`` timm's train.py saved, ``"timm default"``: ``name``'s pretrained_cfg), and
    ``config["trained_norm"]`` where those timm options decided them, for
    :func:`default_norm_note`. A timm train.py file naming another model than ``name`` is
    loaded as ``name`` (the user may know better), with a note.
    """
    if (checkpoint is None) == (not pretrained):
        raise ConfigError("--model needs its weights: --pretrained or --checkpoint FILE (one)")
    if pretrained and not use_ema:
        raise ConfigError(f"--no-ema takes a training checkpoint's raw weights, and --pretrained "
                          f"weights of {name!r} are one set; drop --no-ema")
    check_model_source(name)
    source = resolve_model(name, pretrained=False)
    read = None if checkpoint is None else _read_checkpoint(name, checkpoint, use_ema)
    num_classes, in_chans, channels_from = _model_shape(name, source, read, checkpoint,
                                                        num_classes, in_chans)
    if not num_classes and read is not None:  # no head of --model's in the file: is it of
        _check_body_fits(name, source, read, in_chans, image_size)  # another architecture?
    if not num_classes:
        raise ConfigError(f"cannot tell the number of classes of {name!r} from its weights; "
                          f"give --num-classes N")
    model = create_classifier(name, int(num_classes), int(in_chans or 3), mean, std,
                              pretrained_file=read, pretrained=pretrained, keep_head=True,
                              image_size=image_size, use_ema=use_ema,
                              channels_from=channels_from, **_model_kwargs(read))
    weights = "pretrained" if read is None else str(Path(checkpoint).expanduser())
    config = {"model": name, "num_classes": int(num_classes), "channels": model.in_chans,
              "mean": _as_written(model.mean), "std": _as_written(model.std),
              "image_size": image_size, "weights": weights, "pretrained": pretrained,
              "checkpoint_config": read.run_config if read is not None else None,
              "ema": read is not None and read.ema, "norm_source": dict(model.norm_source),
              "trained_norm": _trained_norm(name, read, model.norm_source)}
    return model.to(device).eval(), config


def _model_kwargs(read: WeightsFile | None) -> dict[str, Any]:
    """The ``args.model_kwargs`` timm's train.py built the file's model with (``classify
    export`` writes a wrn's ``final_act`` there), said in a note: the model is built as it was
    trained, where timm's defaults gave a layer the weights lack."""
    import inspect
    ours = inspect.signature(create_classifier).parameters  # not timm's, whatever the file says
    kwargs = read.trained.model_kwargs if read is not None and read.trained else {}
    kwargs = {k: v for k, v in kwargs.items() if k not in ours}
    if kwargs:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        read.notes.append(f"note: {read.path}'s args.model_kwargs ({given}) are passed to "
                          f"timm.create_model, as timm's train.py built the model it trained")
    return kwargs


def _read_checkpoint(name: str, checkpoint: str | Path, use_ema: bool) -> WeightsFile:
    """``--checkpoint FILE`` read once, with a note where it names another model than ``name``;
    FileNotFoundError where there is no such file."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--checkpoint {path} does not exist (expected a .pth/.pt/"
                                f".safetensors state dict of {name!r})")
    read = read_weights(path, use_ema)  # its notes: create_classifier says them
    read.notes += filter(None, [_renamed_note(name, read)])
    return read


def _model_shape(name: str, source: Any, read: WeightsFile | None, checkpoint: str | Path | None,
                 num_classes: int | None, in_chans: int | None
                 ) -> tuple[int | None, int | None, str]:
    """``num_classes`` and ``in_chans`` where not given, as the weights have them (a file's
    classifier rows and input conv channels, or the pretrained config of ``name``), and where
    the input channels came from, for a refusal of --mean/--std (``create_classifier``)."""
    channels_from = f"(--channels {in_chans})" if in_chans is not None else None
    if read is not None:
        state = read.state
        head, conv = (f"{first_layer_name(source.cfg.get(k))}.weight"
                      for k in ("classifier", "first_conv"))
        if num_classes is None and state.get(head) is not None:
            num_classes = int(state[head].shape[0])
        if in_chans is None and state.get(conv) is not None and state[conv].dim() == 4:
            in_chans = int(state[conv].shape[1])
            channels_from = f"of {checkpoint}'s weights ({_channels(in_chans)})"
        elif state.get(conv) is not None and state[conv].dim() == 4:
            read.notes += filter(None, [_adapted_note(checkpoint, int(state[conv].shape[1]),
                                                      in_chans)])
    else:
        num_classes = num_classes or source.cfg.get("num_classes")
        if in_chans is None:
            in_chans = (source.cfg.get("input_size") or (3,))[0]
            channels_from = f"of {name}'s pretrained weights ({_channels(in_chans)})"
    channels_from = channels_from or f"({_channels(in_chans or 3)}, the default; --channels " \
                                     f"sets it)"
    return num_classes, in_chans, channels_from


def _adapted_note(checkpoint: str | Path | None, trained: int, given: int) -> str | None:
    """--channels other than the weights' first conv takes: timm adapts the conv (its
    ``adapt_input_conv``: 1 -> 3 repeats it, scaled by 1/3), which scores a mix of the
    channels, not the images the model was trained on (was silent)."""
    if trained == given:
        return None
    return (f"note: --channels {given}: {checkpoint}'s first conv takes "
            f"{_channels(trained)}, adapted by timm to {given} (its adapt_input_conv), so the "
            f"model sees a mix of the channels, not images as it was trained on; --channels "
            f"{trained}, or no --channels, scores them as trained")


def _as_written(buffer: Tensor) -> list[float]:
    """A float32 buffer's values as the shortest decimals that are them (0.2, not the
    0.20000000298023224 its float64 reading prints), as reports and notes show them."""
    return [float(str(v)) for v in buffer.detach().float().cpu().flatten().numpy()]


def _channels(count: int) -> str:
    return f"{count} channel{'s' * (count != 1)}"


def _same_model(a: str, b: str) -> bool:
    """Whether two model names are one architecture (``resnet50`` and ``resnet50.a1_in1k``: a
    pretrained tag names weights, not another model)."""
    def arch(name: str) -> str:
        return name if ":" in name or "/" in name else name.split(".")[0]
    return arch(a) == arch(b)


def _renamed_note(name: str, read: WeightsFile) -> str | None:
    """``--model`` other than the model a timm train.py checkpoint names: kept (the user may
    know the name it has here), and said, before a fit check may refuse the file."""
    trained = read.trained
    if trained is None or trained.model is None or _same_model(name, trained.model):
        return None
    return (f"note: --checkpoint {read.path} names its model {trained.model} (its timm "
            f"train.py {trained.where}); it is loaded as --model {name}, as given")


def _trained_norm(name: str, read: WeightsFile | None, sources: dict[str, str]
                  ) -> dict[str, str]:
    """Where timm's train.py options saved with the weights decided a mean/std, for
    :func:`default_norm_note`: ``"args"``, its ``args.mean``/``args.std``, taken (not
    robustrep buffers, nor --mean/--std); ``"default"``, timm's default for --model, which its
    ``args`` (None there) trained the weights with, the model being the one they name."""
    trained = read.trained if read is not None else None
    if trained is None:
        return {}
    same = trained.model is not None and _same_model(name, trained.model)
    found = {}
    for key, source in sources.items():
        if source == NORM_FILE and not read.normalisation.get(key):
            found[key] = "args"
        elif source == NORM_DEFAULT and same and key in trained.norm:
            found[key] = "default"  # timm's train.py read None as the model's pretrained_cfg
    return found


def _check_body_fits(name: str, source: Any, read: WeightsFile, in_chans: int | None,
                     image_size: int | None) -> None:
    """WeightsMismatch, naming the keys that differ, when a file without ``name``'s classifier
    does not fit the rest of it either: a ViT's weights given to ``--model test_resnet`` were
    refused with "cannot tell the number of classes", as if only --num-classes were missing.
    The probe's head size is arbitrary (the classifier's keys are not compared)."""
    build = build_args(source, 2, int(in_chans or 3), image_size, {})
    probe = create_model(name, source.arch, cfg_overlay(source.cfg), build)
    check_fits(name, probe, read.state, read.path)


# The data options a classify run's checkpoint records (its "config") that --model does not
# read from it: the field, and its flag.
RUN_DATA_FIELDS = {"dataset": "--dataset", "image_size": "--image-size", "classes": "--classes"}

# what each program does with the model, in the note's words
_DONE = {"classify eval": ("evaluated", "evaluates"), "ood score": ("scored", "scores")}


def run_checkpoint_note(foreign: dict[str, Any], run_config: dict[str, Any] | None,
                        command: str) -> str | None:
    """A classify run's own checkpoint given as ``--model NAME --checkpoint FILE`` where the
    data options (``foreign``) differ from those the run trained on (``run_config``, its
    checkpoint's ``config`` as :func:`load_model` read it): the weights fit, so ``command``
    reported on other data without a word (was: classify eval's top-1 0.16 at the default
    --image-size 32 for a run trained at 8 and scoring 0.56 on its own folder; ood score's ID
    accuracy 34% where the run's folder gives 98%)."""
    if not isinstance(run_config, dict):  # a file no classify run wrote: nothing to say
        return None
    differ = [f"{flag} {_shown(foreign.get(k))} (the run's: {_shown(run_config.get(k))})"
              for k, flag in RUN_DATA_FIELDS.items()
              if k in run_config and _shown(foreign.get(k)) != _shown(run_config.get(k))]
    if not differ:
        return None
    path = Path(str(foreign["checkpoint"]))  # as given: the note names what the user typed
    done, does = _DONE[command]
    run = path.parent.parent if path.parent.name == "checkpoints" else None
    whole = (f"`robustrep {command} {run}` {does} it as trained" if run is not None and
             (run / "config.json").is_file() else "give the run's values")
    return (f"{path} is a classify run's checkpoint, {done} here on other data than it was "
            f"trained on: {'; '.join(differ)}; {whole}")


def default_norm_note(foreign: dict[str, Any], config: dict[str, Any],
                      command: str) -> str | None:
    """The mean/std a ``--checkpoint`` file was used with when they are ``--model``'s default in
    timm (``config["norm_source"]`` from :func:`load_model`; not the user's ``--mean``/``--std``
    nor the file's own buffers): was said nowhere, and weights trained with other statistics (a
    CIFAR trainer's, not ImageNet's) were scored or evaluated (``command``) on inputs shifted
    from theirs. None for ``--pretrained`` (timm's config is those weights' own). Only the
    unset one of the two is named. The source is exact: ood score guessed it by comparing
    values, and a file whose own buffers equal the default was noted as using it. Where timm's
    train.py options saved with the file decided them (``config["trained_norm"]``), the note
    says so: taken from its ``args`` (which was timm's default, wrongly, before), or timm's
    default as its ``args`` (None) trained with, with no advice to give others."""
    sources, trained = config.get("norm_source") or {}, config.get("trained_norm") or {}
    named = [k for k in ("mean", "std") if sources.get(k) == NORM_DEFAULT or trained.get(k)]
    if not (named and foreign.get("checkpoint")):
        return None
    parts = []
    taken = [k for k in named if trained.get(k) == "args"]
    if taken:
        parts.append(f"{_values(config, taken)}, from its timm train.py options "
                     f"({'/'.join(f'args.{k}' for k in taken)})")
    same = [k for k in named if trained.get(k) == "default"]
    if same:
        parts.append(f"{_values(config, same)}, timm's default for --model {foreign['name']}, "
                     f"as its timm train.py options ({'/'.join(f'args.{k}' for k in same)} "
                     f"None) trained it")
    unset = [k for k in named if not trained.get(k)]
    if unset:
        flags = "/".join(f"--{k}" for k in unset)
        parts.append(f"{_values(config, unset)}, timm's default for --model {foreign['name']} "
                     f"(no {flags} given); if the weights were trained with other values, give "
                     f"those with {flags}")
    return f"--checkpoint {foreign['checkpoint']}: {_DONE[command][0]} with input " + \
        "; ".join(parts)


def _values(config: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k} {' '.join(f'{v:g}' for v in config[k])}" for k in keys)


def _shown(value: Any) -> str:
    """An option's value as the command line gives it (a list of labels: comma-separated)."""
    if value is None:  # --classes not given: every label
        return "all"
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
