"""Classifiers for the programs: built with their pretrained weights, and read back from runs.

The network is :class:`robustrep.nets.classifier.Classifier` (a timm model with input
normalisation inside, seen as ``head(features(x))``); this module builds it by name
(:func:`create_classifier`, the CIFAR wide ResNets of :mod:`robustrep.nets.wrn` included) and
loads what classify and ood share: a run folder (:func:`load_run`, :func:`load_run_features`) or
weights no robustrep run made (:func:`load_model`).

Pretrained weights come from a local file (``pretrained_file``), or, with ``pretrained=True``, from
where :mod:`robustrep.tasks.common.weights` finds them (timm's default tag on the Hugging Face hub,
``hf-hub:ORG/NAME``, a local timm folder; the hub's cache first, nothing fetched when offline).
Either way robustrep reads the file itself (:mod:`.weights_file`: ``weights_only=True`` or
safetensors) and hands timm the state dict (``pretrained_cfg_overlay=dict(state_dict=...)``), so
timm's own rules drop or keep the classifier and adapt the input conv, and no pickle is ever
unpickled with code.

:func:`load_run` is the contract the OOD program relies on: a run folder -> (classifier, config).
"""

from __future__ import annotations

import json
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
from robustrep.tasks.common.checkpoint import LATEST, load_checkpoint, load_weights
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import CheckpointError, RunFolderError
from robustrep.tasks.common.options import RUN_CHECKPOINT_USE, check_run_folder
from robustrep.tasks.common.runtime import eval_mode
from robustrep.tasks.common.weights import is_source_name, resolve_model
from robustrep.tasks.common.weights_file import (WeightsFile, WeightsMismatch, check_fits,
                                                 check_parameter_values, read_weights)


class NotAClassifierRun(RunFolderError, ValueError):
    """A run folder whose config.json lacks a classifier's keys (a GAN's or an OOD score's
    folder): one line, exit 2. Also a ValueError, as :func:`load_run` documents it."""


def _fixed_input_size(name: str) -> bool:
    """Whether timm builds ``name`` for one input size (a ViT's patch grid), so that size must
    be passed at construction."""
    cfg = timm.models.get_pretrained_cfg(name)
    return bool(getattr(cfg, "fixed_input_size", False))


# pretrained_cfg fields a hub/folder config.json may set for the architecture (mean, std, the
# classifier's name...); where weights come from is robustrep's business, never timm's.
_SOURCE_KEYS = ("url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source")


def _cfg_overlay(cfg: dict[str, Any]) -> dict[str, Any]:
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
    overlay = _cfg_overlay(source.cfg)
    build = _build_args(source, num_classes, in_chans, image_size, timm_kwargs)
    if weights is None:
        model = _create_model(name, source.arch, overlay, build)
    else:
        read = read or read_weights(weights, use_ema)
        read.say_notes()  # where they were said: before a fit check refuses the file
        state = read.state
        probe = _create_model(name, source.arch, overlay, build)
        check_fits(name, probe, state, weights, head=keep_head)
        check_parameter_values(probe, state, weights)
        # timm drops the file's classifier when the overlay's num_classes differs from ours (-1
        # never equals it) and keeps it when equal; no url/hub id, so nothing can be fetched.
        overlay.update(state_dict=state, url="", hf_hub_id=None, file=None,
                       num_classes=num_classes if keep_head else -1)
        conv = state.get(f"{_first(probe.pretrained_cfg.get('first_conv'))}.weight")
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


def _build_args(source: Any, num_classes: int, in_chans: int, image_size: int | None,
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


def _create_model(name: str, arch: str, overlay: dict[str, Any], build: dict[str, Any]):
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


def _run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a robustrep run folder: no config.json "
                                f"(expected RUN/config.json and RUN/checkpoints/{LATEST} written "
                                f"by `robustrep classify train`)")
    from robustrep.tasks.common.runfiles import read_json
    config = read_json(path, dict)  # damaged: one line naming the file
    needed = ("model", "num_classes", "channels", "mean", "std")
    missing = [k for k in needed if config.get(k) is None]
    if missing:
        raise NotAClassifierRun(f"{run_dir} does not hold a classifier run: config.json lacks "
                                f"{', '.join(missing)} (is it a GAN or OOD run? expected a "
                                f"folder written by `robustrep classify train`)")
    for key in needed:
        _check_saved(path, key, config[key])
    return config


# what classify train saves for the keys a run is loaded from, and how a reader says it
_SAVED = {"model": (str, "a model name"), "num_classes": (int, "an integer >= 1"),
          "channels": (int, "1 or 3"), "mean": (list, "a list of numbers"),
          "std": (list, "a list of numbers > 0")}


def _check_saved(path: Path, key: str, value: Any) -> None:
    """A hand-edited or damaged config.json value is one line naming the file and the key (was
    a TypeError traceback from ``int([1])`` for ``"channels": [1]``)."""
    kind, what = _SAVED[key]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and kind is int:
        ok = value >= 1 and (key != "channels" or value in (1, 3))
    if ok and kind is list:
        ok = bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and (key != "std" or v > 0) for v in value)
    if not ok:
        raise NotAClassifierRun(f"{path}: {key} must be {what}, got {json.dumps(value)}; was "
                                f"the file edited? (classify train writes it)")


def load_run(run_dir: str | Path, device: str | torch.device = "cpu",
             use_ema: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """Load the classifier of a ``robustrep classify train`` run folder, in eval mode.

    The folder holds ``config.json`` (keys include ``model``, ``num_classes``, ``dataset``,
    ``image_size``, ``channels``, ``data_root``, ``classes``, ``mean``, ``std``) and
    ``checkpoints/latest.pt`` with the ``"model"`` state dict (and ``"ema"`` when EMA was on).

    Args:
        run_dir: the run folder.
        device: where to put the model.
        use_ema: use the EMA weights when the checkpoint has them.

    Returns:
        ``(classifier, config)``; ``config["weights"]`` says ``"ema"`` or ``"model"``,
        ``config["step"]`` the checkpoint's training step (below ``config["steps"]`` while the
        run is unfinished), ``config["norm_source"]`` ``"run"`` for mean and std (its
        config.json's).

    Raises:
        RunFolderError: no such folder, or a file (a checkpoint file: which folder to give).
        FileNotFoundError: no config.json or no checkpoint.
        NotAClassifierRun: the folder is not a classifier run.
        CheckpointError: the checkpoint is unreadable, unsafe (weights_only refuses it),
            holds non-finite weights or does not fit the run's model.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, "RUN", RUN_CHECKPOINT_USE)  # not there, or a file (a checkpoint?)
    config = _run_config(run_dir)
    ckpt_path = run_dir / "checkpoints" / LATEST
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint: expected {ckpt_path} (has the "
                                f"training run written its first checkpoint yet?)")
    state = load_checkpoint(ckpt_path, map_location="cpu")  # weights_only; CheckpointError
    if not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{ckpt_path} has no 'model' state dict; it is not a classifier "
                              f"checkpoint")
    model = create_classifier(config["model"], int(config["num_classes"]),
                              in_chans=int(config["channels"]), mean=config["mean"],
                              std=config["std"], drop_rate=config.get("drop_rate"),
                              drop_path_rate=config.get("drop_path"),
                              head=config.get("head") or "linear",
                              uos_scale=config.get("uos_scale"),
                              image_size=config.get("image_size"),
                              final_act=config.get("final_act"))
    weights = "ema" if use_ema and state.get("ema") is not None else "model"
    load_weights(model, state[weights], str(ckpt_path),
                 f"{config['model']!r} with {config['num_classes']} classes",
                 "the run diverged: use an earlier step_*.pt or retrain with a lower --lr")
    config = dict(config, weights=weights, run_dir=str(run_dir), step=state.get("step"),
                  norm_source={"mean": NORM_RUN, "std": NORM_RUN})
    return model.to(device).eval(), config


def _as_written(buffer: Tensor) -> list[float]:
    """A float32 buffer's values as the shortest decimals that are them (0.2, not the
    0.20000000298023224 its float64 reading prints), as reports and notes show them."""
    return [float(str(v)) for v in buffer.detach().float().cpu().flatten().numpy()]


def _first(value: Any) -> str | None:
    return value[0] if isinstance(value, (list, tuple)) and value else value or None


def load_model(name: str, checkpoint: str | Path | None = None, pretrained: bool = False,
               num_classes: int | None = None, in_chans: int | None = None,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               image_size: int | None = None, device: str | torch.device = "cpu",
               use_ema: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """A classifier no robustrep run made, in eval mode, with the config keys of :func:`load_run`.

    ``checkpoint``: a state dict from any trainer (``.pth``/``.pt`` read with
    ``weights_only=True``, or ``.safetensors``; ``state_dict``/``model`` wrappers and ``module.``/
    ``model.`` key prefixes removed; a robustrep run's checkpoint gives its model and, unless
    ``mean``/``std`` are given, its normalisation), loaded whole, head included; ``num_classes`` and
    ``in_chans`` default to its classifier's rows and its input conv's channels. ``pretrained``:
    the weights of ``name`` as :func:`create_classifier` finds them, head kept (``num_classes``
    defaults to the pretrained head's). A file that does not fit raises WeightsMismatch listing the
    missing, unexpected and wrongly shaped parameters in one line.

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
    read = None
    # where the input channels come from, for a refusal of --mean/--std (create_classifier)
    channels_from = f"(--channels {in_chans})" if in_chans is not None else None
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path} does not exist (expected a .pth/.pt/"
                                    f".safetensors state dict of {name!r})")
        read = read_weights(path, use_ema)  # its notes: create_classifier says them
        read.notes += filter(None, [_renamed_note(name, read)])
        state = read.state
        head, conv = (f"{_first(source.cfg.get(k))}.weight" for k in ("classifier", "first_conv"))
        if num_classes is None and state.get(head) is not None:
            num_classes = int(state[head].shape[0])
        if in_chans is None and state.get(conv) is not None and state[conv].dim() == 4:
            in_chans = int(state[conv].shape[1])
            channels_from = f"of {checkpoint}'s weights ({_channels(in_chans)})"
        weights = str(path)
    else:
        num_classes = num_classes or source.cfg.get("num_classes")
        if in_chans is None:
            in_chans = (source.cfg.get("input_size") or (3,))[0]
            channels_from = f"of {name}'s pretrained weights ({_channels(in_chans)})"
        weights = "pretrained"
    channels_from = channels_from or f"({_channels(in_chans or 3)}, the default; --channels " \
                                     f"sets it)"
    if not num_classes and read is not None:  # no head of --model's in the file: is it of
        _check_body_fits(name, source, read, in_chans, image_size)  # another architecture?
    if not num_classes:
        raise ConfigError(f"cannot tell the number of classes of {name!r} from its weights; "
                          f"give --num-classes N")
    model = create_classifier(name, int(num_classes), int(in_chans or 3), mean, std,
                              pretrained_file=read, pretrained=pretrained, keep_head=True,
                              image_size=image_size, use_ema=use_ema,
                              channels_from=channels_from)
    config = {"model": name, "num_classes": int(num_classes), "channels": model.in_chans,
              "mean": _as_written(model.mean), "std": _as_written(model.std),
              "image_size": image_size, "weights": weights, "pretrained": pretrained,
              "checkpoint_config": read.run_config if read is not None else None,
              "ema": read is not None and read.ema, "norm_source": dict(model.norm_source),
              "trained_norm": _trained_norm(name, read, model.norm_source)}
    return model.to(device).eval(), config


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
    build = _build_args(source, 2, int(in_chans or 3), image_size, {})
    probe = _create_model(name, source.arch, _cfg_overlay(source.cfg), build)
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


class _PreLogits(nn.Module):
    """``classifier.features`` as a module of its own (what a feature network is called with)."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x)


def load_run_features(run_dir: str | Path, device: str | torch.device = "cpu",
                      use_ema: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The pre-logit feature network of a classify run, for any program.

    The GAN program scores generators with the features of a classifier trained on its own data
    (``--fid-features run:RUN``), as domain-specific FIDs do (Kynkaanniemi et al., "The Role of
    ImageNet Classes in Frechet Inception Distance", ICLR 2023). Same run reading as
    :func:`load_run` (``weights_only``, finite weights), in eval mode with no gradients; a folder
    that is not a classify run is a RunFolderError.
    """
    written = "a folder written by `robustrep classify train`"
    check_run_folder(run_dir, "", "run:{run}", written)  # (load_run's answer names --model)
    try:
        classifier, config = load_run(run_dir, device, use_ema)
    except (FileNotFoundError, ValueError) as err:
        # load_run's lines each say what they expected (a run's config.json, its checkpoint):
        # a second "(expected ...)" made the line say it twice
        said = "expected " in str(err)
        raise RunFolderError(str(err) if said else f"{err} (expected {written})") from None
    return _PreLogits(classifier).eval().requires_grad_(False), config
