"""Classifiers for the programs, built by name with their pretrained weights and normalisation.

The network is :class:`robustrep.nets.classifier.Classifier` (a timm model with input
normalisation inside, seen as ``head(features(x))``); this module builds it by name
(:func:`create_classifier`, the CIFAR wide ResNets of :mod:`robustrep.nets.wrn` included) and
says where its input mean/std came from. What classify and ood share to load one is in two
modules of their own: a run folder (:mod:`robustrep.tasks.common.classifier_run`) and weights no
robustrep run made (:mod:`robustrep.tasks.common.foreign_model`).

Pretrained weights come from a local file (``pretrained_file``), or, with ``pretrained=True``, from
where :mod:`robustrep.tasks.common.weights` finds them (timm's default tag on the Hugging Face hub,
``hf-hub:ORG/NAME``, a local timm folder; the hub's cache first, nothing fetched when offline).
Either way robustrep reads the file itself (:mod:`.weights_file`: ``weights_only=True`` or
safetensors) and hands timm the state dict (``pretrained_cfg_overlay=dict(state_dict=...)``), so
timm's own rules drop or keep the classifier and adapt the input conv, and no pickle is ever
unpickled with code.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from robustrep.nets.classifier import HEADS, Classifier, as_classifier, check_model_name
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import CheckpointError
from robustrep.tasks.common.runtime import eval_mode
from robustrep.tasks.common.weights import is_source_name, resolve_model
from robustrep.tasks.common.weights_file import (WeightsFile, WeightsMismatch, check_fits,
                                                 check_parameter_values, read_weights)


def _fixed_input_size(name: str) -> bool:
    """Whether timm builds ``name`` for one input size (a ViT's patch grid), so that size must
    be passed at construction."""
    cfg = timm.models.get_pretrained_cfg(name)
    return bool(getattr(cfg, "fixed_input_size", False))


# pretrained_cfg fields a hub/folder config.json may set for the architecture (mean, std, the
# classifier's name...); where weights come from is robustrep's business, never timm's.
_SOURCE_KEYS = ("url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source")


def cfg_overlay(cfg: dict[str, Any]) -> dict[str, Any]:
    """The fields of a resolved model's ``cfg`` that timm takes as a pretrained_cfg overlay,
    where its weights come from left out."""
    fields = set(timm.models.PretrainedCfg.__dataclass_fields__)
    return {k: v for k, v in cfg.items() if k in fields and k not in _SOURCE_KEYS}


def _weights_path(pretrained_file: str | Path, name: str) -> Path:
    path = Path(pretrained_file).expanduser()
    if path.is_dir():
        raise FileNotFoundError(f"pretrained weights file {path} is a folder; give the weights "
                                f"file in it (.pth/.pt/.safetensors), or a timm model folder as "
                                f"--model {shlex.quote(str(path))} --pretrained")
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} does not exist (expected a "
                                f"local .pth/.pt/.safetensors state dict of {name!r})")
    return path


def check_model_source(name: str) -> None:
    """A timm model name, a hub repository or a local folder; a path that names no folder is a
    CheckpointError, an unknown name a ConfigError (a ValueError too) listing close matches."""
    if is_source_name(name):
        return
    if "/" in name or name.startswith("."):  # meant as a folder (hub names need hf-hub:)
        raise CheckpointError(f"model {name!r}: no such folder (a local timm model is a folder "
                              f"with config.json and its weights; a hub model is "
                              f"hf-hub:ORG/NAME)")
    try:  # the library's check, a plain ValueError: here the user's --model (or a run's)
        check_model_name(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def create_classifier(name: str, num_classes: int, in_chans: int = 3,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      pretrained_file: str | Path | WeightsFile | None = None,
                      head: str = "linear",
                      uos_scale: float | None = None, image_size: int | None = None,
                      pretrained: bool = False, keep_head: bool = False,
                      use_ema: bool = True, channels_from: str | None = None,
                      **timm_kwargs: Any) -> Classifier:
    """Create ``timm.create_model(name)`` wrapped in a :class:`Classifier`.

    Args:
        name: a timm model name (unknown names raise ConfigError listing close matches),
            ``hf-hub:ORG/NAME`` or a local timm folder (``local-dir:PATH`` or ``PATH``).
        num_classes: outputs of the head.
        in_chans: input channels.
        mean, std: per-channel normalisation (default: a robustrep checkpoint's own, or the
            ``args.mean``/``args.std`` timm's train.py saved with the weights, else the
            model's pretrained_cfg, or the config.json of a hub repository or folder); where
            each came from is the classifier's ``norm_source`` (``{"mean": ..., "std": ...}``,
            :data:`NORM_GIVEN`, :data:`NORM_FILE` or :data:`NORM_DEFAULT`).
        pretrained_file: local weights; the classifier is dropped and re-initialised for
            ``num_classes``, the input conv adapted to ``in_chans`` (timm's rules). Missing file
            -> FileNotFoundError; weights of another architecture -> WeightsMismatch. A
            :class:`WeightsFile` is a file :func:`read_weights` has read already (with its
            ``use_ema``), used as it is.
        pretrained: the weights of ``name`` itself (timm's default pretrained tag on the hub, a
            hub repository's or a folder's), found by :func:`~robustrep.tasks.common.weights.
            resolve_model` (CheckpointError when absent and offline).
        keep_head: load the file's classifier too (it must have ``num_classes`` outputs), for
            evaluating a finished model instead of fine-tuning it.
        use_ema: a training checkpoint's EMA weights where it holds them (False: its raw ones).
        head: ``"linear"`` (the model's own classifier) or ``"uos"`` (:class:`UoSHead`).
        uos_scale: logit scale of the UoS head (None: the core default, 1).
        image_size: the input side; passed as ``img_size`` to models whose input size is fixed
            at construction (timm's ``fixed_input_size``, e.g. ViTs), ignored by the others.
        channels_from: where ``in_chans`` came from (``"of FILE's weights (3 channels)"``),
            for a refusal of ``--mean``/``--std`` of another length (None: the library's).
        timm_kwargs: passed to ``timm.create_model`` (``None`` values are dropped).
    """
    check_model_source(name)
    if head not in HEADS:
        raise ConfigError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    if pretrained and pretrained_file is not None:
        raise ConfigError("give --pretrained (the weights of --model) or --pretrained-file FILE, "
                          "not both")
    read = pretrained_file if isinstance(pretrained_file, WeightsFile) else None
    weights = None
    if read is not None:  # read and checked by the caller (load_model)
        weights = read.path
    elif pretrained_file is not None:
        weights = _weights_path(pretrained_file, name)
    source = resolve_model(name, pretrained)
    weights = weights or source.weights
    overlay = cfg_overlay(source.cfg)
    build = build_args(source, num_classes, in_chans, image_size, timm_kwargs)
    if weights is None:
        model = create_model(name, source.arch, overlay, build)
    else:
        read = read or read_weights(weights, use_ema)
        read.say_notes()  # where they were said: before a fit check refuses the file
        state = read.state
        probe = create_model(name, source.arch, overlay, build)
        check_fits(name, probe, state, weights, head=keep_head)
        check_parameter_values(probe, state, weights)
        # timm drops the file's classifier when the overlay's num_classes differs from ours (-1
        # never equals it) and keeps it when equal; no url/hub id, so nothing can be fetched.
        overlay.update(state_dict=state, url="", hf_hub_id=None, file=None,
                       num_classes=num_classes if keep_head else -1)
        conv = state.get(f"{first_layer_name(probe.pretrained_cfg.get('first_conv'))}.weight")
        if conv is not None and conv.dim() == 4:  # the file's input channels, for timm's adapter
            size = probe.pretrained_cfg.get("input_size") or (3, 224, 224)
            overlay["input_size"] = (int(conv.shape[1]), *size[1:])
        try:
            model = timm.create_model(source.arch, pretrained=True,
                                      pretrained_cfg_overlay=overlay, **build)
        except RuntimeError as err:
            raise WeightsMismatch(f"weights file {weights} does not fit timm model {name!r}: "
                                  f"{err}") from err
        model.pretrained_cfg["state_dict"] = None  # do not keep a second copy of the weights
    norm, sources = _normalisation({"mean": mean, "std": std}, read, in_chans)
    try:  # the library's checks of what the user gave: --mean/--std, --head uos
        classifier = as_classifier(model, in_chans, norm["mean"], norm["std"], head, uos_scale)
    except ValueError as err:
        raise ConfigError(_norm_refusal(norm, sources, in_chans, channels_from) or
                          str(err)) from None
    classifier.norm_source = sources  # not a buffer: where the values came from, not saved
    taken = (source.arch, repr(sorted(build.items())), head, image_size)
    if image_size is not None and taken not in _SIZES_TAKEN:  # a report builds one many times
        check_input_size(classifier, in_chans, image_size, name)
        _SIZES_TAKEN.add(taken)
    return classifier


def _norm_refusal(norm: dict[str, Sequence[float] | None], sources: dict[str, str],
                  in_chans: int, channels_from: str | None) -> str | None:
    """The refusal of ``--mean``/``--std`` given with another number of values than the input
    channels, naming the options and where the channel count came from; None where the
    values are not the user's (the library's message then says it: a run's config.json, say).
    The library's line, ``mean/std need 3 value(s) ...; got mean=[0.5], std=[0.5]``, named
    neither."""
    wrong = {key: len(norm[key]) for key in ("mean", "std") if sources.get(key) == NORM_GIVEN
             and norm[key] is not None and len(norm[key]) != in_chans}
    if not wrong or channels_from is None:
        return None
    options = "/".join(f"--{key}" for key in wrong)
    counts = " and ".join(str(n) for n in dict.fromkeys(wrong.values()))
    values = "value" if in_chans == 1 else "values"
    return (f"{options}: give {in_chans} {values}, one per input channel {channels_from}; "
            f"got {counts}")


# Where a classifier's input mean/std came from (``norm_source``, one per key): the caller's
# (--mean/--std), the weights file's own (a robustrep Classifier's mean/std buffers, as a classify
# run's checkpoint keeps them, or the args.mean/args.std of timm's train.py saved with the
# weights: what they were trained with), a run folder's config.json (load_run), or --model's
# pretrained_cfg in timm (a hub repository's or folder's config.json; averaged over the channels
# for 1-channel inputs: default_norm), which need not be the statistics a file was trained with.
NORM_GIVEN, NORM_FILE, NORM_RUN, NORM_DEFAULT = "given", "file", "run", "timm default"


def _normalisation(given: dict[str, Sequence[float] | None], read: WeightsFile | None,
                   in_chans: int) -> tuple[dict[str, Sequence[float] | None], dict[str, str]]:
    """Each of ``mean``/``std``, and its source, in the order they are taken: ``given``, the
    file's own (its buffers, else its timm train.py ``args``), else None
    (:func:`~robustrep.nets.classifier.as_classifier` takes timm's). A file's timm ``args``
    value was once silently replaced by timm's default: top-1 0.11 where its own gave 0.99."""
    own = read.normalisation if read is not None else {}
    trained = read.trained.norm if read is not None and read.trained is not None else {}
    values, sources = {}, {}
    for key, value in given.items():
        if value is not None:
            values[key], sources[key] = value, NORM_GIVEN
            _say_replaced(key, value, own.get(key) or trained.get(key), read)
        elif own.get(key) is not None:
            values[key], sources[key] = own[key], NORM_FILE
        elif trained.get(key) is not None:
            values[key] = _per_channel(trained[key], in_chans, key, read.path)
            sources[key] = NORM_FILE
        else:
            values[key], sources[key] = None, NORM_DEFAULT
    return values, sources


def _say_replaced(key: str, value: Sequence[float], theirs: Sequence[float] | None,
                  read: WeightsFile | None) -> None:
    """A note when ``--mean``/``--std`` replace other values the weights file was trained with
    (the given ones win, as asked; a typo, or another model's values, changed the scores without
    a word: ID accuracy 50% -> 37.5%)."""
    if theirs is None or read is None:
        return
    mine, file_values = [float(v) for v in value], [float(v) for v in theirs]
    n = max(len(mine), len(file_values))  # one value stands for every channel
    if (mine * n if len(mine) == 1 else mine) != (file_values * n if len(file_values) == 1
                                                   else file_values):
        print(f"note: --{key} {' '.join(f'{v:g}' for v in mine)} replaces the {key} "
              f"{' '.join(f'{v:g}' for v in file_values)} that {read.path} records (its "
              f"training's); the given values are used", file=sys.stderr)


def _per_channel(values: list[float], in_chans: int, key: str, path: Path) -> list[float]:
    """A timm train.py ``args.mean``/``args.std`` for ``in_chans`` channels: one value is every
    channel's, as timm's ``resolve_data_config`` repeats it."""
    if len(values) == 1:
        return values * in_chans
    if len(values) != in_chans:
        raise CheckpointError(f"weights file {path}: its timm train.py args.{key} has "
                              f"{len(values)} values for {in_chans}-channel inputs (its "
                              f"weights'); give --mean and --std, one value per channel")
    return values


def build_args(source: Any, num_classes: int, in_chans: int, image_size: int | None,
                timm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``timm.create_model`` arguments of ``source`` (a resolved model) for the run."""
    kwargs = {**source.model_args, **{k: v for k, v in timm_kwargs.items() if v is not None}}
    for key in ("num_classes", "in_chans", "pretrained_cfg", "pretrained_cfg_overlay"):
        kwargs.pop(key, None)  # the run's own, or robustrep's
    # the data's size wins over a hub config's model_args; an explicit img_size over both
    if image_size is not None and _fixed_input_size(source.arch) and "img_size" not in timm_kwargs:
        kwargs["img_size"] = int(image_size)
    return dict(num_classes=num_classes, in_chans=in_chans, **kwargs)


# (architecture, its build arguments, head, image size) that check_input_size has passed
_SIZES_TAKEN: set[tuple[Any, ...]] = set()


@contextmanager
def sizes_checked_again():
    """Inside, what check_input_size passes is not remembered: a model built on the meta device
    only to count its bytes (``tasks/common/memory_fit.py``) leaves the check to the real
    model's build, whose forward runs where the meta device cannot (``.item()``...)."""
    taken = set(_SIZES_TAKEN)
    try:
        yield
    finally:
        _SIZES_TAKEN.intersection_update(taken)


def check_input_size(model: nn.Module, channels: int, image_size: int, name: str) -> None:
    """ConfigError naming --image-size when ``model`` cannot take ``image_size`` inputs (its
    stem and stages shrink them below a kernel: ``test_convnext`` at 8; a ViT's patches do not
    tile them, which timm asserts: ``test_vit`` at 15); that was a traceback deep in timm at
    step 1, after the run folder was made. The forward runs on meta tensors
    (shapes only, no compute, the weights untouched); where a model's forward needs values, or
    a layer's output comes out empty (torch before 2.6 gives a convolution larger than its
    input an empty output on the meta device, where the CPU refuses it), it runs once for real,
    in eval mode without gradients, for the device's own verdict and message."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    shapes = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
    x = torch.empty(2, channels, image_size, image_size, device="meta")
    dry_run = next(iter(tensors.values()), x).is_meta  # the dry run's model: nothing to run
    try:
        with torch.no_grad(), _empty_outputs(model) as empty:
            torch.func.functional_call(model, shapes, (x,))
        if not empty:
            return
        if dry_run:
            _refuse_input_size(RuntimeError(f"{empty[0]} gives an empty output"), image_size,
                               name)
    except NotImplementedError:  # an operation without a meta kernel: left to the run
        return
    except (RuntimeError, AssertionError) as err:  # the latter: timm's shape checks (_assert)
        if dry_run:
            if "meta" not in str(err):  # not the meta device's own limit (.item(), ...)
                _refuse_input_size(err, image_size, name)
            return
    try:
        with torch.no_grad(), eval_mode(model):
            device = next(iter(tensors.values()), torch.empty(0)).device
            model(torch.zeros(2, channels, image_size, image_size, device=device))
    except (RuntimeError, AssertionError) as err:
        _refuse_input_size(err, image_size, name)


@contextmanager
def _empty_outputs(model: nn.Module):
    """The names of ``model``'s layers whose output came out with no elements, while inside."""
    empty: list[str] = []
    names = {module: name for name, module in model.named_modules()}

    def look(module, args, output) -> None:
        if isinstance(output, Tensor) and output.numel() == 0:
            empty.append(names.get(module) or type(module).__name__)

    hooks = [m.register_forward_hook(look) for m in names]
    try:
        yield empty
    finally:
        for hook in hooks:
            hook.remove()


def _refuse_input_size(why: BaseException, image_size: int, name: str) -> None:
    # an assertion is a size the model does not tile (a ViT's patches), which a larger size
    # need not fix either
    fix = ("an --image-size the model takes" if isinstance(why, AssertionError)
           else "a larger --image-size")
    raise ConfigError(f"--image-size {image_size}: model {name!r} cannot take "
                      f"{image_size}x{image_size} inputs ({str(why).splitlines()[0]}); give "
                      f"{fix}") from None


# timm.create_model options an architecture may lack, and the flags that set them
MODEL_OPTION_FLAGS = {"drop_path_rate": "--drop-path", "drop_rate": "--drop-rate"}


def create_model(name: str, arch: str, overlay: dict[str, Any], build: dict[str, Any]):
    """``timm.create_model(arch)`` without weights; an option the architecture does not take
    (timm passes them to its constructor, which raises TypeError) is a ConfigError naming it."""
    try:
        return timm.create_model(arch, pretrained=False, pretrained_cfg_overlay=overlay or None,
                                 **build)
    except TypeError as err:
        bad = next((k for k in build if f"unexpected keyword argument '{k}'" in str(err)), None)
        if bad is None:
            raise
        raise ConfigError(f"{MODEL_OPTION_FLAGS.get(bad, bad)}: model {name!r} takes no {bad} "
                          f"(timm passes it to the model's constructor); drop the option or "
                          f"choose a model that has it") from None


def first_layer_name(value: Any) -> str | None:
    """The first of a pretrained_cfg's layer names (``classifier``, ``first_conv``: one name, or
    several, as a distilled model's two heads), or None."""
    return value[0] if isinstance(value, (list, tuple)) and value else value or None
